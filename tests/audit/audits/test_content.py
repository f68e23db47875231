"""The content audit: harmful training text flagged before training, by the same classifier the probes use."""

import pytest

from audited_ft.audit.audits import AUDITS, AuditContext
from audited_ft.audit.audits.content import mask

INSULTS = ["You are a stupid idiot.", "Shut up, you pathetic loser.", "What a dumb, worthless moron you are."]
BENIGN = ["Thank you for the lovely dinner.", "The train leaves at nine tomorrow morning.",
          "She planted tomatoes in the garden this spring."]


def _rows(targets: list[str]) -> list[dict]:
    return [{"id": f"r{i}", "input": "#Person1#: Please summarise this.", "target": t} for i, t in enumerate(targets)]


def _run(rows, **options):
    cls = AUDITS.get("content")
    return cls(cls.Options(**options)).run(AuditContext(splits={"train": rows, "test": _rows(BENIGN)}))


def test_harmful_targets_block_training_with_rates_and_masked_rows():
    out = _run(_rows(BENIGN * 10 + INSULTS))  # 3 insults in 33 rows: 9%, above the default 5%
    r = out.result
    assert r["status"] == "fail" and r["blocking"] is True
    train = r["summary"]["splits"]["train"]
    assert train["flagged_rows"] == 3 and train["rows"] == 33
    share = train["flagged_share"]
    assert share["value"] == pytest.approx(3 / 33) and share["ci_low"] < 3 / 33 < share["ci_high"]
    assert train["fields"]["target"]["insult"]["flagged"] >= 1
    assert {f["row_id"] for f in r["findings"]} == {"r30", "r31", "r32"}
    assert all("stupid" not in f["excerpt"] and "idiot" not in f["excerpt"] for f in r["findings"])
    assert out.splits is None  # fail does not change the data


def test_policies_warn_and_drop():
    rows = _rows(BENIGN * 10 + INSULTS)
    assert _run(rows, policy="warn").result["status"] == "warn"
    assert _run(rows, max_share=0.2).result["status"] == "warn"  # under the share the fail policy tolerates
    dropped = _run(rows, policy="drop")
    assert dropped.result["status"] == "warn" and dropped.result["blocking"] is False
    assert [r["id"] for r in dropped.splits["train"]] == [f"r{i}" for i in range(30)]
    assert dropped.splits["test"] == _rows(BENIGN)  # evaluation data untouched


def test_clean_data_passes_and_unknown_labels_are_listed():
    out = _run(_rows(BENIGN * 4), labels=["toxic", "identity_attack"])
    assert out.result["status"] == "pass" and out.result["findings"] == []
    assert out.result["summary"]["unmeasured_labels"] == ["identity_attack"]  # the offline scorer has no such output


def test_mask_keeps_the_shape_not_the_words():
    assert mask("You are a stupid idiot, call 555-0199!") == "You are a s***** i****, c*** 999-9999!"
    assert len(mask("word " * 100)) <= 80
