"""Section 6, Misalignment: task quality (ROUGE), refusal drift and toxicity, and side-by-side samples of the test
split (the human A/B review's view is ``report.review.review_view``)."""

from __future__ import annotations

from audited_ft.report import charts
from audited_ft.report.rows import metric_rows
from audited_ft.run.view import RunView

SECTION = "Misalignment"
ROUGE_ORDER = ("rouge1", "rouge2", "rougeL", "rougeLsum")


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
    samples = side_by_side(run, n_samples)
    if samples is None:
        gaps.append((SECTION, "side-by-side generations", run.why_absent("eval/generations/base.jsonl", "eval")))
    return {"rouge": rouge, "safety": safety, "truth": truth, "samples": samples, "why": why, "n_samples": n_samples,
            "chart": charts.metric_bars(rouge, "ROUGE F-measure", "rouge"),
            "why_samples": run.why_absent("eval/generations/base.jsonl", "eval"),
            "sources": run.sources("eval/metrics.json", "eval/generations/base.jsonl",
                                   "eval/generations/adapter.jsonl")}


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
