"""Rows the report's tables are made of: a probe's metrics as base / adapter / delta with intervals, and a nested
summary as dotted key / value pairs."""

from __future__ import annotations

from typing import Any

from audited_ft.run.keys import SIDES, MetricKey


def metric_rows(metrics: dict | None, *prefixes: str, notes: dict | None = None) -> list[dict]:
    """One row per paired metric whose stem starts with one of ``prefixes``: base, adapter and delta with their
    interval ends (``<side>_lo`` / ``<side>_hi``), the item count ``n``, the difference's test (``p``, and ``q`` adjusted
    for multiplicity where the metric is one of a family of groups) and minimum detectable effect (``mde``), sorted
    by stem. ``notes`` (``RunView.interval_notes``) adds the interval ``method`` and why an interval is
    ``not_estimable``."""
    rows = []
    metrics = metrics or {}
    stems = sorted({key.stem for key in map(MetricKey.parse, metrics)
                    if key.side == "base" and key.stat is None and key.stem.startswith(prefixes)},
                   key=lambda stem: str(MetricKey(stem, "base")))  # in the order of the keys themselves
    for stem in stems:
        key = MetricKey(stem)
        note = (notes or {}).get(stem) or {}
        row = {"key": stem, "name": stem.split(".", 1)[-1], "n": metrics.get(str(key.to(side="n"))),
               "method": note.get("method"), "not_estimable": note.get("not_estimable"),
               **{stat[0]: metrics.get(str(key.to(side="delta", stat=stat))) for stat in ("p_value", "q_value")},
               "mde": metrics.get(str(key.to(side="delta", stat="mde")))}
        for side in SIDES:
            row[side] = metrics.get(str(key.to(side=side)))
            row[f"{side}_lo"] = metrics.get(str(key.to(side=side, stat="ci_low")))
            row[f"{side}_hi"] = metrics.get(str(key.to(side=side, stat="ci_high")))
        rows.append(row)
    return rows


def flatten(obj: Any, prefix: str = "", limit: int = 60) -> list[tuple[str, Any]]:
    """A nested summary as (dotted key, scalar) rows, for a generic key/value table; lists of scalars joined."""
    if isinstance(obj, dict):
        rows = [row for k, v in obj.items() for row in flatten(v, f"{prefix}{k}.", limit)]
    elif isinstance(obj, list):
        scalars = all(not isinstance(x, (dict, list)) for x in obj)
        rows = [(prefix[:-1], ", ".join(map(str, obj)) if scalars else f"{len(obj)} entries")]
    else:
        rows = [(prefix[:-1], obj)]
    return rows[:limit]
