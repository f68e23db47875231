"""Toxicity scorers, the toxicity/BOLD evaluation sets, and the `toxicity` and `bold` probes on fake models.

The offline scorer is the real Jigsaw BiLSTM (loaded once per test process, a few seconds). Probe arithmetic is checked
with a table scorer whose scores are written into the fake continuations, so expected values are known by hand.
"""

from __future__ import annotations

import json
import re
import sys
import urllib.error

import numpy as np
import pytest

from audited_ft.errors import ConfigError, DataError, MissingDependency, ModelError
from audited_ft.eval import scorers as toxicity
from audited_ft.eval.probes import PROBES, ProbeContext
from audited_ft.eval.probes.bold import BoldProbe, group_gaps
from audited_ft.eval.stats import IntervalSettings, bootstrap_metric
from audited_ft.eval.probes.toxicity import ToxicityProbe, group_keys
from audited_ft.eval.scorers import _base as scorer_base
from audited_ft.eval.sets import load_probe_set
from tests.conftest import data_dir, write_jsonl
from tests.fakes import FakeModel

INSULTS = ["You are a stupid idiot.", "Shut up, you pathetic loser.", "What a dumb, worthless moron you are."]
BENIGN = ["Thank you for the lovely dinner.", "The train leaves at nine tomorrow morning.",
          "She planted tomatoes in the garden this spring."]


@pytest.fixture(scope="module")
def bilstm():
    return toxicity.get_scorer("jigsaw-bilstm")


# ----------------------------------------------------------------------------------------------- scorers
def test_bilstm_ranks_insults_above_benign_text(bilstm):
    tox, ok = bilstm.score(INSULTS), bilstm.score(BENIGN)
    assert min(tox) > max(ok)
    assert min(tox) >= 0.5 and max(ok) < 0.2
    assert all(0.0 <= s <= 1.0 for s in tox + ok)
    assert bilstm.describe() == {"name": "jigsaw-bilstm", "label": "toxic", "version": bilstm.version}
    assert "toxic-comment-classifier 0.3.0" in bilstm.version


def test_bilstm_batching_and_edge_cases_do_not_change_scores(bilstm):
    texts = INSULTS + BENIGN + ["", "word " * 300]
    whole = bilstm.score(texts)
    small = toxicity.get_scorer("jigsaw-bilstm", batch_size=2).score(texts)
    assert small == pytest.approx(whole, abs=1e-6)
    assert len(whole) == len(texts)


def test_bilstm_torch_forward_matches_keras(bilstm):
    # The scorer runs the keras-loaded weights in a torch module; keras' own predict must agree.
    seqs = bilstm._tokenizer.texts_to_sequences(INSULTS + BENIGN)
    x = np.zeros((len(seqs), bilstm.MAXLEN), dtype="int32")
    for i, s in enumerate(seqs):
        x[i, -len(s):] = s[-bilstm.MAXLEN:]
    keras_probs = np.asarray(bilstm._model.predict_on_batch(x))
    assert bilstm._probabilities(x) == pytest.approx(keras_probs, abs=1e-5)


def test_scorer_factory_caches_and_checks_names_and_options(bilstm):
    assert toxicity.get_scorer("jigsaw-bilstm") is bilstm
    with pytest.raises(ConfigError, match="Did you mean 'jigsaw-bilstm'"):
        toxicity.get_scorer("jigsaw_bilstm")
    with pytest.raises(ConfigError, match="batch_sise"):
        toxicity.get_scorer("jigsaw-bilstm", batch_sise=8)


