"""The explain probe and its report view: per-token log-probs that sum to ``score`` on a real tiny Llama, a probe that
picks seeded items and ranks tokens by change, and a view whose token texts stay escaped text."""

from __future__ import annotations

import math

import pytest

from audited_ft.errors import DataError
from audited_ft.eval.probes import PROBES, ProbeContext
from audited_ft.eval.stats import IntervalSettings
from tests.fakes import FakeModel


@pytest.fixture
def splits():
    rows = [{"id": f"t{i}", "input": f"dialogue {i}", "target": f"person {i} books a table for {i} people"}
            for i in range(30)]
    return {"train": rows[:10], "validation": rows[10:15], "test": rows[15:]}


def _run(splits, model=None, **options):
    cls = PROBES.get("explain")
    model = model or FakeModel(splits["test"])
    return cls(cls.Options(**options)).run(ProbeContext(model=model, splits=splits,
                                                        stats=IntervalSettings(bootstrap_samples=200, seed=3)))


# the fake model ------------------------------------------------------------------------------------------------------
def test_fake_token_logprobs_agree_with_its_score():
    fake = FakeModel()
    contexts, conts = ["<prompt>a", ""], ["  person 3 books\n a table ", "x"]
    for variant in ("base", "adapter"):
        toks = fake.token_logprobs(contexts, conts, variant)
        assert ["".join(t for t, _ in item) for item in toks] == conts
        for item, (lp, n) in zip(toks, fake.score(contexts, conts, variant)):
            assert sum(v for _, v in item) == pytest.approx(lp, abs=1e-9) and len(item) == n
    base, adapter = (fake.token_logprobs(contexts, conts, v)[0] for v in ("base", "adapter"))
    assert max(abs(a - b) for (_, a), (_, b) in zip(adapter, base)) > 0.05


# the probe ------------------------------------------------------------------------------------------------------------
def test_probe_metrics_and_info(splits):
    out = _run(splits, limit=4, top_k=3)
    m = out.metrics
    assert m["explain.reference_logprob_per_token.n"] == 4
    assert m["explain.reference_logprob_per_token.delta"] == pytest.approx(
        m["explain.reference_logprob_per_token.adapter"] - m["explain.reference_logprob_per_token.base"], abs=1e-9)
    items = out.info["items"]
    assert len(items) == 4 and set(items) <= {r["id"] for r in splits["test"]}
    row = {r["id"]: r for r in splits["test"]}
    for item_id, item in items.items():
        assert "".join(t["text"] for t in item["tokens"]) == row[item_id]["target"]
        assert item["n_tokens"] == len(row[item_id]["target"].split()) and not item["truncated"]
        for t in item["tokens"]:
            assert t["delta"] == pytest.approx(t["adapter"] - t["base"], abs=2e-4)
        assert len(item["top"]) == 3
        ranked = sorted((abs(t["delta"]) for t in item["tokens"]), reverse=True)
        assert [abs(t["delta"]) for t in item["top"]] == pytest.approx(ranked[:3], abs=1e-4)
        assert all(item["tokens"][t["index"]]["text"] == t["text"] for t in item["top"])
        mean = item["mean_logprob_per_token"]
        assert mean["base"] == pytest.approx(sum(t["base"] for t in item["tokens"]) / item["n_tokens"], abs=1e-3)


def test_probe_choice_is_seeded_and_capped(splits):
    a, b = _run(splits, limit=5), _run(splits, limit=5)
    assert list(a.info["items"]) == list(b.info["items"])
    assert len(_run(splits, limit=50).info["items"]) == len(splits["test"])
    short = _run(splits, limit=3, max_tokens=2, context_chars=5)
    item = next(iter(short.info["items"].values()))
    assert len(item["tokens"]) == 2 and item["truncated"] and len(item["input_excerpt"]) <= 5


def test_probe_rejects_bad_rows(splits):
    with pytest.raises(DataError, match=r"row id 't15'.*'target'"):
        _run({**splits, "test": [{"id": "t15", "input": "x", "target": None}]})
    with pytest.raises(DataError, match="split 'validation' is absent"):
        _run({"test": splits["test"]}, split="validation")
    empty = _run({**splits, "test": [{"id": "e", "input": "x", "target": "  "}]})
    assert not empty.metrics and "not measured" in empty.info["status"]


# the real model -------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mut(tmp_path_factory):
    pytest.importorskip("bitsandbytes")
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from audited_ft.eval.model import ModelUnderTest
    from audited_ft.pipeline import load_config
    from tests.conftest import make_tiny_rows
    from tests.tiny_model import tiny_config

    tmp = tmp_path_factory.mktemp("explain")
    cfg = load_config(tiny_config(tmp, make_tiny_rows()))
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tmp / "tiny-llama")
    peft = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False))
    peft.save_pretrained(tmp / "adapter")
    return ModelUnderTest(cfg, tmp / "adapter", batch_size=2)


