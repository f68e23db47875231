"""Several references per test item (DialogSum's three summaries): read by the data stage, scored best-of by ROUGE."""

from __future__ import annotations

import pytest

from audited_ft.data.records import clean_rows, to_rows
from audited_ft.errors import DataError
from audited_ft.eval.probes import PROBES, ProbeContext
from audited_ft.eval.stats import IntervalSettings
from tests.fakes import FakeModel

RECORDS = [{"fname": "d1", "dialogue": "#Person1#: Shall we eat?\n#Person2#: Yes, pizza.", "summary1": "They eat.",
            "summary2": "Person1 and Person2 decide to eat pizza.", "summary3": "  A  meal  is planned. "}]


def test_the_data_stage_keeps_every_reference():
    rows = to_rows(RECORDS, "test.jsonl", "test", "dialogue", "summary1", "fname", ["summary2", "summary3"])
    kept, _ = clean_rows(rows, 1, 10_000, 10_000)
    assert kept[0]["target"] == "They eat."
    assert kept[0]["references"] == ["They eat.", "Person1 and Person2 decide to eat pizza.", "A meal is planned."]
    assert "references" not in clean_rows(to_rows(RECORDS, "t", "test", "dialogue", "summary1", "fname"), 1, 10**4,
                                          10**4)[0][0]
    with pytest.raises(DataError, match=r"data.fields_by_split.test.reference_fields = 'summary4' is not a field"):
        to_rows(RECORDS, "test.jsonl", "test", "dialogue", "summary1", "fname", ["summary4"])


def test_rouge_keeps_the_best_reference_per_item():
    """The adapter answers with the second reference word for word: ROUGE-L 1.0 against the three references, well
    below 1.0 against the first alone."""
    row = clean_rows(to_rows(RECORDS, "t", "test", "dialogue", "summary1", "fname", ["summary2", "summary3"]),
                     1, 10**4, 10**4)[0][0]

    class SaysSecond(FakeModel):
        def generate(self, prompts, variant, max_new_tokens):
            return [RECORDS[0]["summary2"] if variant == "adapter" else "lorem ipsum" for _ in prompts]

    cls = PROBES.get("rouge")
    multi = cls(cls.Options()).run(ProbeContext(model=SaysSecond(), splits={"test": [row]},
                                                stats=IntervalSettings(bootstrap_samples=100)))
    single_row = {k: v for k, v in row.items() if k != "references"}
    single = cls(cls.Options()).run(ProbeContext(model=SaysSecond(), splits={"test": [single_row]},
                                                 stats=IntervalSettings(bootstrap_samples=100)))
    assert multi.metrics["rouge.rougeL.adapter"] == pytest.approx(1.0)
    assert single.metrics["rouge.rougeL.adapter"] < 0.5
    assert multi.generations["adapter"][0]["references"] == 3
