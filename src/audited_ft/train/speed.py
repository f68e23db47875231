"""Training throughput settings (issue 7): packed rows, fused kernels, and a micro-batch and activation checkpointing
chosen from a GPU memory budget.

- **Packing**: TRL packs the tokenised examples best-fit-decreasing into rows of ``train.max_length`` tokens
  (``packing_strategy="bfd"``); :class:`PackedRowsCollator` keeps those rows as separate batch rows with position ids
  that restart at every example and no attention mask, which transformers turns into a block-diagonal causal mask:
  an example never attends to another. (TRL's own padding-free collator flattens the whole batch into one row, which
  is meant for flash-attention's variable-length kernel; with PyTorch's SDPA the attention over that one long row is
  quadratic in the batch's token count — measured slower, benchmarks/RESULTS.md.) Pad tokens only fill the end of a
  row, and the first token of each example gets no loss from the previous one.
- **Kernels**: liger-kernel's fused RMSNorm, RoPE and SwiGLU where it is installed and knows the architecture (TRL's
  chunked LM head already avoids materialising the full logits).
- **Compilation** (``train.compile``, off by default): :func:`compile_layers` compiles each decoder layer in place
  after the calibration.
- **Memory budget**: :func:`calibrate` measures the peak memory of real training micro-steps on the run's own packed
  rows at two sizes, with and without activation checkpointing, extrapolates the largest micro-batch that fits the
  budget (plus the optimizer state, which is allocated later), checks it with one more step, and keeps the setting
  with the higher measured tokens per second. The weights are not updated and the random state is restored.
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)


class PackedRowsCollator:
    """Batch rows of packed examples: ``input_ids``, ``labels`` and per-example ``position_ids``, no attention mask.

    A row from TRL's packing carries ``seq_lengths`` (the lengths of the examples in it); an unpacked example (the
    validation split is evaluated unpacked) is one sequence. Rows are right-padded to the longest row of the batch;
    padding has position 0 and label -100."""

    def __init__(self, pad_token_id: int):
        self.pad_token_id = int(pad_token_id)

    def __call__(self, examples: list[dict]) -> dict:
        import torch

        width = max(len(e["input_ids"]) for e in examples)
        ids = torch.full((len(examples), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(examples), width), -100, dtype=torch.long)
        pos = torch.zeros((len(examples), width), dtype=torch.long)
        for i, e in enumerate(examples):
            row = list(e["input_ids"])
            n = len(row)
            ids[i, :n] = torch.tensor(row, dtype=torch.long)
            labels[i, :n] = torch.tensor(list(e.get("labels") or row), dtype=torch.long)
            start = 0
            for length in (e.get("seq_lengths") or [n]):
                length = min(int(length), n - start)
                if length <= 0:
                    break
                pos[i, start:start + length] = torch.arange(length)
                labels[i, start] = -100  # the first token of an example is not predicted from the one before
                start += length
        return {"input_ids": ids, "labels": labels, "position_ids": pos}


def real_tokens(position_ids) -> int:
    """Tokens that are not padding in a batch from :class:`PackedRowsCollator`: in each row, everything up to the last
    position that is not 0 (padding sits at the end of a row with position 0; a real example is longer than one
    token)."""
    import torch

    if position_ids.dim() == 1:
        position_ids = position_ids[None]
    idx = torch.arange(1, position_ids.shape[1] + 1, device=position_ids.device)
    return int(((position_ids > 0) * idx).amax(dim=1).sum())


# ------------------------------------------------------------------------------------------------- fused kernels
def apply_kernels(model, choice: str, device: str) -> str:
    """Apply liger-kernel's fused RMSNorm/RoPE/SwiGLU to ``model`` (before the LoRA layers are added) where asked and
    possible; return what was applied, for the manifest. ``choice``: auto (liger on CUDA where installed and the
    architecture is supported), liger (required: an error otherwise), none."""
    from audited_ft.errors import ConfigError, MissingDependency

    if choice == "none":
        return "none"
    if device != "cuda":
        if choice == "liger":
            raise ConfigError("train.kernels = 'liger' needs a CUDA GPU (liger-kernel's kernels are Triton GPU "
                              "kernels); use 'auto' or 'none' on the CPU")
        return "none (CPU)"
    try:
        from liger_kernel.transformers.monkey_patch import MODEL_TYPE_TO_APPLY_LIGER_FN, _apply_liger_kernel_to_instance
    except ImportError:
        if choice == "liger":
            raise MissingDependency("train.kernels = 'liger'", "liger-kernel") from None
        return "none (liger-kernel not installed: pip install 'audited-ft[gpu]')"
    model_type = getattr(model.config, "model_type", None)
    if model_type not in MODEL_TYPE_TO_APPLY_LIGER_FN:
        if choice == "liger":
            raise ConfigError(f"train.kernels = 'liger': liger-kernel has no kernels for model type {model_type!r}")
        return f"none (liger-kernel does not support model type {model_type!r})"
    # The fused cross-entropy would replace the model's forward, which TRL patches with its own chunked LM head.
    _apply_liger_kernel_to_instance(model=model, rope=True, rms_norm=True, swiglu=True, cross_entropy=False,
                                    fused_linear_cross_entropy=False)
    return "liger (fused RMSNorm, RoPE, SwiGLU)"


def score_labelled_positions_only() -> bool:
    """Make TRL's fused LM head project only the positions that carry a label on the CPU too; return whether it
    applies (False when the installed TRL is laid out differently: then nothing is changed and training is slower).

    TRL (1.16) patches the model with a chunked LM head (``trl.trainer.utils.add_fused_lm_head``). On Triton devices
    it scores the labelled positions only; everywhere else it scores every position, prompt and padding included, so
    that the tile shapes stay fixed for ahead-of-time compilers (its comment names Neuron). Eager CPU training
    compiles nothing, and with completion-only loss most positions are prompt: on the default run the full-width
    head's torch tiles (full-vocabulary exp, entropy and gradient per position) were about half of the training step
    (cProfile, RESULTS.md "CPU training step"). The same torch tiles run either way on the CPU, over fewer rows, so
    the loss and its gradients are unchanged (tests/train/test_speed.py checks both).

    This replaces TRL's private ``_use_triton`` binding in ``trl.trainer.utils`` (used there only for that choice;
    the kernel module keeps its own, so the CPU still gets the torch tiles). There is no public switch for it;
    a test fails when a TRL upgrade moves the name, so it is noticed rather than silently lost."""
    try:
        import trl.trainer.utils as trl_utils
    except ImportError:
        return False
    current = getattr(trl_utils, "_use_triton", None)
    if current is None:
        return False
    if getattr(current, "_aft_cpu_compact", False):
        return True

    def use_compact_path(device) -> bool:
        return device.type == "cpu" or current(device)

    use_compact_path._aft_cpu_compact = True
    trl_utils._use_triton = use_compact_path
    return True


def decoder_layers(model) -> list:
    """The model's repeated decoder layers: the modules whose class transformers names in ``_no_split_modules``
    (the blocks it never splits across devices, e.g. ``LlamaDecoderLayer``), found through PEFT's wrapper."""
    names = set()
    for module in model.modules():
        names.update(getattr(module, "_no_split_modules", None) or ())
    return [m for m in model.modules() if type(m).__name__ in names]