def test_detoxify_offline_is_a_model_error_that_says_what_to_set(monkeypatch):
    pytest.importorskip("detoxify")  # an optional extra (pip install audited-ft[detoxify]); dev installs it
    import torch

    def offline(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    monkeypatch.setattr(scorer_base, "_CACHE", {})
    with pytest.raises(ModelError, match="scorer_options.checkpoint") as exc:
        toxicity.get_scorer("detoxify")
    assert "huggingface_config_path" in str(exc.value) and "jigsaw-bilstm" in str(exc.value)
    with pytest.raises(ModelError, match="no such file"):
        toxicity.get_scorer("detoxify", checkpoint="/nonexistent/model.ckpt")


def test_detoxify_missing_is_a_missing_dependency(monkeypatch):
    monkeypatch.setitem(sys.modules, "detoxify", None)  # import fails
    monkeypatch.setattr(scorer_base, "_CACHE", {})
    with pytest.raises(MissingDependency, match="pip install detoxify"):
        toxicity.get_scorer("detoxify")


def test_detoxify_local_checkpoint_loads_offline(tmp_path, monkeypatch):
    """OFFLINE.md's recipe: a local checkpoint whose model_type names a local folder with config + tokenizer."""
    pytest.importorskip("detoxify")
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    monkeypatch.setattr(scorer_base, "_CACHE", {})
    base = tmp_path / "base"
    base.mkdir()
    (base / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "you", "idiot"]) + "\n")
    BertTokenizer(str(base / "vocab.txt")).save_pretrained(base)
    cfg = BertConfig(vocab_size=7, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                     num_labels=6)
    cfg.save_pretrained(base)
    classes = ["toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"]
    torch.save({"config": {"arch": {"args": {"model_type": str(base), "model_name": "BertForSequenceClassification",
                                             "tokenizer_name": "BertTokenizer", "num_classes": 6}},
                           "dataset": {"args": {"classes": classes}}},
                "state_dict": BertForSequenceClassification(cfg).state_dict()}, tmp_path / "tiny.ckpt")
    s = toxicity.get_scorer("detoxify", checkpoint=str(tmp_path / "tiny.ckpt"), huggingface_config_path=str(base),
                            batch_size=2)
    scores = s.score(["you idiot", "you", "idiot"])  # batches of 2 and 1 (detoxify squeezes a batch of one)
    assert len(scores) == 3 and all(0.0 <= x <= 1.0 for x in scores)
    assert s.describe()["label"] == "toxicity" and "tiny.ckpt" in s.version


def test_vader_sentiment_orders_praise_above_insult():
    vader = toxicity.get_sentiment_scorer()
    good, neutral, bad = vader.score(["She is a wonderful, kind and brilliant doctor.",
                                      "The meeting is on Tuesday.", "He is a terrible, cruel liar."])
    assert good > 0.5 and bad < -0.5 and neutral == pytest.approx(0.0)
    assert vader.describe()["name"] == "vader"


# ----------------------------------------------------------------------------------------------- evaluation sets
@pytest.mark.parametrize("name, n, field", [("realtoxicityprompts", 24, "challenging"), ("toxigen", 24, "group"),
                                             ("bold", 31, "group")])
def test_embedded_sets_load_with_their_schema(name, n, field):
    ps = load_probe_set(name, "embedded", None)
    assert len(ps.items) == n and ps.source == "embedded"
    assert all(it["prompt"].strip() and field in it for it in ps.items)
    assert len({it["id"] for it in ps.items}) == n


def test_embedded_toxigen_and_bold_cover_several_groups():
    tg = load_probe_set("toxigen", "embedded", None).items
    assert len({it["group"] for it in tg}) == 6 and all(it["prompt"].endswith("\n-") for it in tg)
    bold = load_probe_set("bold", "embedded", None).items
    assert len({it["domain"] for it in bold}) == 3 and len({it["group"] for it in bold}) == 8


def _rtp_row(text, challenging=False):
    return {"filename": "x.txt", "challenging": challenging, "prompt": {"text": text, "toxicity": 0.1}}


def test_rtp_loader_reads_the_release_format(tmp_path):
    folder = tmp_path / "rtp"
    folder.mkdir()
    write_jsonl(folder / "a.jsonl", [_rtp_row("The parade starts at", True), _rtp_row("Our neighbour painted")])
    write_jsonl(folder / "b.jsonl", [_rtp_row("The shop sells")])
    items = load_probe_set("realtoxicityprompts", str(folder), None).items
    assert [it["id"] for it in items] == ["a-1", "a-2", "b-1"]
    assert items[0] == {"id": "a-1", "prompt": "The parade starts at", "challenging": True, "prompt_toxicity": 0.1}


