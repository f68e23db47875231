"""Confidence intervals: percentile bootstrap over items, paired where base and adapter saw the same items."""

from __future__ import annotations

import numpy as np


def bootstrap_ci(values, samples: int = 1000, confidence: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high) of the mean of ``values`` by percentile bootstrap."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        raise ValueError("bootstrap_ci needs at least one value")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(samples, x.size))
    means = x[idx].mean(axis=1)
    alpha = (1 - confidence) / 2
    return float(x.mean()), float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def paired_metric(prefix: str, base, adapter, samples: int = 1000, confidence: float = 0.95,
                  seed: int = 0) -> dict[str, float]:
    """Flat metric keys for one per-item score measured on base and adapter over the same items.

    The delta's interval resamples item indices jointly (paired bootstrap), which is narrower and correct when the
    two systems answered the same items.
    """
    b, a = np.asarray(base, dtype=float), np.asarray(adapter, dtype=float)
    if b.shape != a.shape:
        raise ValueError(f"{prefix}: base and adapter have different item counts ({b.size} vs {a.size})")
    out: dict[str, float] = {f"{prefix}.n": int(b.size)}
    for name, vals in (("base", b), ("adapter", a), ("delta", a - b)):
        mean, lo, hi = bootstrap_ci(vals, samples, confidence, seed)
        out[f"{prefix}.{name}"] = mean
        out[f"{prefix}.{name}.ci_low"] = lo
        out[f"{prefix}.{name}.ci_high"] = hi
    return out
