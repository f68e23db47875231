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
    assert [len(v) for v in rows.values()] == [128, 24, 40]
    assert all(r["id"].startswith("test_") and r["target"] for r in rows["test"])  # summary1 via fields_by_split
    pii = json.loads((run / "audits/pii.json").read_text())
    assert pii["summary"]["engine"] == "spacy"
    # DialogSum names fictional people: PERSON findings warn, and no finding carries the raw value.
    assert pii["status"] in ("warn", "pass")
    for f in pii["findings"]:
        assert f"<{f['entity']}>" in f["excerpt"]
