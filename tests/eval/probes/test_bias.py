"""Bias probes (crows_pairs, bbq) and their evaluation sets: scoring, arithmetic, loaders, and the real data sets."""

import csv
import json
import re
from collections import Counter

import pytest
from pydantic import ValidationError

from audited_ft.errors import DataError
from audited_ft.eval.probes import PROBES, ProbeContext
from audited_ft.eval.probes.bbq import answer_direction, bias_score, paired_ratio_metric
from audited_ft.eval.stats import IntervalSettings
from audited_ft.eval.sets import load_probe_set, read_jsonl_items
from tests.conftest import data_dir
from tests.fakes import FakeModel

EMBEDDED_CROWS = load_probe_set("crows_pairs", "embedded", None).items
STEREOTYPED = {it["sent_more"] for it in EMBEDDED_CROWS}


def run_probe(name, model, **options):
    cls = PROBES.get(name)
    return cls(cls.Options(**options)).run(ProbeContext(model=model, splits={}, data_dir=data_dir(),
                                                        stats=IntervalSettings(bootstrap_samples=500)))


class CountingFake(FakeModel):
    """Records each score() call, to check that a probe batches all its items into one call per variant."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def score(self, contexts, continuations, variant):
        self.calls.append((variant, len(continuations)))
        return super().score(contexts, continuations, variant)


class StereotypedAdapter(CountingFake):
    """The adapter finds every more-stereotypical sentence of the embedded set far more likely."""

    def adapter_bonus(self, context, continuation):
        return 5.0 if continuation in STEREOTYPED else 0.0


class Indifferent(FakeModel):
    """No preference at all: every sentence gets the same score, in both variants."""

    def score(self, contexts, continuations, variant):
        return [(-10.0, 5) for _ in continuations]


# ---------------------------------------------------------------------------------------------------- CrowS-Pairs
def test_planted_stereotype_preference_is_seen_beyond_its_ci():
    model = StereotypedAdapter()
    m = run_probe("crows_pairs", model).metrics
    assert m["bias.crows_pairs.stereotype_rate.adapter"] == 1.0
    assert m["bias.crows_pairs.stereotype_rate.base"] < 0.7
    assert m["bias.crows_pairs.stereotype_rate.delta.ci_low"] > 0
    assert m["bias.crows_pairs.loglik_margin.delta.ci_low"] > 4.9  # the planted bonus, paired exactly
    assert m["bias.crows_pairs.stereotype_rate.n"] == 36
    assert model.calls == [("base", 72), ("adapter", 72)], "one batched score() call per variant"


def test_per_bias_type_and_direction_keys():
    m = run_probe("crows_pairs", StereotypedAdapter()).metrics
    types = {it["bias_type"] for it in EMBEDDED_CROWS}
    assert len(types) == 9
    for t in types:
        assert re.fullmatch(r"[a-z0-9_-]+", t)
        assert m[f"bias.crows_pairs.{t}.stereotype_rate.adapter"] == 1.0
        assert m[f"bias.crows_pairs.{t}.stereotype_rate.n"] == 4
    # sent_more is the stereotype-consistent sentence in both directions: the planted preference shows in both
    assert m["bias.crows_pairs.by_direction.stereo.stereotype_rate.adapter"] == 1.0
    assert m["bias.crows_pairs.by_direction.antistereo.stereotype_rate.adapter"] == 1.0
    assert m["bias.crows_pairs.by_direction.antistereo.stereotype_rate.n"] == 9


def test_indifferent_model_sits_at_one_half():
    m = run_probe("crows_pairs", Indifferent()).metrics
    assert m["bias.crows_pairs.stereotype_rate.base"] == 0.5  # every pair ties, and a tie counts half
    assert m["bias.crows_pairs.stereotype_rate.adapter"] == 0.5
    key = "bias.crows_pairs.stereotype_rate.delta"
    # nothing changed on any pair: the difference's interval is not estimable, never a confident [0, 0]
    assert m[f"{key}.ci_low"] is None and m[f"{key}.ci_high"] is None
    assert "only 0 of" in m["bias.crows_pairs.stereotype_rate.not_estimable"]


def test_random_preferences_give_about_one_half(tmp_path):
    # 400 made-up pairs of equal length; FakeModel's hash noise then decides each pair at random.
    path = tmp_path / "pairs.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["", "sent_more", "sent_less", "stereo_antistereo", "bias_type"])
        for i in range(400):
            w.writerow([i, f"Person alpha number {i:03d} went home.", f"Person gamma number {i:03d} went home.",
                        "stereo", ["age", "gender"][i % 2]])
    m = run_probe("crows_pairs", FakeModel(), data=str(path)).metrics
    rate = m["bias.crows_pairs.stereotype_rate.base"]
    assert 0.4 < rate < 0.6
    assert m["bias.crows_pairs.stereotype_rate.base.ci_low"] < 0.5 < m["bias.crows_pairs.stereotype_rate.base.ci_high"]
    assert m["bias.crows_pairs.stereotype_rate.delta"] == 0


def test_sum_and_mean_scoring_can_disagree(tmp_path):
    class Table(FakeModel):
        def score(self, contexts, continuations, variant):
            # the stereotyped sentence: higher total, lower per-token mean
            return [(-4.0, 2) if "alpha" in x else (-6.0, 6) for x in continuations]

    path = tmp_path / "pairs.csv"
    path.write_text(",sent_more,sent_less,stereo_antistereo,bias_type\n"
                    "0,The alpha went out.,The beta went out.,stereo,age\n", encoding="utf-8")
    assert run_probe("crows_pairs", Table(), data=str(path)).metrics["bias.crows_pairs.stereotype_rate.base"] == 1.0
    assert run_probe("crows_pairs", Table(), data=str(path),
                     score="mean").metrics["bias.crows_pairs.stereotype_rate.base"] == 0.0


def test_crows_info_lists_most_changed_pairs_and_describes_the_set():
    out = run_probe("crows_pairs", StereotypedAdapter())
    json.dumps(out.info)  # JSON-serialisable
    assert out.info["data"]["set"] == "crows_pairs" and out.info["data"]["items"] == 36
    # the embedded set is the project's own text: its licence, not the published CrowS-Pairs' CC BY-SA
    assert out.info["data"]["licence"].startswith("Apache-2.0") and "CrowS" in out.info["data"]["title"]
    changed = out.info["most_changed"]
    assert len(changed) == 5 and all(c["change"] == pytest.approx(5.0) for c in changed)
    assert {r["id"] for r in out.generations["crows_pairs"]} == {it["id"] for it in EMBEDDED_CROWS}


def test_crows_options_are_strict_and_name_the_data_set():
    cls = PROBES.get("crows_pairs")
    with pytest.raises(ValidationError):
        cls.Options(scoring="sum")
    assert cls.data_sets(cls.Options(data="{data_dir}/crows_pairs")) == {"crows_pairs": "{data_dir}/crows_pairs"}
    assert cls.prefix() == "bias.crows_pairs"


# ---------------------------------------------------------------------------------------------------- BBQ
def _bbq_row(case, condition, polarity, label):
    return {"example_id": case, "question_index": "1", "question_polarity": polarity, "context_condition": condition,
            "category": "Test_cat",
            "answer_info": {"ans0": ["tall", "tall"], "ans1": ["short", "short"], "ans2": ["Unknown", "unknown"]},
            "additional_metadata": {"stereotyped_groups": ["tall"]},
            "context": f"Two people, case {case}.", "question": "Who did it?",
            "ans0": "The tall one", "ans1": "The short one", "ans2": "Unknown", "label": label}


# case → (condition, polarity, correct label, base's pick, adapter's pick); index 0 is the bias target, 2 unknown
MINI = {"a1": ("ambig", "neg", 2, 0, 2), "a2": ("ambig", "nonneg", 2, 1, 1), "a3": ("ambig", "neg", 2, 1, 0),
        "a4": ("ambig", "nonneg", 2, 2, 1),
        "d1": ("disambig", "neg", 0, 0, 0), "d2": ("disambig", "neg", 1, 1, 0), "d3": ("disambig", "nonneg", 0, 2, 1),
        "d4": ("disambig", "nonneg", 1, 1, 2)}


class Picker(FakeModel):
    """Gives the planned answer of each case (found in the context) a high score, the others a low one."""

    def score(self, contexts, continuations, variant):
        out = []
        for c, x in zip(contexts, continuations):
            case = re.search(r"case (\w+)\.", c).group(1)
            pick = MINI[case][3 if variant == "base" else 4]
            answer = ["The tall one", "The short one", "Unknown"][pick]
            out.append((-1.0 if x.strip() == answer else -9.0, 3))
        return out


@pytest.fixture
def mini_bbq(tmp_path):
    path = tmp_path / "Test_cat.jsonl"
    path.write_text("".join(json.dumps(_bbq_row(c, *spec[:3])) + "\n" for c, spec in MINI.items()), encoding="utf-8")
    return tmp_path


def test_bbq_accuracy_and_bias_scores_on_a_hand_made_set(mini_bbq):
    m = run_probe("bbq", Picker(), data=str(mini_bbq)).metrics
    # ambiguous: base answers +1,+1,-1,0 → acc 1/4, s_DIS 1/3, s_AMB (1-1/4)·1/3 = 1/4;
    #            adapter 0,+1,+1,+1  → acc 1/4, s_DIS 1, s_AMB 3/4
    assert m["bias.bbq.accuracy_ambig.base"] == pytest.approx(0.25)
    assert m["bias.bbq.accuracy_ambig.adapter"] == pytest.approx(0.25)
    assert m["bias.bbq.bias_score_ambig.base"] == pytest.approx(0.25)
    assert m["bias.bbq.bias_score_ambig.adapter"] == pytest.approx(0.75)
    assert m["bias.bbq.bias_score_ambig.delta"] == pytest.approx(0.5)
    # disambiguated: base +1,-1,0,+1 (3 of 4 right) → s_DIS 2·2/3−1 = 1/3; adapter +1,+1,+1,0 (1 right) → s_DIS 1
    assert m["bias.bbq.accuracy_disambig.base"] == pytest.approx(0.75)
    assert m["bias.bbq.accuracy_disambig.adapter"] == pytest.approx(0.25)
    assert m["bias.bbq.bias_score_disambig.base"] == pytest.approx(1 / 3)
    assert m["bias.bbq.bias_score_disambig.adapter"] == pytest.approx(1.0)
    assert m["bias.bbq.bias_score_disambig.delta"] == pytest.approx(2 / 3)
    for key in ("accuracy_ambig", "bias_score_ambig", "accuracy_disambig", "bias_score_disambig"):
        assert m[f"bias.bbq.test_cat.{key}.adapter"] == m[f"bias.bbq.{key}.adapter"]
        assert m[f"bias.bbq.{key}.n"] == 4
        # four items: no interval (the issue's [0.000, 0.000] from 1–4 items is gone), and the reason is kept
        assert m[f"bias.bbq.{key}.delta.ci_low"] is None and "4 item(s)" in m[f"bias.bbq.{key}.not_estimable"]


def test_ambiguous_bias_score_equals_the_papers_formula():
    # s_AMB = (1 - accuracy) * s_DIS, where accuracy counts "unknown" answers
    directions = [1, 1, -1, 0, 0, 1, -1, 1, 0, 1]
    accuracy = directions.count(0) / len(directions)
    assert sum(directions) / len(directions) == pytest.approx((1 - accuracy) * bias_score(directions))
    assert bias_score([0, 0]) == 0.0


def test_answer_direction_follows_question_polarity():
    item = {"unknown": 2, "target": 0, "question_polarity": "neg"}
    assert [answer_direction(item, p) for p in (0, 1, 2)] == [1, -1, 0]
    item["question_polarity"] = "nonneg"
    assert [answer_direction(item, p) for p in (0, 1, 2)] == [-1, 1, 0]


def test_paired_ratio_metric_keeps_the_point_inside_its_interval():
    m = paired_ratio_metric("x", [1, 0, -1, 1, 0], [1, 1, 1, 0, 1], IntervalSettings(bootstrap_samples=300, min_items=5))
    assert m["x.base"] == pytest.approx(1 / 3) and m["x.adapter"] == 1.0 and m["x.n"] == 5
    for name in ("base", "adapter", "delta"):
        assert m[f"x.{name}.ci_low"] <= m[f"x.{name}"] <= m[f"x.{name}.ci_high"]


def test_bbq_batches_and_reports(mini_bbq):
    model = CountingFake()
    out = run_probe("bbq", model)
    assert model.calls == [("base", 144), ("adapter", 144)], "48 items x 3 options, one call per variant"
    json.dumps(out.info)
    assert out.info["data"]["items"] == 48 and out.info["unresolved_target"] == 0
    cats = {k.split(".")[2] for k in out.metrics if k.endswith("accuracy_ambig.adapter")}
    assert {"age", "disability_status", "gender_identity", "nationality", "religion", "ses"} <= cats
    picked = run_probe("bbq", Picker(), data=str(mini_bbq))
    assert {c["id"] for c in picked.info["most_changed"]} <= {"bbq-Test_cat-" + c for c in MINI}
    assert len(picked.info["most_changed"]) == 5  # 6 of the 8 answers changed; 5 listed


def test_bbq_chat_prompt_goes_through_the_chat_template():
    class Seen(FakeModel):
        contexts = []

        def score(self, contexts, continuations, variant):
            Seen.contexts += contexts
            return super().score(contexts, continuations, variant)

    run_probe("bbq", Seen(), prompt="chat", limit=6)
    assert Seen.contexts and all(c.startswith("<user>") for c in Seen.contexts)


# ---------------------------------------------------------------------------------------------------- embedded sets
def test_embedded_sets_follow_their_schema():
    from audited_ft.eval.sets.bbq import check_items as check_bbq
    from audited_ft.eval.sets.crows_pairs import check_items as check_crows

    check_crows(EMBEDDED_CROWS, "embedded")
    assert Counter(it["stereo_antistereo"] for it in EMBEDDED_CROWS) == {"stereo": 27, "antistereo": 9}
    bbq = load_probe_set("bbq", "embedded", None).items
    check_bbq(bbq, "embedded")
    assert len(bbq) == 48 and len({it["id"] for it in bbq}) == 48
    assert Counter((it["context_condition"], it["question_polarity"]) for it in bbq) == {
        ("ambig", "neg"): 12, ("ambig", "nonneg"): 12, ("disambig", "neg"): 12, ("disambig", "nonneg"): 12}
    # the disambiguating facts go with the stereotype in some scenarios and against it in others
    neg = [it for it in bbq if it["context_condition"] == "disambig" and it["question_polarity"] == "neg"]
    assert 0 < sum(it["label"] == it["target"] for it in neg) < len(neg)


# ---------------------------------------------------------------------------------------------------- loaders
def test_crows_loader_names_file_and_missing_column(tmp_path):
    path = tmp_path / "crows_pairs_anonymized.csv"
    path.write_text(",sent_more,sent_less,stereo_antistereo\n0,A b.,C d.,stereo\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"crows_pairs_anonymized\.csv.*'bias_type'"):
        load_probe_set("crows_pairs", str(tmp_path), None)


def test_crows_loader_names_line_and_field(tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text(",sent_more,sent_less,stereo_antistereo,bias_type\n0,A b.,C d.,stereo,age\n1,E f.,,stereo,age\n",
                    encoding="utf-8")
    with pytest.raises(DataError, match=r"pairs\.csv: line 3: field 'sent_less' is missing"):
        load_probe_set("crows_pairs", str(path), None)
    path.write_text(",sent_more,sent_less,stereo_antistereo,bias_type\n0,A b.,C d.,sideways,age\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"pairs\.csv: line 2: field 'stereo_antistereo' must be"):
        load_probe_set("crows_pairs", str(path), None)


def test_crows_loader_wants_the_published_file_in_a_folder(tmp_path):
    with pytest.raises(DataError, match="crows_pairs_anonymized.csv"):
        load_probe_set("crows_pairs", str(tmp_path), None)


def test_bbq_loader_names_file_line_and_problem(tmp_path):
    good = json.dumps(_bbq_row("x", "ambig", "neg", 2))
    path = tmp_path / "Age.jsonl"
    path.write_text(good + "\n{not json\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"Age\.jsonl: line 2: not valid JSON"):
        load_probe_set("bbq", str(tmp_path), None)
    row = _bbq_row("x", "ambig", "neg", 2)
    del row["question"]
    path.write_text(good + "\n" + json.dumps(row) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"Age\.jsonl: line 2: field 'question' is missing"):
        load_probe_set("bbq", str(path), None)
    row = _bbq_row("x", "ambig", "neg", 2)
    row["answer_info"]["ans2"] = ["Unknown", "short"]
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"Age\.jsonl: line 1: field 'answer_info' marks 0 answers"):
        load_probe_set("bbq", str(path), None)
    row = _bbq_row("x", "ambig", "neg", 0)  # an ambiguous context whose label is not the unknown answer
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"Age\.jsonl: line 1: field 'label'"):
        load_probe_set("bbq", str(path), None)


def test_bbq_loader_on_an_empty_folder(tmp_path):
    with pytest.raises(DataError, match="no BBQ"):
        load_probe_set("bbq", str(tmp_path), None)


def test_hub_parsers_accept_class_labels_and_missing_answer_info():
    from audited_ft.eval.sets import bbq, crows_pairs

    class Label:
        def __init__(self, names):
            self.names = names

        def int2str(self, i):
            return self.names[i]

    class Rows(list):
        features = {"stereo_antistereo": Label(["stereo", "antistereo"]), "bias_type": Label(["race-color", "age"])}

    items = crows_pairs._parse_hub(Rows([{"id": 7, "sent_more": "A b.", "sent_less": "C d.", "stereo_antistereo": 1,
                                          "bias_type": 1}]))
    assert items == [{"id": "crows-7", "sent_more": "A b.", "sent_less": "C d.", "stereo_antistereo": "antistereo",
                      "bias_type": "age"}]
    row = _bbq_row("h", "ambig", "neg", 2)
    row["answer_info"] = json.dumps(row["answer_info"])  # stored as text by some exports
    assert bbq._parse_hub([row])[0]["target"] == 0
    del row["answer_info"]
    item = bbq._parse_hub([row])[0]
    assert item["unknown"] == 2 and item["target"] is None


def test_unresolved_targets_count_for_accuracy_only(mini_bbq):
    for path in mini_bbq.glob("*.jsonl"):
        rows = read_jsonl_items(path)
        for r in rows:
            r["additional_metadata"]["stereotyped_groups"] = ["nobody"]
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = run_probe("bbq", Picker(), data=str(mini_bbq))
    assert out.info["unresolved_target"] == 8
    assert "bias.bbq.accuracy_ambig.adapter" in out.metrics
    assert not any("bias_score" in k for k in out.metrics)


# ---------------------------------------------------------------------------------------------------- real data
@pytest.mark.realdata
def test_real_crows_pairs_loads():
    s = load_probe_set("crows_pairs", "{data_dir}/crows_pairs", data_dir())
    assert s.total == len(s.items) == 1508
    types = Counter(it["bias_type"] for it in s.items)
    assert len(types) == 9 and types["race-color"] == 516
    assert Counter(it["stereo_antistereo"] for it in s.items) == {"stereo": 1290, "antistereo": 218}
    assert len({it["id"] for it in s.items}) == 1508


@pytest.mark.realdata
def test_real_bbq_loads_with_every_target_resolved():
    s = load_probe_set("bbq", "{data_dir}/bbq", data_dir())
    cats = Counter(it["category"] for it in s.items)
    assert s.licence == "CC BY 4.0"  # the published set keeps its own licence
    assert cats == {"Age": 3680, "Disability_status": 1556, "Nationality": 3080, "Physical_appearance": 1576,
                    "Religion": 1200, "Sexual_orientation": 864}
    assert all(it["target"] is not None for it in s.items)
    assert len({it["id"] for it in s.items}) == len(s.items)
    # BBQ balances the disambiguated answers: the target answers the negative question about half the time
    neg = [it for it in s.items if it["context_condition"] == "disambig" and it["question_polarity"] == "neg"]
    assert 0.45 < sum(it["label"] == it["target"] for it in neg) / len(neg) < 0.55


@pytest.mark.realdata
@pytest.mark.parametrize("name,groups", [("crows_pairs", 9), ("bbq", 6)])
def test_real_sets_through_the_probes(name, groups):
    model = CountingFake()
    out = run_probe(name, model, data=f"{{data_dir}}/{name}", limit=40)
    assert [variant for variant, _ in model.calls] == ["base", "adapter"]
    assert out.info["data"]["items"] == 40 and "seeded subsample of 40" in out.info["data"]["notes"][0]
    first = "stereotype_rate" if name == "crows_pairs" else "accuracy_ambig"
    keyed = {k.split(".")[2] for k in out.metrics if k.endswith(f".{first}.adapter") and k.count(".") == 4}
    assert len(keyed) == groups, keyed


@pytest.mark.parametrize("probe", ["crows_pairs", "bbq"])
def test_a_further_adapters_keys_follow_the_key_grammar(probe):
    """<stem>.<variant>.<side>: the variant after the whole stem, as MetricKey and the gates read it (the variant
    once sat after the probe prefix here, so the default CrowS-Pairs and BBQ gates found no key for a further adapter)."""
    from audited_ft.run.keys import MetricKey
    from tests.fakes import FakeModel

    class TwoAdapters(FakeModel):
        variants = ("base", "adapter", "other")

    cls = PROBES.get(probe)
    out = cls(cls.Options()).run(ProbeContext(model=TwoAdapters(), splits={},
                                              stats=IntervalSettings(bootstrap_samples=200)))
    headline = "stereotype_rate" if probe == "crows_pairs" else "bias_score_ambig"
    assert f"bias.{probe}.{headline}.other.delta" in out.metrics
    parsed = {MetricKey.parse(k, ["other"]) for k in out.metrics if not k.endswith((".method", ".not_estimable"))}
    assert {k.variant for k in parsed} == {None, "other"}
    assert not any(k.stem.startswith(f"bias.{probe}.other") for k in parsed)
