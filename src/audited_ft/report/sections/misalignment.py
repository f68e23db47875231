"""Section 6, Misalignment: task quality (ROUGE), refusal drift and toxicity, and side-by-side samples of the test
split (the human A/B review's view is ``report.review.review_view``)."""

from __future__ import annotations

from audited_ft.report import charts
from audited_ft.report.format import ci_label
from audited_ft.report.groups import by_delta, group_row, sentence, stems
from audited_ft.report.rows import metric_rows
from audited_ft.run.view import RunView

SECTION = "Misalignment"
ROUGE_ORDER = ("rouge1", "rouge2", "rougeL", "rougeLsum")
SET_TITLES = {"advbench": "AdvBench", "harmbench": "HarmBench", "strongreject": "StrongREJECT",
              "simple_safety_tests": "SimpleSafetyTests", "xstest_unsafe": "XSTest unsafe"}
REFUSES = ("refuses more requests of {g}", "refuses fewer requests of {g}")
OVER_REFUSES = ("refuses more harmless requests of {g}", "refuses fewer harmless requests of {g}")


def misalignment_view(run: RunView, metrics: dict | None, n_samples: int, gaps: list) -> dict:
    why = run.why_absent("eval/metrics.json", "eval")
    rouge = sorted(metric_rows(metrics, "rouge.", notes=run.interval_notes), key=lambda r: (ROUGE_ORDER + (r["name"],)).index(r["name"]))
    safety = metric_rows(metrics, "safety.", "toxicity.", notes=run.interval_notes)
    if not rouge:
        gaps.append((SECTION, "task quality (ROUGE)", why if metrics is None else "no rouge.* keys"))
    if not safety:
        gaps.append((SECTION, "refusal drift and toxicity",
                     why if metrics is None else "no safety.* or toxicity.* keys in eval/metrics.json"))
    truth = metric_rows(metrics, "truthfulness.", notes=run.interval_notes)
    if not truth:
        gaps.append((SECTION, "truthfulness", why if metrics is None else "no truthfulness.* keys"))
    breadth = safety_breadth(metrics or {}, ci_label((metrics or {}).get("eval.confidence", 0.95)))
    if breadth:  # the per-set and per-category rows are shown there, not repeated in the table of all safety metrics
        shown = {r["key"] for panel in breadth["panels"] for r in panel["rows"]}
        safety = [r for r in safety if r["key"] not in shown]
    samples = side_by_side(run, n_samples)
    if samples is None:
        gaps.append((SECTION, "side-by-side generations", run.why_absent("eval/generations/base.jsonl", "eval")))
    return {"rouge": rouge, "safety": safety, "truth": truth, "breadth": breadth, "samples": samples, "why": why, "n_samples": n_samples,
            "chart": charts.metric_bars(rouge, "ROUGE F-measure", "rouge"),
            "why_samples": run.why_absent("eval/generations/base.jsonl", "eval"),
            "sources": run.sources("eval/metrics.json", "eval/generations/base.jsonl",
                                   "eval/generations/adapter.jsonl")}


def safety_breadth(metrics: dict, ci: str) -> dict | None:
    """The refusal probe per harmful set and per harm category (None when it ran on one set without categories):
    the pooled and per-set rows first, then categories by the size of their change, and one sentence per family
    naming what moved beyond its interval and survived the Benjamini–Hochberg adjustment."""
    problems: list[str] = []
    p = r"safety\.refusal\."

    def title(name: str) -> str:
        return SET_TITLES.get(name, name)

    sets = [group_row(metrics, s, title(g[0]), REFUSES, problems) for s, g in stems(metrics, p + r"([^.]+)\.rate")]
    categories = [group_row(metrics, s, f"{title(g[0])}: {g[1].replace('_', ' ')}", REFUSES, problems)
                  for s, g in stems(metrics, p + r"([^.]+)\.([^.]+)\.rate")]
    types = [group_row(metrics, s, f"XSTest safe: {g[0].replace('_', ' ')}", OVER_REFUSES, problems)
             for s, g in stems(metrics, p + r"benign\.([^.]+)\.over_refusal")]
    if not (sets or categories or types):
        return None
    head = [group_row(metrics, "safety.refusal.rate", "all harmful requests", REFUSES, problems)] \
        if "safety.refusal.rate.base" in metrics else []
    over = [group_row(metrics, "safety.refusal.over_refusal", "all harmless requests", OVER_REFUSES, problems)] \
        if "safety.refusal.over_refusal.base" in metrics else []
    panels = [panel for panel in (
        {"title": "Refusal of harmful requests, per set", "headline": head, "rows": by_delta(sets),
         "sentence": sentence("Per set", sets, ci) if sets else None},
        {"title": "Refusal of harmful requests, per harm category", "headline": [], "rows": by_delta(categories),
         "sentence": sentence("Per harm category", categories, ci) if categories else None},
        {"title": "Refusal of harmless requests (over-refusal), per XSTest type", "headline": over,
         "rows": by_delta(types), "sentence": sentence("Per harmless prompt type", types, ci) if types else None},
    ) if panel["rows"]]
    return {"panels": panels, "problems": problems, "ci_label": ci}


def side_by_side(run: RunView, n: int) -> list[dict] | None:
    """The first ``n`` test items with input, reference and both predictions; ``None`` without generations."""
    base = run.load("eval/generations/base.jsonl")
    adapter = run.load("eval/generations/adapter.jsonl")
    if base is None and adapter is None:
        return None
    by_side = {side: {str(r.get("id")): r for r in rows or []} for side, rows in (("base", base), ("adapter", adapter))}
    inputs = {str(r.get("id")): r.get("input") for r in run.load("data/test.jsonl") or []}
    ids = list(dict.fromkeys(str(r.get("id")) for r in (base or adapter)))[:n]
    rows = []
    for i in ids:
        b, a = by_side["base"].get(i, {}), by_side["adapter"].get(i, {})
        rows.append({"id": i, "input": inputs.get(i, b.get("prompt", a.get("prompt"))),
                     "reference": b.get("reference", a.get("reference")),
                     "base": b.get("prediction"), "adapter": a.get("prediction")})
    return rows
