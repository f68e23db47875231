"""The shipped DialogSum config against the real data set in the data directory (../shared/data or $AFT_DATA_DIR)."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from audited_ft.cli import app

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.realdata
def test_dialogsum_config_prepares_and_audits(tmp_path):
    r = CliRunner().invoke(app, ["audit", str(REPO / "configs/dialogsum_smollm2.yaml"), "--out", str(tmp_path),
                                 "--run-id", "ds"])
    assert r.exit_code == 0, r.output
    run = tmp_path / "ds"
    stats = json.loads((run / "data/stats.json").read_text())
    assert stats["cleaning"]["train"]["rows_in"] == 12460           # the official train size
    assert stats["cleaning"]["test"]["rows_in"] == 500
    rows = {s: [json.loads(x) for x in (run / f"data/{s}.jsonl").read_text().splitlines()]
            for s in ("train", "validation", "test")}
    assert [len(v) for v in rows.values()] == [1000, 48, 200]  # the config's max_rows
    assert all(r["id"].startswith("test_") and r["target"] for r in rows["test"])  # summary1 via fields_by_split
    assert all(len(r["references"]) == 3 and r["references"][0] == r["target"] for r in rows["test"])  # + 2, 3
    pii = json.loads((run / "audits/pii.json").read_text())
    assert pii["summary"]["engine"] == "spacy"
    # DialogSum names fictional people: PERSON findings warn, and no finding carries the raw value.
    assert pii["status"] in ("warn", "pass")
    for f in pii["findings"]:
        assert f"<{f['entity']}>" in f["excerpt"]


@pytest.mark.realdata
def test_full_dialogsum_leakage_found_and_dropped(tmp_path):
    """All of DialogSum (no row caps): dialogues of validation/test that also occur in train are found, and the drop
    policy removes the train copies while the evaluation splits stay as they were."""
    full = ["--set", "audits.pii.enabled=false", "--set", "data.max_rows.train=null",
            "--set", "data.max_rows.validation=null", "--set", "data.max_rows.test=null"]
    cfg = str(REPO / "configs/dialogsum_smollm2.yaml")
    fail = ["--set", "audits.leakage.policy.exact_cross_split=fail",  # the default policy; the shipped config drops
            "--set", "audits.leakage.policy.near_duplicate_cross_split=fail"]
    r = CliRunner().invoke(app, ["audit", cfg, "--out", str(tmp_path), "--run-id", "fail", *full, *fail])
    assert r.exit_code == 1 and "blocking audit(s): leakage" in r.output, r.output
    leak = json.loads((tmp_path / "fail/audits/leakage.json").read_text())["summary"]
    assert leak["exact_cross_split"]["train~validation"]["input"] >= 30
    assert leak["near_duplicate_cross_split"]["train~validation"]["input"] >= 30
    assert leak["failed_on"] == ["exact_cross_split", "near_duplicate_cross_split"]
    profile = json.loads((tmp_path / "fail/audits/profile.json").read_text())["summary"]
    assert profile["unit"] == "tokens" and profile["splits"]["train"]["rows"] > 11_000
    assert 150 < profile["splits"]["train"]["sequence"]["p50"] < 400

    drop = ["--set", "audits.leakage.policy.exact_cross_split=drop",
            "--set", "audits.leakage.policy.near_duplicate_cross_split=drop"]
    r = CliRunner().invoke(app, ["audit", cfg, "--out", str(tmp_path), "--run-id", "drop", *full, *drop])
    assert r.exit_code == 0, r.output
    dropped = json.loads((tmp_path / "drop/audits/leakage.json").read_text())["summary"]["dropped"]
    assert dropped["rows"] >= 35 and dropped["train_rows_after"] == dropped["train_rows_before"] - dropped["rows"]
    for split in ("validation", "test"):
        assert (tmp_path / f"drop/data/{split}.jsonl").read_text() == (tmp_path / f"fail/data/{split}.jsonl").read_text()
    train = (tmp_path / "drop/data/train.jsonl").read_text().splitlines()
    assert len(train) == dropped["train_rows_after"]
