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
def test_dequantisation_is_checked_against_the_4bit_base():
    """The evaluation path: a freshly loaded 4-bit base, dequantised into the explicit dtype, reproduces the 4-bit
    base's next-token logits within the tolerance. The check's own 4-bit forward pass repacks the weights on
    AVX512-BF16 CPUs; they are restored before dequantising, so this passes on every CPU."""
    import torch

    from audited_ft.config import QuantizationConfig
    from audited_ft.eval.dequant import dequantize_checked
    from audited_ft.models import load_base_model

    tok, prompts = _check_prompts()
    model = load_base_model(resolve_model("smollm2-135m-instruct"), QuantizationConfig(), "cpu")
    dequantised, check = dequantize_checked(model, tok, prompts, torch.float32, tolerance=0.1)
    assert check["passed"], check
    assert check["max_abs_logit_diff"] <= 0.05 * check["max_abs_logit"], check  # rounding only (0.9% measured)
    assert check["dtype"] == "float32" and check["prompts"] == 3
    assert type(dequantised.model.layers[0].mlp.down_proj) is torch.nn.Linear
    assert dequantised.model.layers[0].mlp.down_proj.weight.dtype == torch.float32


@pytest.mark.slow
def test_dequantising_a_base_that_already_ran_is_refused_where_the_library_gets_it_wrong():
    """The failure the check exists for, on real hardware: after a 4-bit forward pass bitsandbytes has repacked the
    weights on AVX512-BF16 CPUs and its dequantisation is garbage there (max |Δ logit| ~38 of 34). The check must then
    refuse; on other CPUs it passes. Either way no model that fails the bound is handed back."""
    import torch
    from bitsandbytes.functional import has_avx512bf16

    from audited_ft.config import QuantizationConfig
    from audited_ft.eval.dequant import dequantize_checked, next_token_logits
    from audited_ft.models import load_base_model

    tok, prompts = _check_prompts()
    model = load_base_model(resolve_model("smollm2-135m-instruct"), QuantizationConfig(), "cpu")
    next_token_logits(model, tok, prompts)
    dequantised, check = dequantize_checked(model, tok, prompts, torch.float32, tolerance=0.1)
    assert (dequantised is not None) == check["passed"]
    if has_avx512bf16():
        assert not check["passed"] and check["max_abs_logit_diff"] > check["bound"], check


def _check_prompts():
    from audited_ft.eval.dequant import CHECK_TEXTS
    from audited_ft.models import load_tokenizer

    tok = load_tokenizer(resolve_model("smollm2-135m-instruct"))
    tok.padding_side = "left"
    return tok, [build_prompt(tok, "{input}", q, True, None) for q in CHECK_TEXTS]


@pytest.mark.slow
def test_a_corrupted_dequantisation_is_refused_and_evaluation_keeps_the_4bit_base(monkeypatch, tmp_path):
    """A dequantisation that does not reproduce the 4-bit base (forced here by scrambling the dequantised weights) is
    caught: ModelUnderTest keeps a 4-bit base and its precision says the dequantised base was refused."""
    import bitsandbytes as bnb
    import torch
    from transformers import PreTrainedModel

    from audited_ft.config import validate_config
    from audited_ft.eval.model import ModelUnderTest
    from tests.tiny_model import build_tiny_llama

    real = PreTrainedModel.dequantize

    def scrambled(self, dtype=None):
        out = real(self, dtype=dtype)
        with torch.no_grad():
            for module in out.modules():
                if isinstance(module, torch.nn.Linear) and module.weight.dim() == 2:
                    module.weight.copy_(module.weight.flip(0))  # the right values in the wrong places
        return out

    monkeypatch.setattr(PreTrainedModel, "dequantize", scrambled)
    folder = build_tiny_llama(tmp_path / "tiny", ["Name three fruits . What is 2 + 2 ? Summarize : a table for two"])
    adapter = _tiny_adapter(folder, tmp_path / "adapter")
    cfg = validate_config({"model": {"name_or_path": str(folder), "use_chat_template": False},
                           "data": {"source": "unused.jsonl"}, "train": {"device": "cpu"}})
    mut = ModelUnderTest(cfg, adapter)
    assert mut.dequantize_check is not None and not mut.dequantize_check["passed"], mut.dequantize_check
    assert "refused by its check" in mut.precision
    assert any(isinstance(m, bnb.nn.Linear4bit) for m in mut.model.modules())


def _tiny_adapter(model_dir, out):
    """A LoRA adapter (B ≠ 0) of the tiny model, saved as safetensors."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(model_dir), LoraConfig(r=2, target_modules="all-linear"))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.01)
    model.save_pretrained(out)
    return out
