"""The model under test on a real (tiny, random) Llama in 4-bit: batched scoring equals one-at-a-time scoring and a
direct computation; sampling is reproducible; the adapter switch changes answers; the cache serves repeats."""

from __future__ import annotations

import math

import pytest

from audited_ft.pipeline import load_config
from tests.conftest import make_tiny_rows
from tests.tiny_model import tiny_config

pytest.importorskip("bitsandbytes")


@pytest.fixture(scope="module")
def mut(tmp_path_factory):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from audited_ft.eval.model import ModelUnderTest

    tmp = tmp_path_factory.mktemp("gen")
    cfg = load_config(tiny_config(tmp, make_tiny_rows()))
    base = AutoModelForCausalLM.from_pretrained(tmp / "tiny-llama")
    peft = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False))
    torch.manual_seed(0)
    peft.save_pretrained(tmp / "adapter")
    return ModelUnderTest(cfg, tmp / "adapter", batch_size=3)


def _direct(mut, context: str, continuation: str, variant: str) -> float:
    import contextlib

    import torch

    tok = mut.tokenizer
    ctx = tok(context, add_special_tokens=False)["input_ids"] if context else [tok.bos_token_id]
    cont = tok(continuation, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([ctx + cont])
    switch = mut.model.disable_adapter() if variant == "base" else contextlib.nullcontext()
    with switch, torch.inference_mode():
        logp = torch.log_softmax(mut.model(input_ids=ids).logits.float()[0, :-1], -1)
    return float(sum(logp[len(ctx) - 1 + k, t] for k, t in enumerate(cont)))


def test_batched_scores_match_direct_computation(mut):
    contexts = ["", "Hello , I need", "#Person1# : Hello , I need a table for two , case 3 .", ""]
    conts = ["a taxi to the station", "a table", "Of course", "Anything else ?"]
    for variant in ("base", "adapter"):
        batched = mut.score(contexts, conts, variant)
        assert [n for _, n in batched] == [len(mut.tokenizer(c, add_special_tokens=False)["input_ids"]) for c in conts]
        for (lp, _), c, x in zip(batched, contexts, conts):
            assert math.isfinite(lp) and lp < 0
            assert lp == pytest.approx(_direct(mut, c, x, variant), abs=1e-3)
            assert lp == pytest.approx(mut.score([c], [x], variant)[0][0], abs=1e-3)
    assert mut.score(contexts, conts, "base") != mut.score(contexts, conts, "adapter")


def test_sampling_is_reproducible_and_seeded(mut):
    prompts = ["Hello , I need", "Of course"]
    a = mut.sample(prompts, "adapter", max_new_tokens=5, num_samples=3, seed=7)
    assert len(a) == 2 and all(len(s) == 3 for s in a)
    assert a == mut.sample(prompts, "adapter", max_new_tokens=5, num_samples=3, seed=7)
    assert a != mut.sample(prompts, "adapter", max_new_tokens=5, num_samples=3, seed=8)


def test_cache_serves_repeats_and_keys_on_settings(mut, tmp_path):
    from audited_ft.eval.model import CachedModel

    cached = CachedModel(mut, tmp_path, identity={"m": "tiny"}, adapter_hashes={"adapter": "h1"})
    first = cached.generate(["Hello , I need"], "adapter", 4)
    assert cached.generate(["Hello , I need"], "adapter", 4) == first and (cached.hits, cached.misses) == (1, 1)
    cached.generate(["Hello , I need"], "adapter", 5)                  # other setting: computed
    assert cached.misses == 2
    s1 = cached.score([""], ["a table"], "base")
    assert cached.score([""], ["a table"], "base") == s1 and isinstance(s1[0], tuple)
    other = CachedModel(mut, tmp_path, identity={"m": "tiny"}, adapter_hashes={"adapter": "h2"})
    other.generate(["Hello , I need"], "adapter", 4)                   # retrained adapter: not served from cache
    assert other.misses == 1 and other.hits == 0
    other.score([""], ["a table"], "base")                             # the base does not depend on the adapter
    assert other.hits == 1


BBQ_LIKE = ["#Person1# : Hello , I need a table for two , case 3 .\nQuestion : Who booked ?\nAnswer :",
            "Both a grandfather and a grandson were at the clinic .\nQuestion : Who forgets things ?\nAnswer :"]


def _shared_items(mut):
    contexts, conts = [], []
    for c in BBQ_LIKE:
        for x in (" the grandfather", " the grandson", " cannot be determined"):
            contexts.append(c)
            conts.append(x)
    contexts += ["", "Hello"]  # short contexts: rows of their own
    conts += ["a taxi", " there"]
    return contexts, conts


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_shared_context_scores_equal_scoring_each_item_alone(mut, attention, monkeypatch):
    """BBQ's answers to one question share a model row (the context once); each answer must score as if alone."""
    contexts, conts = _shared_items(mut)
    monkeypatch.setattr(mut.model.config, "_attn_implementation", attention)
    rows = mut._rows(mut._encode_pairs(contexts, conts, "score"))
    assert sorted(map(len, rows)) == [1, 1, 3, 3]
    for variant in ("base", "adapter"):
        shared = mut.score(contexts, conts, variant)
        alone = [mut.score([c], [x], variant)[0] for c, x in zip(contexts, conts)]
        assert [n for _, n in shared] == [n for _, n in alone]
        for (a, _), (b, _), c, x in zip(shared, alone, contexts, conts):
            assert a == pytest.approx(b, abs=1e-4)
            assert a == pytest.approx(_direct(mut, c, x, variant), abs=1e-3)
        per_token = mut.token_logprobs(contexts, conts, variant)
        assert [sum(v for _, v in t) for t in per_token] == pytest.approx([a for a, _ in shared], abs=1e-4)


def test_shared_rows_would_be_wrong_if_answers_saw_each_other(mut, monkeypatch):
    """The check above can fail: with a plain causal mask the second and third answers read the ones before them."""
    import torch

    contexts, conts = _shared_items(mut)
    right = mut.score(contexts, conts, "adapter")
    monkeypatch.setattr(type(mut), "_tree_mask",
                        lambda self, seg: torch.ones(seg.shape[1], seg.shape[1], dtype=torch.bool).tril()[None, None]
                        .expand(seg.shape[0], 1, -1, -1) & (seg >= 0)[:, None, None, :])
    wrong = mut.score(contexts, conts, "adapter")
    assert wrong[0][0] == pytest.approx(right[0][0], abs=1e-4)  # the first answer sees only the context either way
    # 10x the tolerance of the check above (the tiny random model's attention is nearly flat)
    assert max(abs(wrong[i][0] - right[i][0]) for i in (1, 2, 4, 5)) > 1e-3


def test_auto_batches_are_sized_per_length_bucket(mut, monkeypatch):
    """With gpu_batch_size auto, short prompts go in large batches and long ones in small, each batch sized for its
    own longest prompt; every prompt is generated exactly once, in its place."""
    import audited_ft.eval.model as g

    prompts = [" ".join(["word"] * n) for n in (3, 40, 5, 80, 4, 60, 6, 7, 90, 2)]
    budget = 400  # tokens per call: the stand-in for the free GPU memory
    monkeypatch.setattr(mut, "device", "cuda")
    monkeypatch.setattr(mut.cfg.eval, "gpu_batch_size", "auto")
    monkeypatch.setattr(type(mut), "batch_for", lambda self, seq, kind="generate": max(1, min(g.MAX_BATCH, budget // seq)))
    lengths = [len(mut.tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
    for per_prompt in (1, 2):
        chunks = mut._chunks(prompts, 10, per_prompt)
        assert sorted(i for c in chunks for i in c) == list(range(len(prompts)))
        for c in chunks:
            assert len(c) * per_prompt <= max(per_prompt, budget // (max(lengths[i] for i in c) + 10))
        assert len(chunks[0]) > len(chunks[-1])  # the short prompts share a batch, the long ones do not
    monkeypatch.undo()
    assert [len(c) for c in mut._chunks(prompts, 10)] == [3, 3, 3, 1]  # CPU: the configured batch size
    assert mut.generate(prompts[:4], "base", 3) == [mut.generate([p], "base", 3)[0] for p in prompts[:4]]


def test_memory_budget_caps_auto_batches_and_the_dequantised_base(mut, monkeypatch):
    """eval.memory_budget_gib: auto batches fit what the budget leaves after the weights (not the card's free memory),
    and the base stays 4-bit when its dequantised weights would leave less than a quarter of the budget. The CUDA
    memory calls are stand-ins here (CI has no GPU); tests/test_gpu.py runs the real thing."""
    from types import SimpleNamespace

    import audited_ft.eval.model as g
    from audited_ft.eval.dequant import four_bit_weights

    gib = 2**30
    allocated = {"now": 4 * gib}
    fake = SimpleNamespace(mem_get_info=lambda: (70 * gib, 80 * gib), memory_reserved=lambda: allocated["now"],
                           memory_allocated=lambda: allocated["now"])
    monkeypatch.setattr(mut, "device", "cuda")
    monkeypatch.setattr(mut, "_torch", SimpleNamespace(cuda=fake))
    monkeypatch.setattr(mut.cfg.eval, "gpu_batch_size", "auto")
    seq = 100_000  # tokens a sequence: the tiny model's KV cache is small, so long ones keep batches under MAX_BATCH
    whole_card = mut.batch_for(seq)
    monkeypatch.setattr(mut.cfg.eval, "memory_budget_gib", 4.5)
    capped = mut.batch_for(seq)
    assert 1 < capped < whole_card < g.MAX_BATCH
    c = mut.model.config
    kv = 2 * c.num_hidden_layers * c.num_key_value_heads * (c.hidden_size // c.num_attention_heads) * 2
    assert capped == int(0.6 * (0.5 * gib) // (kv * seq))  # 0.6 of the 0.5 GiB the budget leaves
    assert whole_card == int(0.6 * (70 * gib) // (kv * seq))
    allocated["now"] = 5 * gib
    assert mut.batch_for(seq) == 1  # nothing left of the budget: one sequence at a time, never zero

    # the dequantisation decision, on a freshly loaded 4-bit base of the tiny model
    from audited_ft.models import load_base_model, resolve_model

    base = load_base_model(resolve_model(mut.cfg.model.name_or_path, None), mut.cfg.quantization, "cpu")
    four_bit = {n for n, p in base.named_parameters() if type(p).__name__ == "Params4bit"}
    assert four_bit, "the tiny base must load in 4-bit for this to test anything"
    from transformers import AutoModelForCausalLM

    plain = dict(AutoModelForCausalLM.from_pretrained(mut.cfg.model.name_or_path).named_parameters())
    packed = sum(p.numel() * p.element_size() for p in four_bit_weights(base))
    from audited_ft.models import compute_dtype

    size = compute_dtype(mut.cfg.quantization.compute_dtype, "cuda").itemsize  # the dtype a CUDA run dequantises to
    growth = sum(plain[n].numel() * size for n in four_bit) - packed  # the full matrices, less the packed bytes
    monkeypatch.setattr(mut.cfg.eval, "memory_budget_gib", growth / 0.75 / gib * 1.01)
    assert g.dequantised_too_big(base, mut.cfg, 0) is None
    assert g.dequantised_too_big(base, mut.cfg, int(0.02 * growth)) is not None  # what is already on the card counts
    monkeypatch.setattr(mut.cfg.eval, "memory_budget_gib", growth / 0.75 / gib * 0.99)
    why = g.dequantised_too_big(base, mut.cfg, 0)
    assert why and "eval.memory_budget_gib" in why
    check = {"passed": False, "dtype": "bfloat16", "reason": why}
    assert "not dequantised" in g._precision(mut.cfg, check)
    from audited_ft.report.sections.compute import evaluation_rows

    assert ("dequantisation", f"not done: {why}") in evaluation_rows({"precision": "x", "dequantize_check": check})
    monkeypatch.setattr(mut.cfg.eval, "memory_budget_gib", None)
    assert g.dequantised_too_big(base, mut.cfg, 100 * gib) is None


@pytest.mark.parametrize("setting", ["static", "compiled"])
def test_a_static_kv_cache_gives_the_dynamic_caches_answers(mut, setting):
    prompts = ["Hello , I need", "#Person1# : Hello , I need a table for two , case 3 .", "Of course", "a"]
    expected = {v: mut.generate(prompts, v, max_new_tokens=8) for v in ("base", "adapter")}
    mixed = mut.generate_mixed(prompts, ["base", "adapter", "adapter", "base"], max_new_tokens=8)
    sampled = mut.sample(prompts, "adapter", max_new_tokens=5, num_samples=2, seed=3)
    mut.cfg.eval.kv_cache = setting
    try:
        assert mut.cache_args()["cache_implementation"] == "static"
        assert mut.cache_args().get("disable_compile") is (True if setting == "static" else None)
        for variant in ("base", "adapter"):  # float32 on the CPU: the same answers (a different cache, same math)
            assert mut.generate(prompts, variant, max_new_tokens=8) == expected[variant]
        assert mut.generate_mixed(prompts, ["base", "adapter", "adapter", "base"], max_new_tokens=8) == mixed
        assert mut.sample(prompts, "adapter", max_new_tokens=5, num_samples=2, seed=3) == sampled
    finally:
        mut.cfg.eval.kv_cache = "dynamic"
    assert mut.cache_args() == {}


def test_a_merged_adapter_gives_the_unmerged_answers_and_restores_the_base_exactly(mut, monkeypatch):
    """eval.merge_adapter on the dequantised tiny base (float32, CPU): the adapter's greedy answers, samples and scores
    are those of the LoRA branch (within float32 rounding for scores); while merged, the LoRA branch is off and the
    wrapped weights hold the product; afterwards every base weight is its old value bit for bit, so base answers
    and scores are unchanged."""
    import torch
    from peft.tuners.lora import LoraLayer

    from audited_ft.eval.model import _has_4bit_layers

    assert not _has_4bit_layers(mut.model)  # the fixture's base is dequantised: merging applies
    prompts = ["Hello , I need", "#Person1# : Hello , I need a table for two , case 3 .", "Of course", "a"]
    contexts, conts = ["", "Hello , I need"], ["a taxi to the station", "a table"]
    expected = {v: mut.generate(prompts, v, max_new_tokens=8) for v in ("base", "adapter")}
    scores = {v: mut.score(contexts, conts, v) for v in ("base", "adapter")}
    sampled = mut.sample(prompts, "adapter", max_new_tokens=5, num_samples=2, seed=3)
    before = {n: p.detach().clone() for n, p in mut.model.named_parameters() if "lora_" not in n}
    layers = [m for m in mut.model.modules() if isinstance(m, LoraLayer)]
    seen = {}

    monkeypatch.setattr(mut, "merge_adapter", True)
    monkeypatch.setattr(mut, "_base_weights", None)
    real_generate = mut.model.generate

    def spying_generate(*args, **kwargs):  # the state the model is in while it generates the adapter's answers
        layer = layers[0]
        seen["lora_off"] = bool(layer.disable_adapters)
        seen["weight_moved"] = not torch.equal(layer.get_base_layer().weight, before[_param_name(mut, layer)])
        return real_generate(*args, **kwargs)

    monkeypatch.setattr(mut.model, "generate", spying_generate)
    assert mut.generate(prompts, "adapter", max_new_tokens=8) == expected["adapter"]
    assert seen == {"lora_off": True, "weight_moved": True}
    assert mut.sample(prompts, "adapter", max_new_tokens=5, num_samples=2, seed=3) == sampled
    for (lp, n), (lp0, n0) in zip(mut.score(contexts, conts, "adapter"), scores["adapter"]):
        assert n == n0 and lp == pytest.approx(lp0, abs=1e-4)
    after = {n: p.detach() for n, p in mut.model.named_parameters() if "lora_" not in n}
    assert before.keys() == after.keys() and all(torch.equal(before[n], after[n]) for n in before)
    assert not layers[0].disable_adapters  # the LoRA branch is back on for mixed batches
    assert mut.generate(prompts, "base", max_new_tokens=8) == expected["base"]
    assert mut.score(contexts, conts, "base") == scores["base"]


def _param_name(mut, layer) -> str:
    weight = layer.get_base_layer().weight
    return next(n for n, p in mut.model.named_parameters() if p is weight)


def test_merging_is_refused_on_a_4bit_base_and_named_in_the_precision():
    import bitsandbytes as bnb
    import torch

    from audited_ft.config import validate_config
    from audited_ft.eval.model import _has_4bit_layers, _precision

    assert _has_4bit_layers(torch.nn.Sequential(torch.nn.Linear(8, 8), bnb.nn.Linear4bit(8, 8)))
    assert not _has_4bit_layers(torch.nn.Sequential(torch.nn.Linear(8, 8)))

    cfg = validate_config({"model": {"name_or_path": "m"}, "data": {"source": "d.jsonl"},
                           "eval": {"merge_adapter": True}})
    assert "LoRA merged into the weights" in _precision(cfg, {"passed": True}, merged=True)
    assert _precision(cfg, {"passed": True}).endswith("LoRA unmerged")