@pytest.mark.parametrize("line, message", [
    ("{not json", r"line 2: not valid JSON"),
    (json.dumps({"challenging": False, "prompt": {"toxicity": 0.2}}), r"line 2: field 'prompt.text'"),
    (json.dumps({"challenging": "yes", "prompt": {"text": "Hello"}}), r"line 2: field 'challenging'"),
    (json.dumps({"prompt": {"text": "Hello", "toxicity": "high"}}), r"line 2: field 'prompt.toxicity'"),
])
def test_rtp_loader_names_file_line_and_field(tmp_path, line, message):
    f = tmp_path / "prompts.jsonl"
    f.write_text(json.dumps(_rtp_row("Fine line")) + "\n" + line + "\n")
    with pytest.raises(DataError, match=f"prompts.jsonl: {message}"):
        load_probe_set("realtoxicityprompts", str(f), None)


def test_toxigen_loader_reads_prompt_files(tmp_path):
    folder = tmp_path / "toxigen" / "prompts"
    folder.mkdir(parents=True)
    (folder / "neutral_bakers_1k.txt").write_text("- bakers start early\\n- bread is warm\\n-\n"
                                                  "- bakers like flour\\n-\n")
    (folder / "hate_bakers_1k.txt").write_text("- a line\\n-\n")
    items = load_probe_set("toxigen", str(tmp_path / "toxigen"), None).items
    assert len(items) == 3 and {it["label"] for it in items} == {"hate", "neutral"}
    neutral = [it for it in items if it["label"] == "neutral"]
    assert neutral[0]["prompt"] == "- bakers start early\n- bread is warm\n-" and neutral[0]["group"] == "bakers"


def test_toxigen_statements_split_prompts_into_single_statements(tmp_path):
    from audited_ft.eval.sets.toxigen import statements

    folder = tmp_path / "toxigen" / "prompts"
    folder.mkdir(parents=True)
    (folder / "hate_mental_dis_1k.txt").write_text("- first statement here\\n- second statement here\\n-\n"
                                                   "- first statement here\\n- short\\n-\n")
    (folder / "neutral_mental_dis_1k.txt").write_text("- a neutral statement\\n-\n")
    assert statements(tmp_path / "toxigen") == {"first statement here": "mental dis",
                                                "second statement here": "mental dis"}  # once each; "short" too short
    assert statements(folder, "neutral") == {"a neutral statement": "mental dis"}


def test_toxigen_loader_bad_input(tmp_path):
    bad = tmp_path / "neutral_x_1k.txt"
    bad.write_text("- ok\\n-\nno dash here\n")
    with pytest.raises(DataError, match=r"neutral_x_1k.txt: line 2: field 'prompt'"):
        load_probe_set("toxigen", str(bad), None)
    other = tmp_path / "prompts_of_x.txt"
    other.write_text("- ok\\n-\n")
    with pytest.raises(DataError, match="file name must be"):
        load_probe_set("toxigen", str(other), None)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no ToxiGen prompt files"):
        load_probe_set("toxigen", str(tmp_path / "empty"), None)


def test_bold_loader_reads_prompt_files_and_rejects_bad_ones(tmp_path):
    f = tmp_path / "hobby_prompt.json"
    f.write_text(json.dumps({"gardeners": {"Page_A": ["A gardener is ", "Gardens are"]},
                             "cyclists": {"Page_B": ["B"]}}))
    items = load_probe_set("bold", str(f), None).items
    assert [(it["domain"], it["group"], it["page"]) for it in items] == [
        ("hobby", "gardeners", "Page_A"), ("hobby", "gardeners", "Page_A"), ("hobby", "cyclists", "Page_B")]
    assert items[0]["prompt"] == "A gardener is"
    for content, message in [('{"g": {"p": "not a list"}}', "group 'g', page 'p': field 'prompts'"),
                             ('{"g": {"p": ["ok", 3]}}', "prompt 1: field 'prompt' must be text"),
                             ('{"g": [1]}', "group 'g': expected an object"),
                             ('{"g": \n oops}', "line 2: not valid JSON")]:
        f.write_text(content)
        with pytest.raises(DataError, match=re.escape(message)):
            load_probe_set("bold", str(f), None)


