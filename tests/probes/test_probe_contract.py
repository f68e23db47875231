"""Every registered probe runs on a fake model and returns well-formed, paired metrics (contract test)."""

import math

import pytest

from audited_ft.probes import PROBES, ProbeContext
from audited_ft.registry import describe
from tests.fakes import FakeModel


@pytest.fixture
def splits():
    rows = [{"id": f"t{i}", "input": f"dialogue {i}", "target": f"person {i} books a table for {i} people"}
            for i in range(30)]
    return {"train": rows[:10], "validation": rows[10:15], "test": rows[15:]}


@pytest.mark.parametrize("name", PROBES.names())
def test_probe_contract(name, splits):
    probe = PROBES.get(name)(PROBES.get(name).Options())
    doc = describe(PROBES.get(name))
    assert doc["description"] and doc["limitations"], "probes document what they measure and their blind spots"
    out = probe.run(ProbeContext(model=FakeModel(splits["test"]), splits=splits, bootstrap_samples=200))
    assert out.metrics
    for key, value in out.metrics.items():
        assert key.startswith(f"{PROBES.get(name).prefix()}."), key
        assert isinstance(value, (int, float)) and math.isfinite(value), key
    deltas = [k for k in out.metrics if k.endswith(".delta")]
    assert deltas
    for k in deltas:
        assert out.metrics[f"{k}.ci_low"] <= out.metrics[k] <= out.metrics[f"{k}.ci_high"]


def test_rouge_sees_the_improvement(splits):
    probe = PROBES.get("rouge")(PROBES.get("rouge").Options())
    out = probe.run(ProbeContext(model=FakeModel(splits["test"]), splits=splits, bootstrap_samples=200))
    m = out.metrics
    assert m["rouge.rougeL.adapter"] == pytest.approx(1.0)
    assert m["rouge.rougeL.base"] == pytest.approx(0.0)
    assert m["rouge.rougeL.delta.ci_low"] > 0.9
    assert {g["id"] for g in out.generations["adapter"]} == {r["id"] for r in splits["test"]}


def test_eval_limit_caps_every_probe_with_an_item_option():
    from audited_ft.evaluate import _limited

    rouge = PROBES.get("rouge").Options(max_items=50)
    assert _limited(rouge, 10).max_items == 10 and _limited(rouge, 100).max_items == 50
    assert _limited(PROBES.get("rouge").Options(), 7).max_items == 7
    crows = PROBES.get("crows_pairs").Options()
    assert _limited(crows, 12).limit == 12 and _limited(crows, None) is crows


class _ThreeVariants(FakeModel):
    """Base, the run's adapter, and a second adapter ("other") that answers like the base."""

    variants = ("base", "adapter", "other")


@pytest.mark.parametrize("name", PROBES.names())
def test_probe_reports_every_adapter_against_the_base(name, splits):
    """Several adapters evaluated in one run (one loaded base): each non-base variant gets its own keys, the run's
    adapter keeps the plain ones, and no key is written twice with different meanings."""
    probe = PROBES.get(name)(PROBES.get(name).Options())
    out = probe.run(ProbeContext(model=_ThreeVariants(splits["test"]), splits=splits, bootstrap_samples=200))
    plain = {k for k in out.metrics if k.endswith(".delta")}
    other = {k for k in plain if ".other." in k}
    assert other, "the second adapter has its own metric keys"
    assert {k.replace(".other.", ".") for k in other} <= plain, "each adapter metric has the run adapter's twin"
