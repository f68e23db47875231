"""Every registered probe runs on a fake model and returns well-formed, paired metrics (contract test)."""

import math

import pytest

from audited_ft.eval.findings import split_notes
from audited_ft.eval.probes import PROBES, ProbeContext, declared_metric
from audited_ft.eval.stats import IntervalSettings
from audited_ft.eval.stats import METHODS
from audited_ft.registry import describe
from audited_ft.run.keys import MetricKey
from tests.fakes import FakeModel


NAMES = ("Marianne Okafor", "Tobias Lindqvist", "Helena Brackwater", "Joseph Amundsen", "Clara Vettergren")


@pytest.fixture
def splits():
    rows = [{"id": f"t{i}", "input": f"dialogue {i}",
             "target": f"person {i} books a table for {i} people, says {NAMES[i % len(NAMES)]}"} for i in range(30)]
    return {"train": rows[:10], "validation": rows[10:15], "test": rows[15:]}


@pytest.fixture
def run_dir(tmp_path):
    """What a probe may read from a run folder: the PII audit's result and the resolved config."""
    (tmp_path / "audits").mkdir()
    (tmp_path / "audits/pii.json").write_text('{"name": "pii", "status": "warn"}')
    (tmp_path / "config.resolved.yaml").write_text("audits: {pii: {workers: 1}}\n")
    return tmp_path


@pytest.mark.parametrize("name", PROBES.names())
def test_probe_contract(name, splits, run_dir):
    probe = PROBES.get(name)(PROBES.get(name).Options())
    doc = describe(PROBES.get(name))
    assert doc["description"] and doc["limitations"], "probes document what they measure and their blind spots"
    out = probe.run(ProbeContext(model=FakeModel(splits["test"]), splits=splits,
                                 stats=IntervalSettings(bootstrap_samples=200),
                                 run_dir=run_dir))
    assert out.metrics
    numbers, notes = split_notes(out.metrics)
    for key, value in numbers.items():
        assert key.startswith(f"{PROBES.get(name).prefix()}."), key
        if value is None:  # only an interval end, a test or a power figure may be absent: "not estimable"
            assert MetricKey.parse(key).stat is not None, key
            assert notes.get(MetricKey.parse(key).stem, {}).get("not_estimable"), f"{key} is None without a reason"
        else:
            assert isinstance(value, (int, float)) and math.isfinite(value), key
    for stem, note in notes.items():  # every interval names its method
        assert note.get("method") in METHODS, (stem, note)
    for key, value in numbers.items():  # every number is declared by the probe, and within its declared range
        parsed = MetricKey.parse(key)
        spec = declared_metric(parsed.stem)
        assert spec is not None, f"{key}: no entry of {name}'s `metrics` declares it"
        low, high = spec.range
        if parsed.side in ("base", "adapter") and parsed.stat is None:
            assert (low is None or value >= low - 1e-9) and (high is None or value <= high + 1e-9), (key, value)
    deltas = [k for k in numbers if k.endswith(".delta")]
    assert deltas
    for k in deltas:
        if numbers[f"{k}.ci_low"] is not None:
            assert numbers[f"{k}.ci_low"] <= numbers[k] <= numbers[f"{k}.ci_high"]


def test_rouge_sees_the_improvement(splits):
    probe = PROBES.get("rouge")(PROBES.get("rouge").Options())
    out = probe.run(ProbeContext(model=FakeModel(splits["test"]), splits=splits,
                                 stats=IntervalSettings(bootstrap_samples=200)))
    m = out.metrics
    assert m["rouge.rougeL.adapter"] == pytest.approx(1.0)
    assert m["rouge.rougeL.base"] == pytest.approx(0.0)
    assert m["rouge.rougeL.delta.ci_low"] > 0.9
    assert {g["id"] for g in out.generations["adapter"]} == {r["id"] for r in splits["test"]}


def test_eval_limit_caps_every_probe_with_an_item_option():
    from audited_ft.eval.stage import _limited

    rouge = PROBES.get("rouge").Options(limit=50)
    assert _limited(rouge, 10).limit == 10 and _limited(rouge, 100).limit == 50
    assert _limited(PROBES.get("rouge").Options(), 7).limit == 7
    crows = PROBES.get("crows_pairs").Options()
    assert _limited(crows, 12).limit == 12 and _limited(crows, None) is crows


class _ThreeVariants(FakeModel):
    """Base, the run's adapter, and a second adapter ("other") that answers like the base."""

    variants = ("base", "adapter", "other")


@pytest.mark.parametrize("name", PROBES.names())
def test_probe_reports_every_adapter_against_the_base(name, splits, run_dir):
    """Several adapters evaluated in one run (one loaded base): each non-base variant gets its own keys, the run's
    adapter keeps the plain ones, and no key is written twice with different meanings."""
    probe = PROBES.get(name)(PROBES.get(name).Options())
    out = probe.run(ProbeContext(model=_ThreeVariants(splits["test"]), splits=splits,
                                 stats=IntervalSettings(bootstrap_samples=200),
                                 run_dir=run_dir))
    plain = {k for k in out.metrics if k.endswith(".delta")}
    other = {k for k in plain if ".other." in k}
    assert other, "the second adapter has its own metric keys"
    assert {k.replace(".other.", ".") for k in other} <= plain, "each adapter metric has the run adapter's twin"


def test_every_item_cap_is_called_limit_and_old_names_are_accepted_with_a_message(caplog):
    """One name for the item cap of every probe; the names used before (max_items, n) still load, say they are
    deprecated, and land on ``limit``; giving both is an error."""
    import logging

    import pydantic

    from audited_ft.eval.probes import _base

    capped = [name for name, cls in PROBES.items().items() if "limit" in cls.Options.model_fields]
    assert {"rouge", "overfitting", "memorisation", "explain", "crows_pairs", "bbq", "bold", "toxicity",
            "refusal"} <= set(capped)
    assert not [name for name, cls in PROBES.items().items()
                if {"max_items", "n"} & set(cls.Options.model_fields)]
    _base._WARNED.clear()
    with caplog.at_level(logging.WARNING):
        assert PROBES.get("overfitting").Options(max_items=7).limit == 7
        assert PROBES.get("memorisation").Options(n=5).limit == 5
    assert "'max_items' is deprecated: it is now called 'limit'" in caplog.text
    assert "'n' is deprecated" in caplog.text
    with pytest.raises(pydantic.ValidationError, match="old name of 'limit'"):
        PROBES.get("explain").Options(n=3, limit=4)
