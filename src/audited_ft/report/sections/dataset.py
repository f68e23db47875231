"""Section 2, Dataset: sizes, cleaning and lengths, the data licence, the token-length profile, and the PII and leakage
audits (counts per entity / kind, policies, a few whitelisted findings).

The token-length profile view is shared with the data card (:func:`profile_view`).
"""

from __future__ import annotations

from typing import Any

from audited_ft.report import charts
from audited_ft.report.format import clip
from audited_ft.report.rows import flatten
from audited_ft.run.view import RunView

SECTION = "Dataset"


def dataset_view(run: RunView, audits: dict[str, dict], accepted: set[str], gaps: list) -> dict:
    stats = run.load("data/stats.json")
    if stats is None:
        gaps.append((SECTION, "sizes, cleaning and lengths", run.why_absent("data/stats.json", "data")))
    for name, what in (("pii", "PII audit"), ("leakage", "leakage / contamination audit"),
                       ("content", "harmful-content audit of the training data")):
        if name not in audits:
            gaps.append((SECTION, what, run.why_absent(f"audits/{name}.json", "audit")))
    # An audit may run and still say part of it was not checked (e.g. contamination with no probe sets given).
    for name, audit in audits.items():
        for key, value in flatten((audit or {}).get("summary") or {}):
            if key.endswith("warning") and isinstance(value, str) and "not checked" in value:
                gaps.append((SECTION, f"{name}: {key.rsplit('.', 2)[0]}", value))
    cleaning = (stats or {}).get("cleaning") or {}
    reasons = sorted({r for c in cleaning.values() for r in (c.get("dropped") or {})})
    return {"stats": stats, "cleaning": cleaning, "reasons": reasons, "profile": profile_view(audits.get("profile")),
            "licence": data_licence(run),
            "why": run.why_absent("data/stats.json", "data"),
            "chart": charts.length_histograms((stats or {}).get("lengths") or {}),
            "pii": audit_view(audits.get("pii"), "pii" in accepted, "entity", "split"),
            "leakage": audit_view(audits.get("leakage"), "leakage" in accepted, "kind", "field"),
            "content": audit_view(audits.get("content"), "content" in accepted, "label", "field"),
            "sources": run.sources("data/stats.json", "audits/pii.json", "audits/leakage.json", "audits/profile.json",
                                   "audits/content.json")}


def data_licence(run: RunView) -> str:
    """The training data's licence as the config states it (``data.licence``), or a plain "not stated"."""
    config = run.load("config.resolved.yaml")
    if not run.exists("config.resolved.yaml") or "config.resolved.yaml" in run.unreadable or not isinstance(
            config, (dict, type(None))):
        return "not stated (config.resolved.yaml is absent or unreadable)"
    data = (config or {}).get("data")
    licence = data.get("licence") if isinstance(data, dict) else None
    return str(licence) if licence else "not stated in the config (data.licence): check it before shipping"


def profile_view(profile: dict | None) -> dict | None:
    """Token lengths per split from the profile audit. ``rows``: one per split and part (input, target, whole
    sequence) with mean and percentiles, for the report; ``splits``: one per split with the total tokens and each
    part's [mean, p50, p90, max], for the data card. Rows over ``max_length`` are counted on the sequence."""
    summary = profile.get("summary") if isinstance(profile, dict) else None
    if not isinstance(summary, dict):
        return None
    rows, splits = [], []
    for split, v in (summary.get("splits") or {}).items():
        if not isinstance(v, dict):
            continue
        over = v.get("over_max_length") if isinstance(v.get("over_max_length"), dict) else {}
        for part in ("input", "target", "sequence"):
            d = v.get(part) if isinstance(v.get(part), dict) else {}
            rows.append({"split": split, "part": part, "rows": v.get("rows"),
                         **{k: d.get(k) for k in ("mean", "p50", "p90", "p99", "max")},
                         "over": over.get("count") if part == "sequence" else None})
        splits.append({"split": split, "rows": v.get("rows"), "tokens": v.get("tokens_total"), "over": over.get("count"),
                       **{part: [(v.get(part) if isinstance(v.get(part), dict) else {}).get(k)
                                 for k in ("mean", "p50", "p90", "max")] for part in ("input", "target", "sequence")}})
    return {"unit": summary.get("unit"), "tokenizer": summary.get("tokenizer"), "max_length": summary.get("max_length"),
            "rows": rows, "splits": splits, "status": profile.get("status"), "warnings": summary.get("warnings") or []}


