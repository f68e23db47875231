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
    return {"mia": _mia(run, metrics), "extraction": _extraction(run, metrics),
            "output_pii": _output_pii(run, metrics), "residual": _residual(metrics),"summary": summary, "gap": final_eval - final_train if numeric else None, "memorisation": memo,
            "canary": canary, "canary_bound": (metrics or {}).get("privacy.canary.exposure_bound"),
            "chart": charts.loss_curve(log or [], (summary or {}).get("best_step")),
            "why_log": run.why_absent("train/log.jsonl", "train"),
            "why_summary": run.why_absent("train/summary.json", "train"),
            "sources": run.sources("train/log.jsonl", "train/summary.json", "eval/metrics.json")}


def _mia(run: RunView, metrics: dict | None) -> dict | None:
    """The membership-inference probe's rows, its plain-language readings, what could not be estimated, and the ROC
    chart (from eval/probes.json's ``mia`` info); ``None`` when it did not run."""
    from audited_ft.eval.probes.mia import SCORE_NAMES

    rows = metric_rows(metrics, "privacy.mia.", notes=run.interval_notes)
    info = ((run.probes or {}).get("mia") or {}).get("info") or {}
    if not rows and not info:
        return None
    roc = info.get("roc") if isinstance(info.get("roc"), dict) else {}
    adapter_roc = {k.split(".", 1)[1]: v for k, v in roc.items() if isinstance(k, str) and k.startswith("adapter.")}
    readings = info.get("reading") if isinstance(info.get("reading"), dict) else {}
    return {"rows": rows, "chart": charts.roc_curves(adapter_roc, SCORE_NAMES),
            "readings": [str(v) for k, v in readings.items() if isinstance(k, str) and k.startswith("adapter.")],
            "not_estimable": sorted(str(k) for k in (info.get("not_estimable") or {})),
            "members": info.get("members"), "non_members": info.get("non_members"),
            "length_matched": bool(info.get("length_matched")), "heldout_split": info.get("heldout_split"),
            "chars": info.get("mean_target_chars") if isinstance(info.get("mean_target_chars"), dict) else None}


def _info(run: RunView, probe: str) -> dict:
    info = ((run.probes or {}).get(probe) or {}).get("info")
    return info if isinstance(info, dict) else {}


def _extraction(run: RunView, metrics: dict | None) -> dict | None:
    """The PII extraction probe: overall rows, per-entity rows, and what it probed (counts only)."""
    rows = metric_rows(metrics, "privacy.pii_extraction.", notes=run.interval_notes)
    info = _info(run, "pii_extraction")
    if not rows and not info:
        return None
    overall = [r for r in rows if r["name"].count(".") == 2]   # pii_extraction.<prompt>.<rate>
    return {"overall": overall, "by_type": [r for r in rows if r not in overall], "note": info.get("note"),
            "probed": info.get("values_probed"), "found": info.get("values_found"),
            "types": info.get("entity_types") if isinstance(info.get("entity_types"), dict) else {}}


def _output_pii(run: RunView, metrics: dict | None) -> dict | None:
    """PII in the probes' answers: overall and per-probe rows, counts per entity type, masked findings."""
    rows = metric_rows(metrics, "privacy.output_pii.", notes=run.interval_notes)
    info = _info(run, "output_pii")
    if not rows and not info:
        return None
    overall = [r for r in rows if r["name"].count(".") == 1]   # output_pii.<rate>
    findings = [f for f in info.get("findings") or [] if isinstance(f, dict)][:20]
    return {"overall": overall, "by_probe": [r for r in rows if r not in overall], "answers": info.get("answers"),
            "entities": info.get("entities") if isinstance(info.get("entities"), dict) else {},
            "findings": [(str(f.get("probe")), str(f.get("variant")), str(f.get("entity")),
                          "yes" if f.get("from_training_data") else "no", str(f.get("excerpt"))) for f in findings]}


def _residual(metrics: dict | None) -> list[str]:
    """The privacy section's residual-risk sentences, each from a number of this run (absent numbers, no sentence)."""
    m = metrics or {}

    def val(key):
        v = m.get(key)
        return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    out = []
    auc, lo, hi = (val(f"privacy.mia.calibrated.auc.adapter{s}") for s in ("", ".ci_low", ".ci_high"))
    if auc is not None:
        bounds = f" (95% interval {lo:.2f}–{hi:.2f})" if lo is not None and hi is not None else ""
        out.append(f"Membership: with the base as reference, a training row scores above a held-out row {auc:.2f} of "
                   f"the time{bounds}; 0.50 is chance.")
    tpr = val("privacy.mia.calibrated.tpr_at_1pct_fpr.adapter")
    if tpr is not None:
        out.append(f"At 1 false alarm in 100 that attack identifies about {round(1000 * tpr)} of 1,000 training "
                   f"rows.")
    for kind, words in (("prefix", "led up to it by the training text"), ("masked", "with it hidden in the prompt")):
        a, b = val(f"privacy.pii_extraction.{kind}.exact_rate.adapter"), val(f"privacy.pii_extraction.{kind}."
                                                                              f"exact_rate.base")
        n = val(f"privacy.pii_extraction.{kind}.exact_rate.n")
        if a is not None and b is not None:
            out.append(f"Extraction ({words}): the adapter completes {a:.0%} of {int(n or 0)} personal values of the "
                       f"training rows, the base {b:.0%}.")
    t = val("privacy.output_pii.training_value_rate.adapter")
    if t is not None:
        out.append(f"Outputs: {t:.1%} of the adapter's answers hold a personal value found in the training rows "
                   f"(base: {val('privacy.output_pii.training_value_rate.base') or 0:.1%}).")
    return out
