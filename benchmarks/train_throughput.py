"""QLoRA training throughput on a realistic length distribution: stock padded batches vs our packed path (issue 7).

Useful tokens per second (pad tokens do not count) and peak GPU memory for each configuration, on the 7B-shaped random
Llama that ``../shared/bench/stock_qlora_baseline.py`` writes to /tmp/llama_7b (run that script first, in the same
device call: its fixed-length figures are the reference the issue quotes). Row lengths are drawn (seeded) from
``benchmarks/data/dialogsum_train_token_lengths.json`` — DialogSum train rows as trained (chat + prompt template,
SmolLM2 tokenizer; lengths only) — and cut at ``--max-length``.

The objective: by default every stock and packed row computes its loss on its target tokens only (the last 15% of
each row, as the harness's rows and TRL's completion-only loss do); ``:alltok`` restores the older loss on every token.
Batches are drawn from one fixed seed (``--seed``), so every configuration sees the same row lengths.

Configurations (``--configs``, comma-separated; the model is loaded once per group of equal checkpointing/kernels):
  stock:B=4            B rows per step padded to the longest (dynamic padding, the HF default), attention mask,
                       paged AdamW 32-bit, gradient checkpointing — the tutorial's stock recipe on real lengths
  packed:T=4096:L=1024 examples packed first-fit into T/L rows of at most L tokens (L defaults to T), T tokens per
                       step, no attention mask: position ids restart per example, so attention stays within an
                       example (transformers' packed-sequence mask); paged AdamW 8-bit
  stock:B=4:group      the same, batches drawn as HF Trainer's ``group_by_length=True`` draws them (transformers'
                       LengthGroupedSampler: megabatches of 50·B random rows, each sorted by length, cut into batches)
  trl:B=8:L=512        STOCK TRL: SFTTrainer as its documentation recommends for throughput — ``packing=True`` with
                       its best-fit-decreasing packing (``packing_strategy="bfd"``) and ``padding_free=True`` (the
                       packed rows flattened into one sequence with position ids, no padding at all; SDPA here, as
                       flash-attention is not installed on the device image), B packed sequences of L tokens per
                       step, loss on the target tokens only (``completion_only_loss``), paged AdamW 8-bit, bf16,
                       gradient checkpointing; ``trl+liger`` adds ``use_liger_kernel=True``
  ...+liger            liger-kernel's fused RMSNorm, RoPE, SwiGLU and fused linear cross-entropy
  ...:nogc             without gradient checkpointing
  ...:drop0            LoRA dropout 0 instead of the stock recipe's 0.05 (PEFT then skips the dropout op)
  ...:bf16norms        (stock, harness) the embeddings, norms and output head stay bf16: no
                       prepare_model_for_kbit_training upcast to float32 (the harness: train.unquantised_dtype=compute);
                       stock TRL never upcasts them
  ...:compile          (stock, harness) every decoder layer compiled in place by torch.compile (PyTorch's regional
                       compilation; the harness: train.compile=layers); the compilation falls in the warm-up steps
  harness:budget=8     THE TRAINING STAGE'S OWN PATH: audited_ft.train.stage.build_trainer with train.memory_budget_gib=8
                       and every other train setting at its default (packing, kernels and checkpointing on "auto",
                       so the micro-batch and checkpointing come from the stage's calibration), LoRA as the stock
                       recipe (r=64, alpha 16, dropout 0.05, all linear layers), trained with trainer.train() on
                       pre-tokenised rows of the same lengths (15% of each row is the target); a callback times
                       each optimizer step

    python3 benchmarks/train_throughput.py --model /tmp/llama_7b --configs stock:B=4,packed:T=4096 --out $OUT
    python3 benchmarks/train_throughput.py --table $OUT/stock/train_throughput.json $OUT/harness/train_throughput.json
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import re
import statistics
import time
from pathlib import Path

import torch

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
TARGET_SHARE = 0.15  # the share of each row that is the target (the summary): the loss is computed there only


def parse(spec: str) -> dict:
    kind, *opts = spec.split(":")
    base, *extras = kind.split("+")
    cfg = {"spec": spec, "kind": base, "liger": "liger" in extras, "gc": True, "B": 4, "T": 4096, "L": None,
           "dropout": 0.05, "budget": None, "group": False, "alltok": False, "bf16norms": False, "compile": False}
    for o in opts:
        if o == "nogc":
            cfg["gc"] = False
        elif o in ("group", "alltok", "bf16norms", "compile"):
            cfg[o] = True
        elif o == "drop0":
            cfg["dropout"] = 0.0
        else:
            k, v = o.split("=")
            cfg[k] = float(v) if k == "budget" else int(v)
    cfg["L"] = cfg["L"] or cfg["T"]
    return cfg


def batches(cfg: dict, lengths: list[int], steps: int, seed: int) -> list[list[list[int]]]:
    """Per optimizer step, the batch rows, each a list of example lengths: B examples one per row (stock), or
    examples packed first-fit into T/L rows of at most L tokens (packed)."""
    rng = random.Random(seed)
    out = []
    if cfg["kind"] == "stock" and cfg["group"]:
        from transformers.trainer_pt_utils import LengthGroupedSampler

        # The pool is exactly the rows of these steps: with fewer than 50 steps it is one megabatch, wholly sorted
        # (less padding than a real epoch's megabatches give: in stock's favour). The sampler puts the longest batch
        # first; the batches are shuffled so the warm-up steps are not always the longest.
        pool = [rng.choice(lengths) for _ in range(cfg["B"] * steps)]
        g = torch.Generator().manual_seed(seed)
        order = list(LengthGroupedSampler(cfg["B"], lengths=pool, generator=g))
        out = [[[pool[i]] for i in order[k * cfg["B"]:(k + 1) * cfg["B"]]] for k in range(steps)]
        rng.shuffle(out)
        return out
    for _ in range(steps):
        if cfg["kind"] == "stock":
            out.append([[rng.choice(lengths)] for _ in range(cfg["B"])])
            continue
        bins: list[list[int]] = [[] for _ in range(max(1, cfg["T"] // cfg["L"]))]
        misses = 0
        while misses < 8:  # stop after 8 draws in a row that fit nowhere
            n = rng.choice(lengths)
            fit = next((b for b in bins if sum(b) + n <= cfg["L"]), None)
            if fit is None:
                misses += 1
            else:
                fit.append(n)
        out.append([b for b in bins if b])
    return out


def tensors(cfg: dict, rows: list[list[int]], vocab: int) -> dict:
    width = max(sum(r) for r in rows)
    ids = torch.randint(0, vocab, (len(rows), width), device="cuda")
    if cfg["kind"] == "stock":
        mask = torch.zeros_like(ids)
        labels = torch.full_like(ids, -100)
        for i, (n,) in enumerate(rows):
            mask[i, :n] = 1
            first = 0 if cfg["alltok"] else n - max(1, round(n * TARGET_SHARE))
            labels[i, first:n] = ids[i, first:n]
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}
    # packed: no attention mask; position ids restart at every example, which transformers turns into a
    # block-diagonal causal mask (examples never see each other); a row's tail padding is one more "example"
    pos = torch.zeros_like(ids)
    labels = ids.clone() if cfg["alltok"] else torch.full_like(ids, -100)
    for i, row in enumerate(rows):
        start = 0
        for n in row + ([width - sum(row)] if sum(row) < width else []):
            pos[i, start:start + n] = torch.arange(n, device="cuda")
            if cfg["alltok"]:
                labels[i, start] = -100  # no loss across an example boundary
            elif start < sum(row):
                first = start + n - max(1, round(n * TARGET_SHARE))
                labels[i, first:start + n] = ids[i, first:start + n]
            start += n
        labels[i, sum(row):] = -100
    return {"input_ids": ids, "position_ids": pos, "labels": labels}


def load(path: str, use_gc: bool, liger: bool, dropout: float, bf16norms: bool = False, compiled: bool = False):
    import bitsandbytes  # noqa: F401
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    if liger:
        from liger_kernel.transformers import apply_liger_kernel_to_llama

        apply_liger_kernel_to_llama(rope=True, rms_norm=True, swiglu=True, fused_linear_cross_entropy=True)
    q = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                           bnb_4bit_compute_dtype=torch.bfloat16)
    model = AutoModelForCausalLM.from_pretrained(path, quantization_config=q, dtype=torch.bfloat16,
                                                 device_map={"": 0}, attn_implementation="sdpa")
    if bf16norms:  # what prepare_model_for_kbit_training (PEFT 0.21) does, less its float32 upcast
        for p in model.parameters():
            p.requires_grad_(False)
        if use_gc:
            model.enable_input_require_grads()
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={})
    else:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=use_gc)
    model.config.use_cache = False
    model = get_peft_model(model, LoraConfig(r=64, lora_alpha=16, lora_dropout=dropout, target_modules=TARGETS,
                                             task_type="CAUSAL_LM"))
    if compiled:  # a stock user's regional compilation, as PyTorch's recipe does it: each decoder layer in place
        for layer in model.base_model.model.model.layers:
            layer.compile()
    return model


KERNEL_KINDS = [  # (kind, substrings of a CUDA kernel's name, lower case): where a training step's GPU time goes
    ("4-bit dequantise (bitsandbytes)", ("kdequantize", "dequantize")),
    ("optimizer (bitsandbytes)", ("koptimizer", "kpreconditionoptimizer", "optimizer")),
    ("attention", ("flash", "fmha", "attention", "efficient_attention", "sdpa")),
    # nvjet_*: cuBLAS's GEMM kernels on Hopper (H100/H200); before 2026-12-07 they fell under "other"
    ("matmul (GEMM)", ("nvjet", "gemm", "xmma", "cutlass", "cublas", "s16816", "wgmma", "gemv")),
    ("liger / triton fused ops", ("_rms_norm", "rms_norm", "swiglu", "rope", "cross_entropy", "triton")),
    ("copies and memsets", ("memcpy", "memset", "copy_kernel", "cat", "index")),
    ("element-wise and reductions", ("elementwise", "reduce", "softmax", "norm", "mul", "add", "dropout")),
]


def kernel_kind(name: str) -> str:
    """The KERNEL_KINDS kind of a CUDA kernel's name; dtype conversions (PyTorch's copy kernels between dtypes) and
    element-wise kernels on float32 tensors (a ``<float`` template argument) are kinds of their own: they are the
    traffic a float32 residual stream adds (RESULTS.md, issue 23's profile)."""
    low = name.lower()
    if "direct_copy_kernel" in low or "bfloat16_copy_kernel" in low or "float_copy_kernel" in low:
        return "dtype conversions"
    kind = next((k for k, keys in KERNEL_KINDS if any(w in low for w in keys)), "other")
    if kind == "element-wise and reductions" and re.search(r"[<,]\s*float\s*[,>]", low):
        return "element-wise and reductions, float32"
    return kind


class StepProfiler:
    """torch.profiler over ``n`` optimizer steps after the warm-up (``--profile N``): the GPU time of the step by kind
    of kernel (kernel_kind), the top kernels, and the share of the steps' wall time no kernel ran (host overhead,
    synchronisation, launches), with the useful tokens of the profiled steps so that configurations compare per
    token. Kernel times are torch.profiler's self device times (CUPTI)."""

    def __init__(self, start: int, n: int):
        self.start, self.n, self.prof, self.wall, self.tokens = start, n, None, 0.0, 0

    def begin(self, k: int) -> None:
        if self.n and k == self.start:
            from torch.profiler import ProfilerActivity, profile

            self.prof = profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA])
            self.prof.__enter__()
        if self.prof is not None:
            self._t0 = time.perf_counter()

    def end(self, k: int, tokens: int = 0) -> None:
        if self.prof is None:
            return
        self.wall += time.perf_counter() - self._t0
        self.tokens += tokens
        if k == self.start + self.n - 1:
            self.prof.__exit__(None, None, None)
            self.summary = self._summarise()
            self.prof = None

    def _summarise(self) -> dict:
        kernels = {}
        for e in self.prof.key_averages():
            if getattr(e, "device_type", None) != torch.autograd.DeviceType.CUDA:
                continue
            if getattr(e, "is_user_annotation", False):  # a range over kernels (Optimizer.step#…), not a kernel:
                continue  # counting it counted its kernels twice (torch's own device totals skip these too)
            us = getattr(e, "self_device_time_total", None) or getattr(e, "self_cuda_time_total", 0)
            kernels[e.key] = kernels.get(e.key, 0) + us
        busy = sum(kernels.values()) / 1e6
        kinds: dict[str, float] = {}
        for name, us in kernels.items():
            kind = kernel_kind(name)
            kinds[kind] = kinds.get(kind, 0) + us / 1e6
        top = sorted(kernels.items(), key=lambda kv: -kv[1])[:40]
        return {"steps": self.n, "tokens": self.tokens, "wall_s": round(self.wall, 3), "kernel_s": round(busy, 3),
                "gpu_idle_share": round(1 - busy / self.wall, 3) if self.wall else None,
                "by_kind_s": {k: round(v, 3) for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])},
                "by_kind_share_of_wall": {k: round(v / self.wall, 3) for k, v in sorted(kinds.items(),
                                                                                        key=lambda kv: -kv[1])},
                "top_kernels_s": [[name[:120], round(us / 1e6, 4)] for name, us in top]}