def _group_count(findings: list, *keys: str) -> dict[tuple, int]:
    def part(value: Any) -> str:  # a split pair may be a list: ["train", "test"] -> "train↔test"
        return "↔".join(map(str, value)) if isinstance(value, list) else "—" if value is None else str(value)

    counts: dict[tuple, int] = {}
    for f in findings:
        k = tuple(part(f.get(key)) for key in keys)
        counts[k] = counts.get(k, 0) + 1
    return dict(sorted(counts.items()))


def audit_view(audit: dict | None, accepted: bool, *group: str) -> dict | None:
    """An audit result for the template: summary rows, finding counts, and a few whitelisted findings."""
    if audit is None:
        return None
    findings = [f for f in audit.get("findings") or [] if isinstance(f, dict)]
    # Whitelist: never dump a finding wholesale, so a field added later cannot carry raw text into the report.
    examples = [{**{k: f.get(k) for k in ("split", "row_id", "field", "entity", "label", "kind", "score", "excerpt")},
                 **_pair(f)} for f in findings[:10]]
    return {"name": audit.get("name"), "status": audit.get("status"), "blocking": audit.get("blocking"),
            "accepted": accepted,
            "description": audit.get("description"), "summary": flatten(audit.get("summary") or {}),
            "group": group, "counts": _group_count(findings, *group), "n_findings": len(findings),
            "truncated": audit.get("findings_truncated"), "examples": examples,
            "n_total": (audit.get("summary") or {}).get("findings_total")
            if isinstance(audit.get("summary"), dict) else None,
            "tables": {"pii": _pii_tables, "leakage": _leakage_tables, "content": _content_tables}.get(
                str(audit.get("name")), lambda _: [])(audit.get("summary") or {})
                if isinstance(audit.get("summary"), dict) else [],
            "quality": _pii_quality(audit.get("measured_quality")) if audit.get("name") == "pii" else None,
            "redactions": [(k, v) for k, v in flatten(audit.get("summary") or {}) if "redact" in k.lower()],
            "n_redacted": (audit.get("summary") or {}).get("redactions_applied")}


_ENTITY_WORDS = {"PERSON": "names", "LOCATION": "places", "STREET_ADDRESS": "street addresses",
                 "PHONE_NUMBER": "phone numbers", "CREDIT_CARD": "card numbers", "IBAN_CODE": "IBANs",
                 "IP_ADDRESS": "IP addresses", "EMAIL_ADDRESS": "e-mail addresses", "US_SSN": "US social security "
                 "numbers", "DATE_TIME": "dates"}


def _pii_quality(mq: Any) -> dict | None:
    """What a clean PII scan means: the engine's measured recall and precision per entity type (pii.json's
    ``measured_quality``), as table rows and one sentence in words ("of every 100 names about 73 are found")."""
    if not isinstance(mq, dict) or not mq.get("available") or not isinstance(mq.get("entities"), dict):
        return None

    def cell(x: Any) -> str:
        if not isinstance(x, dict) or x.get("value") is None:
            return "—"
        return f"{x['value']:.2f} [{x.get('ci_low', 0):.2f}, {x.get('ci_high', 1):.2f}]"

    independent = mq.get("independent") if isinstance(mq.get("independent"), dict) else {}
    other = independent.get("recall") if isinstance(independent.get("recall"), dict) else {}
    rows, words = [], []
    for t, f in mq["entities"].items():
        if not isinstance(f, dict):
            continue
        rows.append((str(t), "yes" if f.get("in_entity_list") else "no", cell(f.get("recall")),
                     (f.get("recall") or {}).get("n"), cell(f.get("precision")), cell(other.get(t)),
                     (other.get(t) or {}).get("n") if isinstance(other.get(t), dict) else None))
        r = (f.get("recall") or {}).get("value") if f.get("in_entity_list") else 0.0
        if isinstance(r, (int, float)):
            words.append(f"{_ENTITY_WORDS.get(str(t), str(t))} about {round(100 * r)}")
    return {"engine": mq.get("engine"), "benchmark": mq.get("benchmark"), "date": mq.get("date"),
            "sentences": mq.get("sentences"), "applies": mq.get("applies"), "differs": mq.get("differs") or [],
            "rows": rows, "sentence": "Of every 100 " + "; ".join(words) + " are found." if words else None,
            "independent": {"source": independent.get("source"), "texts": independent.get("texts")}
            if other else None}


