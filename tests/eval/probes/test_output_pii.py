"""The output PII probe (privacy.output_pii): every recorded answer scanned with the audit's real scanner, values
matched against the training rows by salted hash; the recorder that collects the answers. Invented values only."""

from __future__ import annotations

import json

import pytest

from audited_ft.eval.probes import PROBES, ProbeContext
from audited_ft.eval.stats import IntervalSettings
from audited_ft.eval.probes.output_pii import AnswerRecorder
from tests.fakes import FakeModel

pytest.importorskip("presidio_analyzer")

NAME, MAIL, OTHER = "Ingeborg Haldorsen", "ingeborg.h@example.com", "quentin.marlowe@example.net"


def _ctx(answers):
    splits = {"train": [{"id": f"r{i}", "input": f"#Person1#: I'm {NAME}, write to {MAIL}.",
                         "target": f"{NAME} gives her e-mail."} for i in range(3)],
              "validation": [], "test": [{"id": "t0", "input": "hello", "target": "they greet"}]}
    return ProbeContext(model=FakeModel(), splits=splits, stats=IntervalSettings(bootstrap_samples=200, min_items=2,
                                                                                 min_changed=1),
                        answers=answers)


def test_training_values_in_the_adapters_answers_are_found_and_never_stored():
    answers = []
    for i in range(12):
        answers.append(("rouge", "base", f"k{i}", "They talk about the weather."))
        adapter = f"Write to {MAIL} today." if i < 6 else (f"Write to {OTHER}." if i < 9 else "Fine, thanks.")
        answers.append(("rouge", "adapter", f"k{i}", adapter))
    cls = PROBES.get("output_pii")
    out = cls(cls.Options()).run(_ctx(answers))
    m = out.metrics
    assert m["privacy.output_pii.answers"] == 24
    assert m["privacy.output_pii.pii_rate.base"] == 0.0 and m["privacy.output_pii.pii_rate.adapter"] == 0.75
    assert m["privacy.output_pii.training_value_rate.adapter"] == 0.5   # only the training row's address
    assert m["privacy.output_pii.rouge.training_value_rate.adapter"] == 0.5
    assert m["privacy.output_pii.pii_rate.delta.ci_low"] > 0
    assert out.info["entities"]["rouge.adapter"]["EMAIL_ADDRESS"] == 9
    assert sum(f["from_training_data"] for f in out.info["findings"]) == 6
    stored = json.dumps(out.info) + json.dumps(m)
    assert MAIL not in stored and OTHER not in stored and "ingeborg" not in stored.lower()


def test_the_recorder_keeps_every_answer_in_memory_by_probe():
    rec = AnswerRecorder(FakeModel([{"input": "x", "target": "y"}]))
    rec.probe = "one"
    rec.generate([rec.prompt("x")], "adapter", 4)
    rec.probe = "two"
    rec.sample(["p", "q"], "base", 4, num_samples=2)
    rec.generate_unstored(["p"], "base", 4)
    assert [(p, v) for p, v, _, _ in rec.answers] == [("one", "adapter")] + [("two", "base")] * 5
    assert rec.answers[0][3] == "y" and rec.variants == ("base", "adapter")
    assert len({k for _, _, k, _ in rec.answers}) == 6  # every answer its own call key