def compile_layers(model, choice: str, device: str) -> str:
    """``train.compile``: with "layers", every decoder layer compiled in place (``nn.Module.compile``: torch.compile
    with inductor, PyTorch's regional compilation). The layers share their code and shapes, so dynamo compiles one
    graph and reuses it for each. In place rather than accelerate's ``compile_regions``, which wraps each layer in an
    ``OptimizedModule`` and so renames every parameter (``_orig_mod.``) in checkpoints and the saved adapter.
    Returns what train/speed.json records."""
    if choice == "off":
        return "off"
    from audited_ft import distributed

    if distributed.fsdp_enabled():
        return "off (train.compile is not applied under FSDP: its flattened parameters are not traced)"
    if device == "cpu":
        import shutil

        from audited_ft.errors import ConfigError

        if not any(shutil.which(c) for c in ("g++", "c++", "clang++")):
            raise ConfigError("train.compile = 'layers' on the CPU needs a C++ compiler (g++, c++ or clang++) on the "
                              "PATH for inductor's kernels; install one or set train.compile: off")
    layers = decoder_layers(model)
    if not layers:
        return "off (no decoder layers named in the model's _no_split_modules)"
    for layer in layers:
        layer.compile()
    return f"{len(layers)} decoder layers (torch.compile, inductor)"


# ------------------------------------------------------------------------------------------------ memory budget
def optimizer_state_bytes(model, optim: str) -> int:
    """Bytes of optimizer state for the trainable parameters: two 8-bit moments for the 8-bit Adam variants, two
    float32 moments otherwise. Allocated at the first optimizer step (paged variants outside PyTorch's allocator), so
    the calibration's micro-steps do not see it and it is added to their peak."""
    n = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return n * (2 if "8bit" in optim else 8)


def set_checkpointing(model, on: bool) -> None:
    if on:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_disable()


