"""Section 4, Overfitting: the training / validation loss curve and its final gap, memorisation of training rows, and
the exposure of planted canaries."""

from __future__ import annotations

import math

from audited_ft.report import charts
from audited_ft.report.rows import metric_rows
from audited_ft.run.view import RunView

SECTION = "Overfitting"


def overfitting_view(run: RunView, metrics: dict | None, gaps: list, all_metrics: dict | None = None) -> dict:
    """``metrics``: the run's own adapter's keys; ``all_metrics`` also the other variants' (the privacy–utility table
    sets a DP run's non-private reference beside it)."""
    log, summary = run.load("train/log.jsonl"), run.load("train/summary.json")
    if log is None:
        gaps.append((SECTION, "training / validation loss curve", run.why_absent("train/log.jsonl", "train")))
    final_train, final_eval = (summary or {}).get("final_train_loss"), (summary or {}).get("final_eval_loss")
    numeric = all(isinstance(v, (int, float)) for v in (final_train, final_eval))
    memo = metric_rows(metrics, "memorisation.", notes=run.interval_notes)
    if not memo:
        gaps.append((SECTION, "memorisation of training data", "no memorisation.* keys in eval/metrics.json"))
    canary = metric_rows(metrics, "privacy.canary.", notes=run.interval_notes)
    capability = metric_rows(metrics, "capability.", notes=run.interval_notes)
    if not capability:
        gaps.append((SECTION, "general capability (forgetting)", "no capability.* keys in eval/metrics.json"))
    return {"mia": _mia(run, metrics), "extraction": _extraction(run, metrics),
            "output_pii": _output_pii(run, metrics), "guarantee": _guarantee(run, all_metrics if all_metrics is not None else metrics,
                                                                      summary),
            "capability": capability, "capability_info": _info(run, "capability"),
            "residual": _residual(metrics, summary), "summary": summary,
            "gap": final_eval - final_train if numeric else None, "memorisation": memo,
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


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_PRIVACY_KEYS = ("library", "max_grad_norm", "noise_multiplier", "sample_rate", "steps", "accountant", "epsilon_spent",
                 "delta", "epsilon_target", "delta_source", "epsilon_rdp", "epsilon_prv", "unit", "clipped_fraction")


def _guarantee(run: RunView, metrics: dict | None, summary: dict | None) -> dict | None:
    """A DP run's guarantee (train/summary.json ``privacy``) and its privacy–utility table: base, the non-private
    reference adapter (variant ``nonprivate``) and the DP adapter side by side — ROUGE-L, the membership attacks' AUC
    and TPR at 1% FPR, validation loss and training time. ``None`` for a run trained without DP."""
    from audited_ft.eval.probes.mia import SCORE_NAMES

    privacy = (summary or {}).get("privacy")
    if not isinstance(privacy, dict):
        return None
    m = metrics or {}

    def cell(key):
        v = m.get(key)
        return {"value": v if _number(v) else None, "lo": m.get(f"{key}.ci_low"), "hi": m.get(f"{key}.ci_high"),
                "why": (run.interval_notes or {}).get(key.rsplit(".", 1)[0], {}).get("not_estimable")}

    def row(label, stem):
        # the DP adapter is the run's own (<stem>.adapter); the non-private one the variant (<stem>.nonprivate.adapter)
        return {"label": label, "base": cell(f"{stem}.base"), "nonprivate": cell(f"{stem}.nonprivate.adapter"),
                "dp": cell(f"{stem}.adapter")}

    rows = [row("ROUGE-L on the test split (higher is better)", "rouge.rougeL")]
    for score, name in SCORE_NAMES.items():
        rows.append(row(f"membership AUC, {name} (0.5 is chance)", f"privacy.mia.{score}.auc"))
    for score, name in SCORE_NAMES.items():
        rows.append(row(f"membership TPR at 1% FPR, {name}", f"privacy.mia.{score}.tpr_at_1pct_fpr"))
    rows.append(row("exposure of the planted canaries (bits; the control secrets' level is chance)",
                    "privacy.canary.exposure"))
    rows = [r for r in rows if any(r[c]["value"] is not None for c in ("base", "nonprivate", "dp"))]
    reference = (summary or {}).get("reference") if isinstance((summary or {}).get("reference"), dict) else None
    seconds = (summary or {}).get("seconds")
    ref_seconds = (reference or {}).get("seconds")
    eps, delta = privacy.get("epsilon_spent"), privacy.get("delta")
    shown = {k: privacy.get(k) for k in _PRIVACY_KEYS}  # every key the template reads, None where the file lacks it
    shown["not_covered"] = [str(x) for x in privacy.get("not_covered") or [] if isinstance(x, str)]
    return {"p": shown, "rows": rows, "reference": reference,
            "losses": ((reference or {}).get("final_eval_loss"), (summary or {}).get("final_eval_loss")),
            "seconds": (ref_seconds, seconds),
            "time_ratio": seconds / ref_seconds if _number(seconds) and _number(ref_seconds) and ref_seconds else None,
            "bound_1pct": privacy.get("tpr_bound_at_1pct_fpr"),
            "bound_10pct": min(1.0, math.exp(eps) * 0.1 + delta) if _number(eps) and _number(delta) else None}


def _residual(metrics: dict | None, summary: dict | None = None) -> list[str]:
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
    privacy = (summary or {}).get("privacy")
    if isinstance(privacy, dict) and _number(privacy.get("epsilon_spent")):
        bound = privacy.get("tpr_bound_at_1pct_fpr")
        out.append(f"Guarantee: the adapter was trained with DP-SGD at ε = {privacy['epsilon_spent']:.2f}, "
                   f"δ = {privacy.get('delta', 0):.1g} (one training row as the unit)"
                   + (f"; no membership attack can identify more than {bound:.0%} of training rows at 1 false alarm "
                      "in 100." if _number(bound) and bound < 1 else
                      "; at this ε the bound on a membership attack at 1 false alarm in 100 is vacuous (100%): the "
                      "protection shown is the measured one above, not a proven one."))
    elif summary is not None:
        out.append("Guarantee: none — the adapter was trained without differential privacy (train.privacy is not "
                   "set), so the measurements above are the only evidence.")
    t = val("privacy.output_pii.training_value_rate.adapter")
    if t is not None:
        out.append(f"Outputs: {t:.1%} of the adapter's answers hold a personal value found in the training rows "
                   f"(base: {val('privacy.output_pii.training_value_rate.base') or 0:.1%}).")
    return out
