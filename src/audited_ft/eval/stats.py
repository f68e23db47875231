"""Intervals, tests and power for base-vs-adapter metrics, chosen to hold at the sample sizes a run has.

Every paired metric is measured on the base and on the adapter over the same items. :func:`paired_metric` gives, for
the base, the adapter and the difference (adapter − base):

* **proportions** (a 0/1 outcome per item: refused, correct, stereotype preferred): the **Wilson score interval** for
  each level (Wilson 1927; recommended for small n by Brown, Cai & DasGupta 2001, Statistical Science 16:101–133); for
  the difference, **Newcombe's method 10** for paired proportions, which combines the two Wilson intervals with the
  correlation of the pairs (Newcombe 1998, Statistics in Medicine 17:2635–2650); the test is the **exact McNemar test** (a two-sided binomial test on the
  discordant pairs). Neither scipy nor statsmodels has the paired Newcombe interval, so it is written here.
* **means** of a score per item (toxicity, ROUGE, log-likelihood margins): the **studentized (bootstrap-t) interval**
  for each level (Efron & Tibshirani 1993, An Introduction to the Bootstrap, ch. 12), which holds up for the skewed,
  bounded scores these probes produce where the percentile and BCa intervals under-cover at small n (measured:
  tests/eval/test_stats.py); for the difference, **Student's t interval on the paired differences**, and the
  one-sample t-test (scipy). Differences between a model and its fine-tune are near-symmetric or sparse; on sparse ones
  (most items unchanged) no interval holds with a handful of changed items, hence the minimum below.

An interval that cannot hold at the sample size is **not estimable** rather than a confident-looking ``[x, x]``: fewer
than ``min_items`` items, or, for a difference of means, fewer than ``min_changed`` items whose score changed. Its
bounds are ``None`` in ``eval/metrics.json`` and the reason is kept; a gate on it is inconclusive.

The **minimum detectable effect** (``delta.mde``) is the smallest true difference the test detects with probability
``power`` at this n and α = 1 − confidence: for proportions by Connor's formula for McNemar's test with the observed
discordance (Connor 1987, Biometrics 43:207–211; the discordance is at least the effect itself), for means from the
observed standard deviation of the differences (of the base scores when no item changed).

Group-level findings are adjusted for multiplicity with :func:`benjamini_hochberg` (the false discovery rate,
Benjamini & Hochberg 1995; scipy's ``false_discovery_control``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

PROPORTION, MEAN = "proportion", "mean"
METHODS = {
    PROPORTION: "Wilson score interval per level; Newcombe's method 10 for the paired difference; exact McNemar test",
    MEAN: "studentized bootstrap (bootstrap-t) interval per level; Student's t interval on the paired differences; "
          "one-sample t-test",
    "ratio": "percentile bootstrap over items, resampled jointly for base and adapter (a ratio of counts)",
    "maximum": "percentile bootstrap within groups, resampled jointly for base and adapter (a maximum over groups)",
    "auc": "percentile bootstrap of the ROC AUC (Mann–Whitney), members and non-members resampled separately, the "
           "same draws for base and adapter",
    "macro": "percentile bootstrap of the mean over sets, items resampled within each set, the same draws for base "
             "and adapter",
    "tpr_at_fpr": "percentile bootstrap of the true-positive rate at a fixed false-positive rate, members and "
                  "non-members resampled separately, the same draws for base and adapter",
}


@dataclass(frozen=True)
class IntervalSettings:
    """How intervals are computed for a run (``eval`` section of the config)."""

    confidence: float = 0.95
    bootstrap_samples: int = 1000
    seed: int = 0
    min_items: int = 10
    min_changed: int = 5
    power: float = 0.8

    @property
    def z(self) -> float:
        from scipy.stats import norm

        return float(norm.ppf(0.5 + self.confidence / 2))


# ----------------------------------------------------------------------------------------------- proportions
def wilson_interval(successes: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``successes / n`` (a fractional count is allowed: ties as halves)."""
    from scipy.stats import norm

    if n <= 0:
        raise ValueError("wilson_interval needs n ≥ 1")
    z = float(norm.ppf(0.5 + confidence / 2))
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(max(p * (1 - p), 0.0) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_paired_interval(base: Sequence[float], adapter: Sequence[float],
                             confidence: float = 0.95) -> tuple[float, float]:
    """Newcombe's method 10 interval for ``mean(adapter) − mean(base)`` of paired 0/1 outcomes.

    With a = both 1, b = adapter only, c = base only, d = both 0, the adapter's and the base's rates p1, p2 get Wilson
    intervals (l1, u1), (l2, u2), and φ = (ad − bc) / √((a+b)(c+d)(a+c)(b+d)) is the correlation of the pairs (0 when
    a margin is empty); then L = D − √((p1 − l1)² − 2φ(p1 − l1)(u2 − p2) + (u2 − p2)²) and
    U = D + √((p2 − l2)² − 2φ(p2 − l2)(u1 − p1) + (u1 − p1)²), D = p1 − p2. Some texts shrink φ by n/2 (a continuity
    correction); measured here that makes the interval cover 99.9% at n = 10 where 95% is asked, so φ is used as is.
    """
    x, y = np.asarray(adapter, dtype=float), np.asarray(base, dtype=float)
    n = x.size
    a = float(np.sum((x == 1) & (y == 1)))
    b = float(np.sum((x == 1) & (y == 0)))
    c = float(np.sum((x == 0) & (y == 1)))
    d = float(n - a - b - c)
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = wilson_interval(a + b, n, confidence)
    l2, u2 = wilson_interval(a + c, n, confidence)
    margins = (a + b) * (c + d) * (a + c) * (b + d)
    phi = (a * d - b * c) / math.sqrt(margins) if margins > 0 else 0.0
    diff = p1 - p2
    low = diff - math.sqrt(max((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2, 0.0))
    high = diff + math.sqrt(max((p2 - l2) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1) + (u1 - p1) ** 2, 0.0))
    return max(-1.0, low), min(1.0, high)


def mcnemar_exact_p(base: Sequence[float], adapter: Sequence[float]) -> float:
    """Two-sided exact McNemar p-value: a binomial test of the discordant pairs against one half (1 when none)."""
    from scipy.stats import binomtest

    x, y = np.asarray(adapter, dtype=float), np.asarray(base, dtype=float)
    up, down = int(np.sum((x == 1) & (y == 0))), int(np.sum((x == 0) & (y == 1)))
    return 1.0 if up + down == 0 else float(binomtest(up, up + down, 0.5).pvalue)


# ----------------------------------------------------------------------------------------------- means
def student_t_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Student's t interval of a mean (here: of paired differences); ``[m, m]`` when every value is the same."""
    from scipy.stats import t

    x = np.asarray(values, dtype=float)
    m, s = float(x.mean()), float(x.std(ddof=1)) if x.size > 1 else 0.0
    if s == 0:
        return m, m
    half = float(t.ppf(0.5 + confidence / 2, x.size - 1)) * s / math.sqrt(x.size)
    return m - half, m + half


def paired_t_p(differences: Sequence[float]) -> float:
    """Two-sided one-sample t-test of the mean difference against 0; the sign test when every difference is equal."""
    from scipy.stats import binomtest, ttest_1samp

    x = np.asarray(differences, dtype=float)
    if not np.any(x):
        return 1.0
    if np.all(x == x[0]):  # no spread: the t statistic is infinite; count signs instead
        return float(binomtest(int(np.sum(x > 0)), int(np.sum(x != 0)), 0.5).pvalue)
    return float(ttest_1samp(x, 0.0).pvalue)


def bootstrap_t_interval(values: Sequence[float], samples: int = 1000, confidence: float = 0.95,
                         seed: int = 0) -> tuple[float, float]:
    """The studentized bootstrap interval of a mean: quantiles of t* = (m* − m) / se* over resamples, turned back
    with the sample's own standard error. Resamples without spread are left out; ``[m, m]`` without any spread."""
    x = np.asarray(values, dtype=float)
    n, m = x.size, float(x.mean())
    s = float(x.std(ddof=1)) if n > 1 else 0.0
    if s == 0:
        return m, m
    draws = x[np.random.default_rng(seed).integers(0, n, size=(samples, n))]
    sd = draws.std(axis=1, ddof=1)
    keep = sd > 0
    t = (draws.mean(axis=1)[keep] - m) / (sd[keep] / math.sqrt(n))
    alpha = (1 - confidence) / 2
    se = s / math.sqrt(n)
    return m - float(np.quantile(t, 1 - alpha)) * se, m - float(np.quantile(t, alpha)) * se


# ----------------------------------------------------------------------------------------------- power
def mde_proportion(n: int, discordance: float, confidence: float = 0.95, power: float = 0.8) -> float:
    """Smallest paired difference of proportions McNemar's test detects at ``n`` (Connor 1987): the δ where
    n = (z_{α/2} √ψ + z_β √(ψ − δ²))² / δ², with the discordance ψ = max(observed, δ)."""
    from scipy.stats import norm

    za, zb = float(norm.ppf(0.5 + confidence / 2)), float(norm.ppf(power))

    def needed(delta: float) -> float:
        psi = max(discordance, delta)
        return (za * math.sqrt(psi) + zb * math.sqrt(max(psi - delta * delta, 0.0))) ** 2 / (delta * delta)

    if needed(1.0) > n:
        return 1.0
    low, high = 1e-6, 1.0  # needed() falls as delta grows: bisect for needed(delta) = n
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if needed(mid) > n else (low, mid)
    return high


def mde_mean(n: int, sd: float, confidence: float = 0.95, power: float = 0.8) -> float:
    """Smallest mean difference the paired test detects at ``n``: (z_{α/2} + z_β) · sd / √n (normal approximation)."""
    from scipy.stats import norm

    return (float(norm.ppf(0.5 + confidence / 2)) + float(norm.ppf(power))) * sd / math.sqrt(n)


# ----------------------------------------------------------------------------------------------- metrics
def paired_metric(prefix: str, base, adapter, settings: IntervalSettings | None = None,
                  kind: str = MEAN) -> dict:
    """Flat metric keys for one per-item score measured on base and adapter over the same items.

    ``kind`` is ``"proportion"`` (0/1 outcomes; values other than 0 and 1, such as ties counted as halves, fall back
    to the methods for means) or ``"mean"``. Keys: ``<prefix>.n``; ``.base``, ``.adapter``, ``.delta``, each with
    ``.ci_low``/``.ci_high`` (``None`` when not estimable); ``.delta.p_value`` and ``.delta.mde`` (``None`` when not
    estimable); and two texts the evaluation stage moves to eval/probes.json: ``<prefix>.method`` and, when an
    interval could not be estimated, ``<prefix>.not_estimable`` (the reason).
    """
    from audited_ft.run.keys import MetricKey

    s = settings or IntervalSettings()
    b, a = np.asarray(base, dtype=float), np.asarray(adapter, dtype=float)
    if b.shape != a.shape:
        raise ValueError(f"{prefix}: base and adapter have different item counts ({b.size} vs {a.size})")
    if kind == PROPORTION and not np.all(np.isin(np.concatenate([a, b]), (0.0, 1.0))):
        kind = MEAN
    n, diff = int(b.size), a - b
    key = MetricKey(prefix)
    out: dict = {str(key.to(side="n")): n, f"{prefix}.method": kind}
    points = {"base": float(b.mean()) if n else None, "adapter": float(a.mean()) if n else None,
              "delta": float(diff.mean()) if n else None}
    intervals: dict[str, tuple] = {side: (None, None) for side in points}
    extra = {"p_value": None, "mde": None}
    changed = int(np.count_nonzero(diff))
    if n < s.min_items:
        out[f"{prefix}.not_estimable"] = f"{n} item(s), fewer than the {s.min_items} an interval needs here"
    elif kind == PROPORTION:
        intervals["base"] = wilson_interval(float(b.sum()), n, s.confidence)
        intervals["adapter"] = wilson_interval(float(a.sum()), n, s.confidence)
        intervals["delta"] = newcombe_paired_interval(b, a, s.confidence)
        extra = {"p_value": mcnemar_exact_p(b, a), "mde": mde_proportion(n, changed / n, s.confidence, s.power)}
    else:
        intervals["base"] = bootstrap_t_interval(b, s.bootstrap_samples, s.confidence, s.seed)
        intervals["adapter"] = bootstrap_t_interval(a, s.bootstrap_samples, s.confidence, s.seed)
        spread = float(diff.std(ddof=1)) if changed else float(b.std(ddof=1))
        extra["mde"] = mde_mean(n, spread, s.confidence, s.power)
        if changed < s.min_changed:
            out[f"{prefix}.not_estimable"] = (f"the difference: only {changed} of {n} item(s) changed, fewer than the "
                                              f"{s.min_changed} its interval needs")
        else:
            intervals["delta"] = student_t_interval(diff, s.confidence)
            extra["p_value"] = paired_t_p(diff)
    for side, value in points.items():
        low, high = intervals[side]
        out[str(key.to(side=side))] = value
        out[str(key.to(side=side, stat="ci_low"))] = low
        out[str(key.to(side=side, stat="ci_high"))] = high
    out[str(key.to(side="delta", stat="p_value"))] = extra["p_value"]
    out[str(key.to(side="delta", stat="mde"))] = extra["mde"]
    return out


def bootstrap_metric(prefix: str, n: int, point: dict[str, float], draws: dict[str, np.ndarray],
                     settings: IntervalSettings, method: str) -> dict:
    """``paired_metric``'s keys for a statistic that is not a mean over items (a ratio of counts, a maximum over
    groups), from its bootstrap ``draws`` per side (resampled jointly for base and adapter; NaN draws left out).

    Intervals are percentile intervals, widened to include the point estimate where a biased statistic leaves it
    outside on small samples; the p-value is twice the share of difference draws on the far side of 0 (capped at 1);
    the minimum detectable effect is (z_{α/2} + z_β) × the bootstrap standard error of the difference. Below
    ``min_items`` items every bound is ``None``, as for means."""
    from scipy.stats import norm

    key_n, alpha = f"{prefix}.n", (1 - settings.confidence) / 2
    out: dict = {key_n: int(n), f"{prefix}.method": method}
    estimable = n >= settings.min_items
    if not estimable:
        out[f"{prefix}.not_estimable"] = f"{n} item(s), fewer than the {settings.min_items} an interval needs here"
    for side in ("base", "adapter", "delta"):
        d = np.asarray(draws[side], dtype=float)
        d = d[~np.isnan(d)]
        out[f"{prefix}.{side}"] = point[side]
        if estimable and d.size:
            low, high = np.quantile(d, [alpha, 1 - alpha])
            out[f"{prefix}.{side}.ci_low"] = float(min(low, point[side]))
            out[f"{prefix}.{side}.ci_high"] = float(max(high, point[side]))
        else:
            out[f"{prefix}.{side}.ci_low"] = out[f"{prefix}.{side}.ci_high"] = None
    delta = np.asarray(draws["delta"], dtype=float)
    delta = delta[~np.isnan(delta)]
    if estimable and delta.size:
        tail = min(float(np.mean(delta <= 0)), float(np.mean(delta >= 0)))
        out[f"{prefix}.delta.p_value"] = min(1.0, 2 * tail)
        z = float(norm.ppf(0.5 + settings.confidence / 2)) + float(norm.ppf(settings.power))
        out[f"{prefix}.delta.mde"] = z * float(delta.std(ddof=1)) if delta.size > 1 else None
    else:
        out[f"{prefix}.delta.p_value"] = out[f"{prefix}.delta.mde"] = None
    return out


def bootstrap_ci(values, samples: int = 1000, confidence: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high) of the mean of ``values`` by percentile bootstrap (for shares rated by people, where the
    item, not the rating, is the unit)."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        raise ValueError("bootstrap_ci needs at least one value")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(samples, x.size))
    means = x[idx].mean(axis=1)
    alpha = (1 - confidence) / 2
    return float(x.mean()), float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini–Hochberg adjusted p-values (q-values), in the order given."""
    from scipy.stats import false_discovery_control

    if not len(p_values):
        return []
    return [float(q) for q in false_discovery_control(np.asarray(p_values, dtype=float), method="bh")]


# ------------------------------------------------------------------------------ membership inference (ROC)
# Written here rather than taken from scikit-learn, which is not a dependency of this project: the AUC is the
# Mann–Whitney U statistic divided by n1·n0 (ties count half), computed by scipy; the rest is counting.
def roc_auc(members: Sequence[float], non_members: Sequence[float]) -> float:
    """Area under the ROC curve of a score that is higher for members: P(member score > non-member score), ties
    counting one half (Mann–Whitney U / (n1·n0), Hanley & McNeil 1982)."""
    from scipy.stats import mannwhitneyu

    pos, neg = np.asarray(members, dtype=float), np.asarray(non_members, dtype=float)
    if not pos.size or not neg.size:
        raise ValueError("roc_auc needs at least one member and one non-member")
    return float(mannwhitneyu(pos, neg, alternative="two-sided").statistic / (pos.size * neg.size))


def roc_auc_draws(members: np.ndarray, non_members: np.ndarray) -> np.ndarray:
    """AUC of each row of ``members`` (draws × n1) against the same row of ``non_members`` (draws × n0), by ranks
    (average ranks for ties: the same value as ``roc_auc``)."""
    from scipy.stats import rankdata

    n1, n0 = members.shape[1], non_members.shape[1]
    ranks = rankdata(np.concatenate([members, non_members], axis=1), axis=1)
    return (ranks[:, :n1].sum(axis=1) - n1 * (n1 + 1) / 2) / (n1 * n0)


def tpr_at_fpr(members: Sequence[float], non_members: Sequence[float], fpr: float) -> float | None:
    """True-positive rate at a false-positive rate of at most ``fpr``: the share of members scoring strictly above
    the threshold that lets floor(fpr · n0) non-members through (Carlini et al. 2022, "Membership Inference Attacks
    From First Principles", report attacks this way). ``None`` when fewer than 1/fpr non-members make that rate
    unmeasurable (with 32 non-members the smallest non-zero rate is 1/32, not 1/100)."""
    pos, neg = np.asarray(members, dtype=float), np.sort(np.asarray(non_members, dtype=float))[::-1]
    if not pos.size or neg.size * fpr < 1:
        return None
    allowed = int(math.floor(fpr * neg.size + 1e-9))
    threshold = neg[allowed] if allowed < neg.size else -np.inf
    return float(np.mean(pos > threshold))


def roc_points(members: Sequence[float], non_members: Sequence[float]) -> list[tuple[float, float]]:
    """(FPR, TPR) at every distinct threshold, from (0, 0) to (1, 1): the ROC curve to draw."""
    pos, neg = np.asarray(members, dtype=float), np.asarray(non_members, dtype=float)
    out = [(0.0, 0.0)]
    for t in np.unique(np.concatenate([pos, neg]))[::-1]:
        out.append((float(np.mean(neg >= t)), float(np.mean(pos >= t))))
    if out[-1] != (1.0, 1.0):
        out.append((1.0, 1.0))
    return out
