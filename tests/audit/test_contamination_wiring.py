"""The audit stage hands the leakage audit the evaluation sets of every enabled probe: training rows that contain a
probe item fail the run before training, and the report's source of each set is recorded."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from audited_ft.cli import app
from audited_ft.eval.sets import load_probe_set
from tests.conftest import make_tiny_rows
from tests.tiny_model import tiny_config

runner = CliRunner()


def test_probe_sets_of_enabled_probes_are_checked(tmp_path):
    cfg = tiny_config(tmp_path, make_tiny_rows())
    item = load_probe_set("crows_pairs", "embedded", None).items[3]
    rows = make_tiny_rows()
    for row in rows[:10]:                                    # a probe sentence inside rows, some of them in train
        row["dialogue"] += " " + item["sent_more"]
    data = tmp_path / "contaminated.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    common = ["--out", str(tmp_path / "runs"), "--set", f"data.source={data}"]
    # without the probe enabled, nothing to compare against: contamination is reported as not checked
    r = runner.invoke(app, ["audit", str(cfg), "--run-id", "off", *common])
    leak = json.loads((tmp_path / "runs/off/audits/leakage.json").read_text())["summary"]["contamination"]
    assert "not checked" in leak.get("warning", ""), r.output
    # with crows_pairs enabled, its embedded set is loaded and the planted sentence blocks training
    r = runner.invoke(app, ["audit", str(cfg), "--run-id", "on", *common, "--set", "probes.crows_pairs.limit=10"])
    assert r.exit_code == 1 and "blocking audit(s): leakage" in r.output, r.output
    leak = json.loads((tmp_path / "runs/on/audits/leakage.json").read_text())["summary"]
    sets = leak["contamination"]["sets"]
    assert sets["crows_pairs"]["contaminated"] >= 1 and sets["crows_pairs"]["source"] == "embedded"
    assert sets["crows_pairs"]["probe"] == "crows_pairs" and sets["crows_pairs"]["probes"] >= 72  # whole set, no limit
    assert leak["failed_on"] == ["contamination"]
