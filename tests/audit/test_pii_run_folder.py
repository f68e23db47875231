"""After a run on a PII-seeded dataset, no seeded value is anywhere: not in the run folder's files (audits, data,
logs, adapter, report), not in the console output. With the fail policy, training never starts and the findings show
masked values only. Real Presidio, real spaCy model, the real CLI on a tiny random Llama."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from audited_ft.cli import app
from tests.conftest import make_tiny_rows
from tests.tiny_model import tiny_config

pytest.importorskip("presidio_analyzer")

runner = CliRunner()

# Values Presidio finds with the default entities (Luhn-valid card, valid-range SSN, a phone libphonenumber accepts,
# IBAN with a valid checksum) — every one redacted by the default policy.
SEEDED = {"EMAIL_ADDRESS": "maria.lopez@example.org", "PHONE_NUMBER": "(212) 555-0187", "US_SSN": "536-22-8726",
          "CREDIT_CARD": "4111 1111 1111 1111", "IBAN_CODE": "GB82 WEST 1234 5698 7654 32",
          "IP_ADDRESS": "192.168.14.201"}
# Fragments that must not survive either (a value split across tokens or partly masked is still a leak).
FRAGMENTS = ["maria.lopez", "555-0187", "22-8726", "1111 1111 1111", "5698 7654", "192.168.14"]


def seeded_rows() -> list[dict]:
    rows = make_tiny_rows()
    carriers = [
        ("dialogue", "#Person1#: Write to {v} about the order."),
        ("dialogue", "#Person2#: My number is {v}, call me after six."),
        ("summary", "#Person1# gives the social security number {v}."),
        ("dialogue", "#Person1#: Charge the credit card {v}, please."),
        ("dialogue", "#Person2#: Transfer it to IBAN {v} today."),
        ("summary", "#Person2# reports the server at {v} is down."),
    ]
    for k, ((field, template), value) in enumerate(zip(carriers, SEEDED.values())):
        for i in (k, k + 7, k + 19, k + 31):  # spread over splits
            rows[i][field] += " " + template.format(v=value)
    return rows


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("piirun")
    cfg = tiny_config(tmp, make_tiny_rows())  # the tiny model's vocabulary is built from clean rows
    data = tmp / "seeded.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in seeded_rows()))
    return cfg, data


def _leaks(texts: dict[str, str]) -> list[str]:
    out = []
    for where, text in texts.items():
        for needle in list(SEEDED.values()) + FRAGMENTS:
            if needle in text:
                out.append(f"{where}: {needle!r}")
    return out


def _folder_texts(run: Path) -> dict[str, str]:
    files = [p for p in run.rglob("*") if p.is_file()]
    assert len(files) > 10
    return {str(p.relative_to(run)): p.read_bytes().decode("utf-8", errors="replace") for p in files}


def test_redacted_run_leaves_no_seeded_value_anywhere(setup, tmp_path):
    cfg, data = setup
    r = runner.invoke(app, ["run", str(cfg), "--out", str(tmp_path), "--run-id", "p",
                            "--set", f"data.source={data}", "--set", "audits.pii.enabled=true",
                            "--set", "audits.pii.workers=1"])
    run = tmp_path / "p"
    assert r.exit_code in (0, 1), r.output
    pii = json.loads((run / "audits/pii.json").read_text())
    # every seeded type was found and redacted before training
    assert set(SEEDED) <= set(pii["summary"]["redactions"]["train"]) | set(pii["summary"]["redactions"]["test"])
    assert pii["summary"]["redactions_applied"] >= 20
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["stages"]["train"]["status"] == "done" and (run / "report.html").is_file()
    train_rows = (run / "data/train.jsonl").read_text()
    assert "<EMAIL_ADDRESS>" in train_rows or "<EMAIL_ADDRESS>" in (run / "data/test.jsonl").read_text()
    leaks = _leaks({**_folder_texts(run), "console output": r.output})
    assert not leaks, leaks


def test_fail_policy_blocks_training_and_shows_masked_values_only(setup, tmp_path):
    cfg, data = setup
    r = runner.invoke(app, ["run", str(cfg), "--out", str(tmp_path), "--run-id", "f",
                            "--set", f"data.source={data}", "--set", "audits.pii.enabled=true",
                            "--set", "audits.pii.workers=1", "--set", "audits.pii.policy.CREDIT_CARD=fail"])
    assert r.exit_code == 1, r.output
    assert "blocking audit(s): pii" in r.output
    run = tmp_path / "f"
    assert not (run / "train").exists()
    pii = json.loads((run / "audits/pii.json").read_text())
    cards = [f for f in pii["findings"] if f["entity"] == "CREDIT_CARD"]
    assert cards and all(f["policy"] == "fail" and "<CREDIT_CARD>" in f["excerpt"] for f in cards)
    # the audit and report carry no value; the unredacted data the user handed in stays only in data/*.jsonl,
    # which training never read (the run stopped)
    texts = {k: v for k, v in _folder_texts(run).items() if not k.startswith("data/") or k == "data/stats.json"}
    leaks = _leaks({**texts, "console output": r.output})
    assert not leaks, leaks


def test_the_scan_would_see_a_leak(setup, tmp_path):
    """Control: with e-mail addresses only warned about (not redacted), the same scan finds them in the data the
    adapter was trained on — so the scan above can fail."""
    cfg, data = setup
    r = runner.invoke(app, ["run", str(cfg), "--out", str(tmp_path), "--run-id", "w",
                            "--set", f"data.source={data}", "--set", "audits.pii.enabled=true",
                            "--set", "audits.pii.workers=1", "--set", "audits.pii.policy.EMAIL_ADDRESS=warn",
                            "--set", "train.max_steps=1", "--set", "probes.rouge.limit=2"])
    assert r.exit_code in (0, 1), r.output
    leaks = _leaks(_folder_texts(tmp_path / "w"))
    assert leaks and all("maria.lopez" in item for item in leaks)
    assert any(item.startswith("data/") for item in leaks)


# Personal data the default recognizers do not find (no street-address or account-number recognizer), written right
# beside an e-mail address they do find: an excerpt of the e-mail finding would carry it if it showed the context.
# (Checked below: should a better recognizer find one of them, pick another value the audit misses.)
UNDETECTED = ["flat 9, 22 mill lane", "QZ-88213-TK"]


def _split_files(tmp: Path) -> dict[str, Path]:
    rows = make_tiny_rows()
    for i in range(0, 24, 4):  # training rows only: the test split is shown in the report as the data it is
        rows[i]["dialogue"] += (f" #Person1#: Write to {SEEDED['EMAIL_ADDRESS']} at {UNDETECTED[0]}, "
                                f"account {UNDETECTED[1]}.")
    parts = {"train": rows[:24], "validation": rows[24:32], "test": rows[32:]}
    files = {}
    for split, part in parts.items():
        files[split] = tmp / f"{split}.jsonl"
        files[split].write_text("".join(json.dumps(r) + "\n" for r in part))
    return files


def _run_with_undetected(setup, tmp_path: Path, context: str):
    import os
    import subprocess
    import sys

    cfg, _ = setup
    files = _split_files(tmp_path)
    sets = ["data.source=null", *(f"data.{s}={p}" for s, p in files.items()), "audits.pii.enabled=true",
            "audits.pii.workers=1", "audits.pii.policy.EMAIL_ADDRESS=warn", f"audits.pii.excerpt_context={context}"]
    args = [sys.executable, "-m", "audited_ft", "run", str(cfg), "--out", str(tmp_path / "runs"), "--run-id", "u"]
    for s in sets:
        args += ["--set", s]
    env = {**os.environ, "AFT_DEBUG": "1"}  # debug-level log lines too
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode in (0, 1), done.stdout + done.stderr
    return tmp_path / "runs" / "u", done.stdout + done.stderr


def _holding(texts: dict[str, str]) -> set[str]:
    return {where for where, text in texts.items() if any(v in text for v in UNDETECTED)}


def test_undetected_personal_data_beside_a_finding_is_in_no_artefact_log_or_terminal_line(setup, tmp_path):
    run, terminal = _run_with_undetected(setup, tmp_path, "shape")
    pii = json.loads((run / "audits/pii.json").read_text())
    emails = [f for f in pii["findings"] if f["entity"] == "EMAIL_ADDRESS"]
    assert len(emails) == 6  # the detectable neighbour was found in every planted row ...
    train = [json.loads(line) for line in (run / "data/train.jsonl").read_text().splitlines()]
    for f in pii["findings"]:  # ... and the planted values were not (else this test proves nothing)
        row = next(r for r in train if r["id"] == f["row_id"]) if f["split"] == "train" else None
        text = (row or {}).get("input" if f["field"] == "input" else "target", "")
        for value in UNDETECTED:
            at = text.find(value)
            assert at < 0 or f["end"] <= at or f["start"] >= at + len(value), \
                f"the audit now finds {value!r} ({f['entity']}): plant a value it misses"
    assert any("9" in f["excerpt"] and "x" in f["excerpt"] for f in emails)  # the context is there, as a shape
    holders = _holding({**_folder_texts(run), "terminal and log": terminal})
    # the training data itself (as handed in) is the only place: nothing derived from it repeats the value
    assert holders == {"data/train.jsonl"}, holders


def test_the_same_scan_sees_undetected_data_when_excerpts_show_text(setup, tmp_path):
    """Control: with excerpt_context 'text' (the opt-in that says it publishes what the detector missed), the scan
    finds the planted values in pii.json and the report — so the test above can fail."""
    run, _ = _run_with_undetected(setup, tmp_path, "text")
    holders = _holding(_folder_texts(run))
    assert {"audits/pii.json", "report.html", "data/train.jsonl"} <= holders, holders
