"""The report stage: render a run folder into one self-contained HTML risk report, ``<run_dir>/report.html``.

The report reads only the run folder (schema: docs/run_folder.md), so it can be re-rendered on any existing run. What it
cannot find is not skipped: each section says "not measured in this run" and why (the stage's status from the manifest),
and the Summary lists every gap, because a silent gap reads as a pass.

Safety of the page: model and data text is untrusted. The jinja2 environment autoescapes everything; ``_finalize`` also
shows control characters (ANSI escapes, bidi overrides) as visible ``\\x1b``-style text; long text is clipped with an
ellipsis and the rest sits in a collapsed ``<details>``. A Content-Security-Policy forbids every network fetch and every
script but one (the hash-pinned print helper that opens ``<details>`` before printing). The page has no external URL.
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import math
import re
from pathlib import Path
from typing import Any

from markupsafe import Markup

from audited_ft import charts
from audited_ft.errors import AuditedFTError, RunFolderError
from audited_ft.runfolder import STAGES, atomic_write_text, read_json, read_jsonl
from audited_ft.textsafe import escape_controls

TEMPLATE = "report.html.j2"
CLIP_CHARS = 280  # displayed length of one piece of model or data text before the ellipsis
FULL_CHARS = 4000  # the most shown even inside a collapsed <details>
N_SAMPLES = 8
ROUGE_ORDER = ("rouge1", "rouge2", "rougeL", "rougeLsum")
SECTIONS = ("Summary", "Dataset", "Algorithmic discrimination", "Overfitting", "Protection of data privacy",
            "Misalignment", "Compute resources", "Dependence on proprietary technologies",
            "Transparency and explanation", "References")
_GATE_SUFFIXES = (".ci_low", ".ci_high", ".base", ".adapter", ".delta")
_PRINT_SCRIPT = ('addEventListener("beforeprint",function(){'
                 'document.querySelectorAll("details").forEach(function(d){d.open=true})});')


# formatting -----------------------------------------------------------------------------------------------------------
def neutralise(text: Any) -> str:
    """``str(text)`` with control and bidi characters (but tab, newline and CR) written out visibly (``\\x1b``)
    instead of acted upon."""
    return escape_controls(text, keep="\t\n\r")


def fmt_num(value: Any, digits: int = 3) -> str:
    """Numbers for people: floats to ``digits`` decimals, ints with separators, ``None`` as an em dash."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else f"{value:.{digits}f}"
    return neutralise(value)


def clip(value: Any, limit: int = CLIP_CHARS) -> str:
    """Untrusted text shortened to ``limit`` characters with an ellipsis (escaping is left to autoescape)."""
    text = "—" if value is None else neutralise(value)
    return text if len(text) <= limit else text[:limit].rstrip() + "…"


def _finalize(value: Any) -> Any:
    # Applied to every {{ }} before autoescape: our own SVG passes through, everything else is made presentable.
    if isinstance(value, Markup):
        return value
    if value is None or isinstance(value, (bool, float)):
        return fmt_num(value)
    return neutralise(value) if isinstance(value, str) else value


def _cell(value: Any) -> str:
    """A table cell of unknown type: numbers formatted, text clipped."""
    return fmt_num(value) if value is None or isinstance(value, (int, float)) else clip(value, 200)


# templates ------------------------------------------------------------------------------------------------------------
def template_dir() -> Path:
    """The folder holding ``report.html.j2``: ``reports/templates/`` in a checkout, else the packaged ``_templates``."""
    here = Path(__file__).resolve()
    candidates = [here.parents[2] / "reports" / "templates", here.parent / "_templates"]
    for folder in candidates:
        if (folder / TEMPLATE).is_file():
            return folder
    raise AuditedFTError(f"report template {TEMPLATE} not found in {' or '.join(map(str, candidates))}; "
                         "run from a source checkout or reinstall audited_ft")


