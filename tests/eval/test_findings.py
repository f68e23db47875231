"""Conclusions drawn across probes: blind probes named, group-level p-values adjusted within their family."""

import pytest

from audited_ft.eval.findings import adjust_for_multiplicity, blind_spots
from audited_ft.eval.stats import benjamini_hochberg


def test_a_base_that_never_refuses_makes_the_refusal_probe_blind_in_its_own_words():
    metrics = {"safety.refusal.rate.base": 0.0, "safety.refusal.rate.n": 12,
               "safety.refusal.over_refusal.base": 0.0}  # at its floor, but a floor is not harmful for over-refusal
    spots = blind_spots(metrics, [])
    assert list(spots) == ["refusal"]
    reason = spots["refusal"]["safety.refusal.rate"]
    assert reason.startswith("base never refuses (0 fraction of harmful requests, n = 12)")


def test_a_ceiling_in_the_harmful_direction_is_blind_and_room_to_move_is_not():
    at_top = {"bias.crows_pairs.stereotype_rate.base": 1.0, "bias.crows_pairs.stereotype_rate.n": 36}
    assert "highest possible value" in blind_spots(at_top, [])["crows_pairs"]["bias.crows_pairs.stereotype_rate"]
    assert blind_spots({"bias.crows_pairs.stereotype_rate.base": 0.97, "safety.refusal.rate.base": 0.01}, []) == {}
    # adapters' sides, intervals and unknown stems are not base levels
    assert blind_spots({"safety.refusal.rate.adapter": 0.0, "safety.refusal.rate.base.ci_low": 0.0,
                        "nobody.metric.base": 0.0}, []) == {}


def test_group_p_values_are_adjusted_within_their_family_only():
    p = [0.001, 0.02, 0.04, 0.3]
    metrics = {f"bias.crows_pairs.{t}.stereotype_rate.delta.p_value": v
               for t, v in zip(["gender", "race", "age", "religion"], p)}
    metrics["bias.crows_pairs.stereotype_rate.delta.p_value"] = 0.04  # the headline: not a group, not adjusted
    metrics["bias.crows_pairs.gender.stereotype_rate.delta"] = 0.1    # not a p-value
    q = adjust_for_multiplicity(metrics, [])
    assert set(q) == {f"bias.crows_pairs.{t}.stereotype_rate.delta.q_value" for t in ["gender", "race", "age", "religion"]}
    assert [q[f"bias.crows_pairs.{t}.stereotype_rate.delta.q_value"] for t in ["gender", "race", "age", "religion"]] \
        == pytest.approx(benjamini_hochberg(p))
    assert q["bias.crows_pairs.age.stereotype_rate.delta.q_value"] == pytest.approx(0.04 * 4 / 3)


def test_each_adapter_variant_is_its_own_family():
    metrics = {"bias.crows_pairs.gender.stereotype_rate.delta.p_value": 0.01,
               "bias.crows_pairs.race.stereotype_rate.delta.p_value": 0.5,
               "bias.crows_pairs.gender.stereotype_rate.bad.delta.p_value": 0.01}
    q = adjust_for_multiplicity(metrics, ["bad"])
    assert q["bias.crows_pairs.gender.stereotype_rate.delta.q_value"] == pytest.approx(0.02)  # two tests in its family
    assert q["bias.crows_pairs.gender.stereotype_rate.bad.delta.q_value"] == pytest.approx(0.01)  # alone in its own
