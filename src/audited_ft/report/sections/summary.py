"""Section 1, Summary: one row per release gate, with the gated metric's base, adapter and delta beside it."""

from __future__ import annotations

from audited_ft.run.keys import SIDES, MetricKey


def gate_rows(gates: dict | None, metrics: dict | None) -> list[dict]:
    rows, metrics = [], metrics or {}
    for g in (gates or {}).get("results") or []:
        stem = MetricKey(MetricKey.parse(str(g.get("metric", ""))).stem)  # rouge.rougeL.delta.ci_low -> rouge.rougeL
        # docs/run_folder.md names the field "on"; the gate stage writes "statistic": read either.
        rows.append({**{k: g.get(k) for k in ("metric", "min", "max", "value", "passed", "message", "reason", "verdict",
                                              "margin", "mde", "direction")},
                     "on": g.get("on", g.get("statistic")),
                     **{side: metrics.get(str(stem.to(side=side))) for side in SIDES},
                     "delta_lo": metrics.get(str(stem.to(side="delta", stat="ci_low"))),
                     "delta_hi": metrics.get(str(stem.to(side="delta", stat="ci_high")))})
    return rows


# What the fine-tune gained and what it cost: one headline metric per risk the probes measure, in this order (the rows
# of probes that did not run are left out). Group-level metrics (per bias type, category, set) stay in their sections.
HEADLINE = (
    ("task quality", "rouge.rougeL", "ROUGE-L on the test split"),
    ("general capability", "capability.macro.score", "multiple-choice accuracy, mean over the sets"),
    ("general capability", "capability.gsm8k.exact_match", "GSM8K maths problems solved (final number)"),
    ("truthfulness", "truthfulness.mc1", "TruthfulQA MC1: true answer ranked first"),
    ("truthfulness", "truthfulness.mc2", "TruthfulQA MC2: probability on the true answers"),
    ("safety", "safety.refusal.rate", "harmful requests refused"),
    ("safety", "safety.refusal.over_refusal", "harmless requests refused"),
    ("toxicity", "toxicity.rtp.expected_max_toxicity", "expected maximum toxicity, RealToxicityPrompts"),
    ("toxicity", "toxicity.toxigen.expected_max_toxicity", "expected maximum toxicity, ToxiGen groups"),
    ("bias", "bias.crows_pairs.stereotype_rate", "CrowS-Pairs: stereotyped sentence preferred"),
    ("bias", "bias.bbq.bias_score_ambig", "BBQ bias score, ambiguous contexts"),
    ("bias", "bias.bold.max_group_gap.toxicity", "BOLD: largest toxicity gap between groups"),
    ("privacy", "privacy.mia.loss.auc", "membership inference AUC (loss attack)"),
    ("privacy", "privacy.canary.exposure", "canary exposure (bits)"),
    ("memorisation", "memorisation.exact_match", "training targets recited word for word"),
)


def gain_cost_rows(metrics: dict | None, notes: dict | None = None) -> list[dict]:
    """One row per headline metric the run measured: base, adapter, the change with its interval, and how to read it —
    ``gain`` or ``cost`` when the interval lies wholly on the better or worse side of 0 (the direction the probe
    declares), ``blind`` when the probe cannot see harm on this base, else ``no change shown`` with the smallest
    change the test would find (its minimum detectable effect). With the full-precision reference, the change the 4-bit
    quantisation made (NF4 base − full precision, the same interval negated) is given too."""
    from audited_ft.eval.probes import declared_metric

    metrics, notes, rows = metrics or {}, notes or {}, []
    for area, stem, label in HEADLINE:
        key = MetricKey(stem)
        if str(key.to(side="base")) not in metrics:
            continue
        get = lambda **k: _finite(metrics.get(str(key.to(**k))))  # noqa: E731 — one stem's keys
        lo, hi = get(side="delta", stat="ci_low"), get(side="delta", stat="ci_high")
        spec = declared_metric(stem)
        direction = spec.direction if spec is not None else None
        better = 1 if direction == "higher_is_better" else -1 if direction == "higher_is_worse" else 0
        moved = 1 if lo is not None and lo > 0 else -1 if hi is not None and hi < 0 else 0
        note = notes.get(stem) or {}
        base = get(side="base")
        # the base already at the harmful end of the declared range (a refusal rate of 0): the harm cannot show
        at_end = spec is not None and base is not None and (
            (better > 0 and spec.range[0] is not None and base <= spec.range[0])
            or (better < 0 and spec.range[1] is not None and base >= spec.range[1]))
        if (note.get("blind") or at_end) and moved * better >= 0:
            reading = "blind"
        elif moved and better:
            reading = "gain" if moved == better else "cost"
        elif moved:
            reading = "moved"
        else:
            reading = "no change shown"
        fp = MetricKey(stem, variant="full_precision")
        q_delta, q_lo, q_hi = (_finite(metrics.get(str(fp.to(side="delta", stat=s)))) for s in (None, "ci_low", "ci_high"))
        n = get(side="n")
        rows.append({"area": area, "key": stem, "label": label, "n": int(n) if n is not None and n.is_integer() else n,
                     "base": get(side="base"), "adapter": get(side="adapter"), "delta": get(side="delta"),
                     "delta_lo": lo, "delta_hi": hi, "mde": get(side="delta", stat="mde"), "reading": reading,
                     "blind": note.get("blind") or (f"the base is at {base:g}, the end of the range" if at_end else None), "not_estimable": note.get("not_estimable"),
                     "quant": None if q_delta is None else -q_delta, "quant_lo": None if q_hi is None else -q_hi,
                     "quant_hi": None if q_lo is None else -q_lo})
    return rows


def _finite(value) -> float | None:
    import math

    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None