def measure(model, cfg: dict, lengths: list[int], steps: int, warmup: int, vocab: int, seed: int = 0,
            profile_steps: int = 0) -> dict:
    import bitsandbytes as bnb

    params = [p for p in model.parameters() if p.requires_grad]
    opt = (bnb.optim.PagedAdamW32bit if cfg["kind"] == "stock" else bnb.optim.PagedAdamW8bit)(params, lr=2e-4)
    model.train()
    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    plan = batches(cfg, lengths, warmup + steps, seed=seed)
    times, useful, padded, rates = [], 0, 0, []
    prof = StepProfiler(warmup + steps, profile_steps)  # profiled steps come after the timed ones
    if profile_steps:
        plan = plan + batches(cfg, lengths, profile_steps, seed=seed + 1)
    for k, rows in enumerate(plan):
        batch = tensors(cfg, rows, vocab)
        torch.cuda.synchronize()
        prof.begin(k)
        start = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(**batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        prof.end(k, sum(map(sum, rows)))
        if warmup <= k < warmup + steps:
            times.append(time.perf_counter() - start)
            n = sum(map(sum, rows))
            useful += n
            padded += batch["input_ids"].numel()
            rates.append(n / times[-1])
    del opt
    return {**{k: cfg[k] for k in ("spec", "kind", "liger", "gc", "dropout")}, "B": cfg["B"] if cfg["kind"] == "stock" else None,
            "T": cfg["T"] if cfg["kind"] != "stock" else None, "L": cfg["L"] if cfg["kind"] != "stock" else None,
            "group": cfg["group"], "objective": "all tokens" if cfg["alltok"] else "target tokens",
            "steps": steps, "useful_tokens_per_s": round(statistics.median(rates), 1),  # median step, as the stock script
            "p10_p90_tokens_per_s": [round(q, 1) for q in _deciles(rates)],
            "mean_useful_tokens_per_s": round(useful / sum(times), 1), "tokens_per_step": round(useful / steps),
            "padding_share": round(1 - useful / padded, 4), "median_step_s": round(statistics.median(times), 4),
            "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2), "loss": round(float(loss), 3),
            **({"profile": prof.summary} if profile_steps else {})}


def harness(model_path: str, cfg: dict, lengths: list[int], steps: int, warmup: int, max_length: int,
            profile_steps: int = 0) -> dict:
    """The training stage's path (audited_ft.train.stage.build_trainer + trainer.train()) under a memory budget."""
    import tempfile

    from datasets import Dataset
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast, TrainerCallback

    from audited_ft.config import Config
    from audited_ft.train.stage import build_trainer

    size = json.loads((Path(model_path) / "config.json").read_text())["vocab_size"]
    cuda = torch.cuda.is_available()
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{f"t{i}": i for i in range(3, size)}}
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="<unk>")),
                                  unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="</s>")
    rows = [{"input_ids": r["input_ids"], "labels": [-100] * (len(r["input_ids"]) - sum(r["completion_mask"]))
             + r["input_ids"][len(r["input_ids"]) - sum(r["completion_mask"]):]} for r in token_rows(lengths, size)]
    train = {"batch_size": cfg["B"]} if cfg["budget"] is None else {}  # harness:B=8 without a budget (FSDP)
    c = Config.model_validate({
        "model": {"name_or_path": model_path, "use_chat_template": False}, "data": {"source": "unused.jsonl"},
        "train": {"memory_budget_gib": cfg["budget"], "max_length": max_length,
                  "max_steps": warmup + steps + profile_steps,
                  "checkpoint_every_steps": 0, "device": "cuda" if cuda else "cpu", "learning_rate": 2e-4,
                  "unquantised_dtype": "compute" if cfg["bf16norms"] else "float32",
                  "compile": "layers" if cfg["compile"] else "off", **train},
        "lora": {"r": 64, "alpha": 16, "dropout": cfg["dropout"], "target_modules": "all-linear"}})
    times: list[tuple[float, int]] = []
    prof = StepProfiler(warmup + steps, profile_steps)  # profiled steps come after the timed ones

    class StepTimer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            sync()
            prof.begin(state.global_step)
            self.t0, self.n0 = time.perf_counter(), trainer._total_train_tokens

        def on_step_end(self, args, state, control, **kw):
            sync()
            times.append((time.perf_counter() - self.t0, trainer._total_train_tokens - self.n0))
            prof.end(state.global_step - 1, times[-1][1])  # global_step is already counted up here

    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        trainer, speed = build_trainer(c, Path(folder), Dataset.from_list(rows), None, [StepTimer()], tokenizer=tok)
        setup_s = time.perf_counter() - started
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        trainer.train()
        peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else None
    measured = times[warmup:warmup + steps]
    rates = [n / t for t, n in measured]
    out = {"spec": cfg["spec"], "kind": "harness", "budget_gib": cfg["budget"], "dropout": cfg["dropout"],
           "world_size": int(os.environ.get("WORLD_SIZE", "1")),
           "steps": len(measured), "useful_tokens_per_s": round(statistics.median(rates), 1),
           "mean_useful_tokens_per_s": round(sum(n for _, n in measured) / sum(t for t, _ in measured), 1),
           "tokens_per_step": round(statistics.mean(n for _, n in measured)),
           "median_step_s": round(statistics.median(t for t, _ in measured), 4), "peak_gib": peak and round(peak, 2),
           "setup_s": round(setup_s, 1),
           "settings": {k: speed.get(k) for k in ("packing", "pack_length", "kernels", "micro_batch",
                                                   "gradient_checkpointing", "optimizer")},
           "calibration": speed.get("calibration"),
           "p10_p90_tokens_per_s": [round(q, 1) for q in _deciles(rates)],
           "loss": next((h["loss"] for h in reversed(trainer.state.log_history) if "loss" in h), None),
           **({"profile": prof.summary} if profile_steps else {})}
    del trainer
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    return out