def test_token_logprobs_sum_to_score_on_a_real_model(mut, tmp_path):
    from audited_ft.eval.model import CachedModel

    contexts = ["", "Hello , I need", "#Person1# : Hello , I need a table for two , case 3 .", "Of course"]
    conts = ["a taxi to the station", " a table", "Of course  ,\nzzzunknownword", "Anything else ?"]
    per_variant = {}
    for variant in ("base", "adapter"):
        toks = mut.token_logprobs(contexts, conts, variant)
        per_variant[variant] = toks
        for item, x, (lp, n) in zip(toks, conts, mut.score(contexts, conts, variant)):
            assert "".join(t for t, _ in item) == x
            assert len(item) == n and all(math.isfinite(v) and v < 0 for _, v in item)
            assert sum(v for _, v in item) == pytest.approx(lp, abs=1e-4)
    assert [t for t, _ in per_variant["base"][0]] == ["a", " taxi", " to", " the", " station"]
    assert per_variant["base"] != per_variant["adapter"]
    cached = CachedModel(mut, tmp_path, identity={"m": "tiny"}, adapter_hashes={"adapter": "h"})
    first = cached.token_logprobs(contexts, conts, "adapter")
    again = cached.token_logprobs(contexts, conts, "adapter")
    assert again == first == per_variant["adapter"] and (cached.hits, cached.misses) == (1, 1)
    assert isinstance(again[0][0], tuple)


# the report view ------------------------------------------------------------------------------------------------------
class _PlantedModel(FakeModel):
    """The adapter's second word is a planted markup token; the fake's words make it its own token."""

    def token_logprobs(self, contexts, continuations, variant):
        out = super().token_logprobs(contexts, continuations, variant)
        return [[(t, v + (2.0 if "<script>" in t and variant != "base" else 0.0)) for t, v in item] for item in out]


def _render(view, **extra):
    from audited_ft.report.format import environment as _environment
    from audited_ft.report.format import template_dir

    env = _environment(template_dir())
    assert env.autoescape is True
    return env.get_template("sections/_explanation.html.j2").render(explanation=view, ci_label="95% CI", **extra)


def test_view_renders_tokens_escaped_with_a_text_carrier(splits):
    from audited_ft.report.sections.explanation import explanation_view

    rows = [{"id": "x1", "input": "dialogue", "target": "hello <script>alert(1)</script> world \"q\""}]
    out = _run({**splits, "test": rows}, model=_PlantedModel(rows), top_k=2)
    probes = {"explain": {"description": "d", "limitations": "only N items", "status": "done", "info": out.info}}
    view = explanation_view(probes, out.metrics)
    tokens = view["items"][0]["tokens"]
    planted = next(t for t in tokens if "<script>" in t["text"])
    assert planted["mark"] == "▲1" and planted["style"].startswith("background-color: rgba(33, 102, 172,")
    html = _render(view)
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html.count('<span class="tok"') == len(tokens) + len(view["legend"])
    assert '<sup class="tok-mark">▲1</sup>' in html                          # the mark carries the direction as text
    assert planted["delta"] > 1.5 and planted["adapter"] > planted["base"]
    assert (f'title="log-probability: base {planted["base"]:.3f} → adapter {planted["adapter"]:.3f} nats '
            f'(change {planted["delta"]:+.3f})"') in html                # the title carries the values as text
    assert "reference_logprob_per_token" in html and "only N items" in html
    assert "rgba(230, 97, 1" in html                                       # the legend shows the "down" colour too


def test_view_explains_what_is_missing():
    from audited_ft.report.sections.explanation import explanation_view

    assert explanation_view(None) is None
    skipped = explanation_view({"explain": {"status": "skipped", "reason": "not enabled in config"}})
    assert skipped["items"] == [] and "not enabled in config" in skipped["why"]
    assert "no 'explain' entry" in explanation_view({"rouge": {}})["why"]
    bad = {"explain": {"status": "done", "info": {"items": {"a": {"tokens": [{"text": "x", "delta": "1;color:red"}]}}}}}
    view = explanation_view(bad)
    assert view["items"] == [] and "eval/probes.json" in view["why"] and "tokens[0].delta" in view["why"]
    assert "1;color:red" in view["why"]
    html = _render(view)
    assert "Not measured in this run" in html and "tokens[0].delta" in html and "style=\"1;color" not in html
