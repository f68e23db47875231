"""Model resolution: the embedded alias (real GGUF → cached safetensors), local folders, hub ids, errors."""

import pytest

from audited_ft.errors import ModelError
from audited_ft.models import EMBEDDED, build_prompt, resolve_model


def test_hub_id_passes_through_and_bad_folder_is_named(tmp_path):
    r = resolve_model("meta-llama/Llama-2-7b-hf")
    assert r.path == "meta-llama/Llama-2-7b-hf" and not r.embedded
    (tmp_path / "m").mkdir()
    with pytest.raises(ModelError, match="no config.json"):
        resolve_model(str(tmp_path / "m"))
    with pytest.raises(ModelError, match="no such folder"):
        resolve_model(str(tmp_path / "missing" / "model"))


@pytest.mark.slow
def test_embedded_alias_converts_once_and_loads_in_4bit():
    import torch

    from audited_ft.config import QuantizationConfig
    from audited_ft.models import load_base_model, load_tokenizer

    r = resolve_model("smollm2-135m-instruct")
    assert r.embedded and r.licence == EMBEDDED["smollm2-135m-instruct"]["licence"]
    tok = load_tokenizer(r)
    model = load_base_model(r, QuantizationConfig(), "cpu")
    import bitsandbytes as bnb

    n4 = sum(isinstance(m, bnb.nn.Linear4bit) for m in model.modules())
    assert n4 == 210  # 30 layers x 7 linear projections
    prompt = build_prompt(tok, "Answer briefly. {input}", "What is the capital of France?", True, None)
    assert prompt.endswith("<|im_start|>assistant\n")
    enc = tok(prompt, return_tensors="pt", add_special_tokens=False)
    with torch.inference_mode():
        out = model.generate(**enc, max_new_tokens=8, do_sample=False)
    assert "Paris" in tok.decode(out[0, enc["input_ids"].shape[1]:])


@pytest.mark.slow
def test_dequantised_base_generates_what_the_4bit_base_generates():
    """eval.dequantize_base is faithful: same NF4 values as float matrices → same greedy tokens."""
    import torch

    from audited_ft.config import QuantizationConfig
    from audited_ft.models import load_base_model, load_tokenizer

    r = resolve_model("smollm2-135m-instruct")
    tok = load_tokenizer(r)
    tok.padding_side = "left"
    prompts = [build_prompt(tok, "{input}", q, True, None) for q in
               ("Name three fruits.", "Summarize: #Person1#: Can I book a table for two? #Person2#: Yes, at 8 pm.",
                "What is 2 + 2?")]
    model = load_base_model(r, QuantizationConfig(), "cpu")
    enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.inference_mode():
        four_bit = model.generate(**enc, max_new_tokens=12, do_sample=False, pad_token_id=tok.pad_token_id)
        model = model.dequantize()
        dequant = model.generate(**enc, max_new_tokens=12, do_sample=False, pad_token_id=tok.pad_token_id)
    assert type(model.model.layers[0].mlp.down_proj) is torch.nn.Linear
    assert torch.equal(four_bit, dequant)