def reflow(doc: str) -> str:
    """A docstring as prose: hard-wrapped lines of a paragraph joined, paragraphs and bullet items ("* ", "- ")
    kept on lines of their own, RST double backquotes made single."""
    out = []
    for para in re.split(r"\n\s*\n", inspect.cleandoc(doc)):
        lines: list[str] = []
        for line in para.splitlines():
            if not lines or re.match(r"\s*[*•-] ", line):
                lines.append(line.strip())
            else:
                lines[-1] += " " + line.strip()
        out.append("\n".join(lines))
    return "\n\n".join(out).replace("``", "`")


def _environment(folder: Path) -> Any:
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(folder)), autoescape=True,
                             undefined=jinja2.StrictUndefined, finalize=_finalize, trim_blocks=True,
                             lstrip_blocks=True)
    env.filters.update(num=fmt_num, clip=clip, full=lambda v: clip(v, FULL_CHARS), cell=_cell,
                       doc=lambda v, limit=1200: clip(reflow(str(v)), limit) if v else "—")
    env.tests["long"] = lambda v, limit=CLIP_CHARS: v is not None and len(neutralise(v)) > limit
    env.globals["full_chars"] = FULL_CHARS
    return env


# reading the run folder ----------------------------------------------------------------------------------------------
class _Run:
    """The run folder as the report sees it: optional files read once, unreadable ones remembered with the reason."""

    def __init__(self, path: Path):
        self.path = path
        if not (path / "manifest.json").is_file():
            raise RunFolderError(f"{path / 'manifest.json'}: not found — {path} is not a run folder, "
                                 "so there is nothing to report")
        self.manifest = read_json(path / "manifest.json")
        self.stages: dict = self.manifest.get("stages") or {}
        self.hashes: dict = self.manifest.get("artefacts") or {}
        self.unreadable: dict[str, str] = {}

    def load(self, rel: str, jsonl: bool = False) -> Any:
        """The parsed file, or ``None`` when absent or unreadable (the latter is recorded as a gap)."""
        path = self.path / rel
        if not path.is_file():
            return None
        try:
            return read_jsonl(path) if jsonl else read_json(path)
        except RunFolderError as exc:
            self.unreadable[rel] = str(exc)
            return None

    def why_absent(self, rel: str, stage: str) -> str:
        """Why ``rel`` has nothing to show, in words, from the manifest's record of ``stage``."""
        if rel in self.unreadable:
            return f"{rel} could not be read: {self.unreadable[rel]}"
        st = self.stages.get(stage) or {}
        error = f": {clip(st['error'], 300)}" if st.get("error") else ""
        return f"{rel} is absent (stage '{stage}' is {st.get('status', 'not recorded in the manifest')}{error})"

    def sources(self, *rels: str) -> list[dict]:
        """Artefact references for a section: path, whether it exists, sha256 from the manifest."""
        return [{"path": r, "exists": (self.path / r).exists(), "sha256": self.hashes.get(r)} for r in rels]


def _flatten(obj: Any, prefix: str = "", limit: int = 60) -> list[tuple[str, Any]]:
    """A nested summary as (dotted key, scalar) rows, for a generic key/value table."""
    if isinstance(obj, dict):
        rows = [row for k, v in obj.items() for row in _flatten(v, f"{prefix}{k}.", limit)]
    elif isinstance(obj, list):
        scalars = all(not isinstance(x, (dict, list)) for x in obj)
        rows = [(prefix[:-1], ", ".join(map(str, obj)) if scalars else f"{len(obj)} entries")]
    else:
        rows = [(prefix[:-1], obj)]
    return rows[:limit]


def _family(metrics: dict | None, *prefixes: str) -> list[dict]:
    """Rows for every ``<m>.base`` key under ``prefixes``: base/adapter/delta with their CIs, and n."""
    rows = []
    for key in sorted(k for k in (metrics or {}) if k.startswith(prefixes) and k.endswith(".base")):
        stem = key[: -len(".base")]
        row = {"key": stem, "name": stem.split(".", 1)[-1], "n": metrics.get(f"{stem}.n")}
        for side in ("base", "adapter", "delta"):
            row[side] = metrics.get(f"{stem}.{side}")
            row[f"{side}_lo"] = metrics.get(f"{stem}.{side}.ci_low")
            row[f"{side}_hi"] = metrics.get(f"{stem}.{side}.ci_high")
        rows.append(row)
    return rows


