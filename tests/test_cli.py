"""The CLI through typer's CliRunner: exit codes and messages, no model needed."""

import json
from pathlib import Path

from typer.testing import CliRunner

from audited_ft.cli import app
from tests.conftest import write_jsonl

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


def test_help_and_ls():
    r = runner.invoke(app, ["--help"])
    assert r.exit_code == 0 and "validate" in r.output
    r = runner.invoke(app, ["ls"])
    assert r.exit_code == 0
    assert "rouge" in r.output and "audits:" in r.output and "probes:" in r.output


def test_validate_ok_and_errors(tmp_path):
    r = runner.invoke(app, ["validate", str(REPO / "configs/default.yaml")])
    assert r.exit_code == 0, r.output
    assert "OK" in r.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: {source: a.jsonl}\ntrain: {epohcs: 2}\n")
    r = runner.invoke(app, ["validate", str(bad)])
    assert r.exit_code == 2
    assert "train.epohcs: unknown key. Did you mean 'epochs'?" in r.output
    assert "Traceback" not in r.output


def test_usage_error_exit_code():
    r = runner.invoke(app, ["validate"])
    assert r.exit_code == 2


def test_stage_on_missing_run_folder(tmp_path):
    r = runner.invoke(app, ["report", str(tmp_path / "nope")])
    assert r.exit_code == 2
    assert "not a run folder" in r.output


def test_bad_data_field_is_exit_2_and_manifest_says_where(tmp_path, tiny_rows):
    data = write_jsonl(tmp_path / "d.jsonl", tiny_rows)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data: {{source: {data}, target_field: sumary}}\naudits: {{}}\n")
    r = runner.invoke(app, ["audit", str(cfg), "--out", str(tmp_path / "runs"), "--run-id", "r"])
    assert r.exit_code == 2, r.output
    assert "data.target_field = 'sumary'" in r.output and "Did you mean 'summary'" in r.output
    m = json.loads((tmp_path / "runs/r/manifest.json").read_text())
    assert m["status"] == "error" and m["failed_stage"] == "data"
    assert not (tmp_path / "runs/r/data/train.jsonl").exists()


def test_gate_command_exit_codes_agree_with_verdict(tmp_path, tiny_rows):
    data = write_jsonl(tmp_path / "d.jsonl", tiny_rows)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data: {{source: {data}}}\naudits: {{}}\n"
                   "gates:\n  - {metric: rouge.rougeL.delta, statistic: ci_low, min: 0.0}\n")
    r = runner.invoke(app, ["audit", str(cfg), "--out", str(tmp_path / "runs"), "--run-id", "r"])
    assert r.exit_code == 0, r.output
    run = tmp_path / "runs/r"
    metrics = {"rouge.rougeL.delta": 0.1, "rouge.rougeL.delta.ci_low": 0.02}
    (run / "eval").mkdir()
    (run / "eval/metrics.json").write_text(json.dumps(metrics))
    r = runner.invoke(app, ["gate", str(run)])
    # the gate passed, but train and eval never ran and the leakage audit warned: the same word as the report's
    assert r.exit_code == 0 and "verdict: NEEDS REVIEW" in r.output, r.output
    stored = json.loads((run / "gates.json").read_text())["verdict"]
    assert stored["word"] == "NEEDS REVIEW" and any("stage 'train' is pending" in x for x in stored["reviews"])
    metrics["rouge.rougeL.delta.ci_low"] = -0.01
    (run / "eval/metrics.json").write_text(json.dumps(metrics))
    r = runner.invoke(app, ["gate", str(run)])
    assert r.exit_code == 1 and "verdict: FAIL" in r.output
    assert json.loads((run / "gates.json").read_text())["passed"] is False
    assert json.loads((run / "manifest.json").read_text())["status"] == "failed"
    # a typo in a gates file, or a baseline that is no run: exit 2, the run folder (its verdict) left as it was
    before = {f: (run / f).read_bytes() for f in ("manifest.json", "gates.json", "gates.md")}
    bad = tmp_path / "bad_gates.yaml"
    bad.write_text("gates:\n  - {metric: rouge.rougel.delta, min: 0}\n")
    r = runner.invoke(app, ["gate", str(run), "--gates", str(bad)])
    assert r.exit_code == 2 and "Did you mean 'rouge.rougeL.delta'" in r.output
    r = runner.invoke(app, ["gate", str(run), "--baseline", str(tmp_path)])
    assert r.exit_code == 2 and "not a finished run folder" in r.output
    assert {f: (run / f).read_bytes() for f in before} == before


def test_train_refuses_without_audits(tmp_path, tiny_rows):
    data = write_jsonl(tmp_path / "d.jsonl", tiny_rows)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data: {{source: {data}}}\naudits: {{}}\n")
    runner.invoke(app, ["audit", str(cfg), "--out", str(tmp_path / "runs"), "--run-id", "r"])
    (tmp_path / "runs/r/audits/summary.json").unlink()
    r = runner.invoke(app, ["train", str(tmp_path / "runs/r")])
    assert r.exit_code == 2 and "training is gated on them" in r.output


def test_accept_risk_lets_a_person_proceed_and_is_recorded(tmp_path, tiny_rows):
    leaky = tiny_rows + [dict(r, id=r["id"] + "-copy") for r in tiny_rows]  # every row twice: cross-split leakage
    data = write_jsonl(tmp_path / "d.jsonl", leaky)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data: {{source: {data}}}\naudits: {{pii: {{enabled: false}}}}\n")
    out = str(tmp_path / "runs")
    r = runner.invoke(app, ["audit", str(cfg), "--out", out, "--run-id", "blocked"])
    assert r.exit_code == 1 and "blocking audit(s): leakage" in r.output
    r = runner.invoke(app, ["audit", str(cfg), "--out", out, "--run-id", "nobody", "--accept-risk", "leakage:known"])
    assert r.exit_code == 2 and "--accepted-by" in r.output
    r = runner.invoke(app, ["audit", str(cfg), "--out", out, "--run-id", "lekage", "--accept-risk", "lekage:x",
                            "--accepted-by", "A. Reviewer"])
    assert r.exit_code == 2 and "Did you mean 'leakage'" in r.output
    r = runner.invoke(app, ["audit", str(cfg), "--out", out, "--run-id", "ok", "--accept-risk",
                            "leakage:duplicates are paraphrase pairs by design", "--accepted-by", "A. Reviewer"])
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "runs/ok/manifest.json").read_text())
    assert m["accepted_risks"][0]["audit"] == "leakage" and m["accepted_risks"][0]["by"] == "A. Reviewer"
    assert "duplicates are paraphrase pairs by design" in (tmp_path / "runs/ok/config.resolved.yaml").read_text()


def test_run_limit_is_recorded_as_eval_limit(tmp_path, tiny_rows):
    import yaml

    data = write_jsonl(tmp_path / "d.jsonl", tiny_rows)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data: {{source: {data}, target_field: sumary}}\n")  # stops at the data stage: no model needed
    r = runner.invoke(app, ["run", str(cfg), "--limit", "3", "--out", str(tmp_path / "runs"), "--run-id", "r"])
    assert r.exit_code == 2, r.output
    assert yaml.safe_load((tmp_path / "runs/r/config.resolved.yaml").read_text())["eval"]["limit"] == 3
    r = runner.invoke(app, ["run", str(cfg), "--limit", "0"])
    assert r.exit_code == 2 and "Traceback" not in r.output
