"""The model under test on a real (tiny, random) Llama in 4-bit: batched scoring equals one-at-a-time scoring and a
direct computation; sampling is reproducible; the adapter switch changes answers; the cache serves repeats."""

from __future__ import annotations

import math

import pytest

from audited_ft.config import load_config
from tests.conftest import make_tiny_rows
from tests.tiny_model import tiny_config

pytest.importorskip("bitsandbytes")


@pytest.fixture(scope="module")
def mut(tmp_path_factory):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from audited_ft.generation import ModelUnderTest

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
    from audited_ft.generation import CachedModel

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