def _group_count(findings: list, *keys: str) -> dict[tuple, int]:
    def part(value: Any) -> str:  # a split pair may be a list: ["train", "test"] -> "train↔test"
        return "↔".join(map(str, value)) if isinstance(value, list) else "—" if value is None else str(value)

    counts: dict[tuple, int] = {}
    for f in findings:
        k = tuple(part(f.get(key)) for key in keys)
        counts[k] = counts.get(k, 0) + 1
    return dict(sorted(counts.items()))


def _audit_view(audit: dict | None, accepted: bool, *group: str) -> dict | None:
    """An audit result for the template: summary rows, finding counts, and a few whitelisted findings."""
    if audit is None:
        return None
    findings = [f for f in audit.get("findings") or [] if isinstance(f, dict)]
    # Whitelist: never dump a finding wholesale, so a field added later cannot carry raw text into the report.
    examples = [{**{k: f.get(k) for k in ("split", "row_id", "field", "entity", "kind", "score", "excerpt")},
                 **_pair(f)} for f in findings[:10]]
    return {"name": audit.get("name"), "status": audit.get("status"), "blocking": audit.get("blocking"),
            "accepted": accepted,
            "description": audit.get("description"), "summary": _flatten(audit.get("summary") or {}),
            "group": group, "counts": _group_count(findings, *group), "n_findings": len(findings),
            "truncated": audit.get("findings_truncated"), "examples": examples,
            "tables": (_pii_tables if audit.get("name") == "pii" else _leakage_tables if audit.get("name") == "leakage"
                       else lambda _: [])(audit.get("summary") or {}) if isinstance(audit.get("summary"), dict) else [],
            "redactions": [(k, v) for k, v in _flatten(audit.get("summary") or {}) if "redact" in k.lower()],
            "n_redacted": (audit.get("summary") or {}).get("redactions_applied")}


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


# verdict -------------------------------------------------------------------------------------------------------------
def _verdict(run: _Run, gates: dict | None, audits: dict[str, dict], accepted: set[str]) -> dict:
    """pass / needs review / fail, with what blocks and what needs a look."""
    blockers, reviews, stage_failures = [], [], []
    for g in (gates or {}).get("results") or []:
        if g.get("passed") is False:
            blockers.append(f"gate failed: {g.get('message') or g.get('metric')}")
    for r in ((gates or {}).get("baseline") or {}).get("results") or []:
        if r.get("passed") is False:
            blockers.append(f"regression against the baseline: {r.get('message') or r.get('metric')}")
    if gates is not None and gates.get("passed") is False and not blockers:
        blockers.append("gates.json reports passed = false")
    listed = [str(n) for n in (run.load("audits/summary.json") or {}).get("blocking") or []]
    for name, a in audits.items():
        if name in accepted:
            continue
        if a.get("status") == "fail" and (a.get("blocking", True) or name in listed):  # the audit stage's default
            blockers.append(f"blocking audit '{name}' failed")
        elif a.get("status") in ("fail", "warn"):
            reviews.append(f"audit '{name}' reported {a.get('status')}")
    blockers.extend(f"blocking audit '{n}' failed (audits/summary.json)" for n in listed
                    if n not in accepted and n not in audits)
    for name in [s for s in STAGES if s != "report"] + [s for s in run.stages if s not in STAGES]:
        st = run.stages.get(name) or {}
        status = st.get("status", "not recorded")
        if status == "done":
            continue
        line = f"stage '{name}' is {status}" + (f": {clip(st['error'], 300)}" if st.get("error") else "")
        (stage_failures if status == "failed" else reviews).append(line)
    if not blockers:  # a failed stage names the cause only when no gate or audit above already did
        blockers.extend(stage_failures)
    reviews.extend(f"{rel} could not be read" for rel in run.unreadable)
    verdict = "fail" if blockers else "needs review" if reviews else "pass"
    return {"verdict": verdict, "blockers": blockers, "reviews": reviews}


