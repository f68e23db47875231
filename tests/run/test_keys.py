"""The metric-key grammar (``<stem>[.<variant>][.<side>][.<bound>]``) and the probes' metric declarations."""

import json

import pytest

from audited_ft.eval.probes import PROBES, declared_direction, declared_metric
from audited_ft.run.keys import MetricKey, MetricSpec, better_way, bound_direction, find_spec
from tests.paths import SAMPLE_RUN


@pytest.mark.parametrize("key, variants, parts", [
    ("rouge.rougeL.delta.ci_low", (), ("rouge.rougeL", "delta", "ci_low", None)),
    ("rouge.rougeL.adapter", (), ("rouge.rougeL", "adapter", None, None)),
    ("rouge.rougeL.n", (), ("rouge.rougeL", "n", None, None)),
    ("rouge.rougeL.other.delta.ci_high", ("other",), ("rouge.rougeL", "delta", "ci_high", "other")),
    ("rouge.rougeL.other.delta", (), ("rouge.rougeL.other", "delta", None, None)),  # not a variant of this run
    ("overfitting.final_gap", (), ("overfitting.final_gap", None, None, None)),
    ("audits.leakage.totals.contamination", (), ("audits.leakage.totals.contamination", None, None, None)),
    ("eval.confidence", (), ("eval.confidence", None, None, None)),
    ("bias.bbq.n", (), ("bias.bbq", "n", None, None)),
    ("delta", (), ("delta", None, None, None)),  # a bare word is a stem, never a side
])
def test_parse_and_build_round_trip(key, variants, parts):
    k = MetricKey.parse(key, variants)
    assert (k.stem, k.side, k.stat, k.variant) == parts
    assert str(k) == key


def test_every_key_of_the_sample_run_round_trips_and_builds_its_siblings():
    metrics = json.loads((SAMPLE_RUN / "eval/metrics.json").read_text())
    for key in metrics:
        k = MetricKey.parse(key)
        assert str(k) == key
        if k.side == "delta" and k.stat is None:
            assert str(k.to(stat="ci_low")) in metrics and str(k.to(side="n")) in metrics


def test_every_probe_declares_its_metrics_and_the_gated_ones_have_the_harmful_direction():
    for name, cls in PROBES.items().items():
        assert cls.metrics, f"{name} declares no metrics"
    metrics = json.loads((SAMPLE_RUN / "eval/metrics.json").read_text())
    stems = {MetricKey.parse(k).stem for k in metrics if not k.startswith("eval.")}
    undeclared = sorted(s for s in stems if declared_metric(s) is None)
    assert undeclared == []
    assert declared_direction("bias.crows_pairs.gender.stereotype_rate") == "higher_is_worse"
    assert declared_direction("toxicity.toxigen.women.expected_max_toxicity") == "higher_is_worse"
    assert declared_direction("safety.refusal.rate") == "higher_is_better"
    assert declared_direction("safety.refusal.over_refusal") == "higher_is_worse"
    assert declared_direction("rouge.rougeLsum") == "higher_is_better"
    assert declared_direction("bias.bold.gender.actresses.sentiment") == "neutral"
    assert declared_direction("bias.bold.gender.max_group_gap.sentiment") == "higher_is_worse"
    assert declared_direction("memorisation.heldout_exact_match") == "neutral"
    assert declared_direction("memorisation.exact_match") == "higher_is_worse"
    assert declared_direction("no_such_probe.metric") is None


def test_spec_matching_and_directions():
    specs = (MetricSpec("*max_group_gap.*", "x", "higher_is_worse"), MetricSpec("*.sentiment", "x", "neutral"))
    assert find_spec(specs, "gender.max_group_gap.sentiment").direction == "higher_is_worse"  # first match wins
    assert find_spec(specs, "gender.actors.sentiment").direction == "neutral"
    assert find_spec(specs, "toxicity") is None
    with pytest.raises(ValueError, match="direction"):
        MetricSpec("x", "unit", "lower_is_better")
    assert better_way("higher_is_worse") == "lower" and better_way("neutral") is None and better_way(None) is None
    assert bound_direction(0.0, None) == "higher" and bound_direction(None, 1) == "lower"
    assert bound_direction(0, 1) is None and bound_direction(None, None) is None
