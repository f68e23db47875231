"""benchmarks/pii_quality.py: the labelled generator, the span-matching rule, and a small slice of the benchmark run
through the audit's real detector (Presidio + the spaCy model)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench():
    pytest.importorskip("faker")
    spec = importlib.util.spec_from_file_location("pii_quality", REPO / "benchmarks/pii_quality.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_sentences_carry_exact_gold_spans_and_are_seeded(bench):
    a, b = bench.generate(300, seed=7), bench.generate(300, seed=7)
    assert a == b and a != bench.generate(300, seed=8)
    kinds = {s["kind"] for s in a}
    assert kinds == {"plain", "dialogue", "near_miss"}
    types = set()
    for s in a:
        if s["kind"] == "near_miss":
            assert s["spans"] == []
        for start, end, t in s["spans"]:
            value = s["text"][start:end]
            assert value and value == value.strip() and "\n" not in value
            types.add(t)
    assert types == set(bench.TYPES)  # every type, cards of several lengths among them
    cards = {len("".join(ch for ch in s["text"][st:en] if ch.isdigit()))
             for s in a for st, en, t in s["spans"] if t == "CREDIT_CARD"}
    assert len(cards) >= 4, cards


def test_half_coverage_rule_for_spans_and_detections(bench):
    gold = [(0, 10, "PERSON"), (20, 30, "PHONE_NUMBER")]
    found = [("PERSON", 0, 5, 0.85),          # half of the name: found, typed
             ("LOCATION", 22, 30, 0.85),      # most of the phone, wrong type: found untyped; correct untyped
             ("PHONE_NUMBER", 40, 50, 0.4)]   # nothing there: a false alarm
    spans, dets = bench.match(gold, found)
    assert spans == [("PERSON", True, True), ("PHONE_NUMBER", True, False)]
    assert dets == [("PERSON", True, True), ("LOCATION", True, False), ("PHONE_NUMBER", False, False)]
    spans, _ = bench.match([(0, 10, "PERSON")], [("PERSON", 0, 4, 0.85)])
    assert spans == [("PERSON", False, False)]  # 4 of 10 characters is not found


def test_figures_by_hand(bench):
    per_sentence = [([("EMAIL_ADDRESS", True, True)], [("EMAIL_ADDRESS", True, True)]),
                    ([("EMAIL_ADDRESS", False, False)], [("PERSON", False, False)])]
    f = bench.figures(per_sentence, ["EMAIL_ADDRESS", "PERSON"], boot=200)
    assert f["EMAIL_ADDRESS"]["recall"]["value"] == 0.5 and f["EMAIL_ADDRESS"]["precision"]["value"] == 1.0
    assert f["EMAIL_ADDRESS"]["f2"]["value"] == pytest.approx(5 * 0.5 / (4 + 0.5), abs=1e-4)
    assert f["PERSON"]["precision"]["value"] == 0.0 and f["PERSON"]["recall"]["n"] == 0
    lo, hi = f["EMAIL_ADDRESS"]["recall"]["ci_low"], f["EMAIL_ADDRESS"]["recall"]["ci_high"]
    assert 0 < lo < 0.5 < hi < 1  # Wilson, not [0.5, 0.5]


def test_a_slice_through_the_audits_detector(bench):
    pytest.importorskip("presidio_analyzer")
    from audited_ft.audit.audits.pii import PiiOptions

    result = bench.evaluate(bench.generate(120, seed=3), PiiOptions(workers=1), workers=1)
    fig = result["figures"]
    # what Presidio finds on this kind of text, what the extended engine adds, and what nothing looks for
    assert fig["EMAIL_ADDRESS"]["recall"]["value"] == 1.0 and fig["IP_ADDRESS"]["recall"]["value"] == 1.0
    assert fig["STREET_ADDRESS"]["recall"]["value"] > 0.5 and fig["STREET_ADDRESS"]["configured"]  # extended engine
    assert fig["DATE_TIME"]["recall"]["value"] == 0.0 and not fig["DATE_TIME"]["configured"]  # not looked for
    assert 0.3 < fig["PERSON"]["recall"]["value"] < 1.0
    assert result["near_miss_false_alarms"]["sentences"] > 0
    assert "| PERSON | yes |" in bench.table(result)


@pytest.mark.realdata
def test_the_independent_presidio_research_sample_is_read_and_scored(bench):
    import os

    path = Path(os.environ.get("AFT_DATA_DIR", REPO.parent / "shared/data")) / "presidio_research/generated_small.json"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    samples = bench.external(path)
    assert len(samples) == 100 and all(s["text"][a:b] for s in samples for a, b, _ in s["spans"])
    assert "STREET_ADDRESS" in {t for s in samples for *_, t in s["spans"]}  # ADDRESS mapped to this name
    per_sentence = [bench.match([tuple(x) for x in s["spans"]], []) for s in samples]
    assert bench.figures(per_sentence, [], boot=50)["PERSON"]["recall"]["value"] == 0.0  # nothing found, nothing hit