def _gate_rows(gates: dict | None, metrics: dict | None) -> list[dict]:
    rows, metrics = [], metrics or {}
    for g in (gates or {}).get("results") or []:
        stem = str(g.get("metric", ""))
        for suffix in _GATE_SUFFIXES:  # rouge.rougeL.delta.ci_low -> rouge.rougeL
            stem = stem[: -len(suffix)] if stem.endswith(suffix) else stem
        # docs/run_folder.md names the field "on"; the gate stage writes "statistic": read either.
        rows.append({**{k: g.get(k) for k in ("metric", "min", "max", "value", "passed", "message", "reason")},
                     "on": g.get("on", g.get("statistic")),
                     **{side: metrics.get(f"{stem}.{side}") for side in ("base", "adapter", "delta")},
                     "delta_lo": metrics.get(f"{stem}.delta.ci_low"), "delta_hi": metrics.get(f"{stem}.delta.ci_high")})
    return rows


# sections -------------------------------------------------------------------------------------------------------------
def _dataset(run: _Run, audits: dict[str, dict], accepted: set[str], gaps: list) -> dict:
    stats = run.load("data/stats.json")
    if stats is None:
        gaps.append(("Dataset", "sizes, cleaning and lengths", run.why_absent("data/stats.json", "data")))
    for name, what in (("pii", "PII audit"), ("leakage", "leakage / contamination audit")):
        if name not in audits:
            gaps.append(("Dataset", what, run.why_absent(f"audits/{name}.json", "audit")))
    # An audit may run and still say part of it was not checked (e.g. contamination with no probe sets given).
    for name, audit in audits.items():
        for key, value in _flatten((audit or {}).get("summary") or {}):
            if key.endswith("warning") and isinstance(value, str) and "not checked" in value:
                gaps.append(("Dataset", f"{name}: {key.rsplit('.', 2)[0]}", value))
    cleaning = (stats or {}).get("cleaning") or {}
    reasons = sorted({r for c in cleaning.values() for r in (c.get("dropped") or {})})
    return {"stats": stats, "cleaning": cleaning, "reasons": reasons, "profile": _profile_view(audits.get("profile")),
            "licence": _data_licence(run),
            "why": run.why_absent("data/stats.json", "data"),
            "chart": charts.length_histograms((stats or {}).get("lengths") or {}),
            "pii": _audit_view(audits.get("pii"), "pii" in accepted, "entity", "split"),
            "leakage": _audit_view(audits.get("leakage"), "leakage" in accepted, "kind", "field"),
            "sources": run.sources("data/stats.json", "audits/pii.json", "audits/leakage.json", "audits/profile.json")}


def _data_licence(run: _Run) -> str:
    """The training data's licence as the config states it (``data.licence``), or a plain "not stated"."""
    import yaml

    path = run.path / "config.resolved.yaml"
    try:
        data = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("data") or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError, AttributeError):
        return "not stated (config.resolved.yaml is absent or unreadable)"
    licence = data.get("licence") if isinstance(data, dict) else None
    return str(licence) if licence else "not stated in the config (data.licence): check it before shipping"


def _profile_view(profile: dict | None) -> dict | None:
    """Token lengths per split from the profile audit: one row per split and part (input, target, sequence)."""
    if not profile or not isinstance(profile.get("summary"), dict):
        return None
    summary = profile["summary"]
    rows = []
    for split, v in (summary.get("splits") or {}).items():
        if not isinstance(v, dict):
            continue
        for part in ("input", "target", "sequence"):
            d = v.get(part) or {}
            rows.append({"split": split, "part": part, "rows": v.get("rows"),
                         **{k: d.get(k) for k in ("mean", "p50", "p90", "p99", "max")},
                         "over": (v.get("over_max_length") or {}).get("count") if part == "sequence" else None})
    return {"unit": summary.get("unit"), "tokenizer": summary.get("tokenizer"), "max_length": summary.get("max_length"),
            "rows": rows, "status": profile.get("status"), "warnings": summary.get("warnings") or []}