def token_rows(lengths: list[int], vocab: int, n: int = 6000) -> list[dict]:
    """``n`` pre-tokenised rows of random ids with lengths drawn (seed 7) from ``lengths``; the last 15% of each is
    the target (``completion_mask`` 1), as TRL's prompt-completion rows are after tokenisation."""
    rng = random.Random(7)
    rows = []
    for _ in range(n):
        k = rng.choice(lengths)
        target = max(1, round(k * TARGET_SHARE))
        rows.append({"input_ids": [rng.randrange(3, vocab) for _ in range(k)],
                     "completion_mask": [0] * (k - target) + [1] * target})
    return rows


def _deciles(values: list[float]) -> tuple[float, float]:
    """(10th, 90th) percentile: the spread of the step rates beside their median."""
    if len(values) < 2:
        return (values[0], values[0]) if values else (float("nan"), float("nan"))
    q = statistics.quantiles(values, n=10)
    return q[0], q[-1]


def trl_stock(model_path: str, cfg: dict, lengths: list[int], steps: int, warmup: int) -> dict:
    """Stock TRL: SFTTrainer with its own packing (best-fit decreasing) and padding-free batches, configured only
    through SFTConfig as a user following TRL's documentation would; the model loaded as ``load`` loads it."""
    import tempfile

    from datasets import Dataset
    from peft import LoraConfig
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    size = json.loads((Path(model_path) / "config.json").read_text())["vocab_size"]
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{f"t{i}": i for i in range(3, size)}}
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="<unk>")),
                                  unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="</s>")
    import bitsandbytes  # noqa: F401
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    q = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                           bnb_4bit_compute_dtype=torch.bfloat16)
    model = AutoModelForCausalLM.from_pretrained(model_path, quantization_config=q, dtype=torch.bfloat16,
                                                 device_map={"": 0}, attn_implementation="sdpa")
    times: list[tuple[float, int]] = []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            torch.cuda.synchronize()
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            torch.cuda.synchronize()
            times.append((time.perf_counter() - self.t0, trainer._total_train_tokens))

    with tempfile.TemporaryDirectory() as folder:
        args = SFTConfig(output_dir=folder, max_steps=warmup + steps, per_device_train_batch_size=cfg["B"],
                         max_length=cfg["L"], packing=True, packing_strategy="bfd", padding_free=True,
                         completion_only_loss=True, gradient_checkpointing=cfg["gc"],
                         gradient_checkpointing_kwargs={"use_reentrant": False}, optim="paged_adamw_8bit",
                         learning_rate=2e-4, bf16=True, logging_steps=1, save_strategy="no", report_to=[],
                         use_liger_kernel=cfg["liger"], seed=0, data_seed=0, dataset_num_proc=None)
        lora = LoraConfig(r=64, lora_alpha=16, lora_dropout=cfg["dropout"], target_modules=TARGETS,
                          task_type="CAUSAL_LM")
        trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(token_rows(lengths, size)),
                             processing_class=tok, peft_config=lora, callbacks=[StepTimer()])
        torch.cuda.reset_peak_memory_stats()
        trainer.train()
        peak = torch.cuda.max_memory_allocated() / 2**30
    # tokens per step: the trainer's running count of input tokens (no padding exists in padding-free batches)
    counts = [n for _, n in times]
    per_step = [b - a for a, b in zip([0] + counts[:-1], counts)]
    measured = [(t, n) for (t, _), n in zip(times, per_step)][warmup:]
    rates = [n / t for t, n in measured]
    out = {"spec": cfg["spec"], "kind": "trl", "liger": cfg["liger"], "gc": cfg["gc"], "B": cfg["B"], "L": cfg["L"],
           "objective": "target tokens", "steps": len(measured),
           "useful_tokens_per_s": round(statistics.median(rates), 1),
           "p10_p90_tokens_per_s": [round(q, 1) for q in _deciles(rates)],
           "mean_useful_tokens_per_s": round(sum(n for _, n in measured) / sum(t for t, _ in measured), 1),
           "tokens_per_step": round(statistics.mean(n for _, n in measured)),
           "median_step_s": round(statistics.median(t for t, _ in measured), 4), "peak_gib": round(peak, 2),
           "loss": next((h["loss"] for h in reversed(trainer.state.log_history) if "loss" in h), None)}
    del trainer, model
    gc.collect()
    torch.cuda.empty_cache()
    return out


