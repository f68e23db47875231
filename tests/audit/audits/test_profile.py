"""The profile audit: token lengths with the run's own tokenizer and prompt, truncation, cleaning counts."""

from __future__ import annotations

import json

from audited_ft.audit.audits import AUDITS, AuditContext
from audited_ft.pipeline import load_config
from tests.conftest import make_tiny_rows
from tests.tiny_model import tiny_config


def _splits():
    rows = [{"id": r["id"], "input": r["dialogue"], "target": r["summary"]} for r in make_tiny_rows()]
    return {"train": rows[:30], "test": rows[30:]}


def test_words_without_a_run_config():
    result = AUDITS.get("profile")(AUDITS.get("profile").Options()).run(AuditContext(splits=_splits())).result
    s = result["summary"]
    assert s["unit"] == "words" and result["status"] == "warn"  # not the real tokenizer: said, not hidden
    assert any("whitespace words" in w for w in s["warnings"])
    train = s["splits"]["train"]
    assert train["rows"] == 30 and sum(train["input"]["histogram"]["counts"]) == 30
    first = _splits()["train"][0]
    assert train["input"]["min"] <= len(first["input"].split()) <= train["input"]["max"]


def test_tokens_truncation_and_policy(tmp_path):
    cfg = load_config(tiny_config(tmp_path, make_tiny_rows()))
    splits = _splits()
    audit = AUDITS.get("profile")
    ctx = AuditContext(splits=splits, config=cfg, run_dir=tmp_path)
    result = audit(audit.Options()).run(ctx).result
    s = result["summary"]
    assert s["unit"] == "tokens" and s["max_length"] == 128 and result["status"] == "pass"
    # the tiny word-level tokenizer: one token per word or punctuation mark
    assert s["splits"]["train"]["target"]["max"] > max(len(r["target"].split()) for r in splits["train"])
    seq = s["splits"]["train"]["sequence"]
    assert seq["min"] > s["splits"]["train"]["input"]["min"] + s["splits"]["train"]["target"]["min"] - 1
    # a max_length below the longest sequence: rows over it are named, and the policy applies
    cfg.train.max_length = seq["p50"]
    result = audit(audit.Options(over_length="fail")).run(ctx).result
    over = result["summary"]["splits"]["train"]["over_max_length"]
    assert result["status"] == "fail" and result["blocking"] is True
    assert 0 < over["count"] < 30 and len(result["findings"]) >= over["count"]
    assert audit(audit.Options(max_over_length_percent=100)).run(ctx).result["status"] == "pass"
    # cleaning counts come from the data stage's stats file
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "stats.json").write_text(json.dumps({"cleaning": {"all": {"rows_in": 41, "rows_out": 40,
                                                                                    "dropped": {"empty": 1}}}}))
    assert audit(audit.Options()).run(ctx).result["summary"]["cleaning"]["all"]["dropped"] == {"empty": 1}
