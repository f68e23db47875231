"""The Compute resources section's "what the 4-bit base changed" panel (``eval.reference: full_precision``).

The run ships a 4-bit base plus an adapter, but its users start from the full-precision model. With the reference on,
every probe also ran the unquantised base as variant ``full_precision``; its keys compare it with the 4-bit base like an
adapter's (``<stem>.full_precision.delta`` = full precision − NF4 base, paired over the same items). This panel turns
that around into what quantisation changed (NF4 base − full precision: the same interval, negated) and sets it beside
what the adapter changed (adapter − NF4 base), one row per headline metric. Group-level metrics (per bias type,
category...) are counted, not listed: they stay in ``eval/metrics.json`` under the same keys.
"""

from __future__ import annotations

import math

from audited_ft.eval.probes import owner
from audited_ft.run.keys import MetricKey

VARIANT = "full_precision"


def _num(value) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def _beyond(lo: float | None, hi: float | None) -> int:
    return 1 if lo is not None and lo > 0 else -1 if hi is not None and hi < 0 else 0


def quantisation_view(metrics: dict | None, reference: dict | None) -> dict | None:
    """None when the run did not ask for the reference; else ``{"loaded", "reason", "dtype", "rows", "groups"}``."""
    if not isinstance(reference, dict) or reference.get("requested") != VARIANT:
        return None
    out = {"loaded": bool(reference.get("loaded")), "reason": reference.get("reason"), "dtype": reference.get("dtype"),
           "rows": [], "groups": 0}
    metrics = metrics if isinstance(metrics, dict) else {}
    stems = sorted({k.stem for k in (MetricKey.parse(key, [VARIANT]) for key in metrics)
                    if k.variant == VARIANT and k.side == "adapter" and k.stat is None})
    for stem in stems:
        found = owner(stem)
        if found is not None and found[1].group is not None:
            out["groups"] += 1
            continue
        get = lambda *parts: _num(metrics.get(".".join(parts)))  # noqa: E731 — a local reader of one stem's keys
        d_lo, d_hi = get(stem, VARIANT, "delta", "ci_low"), get(stem, VARIANT, "delta", "ci_high")
        delta = get(stem, VARIANT, "delta")
        row = {"key": stem, "n": get(stem, "n"),
               "full": get(stem, VARIANT, "adapter"), "full_lo": get(stem, VARIANT, "adapter", "ci_low"),
               "full_hi": get(stem, VARIANT, "adapter", "ci_high"),
               "base": get(stem, "base"), "base_lo": get(stem, "base", "ci_low"), "base_hi": get(stem, "base", "ci_high"),
               # NF4 − full precision: the full-precision variant's delta (full − NF4), negated with its interval
               "quant": None if delta is None else -delta, "quant_lo": None if d_hi is None else -d_hi,
               "quant_hi": None if d_lo is None else -d_lo,
               "adapter": get(stem, "delta"), "adapter_lo": get(stem, "delta", "ci_low"),
               "adapter_hi": get(stem, "delta", "ci_high")}
        row["quant_moved"] = _beyond(row["quant_lo"], row["quant_hi"])
        row["adapter_moved"] = _beyond(row["adapter_lo"], row["adapter_hi"])
        out["rows"].append(row)
    out["moved"] = [r["key"] for r in out["rows"] if r["quant_moved"]]
    return out