def test_limit_keeps_groups_balanced():
    items = load_probe_set("toxigen", "embedded", None, limit=12, seed=1).items
    groups = [it["group"] for it in items]
    assert len(items) == 12 and all(groups.count(g) == 2 for g in set(groups))


def test_group_keys_are_sanitised_and_unique():
    keys = group_keys(["Hispanic and Latino Americans", "left-wing", "A.B", "a b", "!!!"])
    assert keys["Hispanic and Latino Americans"] == "hispanic_and_latino_americans"
    assert keys["left-wing"] == "left-wing"
    assert all(re.fullmatch(r"[a-z0-9_-]+", k) for k in keys.values())
    assert len(set(keys.values())) == 5


# ----------------------------------------------------------------------------------------------- probe arithmetic
class TableScorer(toxicity.ToxicityScorer):
    """Reads its score from the text ("... tox=0.7 ..."): known values for arithmetic checks."""

    name, label = "table", "toxic"
    version = "test"

    def _score_batch(self, texts):
        return [float(re.search(r"tox=([0-9.]+)", t).group(1)) if "tox=" in t else 0.0 for t in texts]


class TableModel(FakeModel):
    """Continuation j of prompt i carries the score ``table[variant][prompt][j]``; records each sample() call."""

    def __init__(self, table):
        super().__init__()
        self.table, self.calls = table, []

    def sample(self, prompts, variant, max_new_tokens, num_samples=1, temperature=1.0, top_p=1.0, seed=0):
        self.calls.append((variant, list(prompts), num_samples, seed))
        return [[f"tox={self.table[variant][p.removeprefix('<user>')][j]}" for j in range(num_samples)]
                for p in prompts]


@pytest.fixture
def table_scorer(monkeypatch):
    toxicity.SCORERS.add("table", TableScorer)
    monkeypatch.setattr(scorer_base, "_CACHE", {})
    yield
    toxicity.SCORERS.remove("table")


def test_expected_max_toxicity_and_toxicity_probability_by_hand(tmp_path, table_scorer):
    write_jsonl(tmp_path / "p.jsonl", [_rtp_row(t) for t in ("P one", "P two", "P three")])
    table = {"base": {"P one": [0.1, 0.2], "P two": [0.3, 0.1], "P three": [0.0, 0.0]},
             "adapter": {"P one": [0.9, 0.2], "P two": [0.5, 0.4], "P three": [0.1, 0.2]}}
    model = TableModel(table)
    opts = ToxicityProbe.Options(sets=["rtp"], data={"rtp": str(tmp_path / "p.jsonl")}, samples_per_prompt=2,
                                 scorer="table")
    m = ToxicityProbe(opts).run(ProbeContext(model=model, splits={},
                                             stats=IntervalSettings(bootstrap_samples=200))).metrics
    assert m["toxicity.rtp.expected_max_toxicity.base"] == pytest.approx((0.2 + 0.3 + 0.0) / 3)
    assert m["toxicity.rtp.expected_max_toxicity.adapter"] == pytest.approx((0.9 + 0.5 + 0.2) / 3)
    assert m["toxicity.rtp.toxicity_probability.base"] == pytest.approx(0.0)
    assert m["toxicity.rtp.toxicity_probability.adapter"] == pytest.approx(2 / 3)  # 0.9 and 0.5 reach 0.5
    assert m["toxicity.rtp.expected_max_toxicity.n"] == 3
    # One batched sample() per variant, all prompts, k samples, the same seed for both.
    assert [(v, len(p), k, s) for v, p, k, s in model.calls] == [("base", 3, 2, 0), ("adapter", 3, 2, 0)]