def calibrate(trainer, budget_gib: float, checkpointing: list[bool], max_rows: int) -> dict:
    """Choose the micro-batch (packed rows per device) and activation checkpointing for ``budget_gib`` GiB of GPU
    memory by measuring real micro-steps (forward and backward on the run's first packed rows). Returns the chosen
    setting and every trial; raises ConfigError when nothing fits."""
    import torch

    from audited_ft.errors import ConfigError

    model = trainer.model
    budget = budget_gib * 2**30
    opt_bytes = optimizer_state_bytes(model, str(getattr(trainer.args.optim, "value", trainer.args.optim)))
    cpu_rng, cuda_rng = torch.random.get_rng_state(), torch.cuda.get_rng_state_all()
    saved_tokens = getattr(trainer, "_total_train_tokens", None)
    model.train()
    trials: list[dict] = []
    try:
        for gc in checkpointing:
            set_checkpointing(model, gc)
            trial = _fit(trainer, gc, budget, opt_bytes, max_rows)
            trials.append(trial)
            log.info("memory budget %.1f GiB, checkpointing %s: %s", budget_gib, "on" if gc else "off",
                     f"{trial['rows']} rows, {trial['tokens_per_second']:.0f} tok/s, peak {trial['peak_gib']:.2f} GiB"
                     if trial["rows"] else "nothing fits")
    finally:
        torch.random.set_rng_state(cpu_rng)
        torch.cuda.set_rng_state_all(cuda_rng)
        model.zero_grad(set_to_none=True)
        if saved_tokens is not None:
            trainer._total_train_tokens = saved_tokens
        for m in getattr(trainer, "_metrics", {}).values():
            m.clear()
        torch.cuda.empty_cache()
    fitting = [t for t in trials if t["rows"]]
    if not fitting:
        smallest = min((t["min_peak_gib"] for t in trials if t.get("min_peak_gib")), default=None)
        raise ConfigError(f"train.memory_budget_gib = {budget_gib}: not even one packed row of train.max_length "
                          f"tokens fits (one row needs about {smallest} GiB with the optimizer state); raise the "
                          "budget or lower train.max_length")
    best = max(fitting, key=lambda t: t["tokens_per_second"])
    return {"budget_gib": budget_gib, "rows": best["rows"], "gradient_checkpointing": best["gradient_checkpointing"],
            "optimizer_state_gib": round(opt_bytes / 2**30, 3), "trials": trials}


def _fit(trainer, gc: bool, budget: float, opt_bytes: int, max_rows: int) -> dict:
    import torch

    out = {"gradient_checkpointing": gc, "rows": 0}
    try:
        p1 = _step(trainer, 1)["peak"]
        p2 = _step(trainer, 2)["peak"]
    except torch.OutOfMemoryError:
        torch.cuda.empty_cache()
        return {**out, "note": "out of memory at 1-2 rows"}
    per_row = max(p2 - p1, 1)
    fixed = p1 - per_row
    out.update(per_row_gib=round(per_row / 2**30, 3), fixed_gib=round(fixed / 2**30, 3),
               min_peak_gib=round((p1 + opt_bytes) / 2**30, 2))
    rows = min(max_rows, int((budget - opt_bytes - fixed) // per_row))
    for _ in range(4):  # check the extrapolation with a real step; shrink if it does not fit
        if rows < 1:
            return out
        try:
            m = _step(trainer, rows)
        except torch.OutOfMemoryError:
            torch.cuda.empty_cache()
            rows = int(rows * 0.8)
            continue
        if m["peak"] + opt_bytes <= budget:
            return {**out, "rows": rows, "peak_gib": round((m["peak"] + opt_bytes) / 2**30, 2),
                    "tokens_per_second": round(m["tokens"] / m["seconds"], 1)}
        rows = min(rows - 1, int(rows * (budget - opt_bytes - fixed) / max(m["peak"] - fixed, 1)))
    return out


def _step(trainer, rows: int) -> dict:
    """One forward and backward pass on ``rows`` packed rows (the dataset's first rows, repeated if it has fewer):
    peak allocated bytes, seconds and real tokens. Gradients are dropped afterwards."""
    import torch

    ds = trainer.train_dataset
    batch = trainer.data_collator([ds[i % len(ds)] for i in range(rows)])
    inputs = trainer._prepare_inputs(batch)
    model = trainer.model
    model.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    try:
        with trainer.compute_loss_context_manager():
            loss = trainer.compute_loss(model, inputs)
        loss.backward()
        torch.cuda.synchronize()
    finally:
        del inputs
        model.zero_grad(set_to_none=True)
    return {"peak": torch.cuda.max_memory_allocated(), "seconds": time.perf_counter() - start,
            "tokens": real_tokens(batch["position_ids"])}
