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
