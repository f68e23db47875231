import numpy as np
import pytest

from audited_ft.eval.stats import bootstrap_ci, paired_metric


def test_ci_brackets_the_mean_and_narrows_with_n():
    rng = np.random.default_rng(0)
    small, large = rng.normal(0.5, 0.2, 20), rng.normal(0.5, 0.2, 2000)
    m, lo, hi = bootstrap_ci(small, 2000, 0.95, seed=1)
    assert lo < m < hi
    M, LO, HI = bootstrap_ci(large, 2000, 0.95, seed=1)
    assert (HI - LO) < (hi - lo) / 5
    # The normal-theory half-width for n=2000, sd=0.2 is 1.96*0.2/sqrt(2000) ≈ 0.0088.
    assert (HI - LO) / 2 == pytest.approx(0.0088, rel=0.15)


def test_constant_values_have_zero_width():
    assert bootstrap_ci([0.3] * 10) == pytest.approx((0.3, 0.3, 0.3))


def test_paired_delta_uses_pairing():
    rng = np.random.default_rng(0)
    base = rng.uniform(0, 1, 200)
    adapter = base + 0.05  # same items, a constant gain: the paired interval has zero width
    m = paired_metric("x", base, adapter, 1000, 0.95, seed=0)
    assert m["x.delta"] == pytest.approx(0.05)
    assert m["x.delta.ci_low"] == pytest.approx(0.05) and m["x.delta.ci_high"] == pytest.approx(0.05)
    assert m["x.base.ci_low"] < m["x.base"] < m["x.base.ci_high"]
    assert m["x.n"] == 200


def test_paired_metric_rejects_unequal_lengths():
    with pytest.raises(ValueError, match="different item counts"):
        paired_metric("x", [1, 2], [1])