def table(results: list[dict]) -> str:
    """config, useful tok/s, peak GiB, ratio: each harness row against the fastest stock row (median step rate) whose
    peak fits the harness row's budget (results of one device call only)."""
    stock = [r for r in results if r.get("kind") in ("stock", "trl") and "error" not in r]
    lines = [f"{'config':34} {'useful tok/s':>12} {'(mean)':>9} {'peak GiB':>9} {'ratio':>6}  vs"]
    for r in results:
        if "error" in r:
            lines.append(f"{r['spec']:34} {r['error']}")
            continue
        ratio, vs = "", ""
        if r.get("kind") == "harness" and r.get("budget_gib"):
            fits = [x for x in stock if x["peak_gib"] <= r["budget_gib"]]
            if fits:
                best = max(fits, key=lambda x: x["useful_tokens_per_s"])
                ratio, vs = f"{r['useful_tokens_per_s'] / best['useful_tokens_per_s']:.2f}", best["spec"]
        lines.append(f"{r['spec']:34} {r['useful_tokens_per_s']:12,.0f} {r['mean_useful_tokens_per_s']:9,.0f} "
                     f"{r['peak_gib'] if r['peak_gib'] is not None else '-':>9} {ratio:>6}  {vs}")
    return "\n".join(lines)


SHAPES = {  # Llama 2 shapes (the 7B one as in ../shared/bench/stock_qlora_baseline.py)
    "7b": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32),
    "13b": dict(hidden_size=5120, intermediate_size=13824, num_hidden_layers=40, num_attention_heads=40),
}