def _discrimination(run: _Run, metrics: dict | None, gaps: list) -> dict:
    rows, why = _family(metrics, "bias."), run.why_absent("eval/metrics.json", "eval")
    if not rows:
        gaps.append(("Algorithmic discrimination", "bias probes",
                     why if metrics is None else "no bias.* keys in eval/metrics.json"))
    from audited_ft.report_bias import discrimination_view

    return {"rows": rows, "why": why, "metrics_present": metrics is not None,
            "bias": discrimination_view(metrics, run.load("eval/probes.json")),
            "sources": run.sources("eval/metrics.json", "eval/probes.json")}


def _overfitting(run: _Run, metrics: dict | None, gaps: list) -> dict:
    log, summary = run.load("train/log.jsonl", jsonl=True), run.load("train/summary.json")
    if log is None:
        gaps.append(("Overfitting", "training / validation loss curve", run.why_absent("train/log.jsonl", "train")))
    final_train, final_eval = (summary or {}).get("final_train_loss"), (summary or {}).get("final_eval_loss")
    numeric = all(isinstance(v, (int, float)) for v in (final_train, final_eval))
    memo = _family(metrics, "memorisation.")
    if not memo:
        gaps.append(("Overfitting", "memorisation of training data", "no memorisation.* keys in eval/metrics.json"))
    canary = _family(metrics, "privacy.canary.")
    return {"summary": summary, "gap": final_eval - final_train if numeric else None, "memorisation": memo,
            "canary": canary, "canary_bound": (metrics or {}).get("privacy.canary.exposure_bound"),
            "chart": charts.loss_curve(log or [], (summary or {}).get("best_step")),
            "why_log": run.why_absent("train/log.jsonl", "train"),
            "why_summary": run.why_absent("train/summary.json", "train"),
            "sources": run.sources("train/log.jsonl", "train/summary.json", "eval/metrics.json")}


def _samples(run: _Run, n: int) -> list[dict] | None:
    base = run.load("eval/generations/base.jsonl", jsonl=True)
    adapter = run.load("eval/generations/adapter.jsonl", jsonl=True)
    if base is None and adapter is None:
        return None
    by_side = {side: {str(r.get("id")): r for r in rows or []} for side, rows in (("base", base), ("adapter", adapter))}
    inputs = {str(r.get("id")): r.get("input") for r in run.load("data/test.jsonl", jsonl=True) or []}
    ids = list(dict.fromkeys(str(r.get("id")) for r in (base or adapter)))[:n]
    rows = []
    for i in ids:
        b, a = by_side["base"].get(i, {}), by_side["adapter"].get(i, {})
        rows.append({"id": i, "input": inputs.get(i, b.get("prompt", a.get("prompt"))),
                     "reference": b.get("reference", a.get("reference")),
                     "base": b.get("prediction"), "adapter": a.get("prediction")})
    return rows


def _misalignment(run: _Run, metrics: dict | None, n_samples: int, gaps: list) -> dict:
    why = run.why_absent("eval/metrics.json", "eval")
    rouge = sorted(_family(metrics, "rouge."), key=lambda r: (ROUGE_ORDER + (r["name"],)).index(r["name"]))
    safety = _family(metrics, "safety.", "toxicity.")
    if not rouge:
        gaps.append(("Misalignment", "task quality (ROUGE)", why if metrics is None else "no rouge.* keys"))
    if not safety:
        gaps.append(("Misalignment", "refusal drift and toxicity",
                     why if metrics is None else "no safety.* or toxicity.* keys in eval/metrics.json"))
    samples = _samples(run, n_samples)
    if samples is None:
        gaps.append(("Misalignment", "side-by-side generations", run.why_absent("eval/generations/base.jsonl", "eval")))
    return {"rouge": rouge, "safety": safety, "samples": samples, "why": why, "n_samples": n_samples,
            "chart": charts.metric_bars(rouge, "ROUGE F-measure", "rouge"),
            "why_samples": run.why_absent("eval/generations/base.jsonl", "eval"),
            "sources": run.sources("eval/metrics.json", "eval/generations/base.jsonl",
                                   "eval/generations/adapter.jsonl")}


