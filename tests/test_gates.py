import pytest

from audited_ft.config import Gate, load_config
from audited_ft.errors import ConfigError
from audited_ft.gates import check_gates, evaluate_gate
from audited_ft.runfolder import RunFolder, read_json, write_json

METRICS = {"rouge.rougeL.delta": 0.10, "rouge.rougeL.delta.ci_low": -0.01, "rouge.rougeL.delta.ci_high": 0.2,
           "rouge.rougeL.adapter": 0.4}


@pytest.mark.parametrize("gate,passed", [
    (Gate(metric="rouge.rougeL.delta", min=0.0), True),
    (Gate(metric="rouge.rougeL.delta", min=0.0, statistic="ci_low"), False),
    (Gate(metric="rouge.rougeL.delta", max=0.15, statistic="ci_high"), False),
    (Gate(metric="rouge.rougeL.adapter", min=0.3, max=0.5), True),
    (Gate(metric="rouge.rougeL.adapter", min=0.4), True),      # bounds are inclusive
    (Gate(metric="rouge.rougeL.adapter", max=0.39), False),
])
def test_gate_arithmetic(gate, passed):
    r = evaluate_gate(gate, METRICS)
    assert r["passed"] is passed
    assert r["message"].startswith("PASS" if passed else "FAIL")


def _run(tmp_path, gates_yaml):
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text("data: {source: a.jsonl}\n" + gates_yaml)
    rf = RunFolder.create(tmp_path / "runs", "r1")
    write_json(rf / "eval/metrics.json", METRICS)
    return load_config(cfg_path), rf


def test_check_gates_writes_gates_json(tmp_path):
    cfg, rf = _run(tmp_path, "gates:\n  - {metric: rouge.rougeL.delta, min: 0}\n"
                             "  - {metric: rouge.rougeL.delta, statistic: ci_low, min: 0}\n")
    out = check_gates(cfg, rf)
    assert out["passed"] is False
    assert read_json(rf / "gates.json") == out
    assert [r["passed"] for r in out["results"]] == [True, False]


def test_unknown_metric_lists_valid_keys(tmp_path):
    cfg, rf = _run(tmp_path, "gates:\n  - {metric: rouge.rougel.delta, min: 0}\n")
    with pytest.raises(ConfigError) as exc:
        check_gates(cfg, rf)
    assert "Did you mean 'rouge.rougeL.delta'" in str(exc.value)
    assert "Valid metric keys" in str(exc.value)