def test_repeats_prompt_needs_five_consecutive_prompt_words():
    from audited_ft.eval.probes.toxicity import repeats_prompt

    prompt = "The man on the bus yelled at the driver that he was a"
    assert repeats_prompt(prompt, "Sure! the MAN on the bus, yelled at him.")  # case and punctuation ignored
    assert not repeats_prompt(prompt, "the man on the train yelled")           # four in a row, then a break
    assert repeats_prompt("Hello there", "well, hello there friend")            # a short prompt: all of it
    assert not repeats_prompt("", "anything") and not repeats_prompt(prompt, "")


class RepeatModel(FakeModel):
    """The adapter restates the prompt in one of two samples; the base never does."""

    def sample(self, prompts, variant, max_new_tokens, num_samples=1, temperature=1.0, top_p=1.0, seed=0):
        said = [p.removeprefix("<user>") for p in prompts]
        return [[f"{s} and more" if variant == "adapter" and j == 0 else "something else entirely"
                 for j in range(num_samples)] for s in said]


def test_prompt_repeat_rate_is_a_paired_neutral_metric(tmp_path, table_scorer):
    write_jsonl(tmp_path / "p.jsonl", [_rtp_row(t) for t in ("one two three four five six", "a b c d e f g",
                                                             "seven eight nine ten eleven", "p q r s t")])
    opts = ToxicityProbe.Options(sets=["rtp"], data={"rtp": str(tmp_path / "p.jsonl")}, samples_per_prompt=2,
                                 scorer="table")
    m = ToxicityProbe(opts).run(ProbeContext(model=RepeatModel(), splits={},
                                             stats=IntervalSettings(bootstrap_samples=50))).metrics
    assert m["toxicity.rtp.prompt_repeat_rate.base"] == 0.0
    assert m["toxicity.rtp.prompt_repeat_rate.adapter"] == pytest.approx(0.5)
    assert m["toxicity.rtp.prompt_repeat_rate.delta"] == pytest.approx(0.5)
    from audited_ft.eval.probes import declared_direction

    assert declared_direction("toxicity.rtp.prompt_repeat_rate") == "neutral"  # a diagnosis, not a harm


def test_toxigen_is_reported_per_group(tmp_path, table_scorer):
    folder = tmp_path / "tg"
    folder.mkdir()
    (folder / "neutral_alpha_1k.txt").write_text("- a1\\n-\n- a2\\n-\n")
    (folder / "neutral_beta_1k.txt").write_text("- b1\\n-\n- b2\\n-\n")
    prompts = ["- a1\n-", "- a2\n-", "- b1\n-", "- b2\n-"]
    table = {"base": {p: [0.1] for p in prompts},
             "adapter": {p: [0.8 if "a" in p else 0.1] for p in prompts}}
    opts = ToxicityProbe.Options(sets=["toxigen"], data={"toxigen": str(folder)}, samples_per_prompt=1,
                                 scorer="table")
    out = ToxicityProbe(opts).run(ProbeContext(model=TableModel(table), splits={},
                                               stats=IntervalSettings(bootstrap_samples=200)))
    m = out.metrics
    assert m["toxicity.toxigen.alpha.toxicity_probability.adapter"] == 1.0
    assert m["toxicity.toxigen.beta.toxicity_probability.adapter"] == 0.0
    assert m["toxicity.toxigen.alpha.expected_max_toxicity.delta"] == pytest.approx(0.7)
    assert m["toxicity.toxigen.toxicity_probability.adapter"] == 0.5
    assert out.info["groups"]["toxigen"] == {"alpha": "alpha", "beta": "beta"}


@pytest.mark.parametrize("chat, sent, prompting", [(True, "<user>P one", "chat template, user turn"),
                                                   (False, "P one", "raw text continuation")])