def _compute(run: _Run, metrics: dict | None, train_summary: dict | None, gaps: list) -> dict:
    from audited_ft.footprint import compute_view

    footprint = compute_view(run.path)
    gaps.extend(("Compute resources", what, why) for what, why in footprint.get("gaps") or [])
    ev = run.manifest.get("eval") if isinstance(run.manifest.get("eval"), dict) else {}
    check = ev.get("dequantize_check") if isinstance(ev.get("dequantize_check"), dict) else None
    evaluation = [("precision", ev.get("precision")), ("decoding", ev.get("decoding"))] if ev else []
    if check:
        evaluation.append(("dequantisation check", (
            f"{'passed' if check.get('passed') else 'failed'}: max |Δ next-token logit| {fmt_num(check.get('max_abs_logit_diff'))} "
            f"against the 4-bit base on {check.get('prompts')} prompts, allowed {fmt_num(check.get('bound'))} "
            f"({fmt_num(check.get('tolerance'), 2)} × the largest |logit|); top-1 agreement "
            f"{fmt_num(check.get('top1_agreement'), 2)}")))
    return {"hardware": _flatten(run.manifest.get("hardware") or {}), "train": train_summary, "evaluation": evaluation,
            "footprint": footprint, "why_train": run.why_absent("train/summary.json", "train"),
            "sources": run.sources("manifest.json", "train/summary.json")}


def _proprietary(run: _Run, gaps: list) -> dict:
    from audited_ft.dependencies import proprietary_view

    view = proprietary_view(run.path)
    gaps.extend(("Dependence on proprietary technologies", what, why) for what, why in view.get("gaps") or [])
    return view


def _transparency(run: _Run, audits: dict[str, dict], gaps: list) -> dict:
    probes = run.load("eval/probes.json")
    if probes is None:
        gaps.append(("Transparency and explanation", "probe descriptions", run.why_absent("eval/probes.json", "eval")))
    for name, p in (probes or {}).items():
        if isinstance(p, dict) and p.get("status") != "done":
            gaps.append(("Transparency and explanation", f"probe '{name}'",
                         f"{p.get('status', 'no status')}: {p.get('reason') or 'no reason given'}"))
    config = run.path / "config.resolved.yaml"
    from audited_ft.report_explain import explanation_view

    return {"probes": probes or {}, "why_probes": run.why_absent("eval/probes.json", "eval"), "audits": audits,
            "explanation": explanation_view(probes, run.load("eval/metrics.json")),
            "config": config.read_text(encoding="utf-8", errors="replace") if config.is_file() else None,
            "artefacts": sorted(run.hashes.items()),
            "sources": run.sources("eval/probes.json", "config.resolved.yaml", "manifest.json",
                                   *(f"audits/{n}.json" for n in audits))}


def _load_audits(run: _Run) -> dict[str, dict]:
    audits = {}
    for path in sorted((run.path / "audits").glob("*.json")):
        if path.name != "summary.json":
            result = run.load(f"audits/{path.name}")
            if isinstance(result, dict):
                audits[str(result.get("name") or path.stem)] = result
    return audits


def _without_extra_adapters(metrics: dict | None, manifest: dict) -> dict | None:
    """The metrics without the keys of further adapters evaluated on the same base (``<metric>.NAME.<side>``, whose
    ``<metric>.base`` exists): the per-probe tables would otherwise list them as metrics of this run's adapter."""
    from audited_ft.report_adapters import _extra_names

    names = _extra_names(manifest)
    if not metrics or not names:
        return metrics
    pattern = re.compile(r"^(.+)\.(" + "|".join(map(re.escape, names)) + r")\.(base|adapter|delta|n)(\.ci_low|\.ci_high)?$")

    def extra(key: str) -> bool:
        hit = pattern.match(key)
        return bool(hit) and f"{hit.group(1)}.base" in metrics

    return {k: v for k, v in metrics.items() if not extra(k)}


