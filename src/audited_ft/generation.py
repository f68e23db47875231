"""The model under test: one 4-bit base in memory, the adapter switched on or off per call.

Base and adapter therefore differ only by the LoRA weights — same quantised base, same prompts, same decoding.
"""

from __future__ import annotations

import logging
from pathlib import Path

from audited_ft.config import Config

log = logging.getLogger(__name__)


class ModelUnderTest:
    variants = ("base", "adapter")

    def __init__(self, cfg: Config, adapter_dir: Path, batch_size: int = 16):
        import torch
        from peft import PeftModel

        from audited_ft.errors import ModelError
        from audited_ft.models import load_base_model, load_tokenizer, pick_device, resolve_model

        self.cfg = cfg
        self.batch_size = batch_size
        self.device = pick_device(cfg.train.device)
        resolved = resolve_model(cfg.model.name_or_path, cfg.model.licence)
        self.tokenizer = load_tokenizer(resolved, cfg.model.revision, cfg.model.trust_remote_code)
        self.tokenizer.padding_side = "left"
        base = load_base_model(resolved, cfg.quantization, self.device, cfg.model.revision, cfg.model.trust_remote_code)
        self.precision = _precision(cfg)
        if cfg.quantization.load_in_4bit and cfg.eval.dequantize_base:
            base = base.dequantize()
        try:
            self.model = PeftModel.from_pretrained(base, str(adapter_dir))
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelError(f"{adapter_dir}: cannot load this adapter on {cfg.model.name_or_path!r}: "
                             f"{str(exc).splitlines()[0][:300]}") from None
        self.model.eval()
        self._torch = torch

    def prompt(self, text: str) -> str:
        from audited_ft.models import build_prompt

        return build_prompt(self.tokenizer, self.cfg.data.prompt_template, text, self.cfg.model.use_chat_template,
                            self.cfg.model.system_prompt)

    def generate(self, prompts: list[str], variant: str, max_new_tokens: int) -> list[str]:
        """Greedy continuations, batched by similar length (left padding), in the order of ``prompts``."""
        import contextlib

        from tqdm.auto import tqdm

        torch = self._torch
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        out: list[str | None] = [None] * len(prompts)
        ctx = self.model.disable_adapter() if variant == "base" else contextlib.nullcontext()
        with ctx, torch.inference_mode():
            for start in tqdm(range(0, len(order), self.batch_size), desc=f"generate ({variant})", leave=False):
                idx = order[start:start + self.batch_size]
                enc = self.tokenizer([prompts[i] for i in idx], return_tensors="pt", padding=True,
                                     add_special_tokens=False).to(self.model.device)
                gen = self.model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                          pad_token_id=self.tokenizer.pad_token_id)
                texts = self.tokenizer.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
                for i, t in zip(idx, texts):
                    out[i] = t.strip()
        return out  # type: ignore[return-value]


def _precision(cfg: Config) -> str:
    q = cfg.quantization
    if not q.load_in_4bit:
        return f"unquantised base, compute {q.compute_dtype}"
    how = f"{q.quant_type}{'+double_quant' if q.double_quant else ''}"
    if cfg.eval.dequantize_base:
        return f"{how} base dequantised to the compute dtype for generation (same weight values), LoRA unmerged"
    return f"{how} 4-bit base, LoRA unmerged"