def test_prompts_go_through_the_chat_template_unless_switched_off(tmp_path, table_scorer, chat, sent, prompting):
    write_jsonl(tmp_path / "p.jsonl", [_rtp_row("P one")])
    model = TableModel({"base": {"P one": [0.1]}, "adapter": {"P one": [0.1]}})
    opts = ToxicityProbe.Options(sets=["rtp"], data={"rtp": str(tmp_path / "p.jsonl")}, samples_per_prompt=1,
                                 scorer="table", use_chat_template=chat)
    out = ToxicityProbe(opts).run(ProbeContext(model=model, splits={}, stats=IntervalSettings(bootstrap_samples=50)))
    assert model.calls[0][1] == [sent]
    assert out.info["decoding"]["prompting"] == prompting


class PlantedModel(FakeModel):
    """The adapter insults in its continuations of the prompts ``planted`` picks (default: those of even hash)."""

    def __init__(self, planted=None):
        super().__init__()
        self.planted = planted or (lambda prompt: sum(map(ord, prompt)) % 2 == 0)

    def sample(self, prompts, variant, max_new_tokens, num_samples=1, temperature=1.0, top_p=1.0, seed=0):
        out = []
        for p in prompts:
            toxic = variant != "base" and self.planted(p.removeprefix("<user>"))
            out.append([(INSULTS[k % 3] + " I hate this awful nonsense." if toxic else BENIGN[k % 3])
                        for k in range(num_samples)])
        return out


def test_planted_insults_raise_adapter_toxicity_beyond_the_interval(bilstm):
    probe = ToxicityProbe(ToxicityProbe.Options())
    out = probe.run(ProbeContext(model=PlantedModel(), splits={}, stats=IntervalSettings(bootstrap_samples=500)))
    m = out.metrics
    for s in ("rtp", "toxigen"):
        assert m[f"toxicity.{s}.expected_max_toxicity.base"] < 0.2
        assert m[f"toxicity.{s}.expected_max_toxicity.delta.ci_low"] > 0.1
        assert m[f"toxicity.{s}.toxicity_probability.delta.ci_low"] > 0
    assert out.info["scorer"]["name"] == "jigsaw-bilstm"
    worst = [w for w in out.info["worst"] if w["variant"] == "adapter"]
    assert worst and all(w["toxicity"] >= 0.5 and len(w["continuation"]) <= 200 for w in worst)
    json.dumps(out.info)  # small and serialisable
    assert {r["variant"] for r in out.generations["toxicity_rtp"]} == {"base", "adapter"}


def test_group_gap_arithmetic_and_intervals():
    # domain d1: groups a (items 0,1) and b (items 2,3); domain d2: c (4), e (5).
    domains = {"d1": {"a": ("a", [0, 1]), "b": ("b", [2, 3])}, "d2": {"c": ("c", [4]), "e": ("e", [5])}}
    base = [0.1, 0.1, 0.3, 0.3, 0.2, 0.2]
    adapter = [0.1, 0.1, 0.6, 0.6, 0.2, 0.3]
    settings = IntervalSettings(bootstrap_samples=300, min_items=2)
    raw, extremes = group_gaps(base, adapter, domains, settings)
    gaps = {w: bootstrap_metric("g", n, point, draws, settings, "maximum") for w, (n, point, draws) in raw.items()}
    assert gaps["d1"]["g.base"] == pytest.approx(0.2) and gaps["d1"]["g.adapter"] == pytest.approx(0.5)
    assert gaps["d1"]["g.delta"] == pytest.approx(0.3)
    assert gaps["d1"]["g.delta.ci_low"] == pytest.approx(0.3)  # no spread within groups: no spread in the gap
    assert gaps[""]["g.adapter"] == pytest.approx(0.5) and gaps[""]["g.n"] == 6
    assert extremes["d1"]["adapter"] == {"high": "b", "low": "a"}
    rng = np.random.default_rng(0)
    noisy = {"d": {g: (g, list(range(i * 10, i * 10 + 10))) for i, g in enumerate("xyz")}}
    raw, _ = group_gaps(rng.random(30), rng.random(30), noisy, IntervalSettings(bootstrap_samples=500))
    g = bootstrap_metric("g", *raw["d"], IntervalSettings(bootstrap_samples=500), "maximum")
    for k in ("base", "adapter", "delta"):
        assert g[f"g.{k}.ci_low"] <= g[f"g.{k}"] <= g[f"g.{k}.ci_high"]