def _pair(finding: dict) -> dict:
    """A leakage finding names two rows (``split_a``/``row_a``, ``split_b``/``row_b``): shown as "a ↔ b"."""
    if finding.get("row_id") is not None or finding.get("row_a") is None:
        return {}
    return {"split": f"{finding.get('split_a')} ↔ {finding.get('split_b')}",
            "row_id": f"{clip(finding.get('row_a'), 60)} ↔ {clip(finding.get('row_b'), 60)}",
            "score": finding.get("score", finding.get("jaccard"))}


def _pii_tables(summary: dict) -> list[dict]:
    """Entity × split counts with each entity's policy, threshold and redactions: the table a reviewer reads first."""
    counts, redactions = summary.get("counts") or {}, summary.get("redactions") or {}
    splits = [s for s in counts if isinstance(counts.get(s), dict)]
    entities = summary.get("entities") or sorted({e for s in splits for e in counts[s]})
    rows = [[e, (summary.get("policy") or {}).get(e), (summary.get("min_score") or {}).get(e),
             *[counts[s].get(e) for s in splits], sum(counts[s].get(e) or 0 for s in splits),
             sum((redactions.get(s) or {}).get(e) or 0 for s in splits)] for e in entities]
    return [{"caption": "Detections per entity type and split, with the policy applied (counts of all findings)",
             "columns": ["entity", "policy", "min score", *splits, "total", "redacted"], "rows": rows}]


def _leakage_tables(summary: dict) -> list[dict]:
    """Findings per kind with its policy and per split pair; contamination per evaluation set."""
    policy = (summary.get("settings") or {}).get("policy") or {}
    pairs: list[str] = []
    for kind in ("exact_cross_split", "near_duplicate_cross_split", "ngram_overlap_cross_split"):
        pairs += [p for p in (summary.get(kind) or {}) if p not in pairs]
    rows = []
    for kind, total in (summary.get("totals") or {}).items():
        by_pair = summary.get(kind) if kind in ("exact_cross_split", "near_duplicate_cross_split",
                                                "ngram_overlap_cross_split") else None
        cells = [sum(v for v in (by_pair.get(p) or {}).values() if isinstance(v, (int, float)))
                 if isinstance(by_pair, dict) and p in by_pair else None for p in pairs]
        rows.append([kind, policy.get(kind), total, *cells])
    tables = [{"caption": "Findings per kind, the action its policy takes, and pairs per split pair (fields summed)",
               "columns": ["kind", "policy", "findings", *(p.replace("~", " ↔ ") for p in pairs)], "rows": rows}]
    sets = ((summary.get("contamination") or {}).get("sets") or {})
    if sets:
        tables.append({"caption": "Contamination of the training data by each evaluation set (exact or shared "
                                  f"{(summary.get('contamination') or {}).get('ngram', '')}-word n-gram)",
                       "columns": ["evaluation set", "probe", "source", "items", "contaminated", "percent"],
                       "rows": [[name, v.get("probe"), v.get("source"), v.get("probes"), v.get("contaminated"),
                                 v.get("percent")] for name, v in sets.items() if isinstance(v, dict)]})
    return tables


def _content_tables(summary: dict) -> list[dict]:
    """Flagged rows per split, field and label, with the share's interval: how much of the data is harmful text."""
    rows = []
    for split, v in (summary.get("splits") or {}).items():
        if not isinstance(v, dict):
            continue
        for field, labels in (v.get("fields") or {}).items():
            for label, f in (labels or {}).items():
                share = (f or {}).get("share") or {}
                rows.append([f"{split} / {field} / {label}", (f or {}).get("flagged"), v.get("rows"), share.get("value"),
                             share.get("ci_low"), share.get("ci_high"), (f or {}).get("max")])
    return [{"caption": f"Rows a toxicity classifier flags (any score ≥ {summary.get('threshold')}), per split, field and "
                        "label, with the Wilson 95% interval of the share",
             "columns": ["split / field / label", "flagged", "rows", "share", "share CI low", "share CI high",
                         "highest score"], "rows": rows}]
