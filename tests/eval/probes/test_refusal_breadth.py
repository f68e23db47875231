"""The refusal probe over several harmful-request sets: the published files' loaders, per-set and per-category rates,
the multiplicity adjustment of the category family, and the errors a bad file or option gets."""

from __future__ import annotations

import pytest

from audited_ft.eval.probes import PROBES, ProbeContext
from audited_ft.eval.stats import IntervalSettings
from audited_ft.eval.probes.refusal import HARMFUL_SETS, key_part
from tests.fakes import FakeModel

REFUSE = "I'm sorry, but I can't help with that request."
COMPLY = "Sure, here is a step-by-step overview of what you asked for."
PUBLISHED = {"advbench": "{data_dir}/advbench", "harmbench": "{data_dir}/harmbench",
             "strongreject": "{data_dir}/strongreject", "simple_safety_tests": "{data_dir}/simple_safety_tests",
             "xstest_unsafe": "{data_dir}/xstest"}


class CompliesOn(FakeModel):
    """The base refuses every request; the adapter complies with the requests in ``comply`` and refuses the rest."""

    def __init__(self, comply: set[str]):
        super().__init__()
        self.comply = comply

    def generate(self, prompts, variant, max_new_tokens):
        return [COMPLY if variant != "base" and p.removeprefix("<user>") in self.comply else REFUSE for p in prompts]


def _probe(**options):
    cls = PROBES.get("refusal")
    return cls(cls.Options(**options))


def test_category_names_become_one_key_part():
    assert key_part("Hate, harassment and discrimination") == "hate_harassment_and_discrimination"
    assert key_part("Suicide, Self-Harm, and Eating Disorders") == "suicide_self_harm_and_eating_disorders"
    assert key_part("contrast_homonyms") == "contrast_homonyms" and key_part("!!") == "none"


def test_data_takes_one_source_or_named_sets():
    from pydantic import ValidationError

    cls = PROBES.get("refusal")
    assert cls.Options(data="{data_dir}/advbench").data == {"advbench": "{data_dir}/advbench"}
    both = cls.Options(data={"harmbench": "h", "advbench": "a"})
    assert list(both.data) == ["advbench", "harmbench"]  # the probe's order, whatever the config's
    assert cls.data_sets(both) == {"advbench": "a", "harmbench": "h", "xstest": "embedded"}
    with pytest.raises(ValidationError, match="unknown harmful set.*harmbenhc.*known: advbench"):
        cls.Options(data={"harmbenhc": "x"})
    assert set(HARMFUL_SETS) == {"advbench", "harmbench", "strongreject", "simple_safety_tests", "xstest_unsafe"}


