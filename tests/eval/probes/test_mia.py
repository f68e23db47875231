"""The membership-inference probe (privacy.mia) with a fake model whose adapter knows its training rows, and its
statistics: AUC and TPR at low FPR by hand, and the coverage of the bootstrap AUC interval by simulation."""

from __future__ import annotations

import numpy as np
import pytest

from audited_ft.eval.probes import PROBES, ProbeContext
from audited_ft.eval.stats import IntervalSettings, roc_auc, roc_auc_draws, roc_points, tpr_at_fpr
from tests.fakes import FakeModel


def test_auc_and_tpr_by_hand():
    assert roc_auc([3, 4], [1, 2]) == 1.0 and roc_auc([1, 2], [3, 4]) == 0.0
    assert roc_auc([1, 3], [2, 2]) == 0.5 and roc_auc([2], [2]) == 0.5  # ties count half
    draws = roc_auc_draws(np.array([[3.0, 4.0], [1.0, 3.0]]), np.array([[1.0, 2.0], [2.0, 2.0]]))
    assert list(draws) == [1.0, 0.5]
    members, non = list(range(100, 200)), list(range(100))      # every member above every non-member
    assert tpr_at_fpr(members, non, 0.01) == 1.0
    assert tpr_at_fpr(list(range(50)) + [1000] * 50, non, 0.01) == 0.5  # one non-member (99) may pass: members > 98
    assert tpr_at_fpr(members, non[:32], 0.01) is None                 # 32 non-members cannot show 1 in 100
    assert roc_points([2], [1]) == [(0.0, 0.0), (0.0, 1.0), (1.0, 1.0)]


def test_bootstrap_auc_interval_covers_at_its_nominal_rate():
    """By simulation: scores of members ~ N(0.5, 1), non-members ~ N(0, 1), 40 of each; the true AUC is
    Φ(0.5/√2) = 0.638. The 95% percentile-bootstrap interval (separate resampling) should cover it ~95% of the time;
    accepted 88–99% over 300 simulated studies."""
    from scipy.stats import norm

    from audited_ft.eval.stats import bootstrap_metric

    truth, rng, cover = float(norm.cdf(0.5 / np.sqrt(2))), np.random.default_rng(7), 0
    for _ in range(300):
        pos, neg = rng.normal(0.5, 1, 40), rng.normal(0, 1, 40)
        im, i0 = rng.integers(0, 40, (500, 40)), rng.integers(0, 40, (500, 40))
        draws = roc_auc_draws(pos[im], neg[i0])
        point = roc_auc(pos, neg)
        m = bootstrap_metric("a", 40, {"base": 0.5, "adapter": point, "delta": point - 0.5},
                             {"base": np.full(500, 0.5), "adapter": draws, "delta": draws - 0.5},
                             IntervalSettings(bootstrap_samples=500), "auc")
        cover += m["a.adapter.ci_low"] <= truth <= m["a.adapter.ci_high"]
    assert 0.88 <= cover / 300 <= 0.99, cover / 300


@pytest.fixture
def splits():
    rows = [{"id": f"t{i}", "input": f"dialogue {i}", "target": "word " * (5 + i % 7) + f"end {i}"} for i in range(260)]
    return {"train": rows[:130], "validation": rows[130:140], "test": rows[140:]}


class Knows(FakeModel):
    """The adapter gives the targets of its training prompts a higher likelihood (by ``bonus`` nats)."""

    def __init__(self, rows, bonus):
        super().__init__()
        self.known, self.bonus = {self.prompt(r["input"]) for r in rows}, bonus

    def adapter_bonus(self, context, continuation):
        return self.bonus if context in self.known else 0.0


def _run(model, splits, **options):
    cls = PROBES.get("mia")
    return cls(cls.Options(**options)).run(ProbeContext(model=model, splits=splits,
                                                        stats=IntervalSettings(bootstrap_samples=400)))


def test_an_adapter_that_knows_its_training_rows_is_caught(splits):
    out = _run(Knows(splits["train"], bonus=30.0), splits, limit=120)
    m = out.metrics
    assert m["privacy.mia.members"] == 120
    # the reference-calibrated score sees the bonus directly: members are separated perfectly
    assert m["privacy.mia.calibrated.auc.adapter"] == 1.0 and m["privacy.mia.calibrated.auc.base"] == 0.5
    assert m["privacy.mia.calibrated.tpr_at_1pct_fpr.adapter"] == 1.0
    assert m["privacy.mia.calibrated.auc.delta.ci_low"] > 0.4
    assert m["privacy.mia.loss.auc.adapter"] > 0.9 and 0.3 < m["privacy.mia.loss.auc.base"] < 0.7
    # 120 non-members: the 1% rate is measurable, the 0.1% one is not, and that is said
    assert "privacy.mia.loss.tpr_at_0_1pct_fpr.adapter" not in m
    assert "1000" in out.info["not_estimable"]["privacy.mia.loss.tpr_at_0_1pct_fpr"].replace(",", "")
    assert "identifies about 1000 of 1,000" in out.info["reading"]["adapter.calibrated"]
    assert out.info["roc"]["adapter.calibrated"]["adapter"][0] == [0.0, 0.0]


def test_an_adapter_that_does_not_know_its_rows_sits_at_chance(splits):
    m = _run(Knows(splits["train"], bonus=0.0), splits, limit=120).metrics
    for score in ("loss", "calibrated", "min_k"):
        assert m[f"privacy.mia.{score}.auc.delta.ci_low"] <= 0.0 <= m[f"privacy.mia.{score}.auc.delta.ci_high"], score


def test_members_are_matched_in_length_and_canaries_left_out(splits, tmp_path):
    from audited_ft.eval.probes.mia import match_by_length
    import random

    pool = [{"target": "x" * k} for k in (5, 50, 51, 100, 7)]
    got = match_by_length([{"target": "x" * 49}, {"target": "x" * 6}], pool, random.Random(0))
    assert [len(r["target"]) for r in got] == [50, 5] or [len(r["target"]) for r in got] == [50, 7]
    out = _run(Knows(splits["train"], bonus=1.0), splits, limit=20)
    chars = out.info["mean_target_chars"]
    assert abs(chars["members"] - chars["non_members"]) < 2
    assert "cannot be measured with 20 held-out rows" in out.info["reading"]["adapter.loss"]


def test_too_few_rows_is_said_not_raised():
    out = _run(FakeModel(), {"train": [{"id": "a", "input": "x", "target": "y"}], "test": []})
    assert out.metrics == {} and "not measured" in out.info["note"]
