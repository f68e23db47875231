"""Dequantising the 4-bit base for evaluation, checked rather than assumed.

``eval.dequantize_base`` turns the NF4 base into ordinary float matrices of the same weight values, which decodes
several times faster. That is only faithful if the library dequantises correctly on this machine, and it does not
always: on CPUs with AVX512-BF16 (and AMX), bitsandbytes repacks each 4-bit weight into a layout of its own fused
CPU kernel the first time the layer runs in inference mode, and ``dequantize()`` then reads the repacked bytes as if
they were the standard layout — the "dequantised" model writes garbage (measured on a 2-core AMD EPYC with
AVX512-BF16: max |Δ next-token logit| 38 against the 4-bit model, every top-1 token different).

So :func:`dequantize_checked` (1) runs the 4-bit base on a few fixed prompts and keeps its next-token logits,
(2) restores every 4-bit weight and quantisation state exactly as they were before that forward pass (undoing any
repacking the library did), (3) dequantises into an explicit dtype (the compute dtype, never the library's pick),
(4) runs the same prompts and compares. The dequantised model is used only when the largest logit difference is
within ``tolerance`` × the largest |logit| of the 4-bit model; otherwise the caller keeps the 4-bit path and the
manifest and report say so. Why a relative bound: the 4-bit kernels compute in bfloat16 on some machines (the fused
CPU kernel, GPUs) and in float32 on others, so a correct dequantisation differs from them by rounding (0.31 of 34.4
on the CPU above, 0.9%); a wrong one by about the size of the logits themselves.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

log = logging.getLogger(__name__)

# Short, varied prompts: a list, arithmetic, and a dialogue like the task data. Next-token logits only.
CHECK_TEXTS = ("Name three fruits.", "What is 2 + 2?",
               "Summarize: #Person1#: Can I book a table for two? #Person2#: Yes, at 8 pm.")


def four_bit_weights(model) -> list:
    return [p for p in model.parameters() if type(p).__name__ == "Params4bit"]


def next_token_logits(model, tokenizer, prompts: list[str]):
    """Float32 logits of the next token after each prompt (left padding), shape (prompts, vocab)."""
    import torch

    enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
    with torch.inference_mode():
        return model(**enc).logits[:, -1].float().cpu()


def compare_logits(reference, candidate, tolerance: float) -> dict:
    """Largest |Δ logit| against ``tolerance`` × the largest |reference logit|, and top-1 agreement (shown only)."""
    diff = float((reference - candidate).abs().max())
    scale = float(reference.abs().max())
    bound = tolerance * scale
    return {"max_abs_logit_diff": round(diff, 4), "max_abs_logit": round(scale, 4), "tolerance": tolerance,
            "bound": round(bound, 4), "top1_agreement": float((reference.argmax(-1) == candidate.argmax(-1)).float()
                                                                  .mean()),
            "prompts": int(reference.shape[0]), "passed": diff <= bound}


def dequantize_checked(base, tokenizer, prompts: list[str], dtype, tolerance: float) -> tuple[Any, dict]:
    """(the dequantised model, the check) when the check passes, else (``None``, the check).

    ``base`` is a freshly loaded 4-bit model; it is modified in place either way (its 4-bit layers are replaced), so
    on failure the caller loads the 4-bit base again.
    """
    weights = four_bit_weights(base)
    # The forward pass below may repack weights in place (bitsandbytes' AVX512-BF16 CPU kernel): keep the tensors
    # and a deep copy of each quantisation state (the repacking mutates the state object itself) to put back.
    saved = [(p.data, copy.deepcopy(p.quant_state)) for p in weights]
    reference = next_token_logits(base, tokenizer, prompts)
    for p, (data, state) in zip(weights, saved):
        p.data, p.quant_state = data, state
    dequantised = base.dequantize(dtype=dtype)
    check = compare_logits(reference, next_token_logits(dequantised, tokenizer, prompts), tolerance)
    check["dtype"] = str(dtype).removeprefix("torch.")
    if not check["passed"]:
        log.warning("the dequantised base does not reproduce the 4-bit base (max |Δ logit| %.3f > %.3f): "
                    "evaluating with the 4-bit base instead", check["max_abs_logit_diff"], check["bound"])
        return None, check
    return dequantised, check
