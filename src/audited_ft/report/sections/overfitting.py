"""Section 4, Overfitting: the training / validation loss curve and its final gap, memorisation of training rows, and
the exposure of planted canaries."""

from __future__ import annotations

from audited_ft.report import charts
from audited_ft.report.rows import metric_rows
from audited_ft.run.view import RunView

SECTION = "Overfitting"


def overfitting_view(run: RunView, metrics: dict | None, gaps: list) -> dict:
    log, summary = run.load("train/log.jsonl"), run.load("train/summary.json")
    if log is None:
        gaps.append((SECTION, "training / validation loss curve", run.why_absent("train/log.jsonl", "train")))
    final_train, final_eval = (summary or {}).get("final_train_loss"), (summary or {}).get("final_eval_loss")
    numeric = all(isinstance(v, (int, float)) for v in (final_train, final_eval))
    memo = metric_rows(metrics, "memorisation.", notes=run.interval_notes)
    if not memo:
        gaps.append((SECTION, "memorisation of training data", "no memorisation.* keys in eval/metrics.json"))
    canary = metric_rows(metrics, "privacy.canary.", notes=run.interval_notes)
    return {"summary": summary, "gap": final_eval - final_train if numeric else None, "memorisation": memo,
            "canary": canary, "canary_bound": (metrics or {}).get("privacy.canary.exposure_bound"),
            "chart": charts.loss_curve(log or [], (summary or {}).get("best_step")),
            "why_log": run.why_absent("train/log.jsonl", "train"),
            "why_summary": run.why_absent("train/summary.json", "train"),
            "sources": run.sources("train/log.jsonl", "train/summary.json", "eval/metrics.json")}
