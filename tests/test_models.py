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