def test_bad_harmbench_file_is_named(tmp_path):
    from audited_ft.errors import DataError
    from audited_ft.eval.sets import load_probe_set

    f = tmp_path / "harmbench_behaviors_text_all.csv"
    f.write_text("Behavior,SemanticCategory,BehaviorID\nx,illegal,b1\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"harmbench_behaviors_text_all.csv: header has no 'FunctionalCategory'"):
        load_probe_set("harmbench", str(f), None)
    f.write_text("Behavior,FunctionalCategory,SemanticCategory,BehaviorID\n,standard,illegal,b1\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"harmbench_behaviors_text_all.csv: line 2: field 'Behavior'.*empty"):
        load_probe_set("harmbench", str(f), None)
    f.write_text("Behavior,FunctionalCategory,SemanticCategory,BehaviorID\nDo a harm,standard,illegal,b1\n"
                 "Copy a book,copyright,copyright,b2\n", encoding="utf-8")
    items = load_probe_set("harmbench", str(f), None).items
    assert items == [{"id": "harmbench-b1", "instruction": "Do a harm", "category": "illegal"}]


@pytest.mark.realdata
def test_published_sets_load_as_their_sources_describe():
    """Counts from each set's SOURCE.md: HarmBench 200 standard behaviours in 6 semantic categories; StrongREJECT
    313 − 25 AdvBench prompts = 288 in 6 categories; SimpleSafetyTests 100 in 5 harm areas of 20; XSTest 200 unsafe in
    8 contrast types. No request text is in two sets (so the pooled rate counts none twice)."""
    from audited_ft.eval.sets import load_probe_set
    from tests.conftest import data_dir

    loaded = {name: load_probe_set(name, src, data_dir()) for name, src in PUBLISHED.items()}
    cats = {name: {i["category"] for i in s.items} for name, s in loaded.items()}
    assert len(loaded["harmbench"].items) == 200 and len(cats["harmbench"]) == 6
    assert len(loaded["strongreject"].items) == 288 and len(cats["strongreject"]) == 6
    assert len(loaded["simple_safety_tests"].items) == 100 and len(cats["simple_safety_tests"]) == 5
    assert len(loaded["xstest_unsafe"].items) == 200 and len(cats["xstest_unsafe"]) == 8
    assert all(c.startswith("contrast_") for c in cats["xstest_unsafe"]) and cats["advbench"] == {""}
    norm = {name: {" ".join(i["instruction"].lower().split()) for i in s.items} for name, s in loaded.items()}
    for a in norm:
        for b in norm:
            if a < b:
                assert not norm[a] & norm[b], (a, b, sorted(norm[a] & norm[b])[:2])
    for s in loaded.values():
        assert len({i["id"] for i in s.items}) == len(s.items)


@pytest.mark.realdata
def test_per_set_and_per_category_rates_and_the_adjusted_family():
    """An adapter that complies with exactly one SimpleSafetyTests harm area (and refuses everything else) moves that
    area's rate beyond its interval and keeps q < 0.05 after Benjamini–Hochberg over all categories; no other
    category or set except SimpleSafetyTests moves."""
    from audited_ft.eval.findings import adjust_for_multiplicity
    from audited_ft.eval.sets import load_probe_set
    from tests.conftest import data_dir

    sst = load_probe_set("simple_safety_tests", PUBLISHED["simple_safety_tests"], data_dir())
    scams = {i["instruction"] for i in sst.items if i["category"] == "Scams and fraud"}
    probe = _probe(data=PUBLISHED, limit=50, benign_data="{data_dir}/xstest", benign_limit=36)
    out = probe.run(ProbeContext(model=CompliesOn(scams), splits={}, data_dir=data_dir(),
                                 stats=IntervalSettings(bootstrap_samples=300)))
    m = out.metrics
    m.update(adjust_for_multiplicity(m, ["adapter"]))
    assert m["safety.refusal.rate.n"] == 250 and m["safety.refusal.simple_safety_tests.rate.n"] == 50
    area = "safety.refusal.simple_safety_tests.scams_and_fraud.rate"
    assert m[f"{area}.n"] == 10 and m[f"{area}.adapter"] == 0.0 and m[f"{area}.delta.ci_high"] < 0
    assert m[f"{area}.delta.q_value"] < 0.05
    moved = {k.removesuffix(".delta.ci_high") for k, v in m.items() if k.endswith(".delta.ci_high") and v is not None and v < 0}
    assert moved == {area, "safety.refusal.simple_safety_tests.rate", "safety.refusal.rate"}, moved
    categories = [k for k in m if k.endswith(".rate.n") and k.count(".") == 5]
    assert len(categories) == 6 + 6 + 5 + 8  # every category of the four sets that have them
    # categories under 10 items (HarmBench's, 50 / 6) get no interval (eval.min_items) and stay out of the family
    assert "safety.refusal.harmbench.illegal.rate.delta.q_value" not in m
    assert m["safety.refusal.over_refusal.n"] == 36
    assert sum(k.endswith(".over_refusal.n") for k in m) == 1 + 10  # pooled + the ten safe XSTest types
    assert out.info["per_set"]["adapter"]["simple_safety_tests"] == pytest.approx(1 - 10 / 50)
    assert set(out.info["sets"]) == set(PUBLISHED)
    assert {g["source"] for g in out.generations["refusal_adapter"]} == set(PUBLISHED) | {"xstest"}


def test_one_set_reports_no_per_set_family():
    out = _probe(limit=6).run(ProbeContext(model=CompliesOn(set()), splits={},
                                           stats=IntervalSettings(bootstrap_samples=100)))
    assert "safety.refusal.rate.n" in out.metrics
    assert not any(k.startswith("safety.refusal.advbench.") for k in out.metrics)  # it would repeat the pooled rate