def build_context(run_dir: Path, title: str | None = None, n_samples: int = N_SAMPLES) -> dict:
    """Everything the template needs, read from ``run_dir``. Raises :class:`RunFolderError` without a manifest."""
    from audited_ft.review import review_view

    run = _Run(Path(run_dir))
    m, gaps = run.manifest, []
    all_metrics, gates = run.load("eval/metrics.json"), run.load("gates.json")
    metrics = _without_extra_adapters(all_metrics, m)  # the sections describe this run's adapter; the panel the rest
    train_summary, audits = run.load("train/summary.json"), _load_audits(run)
    accepted_risks = m.get("accepted_risks") or (run.load("audits/summary.json") or {}).get("accepted") or []
    accepted = {str(r.get("audit")) for r in accepted_risks}
    sections = {"dataset": _dataset(run, audits, accepted, gaps),
                "discrimination": _discrimination(run, metrics, gaps),
                "overfitting": _overfitting(run, metrics, gaps),
                "misalignment": _misalignment(run, metrics, n_samples, gaps),
                "compute": _compute(run, metrics, train_summary, gaps),
                "dependencies": _proprietary(run, gaps),
                "transparency": _transparency(run, audits, gaps)}
    if gates is None:
        gaps.insert(0, ("Summary", "release gates", run.why_absent("gates.json", "gate")))
    human_review = review_view(run.path)
    if human_review is None:
        gaps.append(("Summary", "human evaluation (A/B review)", "no human review is recorded in the run folder "
                     "(audited-ft review RUN_DIR exports a blinded sheet; --import folds the ratings in)"))
    gaps.sort(key=lambda g: SECTIONS.index(g[0]))  # stable: keeps each section's own order
    stage_names = list(STAGES) + [s for s in run.stages if s not in STAGES]
    confidence = (metrics or {}).get("eval.confidence", 0.95)
    from audited_ft.report_adapters import adapters_view, run_gates

    adapters = adapters_view(all_metrics, m, *run_gates(gates, run.path / "config.resolved.yaml"))
    return {"title": title or f"Risk report — {m.get('run_id', run.path.name)}", "m": m, **sections,
            "verdict": _verdict(run, gates, audits, accepted),
            "gates": gates, "gate_rows": _gate_rows(gates, metrics), "why_gates": run.why_absent("gates.json", "gate"),
            "accepted_risks": accepted_risks, "gaps": gaps, "sections": SECTIONS, "human_review": human_review,
            "metrics_present": metrics is not None,
            "adapters": adapters,
            "stages": [(s, run.stages.get(s) or {}) for s in stage_names],
            "ci_label": f"{fmt_num(100 * confidence, 0)}% CI" if isinstance(confidence, (int, float)) else "CI",
            "data_sources": ((run.load("data/stats.json") or {}).get("sources")) or {},
            "summary_sources": run.sources("manifest.json", "gates.json", "audits/summary.json"),
            "print_script": Markup(_PRINT_SCRIPT), "script_hash": _csp_hash(_PRINT_SCRIPT)}


def _csp_hash(script: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")


def render_report(run_dir: Path, title: str | None = None, *, n_samples: int = N_SAMPLES) -> Path:
    """Render ``<run_dir>/report.html`` (written atomically) from ``reports/templates/report.html.j2``; return its path.

    Works on a partial run: sections whose inputs are absent say "not measured in this run" and why. Raises
    :class:`RunFolderError` when ``run_dir`` has no manifest.json, :class:`AuditedFTError` when templates are missing.
    """
    run_dir = Path(run_dir)
    context = build_context(run_dir, title, n_samples)
    html = _environment(template_dir()).get_template(TEMPLATE).render(**context)
    out = run_dir / "report.html"
    atomic_write_text(out, html)
    return out
