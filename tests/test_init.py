"""`audited-ft init` through the CLI: fields detected from a user's CSV and JSONL with unusual names, a config that
validates, values shown only as shapes, clear refusals; and init → run on a new user's CSV (tiny model)."""

import csv
import json
import random

import pytest
import yaml
from typer.testing import CliRunner

from audited_ft.cli import app

runner = CliRunner()
WORDS = "hello there we need to talk about the meeting tomorrow at noon please send notes".split()


def _rows(n: int = 60, seed: int = 1) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for k in range(n):
        chat = " ".join(rng.choice(WORDS) for _ in range(40))
        out.append({"Ticket-Key": f"T{k:04d}", "Customer Chat Log": chat,
                    "Agent Notes (short)": " ".join(chat.split()[:8]), "priority": rng.choice(["low", "high"])})
    out[0]["Customer Chat Log"] += " reach me at jane.roe@example.com"
    return out


def _csv(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def test_init_on_a_csv_with_unusual_field_names_writes_a_config_that_validates(tmp_path):
    data = _csv(tmp_path / "tickets.csv", _rows())
    out = tmp_path / "cfg" / "tickets.yaml"
    r = runner.invoke(app, ["init", "--data", str(data), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "validated" in r.output and f"written: {out}" in r.output
    cfg = yaml.safe_load(out.read_text())
    assert cfg["data"]["input_field"] == "Customer Chat Log"
    assert cfg["data"]["target_field"] == "Agent Notes (short)"
    assert cfg["data"]["id_field"] == "Ticket-Key"
    assert cfg["data"]["source"] == str(data)  # outside the config's folder: absolute
    assert "a guess, check it" in out.read_text()  # no telling names: the config says the fields were guessed
    assert "jane.roe@example.com" not in r.output and "hello" not in r.output  # shapes only, never values
    assert "xxxxx xxxxx" in r.output
    r = runner.invoke(app, ["validate", str(out)])
    assert r.exit_code == 0, r.output


def test_init_on_a_jsonl_finds_fields_by_name_and_takes_the_gpu_preset(tmp_path):
    rows = [{"uid": f"u{k}", "Source Document": r["Customer Chat Log"], "model-response": r["Agent Notes (short)"],
             "meta": {"lang": "en"}} for k, r in enumerate(_rows(seed=2))]
    data = tmp_path / "weird names.jsonl"
    data.write_text("".join(json.dumps(x) + "\n" for x in rows), encoding="utf-8")
    out = tmp_path / "w.yaml"
    r = runner.invoke(app, ["init", "--data", str(data), "--out", str(out), "--preset", "gpu", "--name", "w"])
    assert r.exit_code == 0, r.output
    cfg = yaml.safe_load(out.read_text())
    assert (cfg["data"]["input_field"], cfg["data"]["target_field"], cfg["data"]["id_field"]) == (
        "Source Document", "model-response", "uid")
    assert cfg["data"]["source"] == "weird names.jsonl"  # beside the config: relative to it
    assert cfg["train"]["device"] == "cuda" and cfg["verdict"]["inconclusive"] == "fail"
    assert "max_rows" not in cfg["data"] and cfg["probes"]["bbq"] == {}


def test_init_refuses_clearly(tmp_path):
    numbers = tmp_path / "numbers.jsonl"
    numbers.write_text("".join(json.dumps({"a": k, "b": k * 2}) + "\n" for k in range(20)), encoding="utf-8")
    out = tmp_path / "n.yaml"
    r = runner.invoke(app, ["init", "--data", str(numbers), "--out", str(out)])
    assert r.exit_code == 2 and "cannot tell which field is the input" in r.output and "--input FIELD" in r.output
    assert not out.exists(), "nothing written on a refusal"
    data = _csv(tmp_path / "t.csv", _rows())
    r = runner.invoke(app, ["init", "--data", str(data), "--out", str(out), "--target", "Nope"])
    assert r.exit_code == 2 and "--target 'Nope': no such field" in r.output
    r = runner.invoke(app, ["init", "--data", str(tmp_path / "missing.csv"), "--out", str(out)])
    assert r.exit_code == 2 and "data file not found" in r.output
    out.write_text("keep me")
    r = runner.invoke(app, ["init", "--data", str(data), "--out", str(out)])
    assert r.exit_code == 2 and "exists already" in r.output and out.read_text() == "keep me"
    r = runner.invoke(app, ["init", "--data", str(data), "--out", str(out), "--force", "--preset", "tpu"])
    assert r.exit_code == 2 and "--preset 'tpu'" in r.output and out.read_text() == "keep me"


@pytest.mark.slow
def test_init_then_run_on_a_new_users_csv(tmp_path):
    """The new user's path end to end: init on their CSV, then run — on the tiny model, a few items per probe."""
    from tests.tiny_model import build_tiny_llama

    rows = _rows(80)
    rows[0]["Customer Chat Log"] = rows[0]["Customer Chat Log"].replace(" reach me at jane.roe@example.com", "")
    data = _csv(tmp_path / "tickets.csv", rows)
    model = build_tiny_llama(tmp_path / "tiny", [r["Customer Chat Log"] for r in rows])
    out = tmp_path / "tickets.yaml"
    r = runner.invoke(app, ["init", "--data", str(data), "--out", str(out), "--model", str(model)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["run", str(out), "--out", str(tmp_path / "runs"), "--run-id", "t", "--limit", "4",
                            "--set", "model.use_chat_template=false", "--set", "train.max_steps=2"])
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "runs/t/manifest.json").read_text())
    assert [s["status"] for s in m["stages"].values()] == ["done"] * 6
    assert (tmp_path / "runs/t/report.html").is_file()
