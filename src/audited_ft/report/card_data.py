"""The data card's view of a run folder (``data/data_card.md``), and small readers the model card shares.

Every input is optional: a file that is absent, unreadable or of the wrong shape becomes ``None`` plus a reason
(``RunView.why_absent``: "absent (stage 'audit' is pending)"), which the card prints as "not measured in this run". The PII view reads the pii
audit's summary (counts per entity, policies) and never its findings, so the card cannot carry a detected value.
"""

from __future__ import annotations

from typing import Any

from audited_ft.report.sections.dataset import profile_view
from audited_ft.run.view import RunView

SPLITS = ("train", "validation", "test")


# reading the run folder ------------------------------------------------------------------------------------------
def dict_of(obj: Any) -> dict:
    """``obj`` if it is a mapping, else an empty one (a run-folder file of the wrong shape reads as empty)."""
    return obj if isinstance(obj, dict) else {}


def list_of(obj: Any) -> list:
    """``obj`` if it is a list, else an empty one."""
    return obj if isinstance(obj, list) else []


def one_line(text: Any) -> str | None:
    """A multi-line template (the prompt) on one line, its line breaks shown as ↵."""
    return str(text).replace("\r\n", "\n").replace("\n", " ↵ ") if text else None


def get(obj: Any, *keys: str) -> Any:
    """``obj[k1][k2]...``, or ``None`` as soon as a level is missing or not a mapping."""
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def split_sources(run: RunView, stats: dict | None) -> dict[str, str]:
    """Data source per split, from data/stats.json, else the manifest's datasets, else the config."""
    found: dict[str, str] = {}
    for split in SPLITS:
        for value in (get(stats, "sources", split), get(run.manifest, "datasets", split, "source"),
                      get(run.raw_config, "data", split), get(run.raw_config, "data", "source")):
            if isinstance(value, str) and value.strip():
                found[split] = value
                break
    return found


# data card --------------------------------------------------------------------------------------------------------
def _blind_spots(audit: dict | None) -> str | None:
    desc = get(audit, "description")
    return desc.partition("Blind spots:")[2].strip() or None if isinstance(desc, str) else None


def _affected(summary: dict) -> list[tuple]:
    return [(split, get(v, "count"), get(v, "rows"), get(v, "percent"))
            for split, v in dict_of(summary.get("rows_affected")).items() if isinstance(v, dict)]


def _pii_view(pii: dict | None) -> dict | None:
    """Counts per entity (per split and total) with the policy applied. Reads the summary only, never findings."""
    summary = get(pii, "summary")
    if not isinstance(summary, dict):
        return None
    counts = dict_of(summary.get("counts"))
    splits = [s for s in counts if isinstance(counts[s], dict)]
    listed = [str(e) for e in list_of(summary.get("entities"))]
    entities = list(dict.fromkeys([*listed, *(e for s in splits for e in counts[s])]))
    rows = [{"entity": e, "policy": get(summary, "policy", e), "by_split": [get(counts, s, e) for s in splits],
             "total": sum(v for s in splits if isinstance(v := get(counts, s, e), (int, float)))} for e in entities]
    return {"status": pii.get("status"), "engine": summary.get("engine"), "model": summary.get("model"),
            "splits": splits, "rows": rows, "rows_affected": _affected(summary),
            "by_policy": sorted(dict_of(summary.get("by_policy")).items()),
            "redactions_applied": summary.get("redactions_applied"), "findings_total": summary.get("findings_total"),
            "ignored": sorted(dict_of(summary.get("ignored")).items()),
            "warnings": [w for w in list_of(summary.get("warnings")) if isinstance(w, str)]}


def _leakage_view(leak: dict | None) -> dict | None:
    """Totals per kind with the policy for each, rows affected, rows dropped, contamination per evaluation set."""
    summary = get(leak, "summary")
    if not isinstance(summary, dict):
        return None
    sets = dict_of(get(summary, "contamination", "sets"))
    return {"status": leak.get("status"), "warned_on": list_of(summary.get("warned_on")),
            "failed_on": list_of(summary.get("failed_on")),
            "totals": [(k, v, get(summary, "settings", "policy", k))
                       for k, v in dict_of(summary.get("totals")).items()],
            "rows_affected": _affected(summary), "dropped": get(summary, "dropped", "rows"),
            "contamination": [(name, get(c, "probe"), get(c, "probes"), get(c, "contaminated"), get(c, "percent"))
                              for name, c in sets.items() if isinstance(c, dict)],
            "contamination_splits": list_of(get(summary, "contamination", "splits_checked"))}


def _char_lengths(stats: dict | None) -> list[dict]:
    rows = []
    for split, fields in dict_of(get(stats, "lengths")).items():
        for field, values in dict_of(fields).items():
            nums = sorted(v for v in list_of(values) if isinstance(v, (int, float)))
            if nums:
                rows.append({"split": split, "field": field, "n": len(nums), "min": nums[0],
                             "median": nums[len(nums) // 2], "max": nums[-1]})
    return rows


def data_context(run: RunView) -> dict:
    """What ``data_card.md.j2`` needs: sources and sizes, cleaning, PII counts, leakage totals, lengths, limits."""
    m, cfg, stats = run.manifest, run.raw_config, run.mapping("data/stats.json")
    pii, leak = run.mapping("audits/pii.json"), run.mapping("audits/leakage.json")
    profile = run.mapping("audits/profile.json")
    sources = split_sources(run, stats)
    datasets = dict_of(m.get("datasets"))
    split_names = list(dict.fromkeys([*SPLITS, *datasets, *dict_of(get(stats, "lengths"))]))
    sizes = [{"split": s, "source": sources.get(s),
              "rows": get(datasets, s, "rows") or get(m, "stages", "data", "rows", s),
              "sha256": str(get(datasets, s, "sha256") or "—")[:16]} for s in split_names
             if s in sources or s in datasets or get(stats, "lengths", s)]
    licence = get(stats, "licence") or get(cfg, "data", "licence")
    cleaning = dict_of(get(stats, "cleaning"))
    limits = [f"audit '{name}': {text}" for name, a in (("pii", pii), ("leakage", leak), ("profile", profile))
              if (text := _blind_spots(a))]
    if len(set(sources.values())) == 1 and len(sources) > 1:
        limits.append("all splits come from one source, split at random: the test split measures in-distribution "
                      "quality only, not quality on other kinds of input")
    if not licence:
        limits.append("the data licence is not recorded (data.licence in the config): check it before any use")
    canaries = dict_of(get(stats, "canaries") or get(m, "canaries"))
    return {"run_id": m.get("run_id", run.path.name), "stats": stats, "why_stats": run.why_absent("data/stats.json", "data"),
            "sizes": sizes, "licence": licence, "fields": sorted(dict_of(get(stats, "fields")).items()),
            "prompt": one_line(get(cfg, "data", "prompt_template")),
            "cleaning": [(g, c.get("rows_in"), c.get("rows_out"), sorted(dict_of(c.get("dropped")).items()))
                         for g, c in cleaning.items() if isinstance(c, dict)],
            "canaries": canaries or None,
            "pii": _pii_view(pii), "why_pii": run.why_absent("audits/pii.json", "audit"),
            "leakage": _leakage_view(leak), "why_leakage": run.why_absent("audits/leakage.json", "audit"),
            "profile": profile_view(profile), "why_profile": run.why_absent("audits/profile.json", "audit"),
            "char_lengths": _char_lengths(stats), "limitations": limits,
            "hashes": [(rel, run.hashes.get(rel)) for rel in ("data/stats.json", "audits/pii.json",
                                                              "audits/leakage.json", "audits/profile.json")]}