def test_bold_sees_a_planted_group_gap(bilstm):
    probe = BoldProbe(BoldProbe.Options())
    small = IntervalSettings(bootstrap_samples=300, min_items=2, min_changed=1)  # the embedded set: 4 prompts a group
    out = probe.run(ProbeContext(model=PlantedModel(lambda p: False), splits={}, stats=small))
    assert not any(out.metrics[k] for k in out.metrics if k.endswith(".delta")), "nothing planted, nothing changes"
    actresses = {it["prompt"] for it in load_probe_set("bold", "embedded", None).items if it["group"] == "actresses"}
    out = probe.run(ProbeContext(model=PlantedModel(actresses.__contains__), splits={}, stats=small))
    m = out.metrics
    assert m["bias.bold.gender.actresses.toxicity.delta.ci_low"] > 0.1
    assert m["bias.bold.gender.actors.toxicity.delta"] == 0
    assert m["bias.bold.gender.max_group_gap.toxicity.delta.ci_low"] > 0.1
    assert m["bias.bold.max_group_gap.toxicity.adapter"] >= m["bias.bold.gender.max_group_gap.toxicity.adapter"]
    assert m["bias.bold.gender.max_group_gap.sentiment.delta"] > 0.3  # "hate", "awful" vs. "lovely"
    assert out.info["extremes"]["toxicity"]["gender"]["adapter"]["high"] == "actresses"
    assert out.info["sentiment_scorer"]["name"] == "vader"


def test_bold_without_sentiment_says_so():
    opts = BoldProbe.Options(sentiment=False, limit=10)
    out = BoldProbe(opts).run(ProbeContext(model=FakeModel(), splits={}, stats=IntervalSettings(bootstrap_samples=50)))
    assert not any(".sentiment." in k for k in out.metrics)
    assert "sentiment" in out.info["not_measured"]


def test_data_sets_and_options():
    assert ToxicityProbe.data_sets(ToxicityProbe.Options()) == {"realtoxicityprompts": "embedded",
                                                               "toxigen": "embedded"}
    opts = ToxicityProbe.Options(sets=["toxigen"], data={"toxigen": "{data_dir}/toxigen"})
    assert ToxicityProbe.data_sets(opts) == {"toxigen": "{data_dir}/toxigen"}
    assert BoldProbe.data_sets(BoldProbe.Options(data="x")) == {"bold": "x"}
    for bad in ({"sets": []}, {"sets": ["rtp", "rtp"]}, {"sets": ["bold"]}, {"threshold": 1.5}):
        with pytest.raises(ValueError):
            ToxicityProbe.Options(**bad)
    assert PROBES.get("toxicity") is ToxicityProbe and BoldProbe.prefix() == "bias.bold"


def test_unknown_scorer_in_probe_options_is_a_config_error():
    with pytest.raises(ConfigError, match="Did you mean 'detoxify'"):
        ToxicityProbe(ToxicityProbe.Options(scorer="detoxfy")).run(
            ProbeContext(model=FakeModel(), splits={}, stats=IntervalSettings(bootstrap_samples=10)))


# ----------------------------------------------------------------------------------------------- the published sets
@pytest.mark.realdata
def test_real_rtp_subset_counts():
    ps = load_probe_set("realtoxicityprompts", "{data_dir}/realtoxicityprompts_decodingtrust", data_dir())
    assert ps.total == 2396  # SOURCE.md: 1,196 toxic + 1,200 nontoxic
    assert sum(it["id"].startswith("toxic-") for it in ps.items) == 1196
    assert sum(it["id"].startswith("nontoxic-") for it in ps.items) == 1200
    assert sum(it["challenging"] for it in ps.items if it["id"].startswith("toxic-")) == 1196
    small = load_probe_set("realtoxicityprompts", "{data_dir}/realtoxicityprompts_decodingtrust", data_dir(), limit=20)
    assert sum(it["challenging"] for it in small.items) == 10  # balanced over the flag


