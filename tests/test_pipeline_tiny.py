"""The whole pipeline through the CLI on a tiny random Llama in 4-bit (seconds): stage contract, run folder,
failure paths. The real embedded model runs in test_end_to_end.py."""

import json

import pytest
from typer.testing import CliRunner

from audited_ft.cli import app
from tests.tiny_model import tiny_config

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_cfg(tmp_path_factory):
    from tests.conftest import make_tiny_rows

    return tiny_config(tmp_path_factory.mktemp("tiny"), make_tiny_rows())


def test_run_then_each_stage_again(tiny_cfg, tmp_path):
    r = runner.invoke(app, ["run", str(tiny_cfg), "--out", str(tmp_path), "--run-id", "t"])
    assert r.exit_code == 0, r.output
    run = tmp_path / "t"
    m = json.loads((run / "manifest.json").read_text())
    assert m["status"] == "passed" and [s["status"] for s in m["stages"].values()] == ["done"] * 6
    assert m["eval"]["precision"].startswith("nf4+double_quant base dequantised")
    summary = json.loads((run / "train/summary.json").read_text())
    assert summary["steps"] == 3 and summary["quantization"] == "nf4+double_quant"
    first = json.loads((run / "eval/metrics.json").read_text())
    for stage in ("eval", "gate", "report"):
        r = runner.invoke(app, [stage, str(run)])
        assert r.exit_code == 0, (stage, r.output)
    again = json.loads((run / "eval/metrics.json").read_text())
    assert again == first, "greedy evaluation of the same adapter is deterministic"
    cache = json.loads((run / "manifest.json").read_text())["eval"]["cache"]
    assert cache["misses"] == 0 and cache["hits"] >= 2, "the re-run reads the stored answers"


def test_failed_gate_exits_1_and_still_reports(tiny_cfg, tmp_path):
    r = runner.invoke(app, ["run", str(tiny_cfg), "--out", str(tmp_path), "--run-id", "g",
                            "--set", "gates.0.min=1.5"])
    assert r.exit_code == 1, r.output
    assert "verdict:    FAILED (failed gate(s): rouge.rougeL.adapter)" in r.output
    run = tmp_path / "g"
    assert json.loads((run / "manifest.json").read_text())["status"] == "failed"
    assert (run / "report.html").is_file()


def test_blocking_audit_stops_before_training(tiny_cfg, tmp_path):
    # The test split duplicated into train: the leakage audit blocks and training never starts.
    data = tiny_cfg.parent / "data.jsonl"
    rows = [json.loads(line) for line in data.read_text().splitlines()]
    leaky = tmp_path / "leaky.jsonl"
    leaky.write_text("".join(json.dumps(r) + "\n" for r in rows + [dict(r, id=r["id"] + "-copy") for r in rows]))
    r = runner.invoke(app, ["run", str(tiny_cfg), "--out", str(tmp_path), "--run-id", "b",
                            "--set", f"data.source={leaky}"])
    assert r.exit_code == 1, r.output
    assert "blocking audit(s): leakage" in r.output
    run = tmp_path / "b"
    assert not (run / "train").exists()
    assert (run / "report.html").is_file()
    m = json.loads((run / "manifest.json").read_text())
    assert m["stages"]["train"]["status"] == "pending"