def make_model(size: str, path: str) -> None:
    """A random-weight Llama 2 shape in bf16 safetensors at ``path`` (skipped when it exists): speed and memory do not
    depend on the weight values."""
    from transformers import AutoModelForCausalLM, LlamaConfig

    if Path(path, "config.json").exists():
        return
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):  # built in bf16: 13B is 26 GB
        model = AutoModelForCausalLM.from_config(LlamaConfig(vocab_size=32000, max_position_embeddings=4096,
                                                             **SHAPES[size]), dtype=torch.bfloat16)
    model.save_pretrained(path)
    del model
    gc.collect()
    torch.cuda.empty_cache()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="/tmp/llama_7b")
    ap.add_argument("--lengths", type=Path, default=Path(__file__).parent / "data/dialogsum_train_token_lengths.json")
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--configs", default="stock:B=4,stock:B=16,packed:T=2048,packed:T=4096")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0, help="the batches' seed, the same for every configuration")
    ap.add_argument("--profile", type=int, default=0, metavar="N", help="after the timed steps, N more steps under "
                    "torch.profiler (harness and stock loops): GPU time by kind of kernel, host idle share")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--make-model", choices=sorted(SHAPES), help="first write a random model of this shape to --model")
    ap.add_argument("--table", nargs="+", type=Path, metavar="JSON", help="only print the table of these result files "
                    "(train_throughput.json of several processes of one device call, e.g. stock and harness)")
    args = ap.parse_args()
    if args.table:
        print(table([r for f in args.table for r in json.loads(f.read_text())["results"]]))
        return
    if args.make_model:
        make_model(args.make_model, args.model)
        if not args.configs:
            return
    lengths = [min(n, args.max_length) for n in json.loads(args.lengths.read_text())["lengths"]]
    cfgs = [parse(s) for s in args.configs.split(",")]
    groups: dict[tuple, list[dict]] = {}
    for c in cfgs:
        if c["kind"] not in ("harness", "trl"):
            groups.setdefault((c["gc"], c["liger"], c["dropout"], c["bf16norms"], c["compile"]), []).append(c)
    results = []
    main_process = int(os.environ.get("RANK", "0")) == 0  # under torchrun / accelerate launch: rank 0 reports
    for c in cfgs:  # the harness first: the stock groups patch liger into the Llama classes for good
        if c["kind"] == "harness":
            r = harness(args.model, c, lengths, args.steps, args.warmup, args.max_length, args.profile)
            if main_process:
                print(json.dumps(r), flush=True)
            results.append(r)
    for c in cfgs:  # stock TRL before the stock groups too (liger patched in by TRL's flag stays patched)
        if c["kind"] == "trl":
            try:
                r = trl_stock(args.model, c, lengths, args.steps, args.warmup)
            except torch.OutOfMemoryError:
                r = {"spec": c["spec"], "error": "out of memory"}
                gc.collect()
                torch.cuda.empty_cache()
            print(json.dumps(r), flush=True)
            results.append(r)
    for (use_gc, liger, dropout, bf16norms, compiled), group in groups.items():
        model = load(args.model, use_gc, liger, dropout, bf16norms, compiled)
        vocab = model.config.vocab_size
        for c in group:
            try:
                r = measure(model, c, lengths, args.steps, args.warmup, vocab, seed=args.seed,
                            profile_steps=args.profile)
            except torch.OutOfMemoryError:
                r = {"spec": c["spec"], "error": "out of memory"}
            print(json.dumps(r), flush=True)
            results.append(r)
        del model
        gc.collect()
        torch.cuda.empty_cache()
    info = {"gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu", "torch": torch.__version__, "max_length": args.max_length,
            "mean_row_tokens": round(statistics.mean(lengths), 1), "results": results}
    if main_process:
        print(table(results))
    info["world_size"] = int(os.environ.get("WORLD_SIZE", "1"))
    if args.out and main_process:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "train_throughput.json").write_text(json.dumps(info, indent=1))


if __name__ == "__main__":
    main()