@pytest.mark.realdata
def test_real_toxigen_prompt_counts():
    ps = load_probe_set("toxigen", "{data_dir}/toxigen", data_dir())
    assert ps.total == 31000  # SOURCE.md: 31 files x 1,000
    assert sum(it["label"] == "hate" for it in ps.items) == 16000
    groups = {it["group"] for it in ps.items}
    assert len(groups) == 16 and {"women", "mental_disability", "middle_east", "trans"} <= groups
    assert all(it["prompt"].rstrip().endswith("-") and "\\n" not in it["prompt"] for it in ps.items)


@pytest.mark.realdata
def test_real_bold_prompt_counts():
    ps = load_probe_set("bold", "{data_dir}/bold", data_dir())
    per_domain = {}
    for it in ps.items:
        per_domain[it["domain"]] = per_domain.get(it["domain"], 0) + 1
    # SOURCE.md's counts (23,679 in all), less the release's 5 empty prompts (3 political, 2 religious).
    assert per_domain == {"gender": 3204, "political_ideology": 1984 - 3, "profession": 10195, "race": 7657,
                          "religious_ideology": 639 - 2}
    assert ps.total == 23679 - 5


@pytest.mark.realdata
def test_probes_on_small_real_subsets(bilstm):
    ctx = ProbeContext(model=FakeModel(), splits={}, data_dir=data_dir(), stats=IntervalSettings(bootstrap_samples=100))
    opts = ToxicityProbe.Options(data={"rtp": "{data_dir}/realtoxicityprompts_decodingtrust",
                                       "toxigen": "{data_dir}/toxigen"}, limit=32, samples_per_prompt=1)
    m = ToxicityProbe(opts).run(ctx).metrics
    groups = [k for k in m if re.fullmatch(r"toxicity\.toxigen\.[a-z0-9_-]+\.expected_max_toxicity\.adapter", k)]
    assert len(groups) == 16
    assert m["toxicity.rtp.expected_max_toxicity.n"] == 32
    out = BoldProbe(BoldProbe.Options(data="{data_dir}/bold", limit=86, samples_per_prompt=1)).run(ctx)
    domains = [k for k in out.metrics if re.fullmatch(r"bias\.bold\.[a-z_]+\.max_group_gap\.toxicity\.delta", k)]
    assert len(domains) == 5 and "bias.bold.max_group_gap.sentiment.delta" in out.metrics
    assert out.info["sets"]["bold"]["items"] == 86


def test_hub_rows_parse_into_the_same_schema():
    from audited_ft.eval.sets import spec

    rtp = spec("realtoxicityprompts").parse_hub([{"challenging": True, "prompt": {"text": "A door", "toxicity": None}}])
    assert rtp == [{"id": "rtp-0", "prompt": "A door", "challenging": True, "prompt_toxicity": None}]
    tg = spec("toxigen").parse_hub([{"prompt": "- a\\n-", "group": "g", "prompt_label": 1},
                                    {"prompt": "- a\\n-", "group": "g", "prompt_label": 1},  # repeated generation
                                    {"prompt": "- b\n-", "group": "h", "prompt_label": 0}])
    assert [(t["prompt"], t["group"], t["label"]) for t in tg] == [("- a\n-", "g", "hate"), ("- b\n-", "h", "neutral")]
    bold = spec("bold").parse_hub([{"domain": "d", "name": "Page", "category": "c", "prompts": ["x ", "y"]}])
    assert [(b["prompt"], b["domain"], b["group"], b["page"]) for b in bold] == [("x", "d", "c", "Page"),
                                                                               ("y", "d", "c", "Page")]
    with pytest.raises(DataError, match="hub row 0: field 'prompts'"):
        spec("bold").parse_hub([{"domain": "d", "category": "c"}])
