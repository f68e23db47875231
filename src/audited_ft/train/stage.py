"""Training stage (``train_adapter``): QLoRA on the audited train split, one linear recipe.

setup (4-bit base, LoRA, data as prompt/completion) → train (TRL SFTTrainer: loss on target tokens only, validation loss
every N steps, every logged step appended to ``train/log.jsonl``; optionally early stopping on the validation loss, which
restores the best checkpoint) → save the PEFT adapter and ``train/summary.json``.
"""

from __future__ import annotations

import json
import logging
import shutil
import time

from audited_ft import distributed
from audited_ft.config import Config
from audited_ft.errors import ConfigError, RunFolderError
from audited_ft.run.folder import RunFolder, inside, write_json
from audited_ft.run.view import RunView
from audited_ft.train.power import PowerSampler
from audited_ft.train.summary import footprint, loss_fields

log = logging.getLogger(__name__)


def _prompt_rows(cfg: Config, tokenizer, rows: list[dict]) -> list[dict]:
    from audited_ft.models import build_prompt

    return [{"prompt": build_prompt(tokenizer, cfg.data.prompt_template, r["input"], cfg.model.use_chat_template,
                                    cfg.model.system_prompt),
             "completion": r["target"]} for r in rows]


def _log_callback(path):
    from transformers import TrainerCallback

    class JsonlLog(TrainerCallback):
        """Appends every log event (train loss, eval loss) to train/log.jsonl as it happens."""

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero:  # several training processes: the main one writes the log
                return
            keep = {k: v for k, v in (logs or {}).items()
                    if k in ("loss", "eval_loss", "learning_rate", "grad_norm", "mean_token_accuracy", "num_tokens")}
            if keep:
                with open(path, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps({"step": state.global_step, "epoch": round(state.epoch or 0, 4), **keep}) + "\n")

    return JsonlLog()


def _console_callback():
    """The trainer's terminal output, ours instead of transformers': one progress bar (steps, rate, ETA) where stderr
    is a terminal, and a log line at each evaluation (train and validation loss); every log event at DEBUG, in
    run.log. Replaces transformers' ProgressCallback/PrinterCallback, which print raw log dicts and nested bars."""
    from transformers import TrainerCallback

    from audited_ft.run.console import bars_enabled

    class ConsoleProgress(TrainerCallback):
        bar = None
        last_loss = None

        def on_train_begin(self, args, state, control, **kwargs):
            if state.is_world_process_zero and bars_enabled():
                from tqdm.auto import tqdm

                self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc="train", unit="step",
                                dynamic_ncols=True, leave=False)

        def on_step_end(self, args, state, control, **kwargs):
            if self.bar is not None:
                self.bar.update(state.global_step - self.bar.n)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero or not logs:
                return
            logs = {k: v for k, v in logs.items() if isinstance(v, (int, float))}
            log.debug("train step %d: %s", state.global_step, logs)
            if "loss" in logs:
                self.last_loss = logs["loss"]
            if "eval_loss" in logs:
                log.info("train step %d/%d: validation loss %.4f (training loss %s)", state.global_step,
                         state.max_steps, logs["eval_loss"],
                         "—" if self.last_loss is None else f"{self.last_loss:.4f}")

        def on_train_end(self, args, state, control, **kwargs):
            if self.bar is not None:
                self.bar.close()
                self.bar = None

    return ConsoleProgress()


def packing_on(cfg: Config, device: str) -> bool:
    if cfg.train.privacy is not None:  # DP's unit is one training row: never several in one packed row
        return False
    return cfg.train.packing == "on" or (cfg.train.packing == "auto" and device == "cuda")


def _sft_config(cfg: Config, folder, device: str, dtype):
    import torch
    from trl import SFTConfig

    from audited_ft import distributed

    t = cfg.train
    gc = t.gradient_checkpointing == "on" or (t.gradient_checkpointing == "auto" and device == "cuda"
                                               and t.privacy is None)
    fsdp = distributed.fsdp_enabled()
    # bitsandbytes' paged 8-bit AdamW cannot save its state under FSDP (PEFT's FSDP guide): plain AdamW there, whose
    # state FSDP shards across the GPUs anyway.
    optim = t.optimizer if t.optimizer != "auto" else (
        "adamw_torch" if fsdp or device != "cuda" else "paged_adamw_8bit")
    saving: dict = {"save_strategy": "no"}
    checkpoint_every = 0 if fsdp or t.privacy is not None else t.checkpoint_every_steps
    if fsdp and (t.checkpoint_every_steps or t.early_stopping.enabled):
        log.warning("FSDP training: periodic checkpoints (and so --resume and early stopping) are off; the adapter "
                    "is saved at the end")
    if t.early_stopping.enabled and not fsdp:
        # Restoring the best adapter needs a checkpoint at every evaluation: same strategy and interval as the
        # evaluation (transformers checks this). Full checkpoints (optimizer, scheduler and RNG state too, so a killed
        # run can resume), the best one and the latest kept; the folder is removed once the adapter is saved.
        saving = {"save_strategy": "steps", "save_steps": t.eval_every_steps, "save_only_model": False,
                  "save_total_limit": 1, "load_best_model_at_end": True, "metric_for_best_model": "eval_loss",
                  "greater_is_better": False}
    elif checkpoint_every > 0:
        # Resumable checkpoints only (audited-ft run --resume): the latest one kept, removed after training.
        saving = {"save_strategy": "steps", "save_steps": checkpoint_every, "save_only_model": False,
                  "save_total_limit": 1}
    packing = packing_on(cfg, device)
    args = SFTConfig(
        output_dir=str(folder / "checkpoints"), num_train_epochs=t.epochs, max_steps=t.max_steps,
        per_device_train_batch_size=t.batch_size, per_device_eval_batch_size=t.batch_size,
        gradient_accumulation_steps=t.grad_accum, learning_rate=t.learning_rate, lr_scheduler_type=t.lr_scheduler,
        warmup_steps=t.warmup_ratio, weight_decay=t.weight_decay, max_length=t.max_length, optim=optim,
        **{_checkpointing_key(SFTConfig): gc}, bf16=dtype == torch.bfloat16, fp16=dtype == torch.float16,
        use_cpu=device == "cpu", eval_strategy="steps", eval_steps=t.eval_every_steps, logging_steps=1,
        **saving, report_to=[], seed=cfg.run.seed, data_seed=cfg.run.seed, completion_only_loss=True,
        dataset_num_proc=None, disable_tqdm=False, logging_first_step=True,
        # Packed rows of max_length tokens (train_speed.PackedRowsCollator keeps them apart); the validation split
        # stays unpacked so its loss is comparable with unpacked runs.
        packing=packing, packing_strategy="bfd", eval_packing=False,
        # Non-reentrant checkpointing: works under DDP without marking parameters twice, needs no input-grad hook.
        gradient_checkpointing_kwargs={"use_reentrant": False}, ddp_find_unused_parameters=False)
    if device == "cuda" and not distributed.is_distributed() and args.n_gpu > 1:
        # One process on a machine with several GPUs: train on the one the model was loaded on. (Trainer would wrap
        # the model in nn.DataParallel, which TRL refuses; several GPUs are for accelerate launch.)
        args._n_gpu = 1
    return args


def _checkpointing_key(config_cls) -> str:
    # transformers 5.2x renamed gradient_checkpointing to activation_checkpointing (the old name warns); 5.1x has only
    # the old one.
    import dataclasses

    names = {f.name for f in dataclasses.fields(config_cls)}
    return "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"


_CHECKPOINT_FILES = ("trainer_state.json", "optimizer.pt", "scheduler.pt", "adapter_model.safetensors")


def _trainer_class(base):
    """SFTTrainer whose checkpoint loading keeps the adapter's dtype. TRL casts a QLoRA adapter to bfloat16 (the
    QLoRA paper's recipe), but PEFT's ``load_adapter`` casts bfloat16 adapter weights back up to float32: a resumed
    run (and an early-stopping restore) would go on training in another precision than an uninterrupted one."""

    class KeepDtypeTrainer(base):
        def _keep_dtypes(self, load, *args, **kwargs):
            model = self.model
            dtypes = {n: p.dtype for n, p in model.named_parameters() if p.requires_grad}
            out = load(*args, **kwargs)
            for name, param in model.named_parameters():
                if name in dtypes and param.dtype != dtypes[name]:
                    param.data = param.data.to(dtypes[name])
            return out

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            # TRL counts a batch without attention mask as one flattened row (its padding-free layout); packed rows
            # kept apart are counted here instead: real tokens, padding excluded.
            before = getattr(self, "_total_train_tokens", None)
            out = super().compute_loss(model, inputs, return_outputs=return_outputs,
                                       num_items_in_batch=num_items_in_batch)
            if (before is not None and self.model.training and "attention_mask" not in inputs
                    and "position_ids" in inputs):
                import torch

                from audited_ft.train.speed import real_tokens

                local = torch.tensor(real_tokens(inputs["position_ids"]), device=inputs["position_ids"].device)
                self._total_train_tokens = before + int(self.accelerator.gather_for_metrics(local).sum().item())
                self._metrics["train"]["num_tokens"] = [self._total_train_tokens]
            return out

        def _load_from_checkpoint(self, *args, **kwargs):
            return self._keep_dtypes(super()._load_from_checkpoint, *args, **kwargs)

        def _load_best_model(self, *args, **kwargs):
            return self._keep_dtypes(super()._load_best_model, *args, **kwargs)

    return KeepDtypeTrainer


def latest_checkpoint(folder) -> tuple[str | None, int | None]:
    """The newest complete checkpoint under ``folder`` (``checkpoint-N`` with its state, optimizer, scheduler and
    adapter files, and a readable trainer_state.json) and its step; a checkpoint cut short by a crash is passed over."""
    from pathlib import Path

    found = []
    for d in Path(folder).glob("checkpoint-*"):
        step = d.name.removeprefix("checkpoint-")
        if not (step.isdigit() and d.is_dir() and all((d / f).is_file() for f in _CHECKPOINT_FILES)):
            continue
        try:
            state = json.loads((d / "trainer_state.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if state.get("global_step") == int(step):
            found.append((int(step), d))
    if not found:
        return None, None
    step, d = max(found)
    return str(d), step


def _keep_log_until(path, step: int) -> None:
    """Drop the log lines after the checkpoint a resumed run starts from (they are logged again)."""
    from audited_ft.run.folder import atomic_write_text

    kept = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                if json.loads(line).get("step", 0) <= step:
                    kept.append(line)
            except ValueError:  # a line cut short by the crash
                continue
    atomic_write_text(path, "".join(line + "\n" for line in kept))


def _save_adapter(trainer, target) -> None:
    """save_pretrained into a temporary sibling folder, then swap it in: never a half-written adapter folder. Under
    FSDP every process takes part in gathering the sharded adapter; only the main process writes."""
    from audited_ft import distributed

    tmp = target.with_name(f".{target.name}.tmp")
    old = target.with_name(f".{target.name}.old")
    main = distributed.is_main()
    if main:
        for d in (tmp, old):
            shutil.rmtree(d, ignore_errors=True)
    if distributed.fsdp_enabled():
        _save_fsdp_adapter(trainer, tmp, main)  # collective: every process takes part in gathering
    elif main:
        trainer.model.save_pretrained(str(tmp))
    if not main:
        return
    weights = tmp / "adapter_model.safetensors"
    expected = getattr(trainer, "_aft_lora_names", None)
    if expected:
        from safetensors import safe_open

        with safe_open(str(weights), framework="pt") as f:
            stored = sorted(f.keys())
        missing = sorted(set(expected) - set(stored))
        if missing:  # never leave an adapter behind that would load as the base model
            shutil.rmtree(tmp, ignore_errors=True)
            raise RunFolderError(f"{target}: the saved adapter lacks {len(missing)} of {len(expected)} LoRA weights "
                                 f"(first: {missing[0]}; saved {len(stored)}, e.g. {stored[:2]}); not written")
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)


_WRAPPER_PARTS = ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.", "_orig_mod.")


def strip_wrapper_names(weights) -> None:
    """Rewrite a safetensors file with FSDP's (and activation checkpointing's, torch.compile's) wrapper segments taken
    out of the tensor names, so an adapter saved from a wrapped model loads under PEFT's own names."""
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(weights))
    clean = {}
    for key, value in tensors.items():
        for part in _WRAPPER_PARTS:
            key = key.replace(part, "")
        clean[key] = value.contiguous()
    if clean.keys() != tensors.keys():
        save_file(clean, str(weights), metadata={"format": "pt"})


def _save_fsdp_adapter(trainer, tmp, main: bool) -> None:
    """The LoRA weights of an FSDP-sharded model, gathered whole on the main process (summon_full_params) and written
    under PEFT's names with the adapter's config."""
    from safetensors.torch import save_file
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

    wrapped = trainer.model_wrapped
    tensors = {}
    with FSDP.summon_full_params(wrapped, writeback=False, rank0_only=True, offload_to_cpu=True):
        if main:
            for name, param in wrapped.named_parameters():
                if "lora_" not in name:
                    continue
                for part in _WRAPPER_PARTS:
                    name = name.replace(part, "")
                tensors[name.replace(".default.", ".")] = param.detach().to("cpu", copy=True).contiguous()
    if main:
        tmp.mkdir(parents=True)
        save_file(tensors, str(tmp / "adapter_model.safetensors"), metadata={"format": "pt"})
        trainer.accelerator.unwrap_model(trainer.model).peft_config["default"].save_pretrained(str(tmp))


def lora_file_names(model, adapter: str = "default") -> list[str]:
    """The tensor names PEFT writes for ``adapter``'s LoRA weights (parameter names without the adapter name)."""
    return sorted(n.replace(f".{adapter}.", ".") for n, _ in model.named_parameters()
                  if "lora_" in n and f".{adapter}." in n)


def train_adapter(cfg: Config, rf: RunFolder, resume: bool = False) -> dict:
    """Train a QLoRA adapter into ``train/adapter``; return ``train/summary.json``'s content.

    With ``resume``, training continues from the newest complete checkpoint in ``train/checkpoints`` (optimizer,
    scheduler, RNG and data position restored), if there is one; without it, old checkpoints are removed first.

    With ``train.privacy`` the adapter is trained with DP-SGD (train/dp.py), and, with ``privacy.reference``, the same
    recipe without DP first into ``train/nonprivate`` (kept by a resumed run once complete), which the evaluation
    compares beside the DP adapter."""
    _check_audits_passed(rf)
    privacy = cfg.train.privacy
    if privacy is None:
        return _train(cfg, rf, "train", resume)
    reference = None
    if privacy.reference:
        done = RunView(rf.path).load("train/nonprivate/summary.json") if resume else None
        if done and (rf / "train/nonprivate/adapter/adapter_config.json").is_file():
            log.info("non-private reference adapter already trained (train/nonprivate): kept")
            reference = done
        else:
            plain = cfg.model_copy(update={"train": cfg.train.model_copy(update={"privacy": None, "packing": "off"})})
            reference = _train(plain, rf, "train/nonprivate", resume)
    if resume:
        log.info("train.privacy: the DP adapter is trained again from the start (its noise is not kept)")
    summary = _train(cfg, rf, "train", resume=False, reference=reference)
    return summary


def _train(cfg: Config, rf: RunFolder, sub: str, resume: bool, reference: dict | None = None) -> dict:
    """One adapter into ``<sub>/adapter`` with its log, summary and speed settings in ``<sub>``."""
    import torch
    import transformers
    from datasets import Dataset

    from audited_ft.data.stage import load_splits
    from audited_ft.models import compute_dtype, load_tokenizer, pick_device, resolve_model

    transformers.set_seed(cfg.run.seed)
    splits = load_splits(rf)
    es = cfg.train.early_stopping
    if es.enabled and not splits.get("validation"):
        raise ConfigError("train.early_stopping.enabled = true needs a validation split to watch, but this run has "
                          "none (set data.split.validation > 0 with data.source, or data.validation)")
    device = pick_device(cfg.train.device)
    dtype = compute_dtype(cfg.quantization.compute_dtype, device)
    tokenizer = load_tokenizer(resolve_model(cfg.model.name_or_path, cfg.model.licence), cfg.model.revision,
                               cfg.model.trust_remote_code)
    train_ds = Dataset.from_list(_prompt_rows(cfg, tokenizer, splits["train"]))
    val_rows = splits.get("validation") or []
    eval_ds = Dataset.from_list(_prompt_rows(cfg, tokenizer, val_rows)) if val_rows else None
    main = distributed.is_main()
    folder = inside(rf.path, sub)  # sub is one of this module's literals; checked all the same
    log_path = folder / "log.jsonl"
    checkpoint, resumed_step = latest_checkpoint(folder / "checkpoints") if resume else (None, None)
    if main:
        folder.mkdir(parents=True, exist_ok=True)
        if checkpoint is None:
            shutil.rmtree(folder / "checkpoints", ignore_errors=True)
            log_path.write_text("")
        else:
            log.info("resuming training from %s (step %d)", checkpoint, resumed_step)
            _keep_log_until(log_path, resumed_step)
    log_cb = _log_callback(log_path)
    callbacks = [log_cb]
    if es.enabled:
        callbacks.append(transformers.EarlyStoppingCallback(early_stopping_patience=es.patience,
                                                            early_stopping_threshold=es.min_delta))
    trainer, speed = build_trainer(cfg, folder, train_ds, eval_ds, callbacks, resume=checkpoint is not None,
                                   tokenizer=tokenizer)
    if cfg.train.privacy is not None:
        from audited_ft.train.dp import train_private

        with PowerSampler() as power:
            summary = train_private(cfg, trainer, folder, device, dtype)
        _save_adapter(trainer, folder / "adapter")
    else:
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        started = time.time()
        with PowerSampler() as power:  # GPU power through nvidia-smi where there is one; unavailable (no error) elsewhere
            out = trainer.train(resume_from_checkpoint=checkpoint)
        seconds = time.time() - started
        stopping = _stopping(trainer, es.enabled)
        n_logged = len(trainer.state.log_history)
        final_eval = _final_eval_loss(trainer, log_cb, stopping["restored_best_step"]) if eval_ds is not None else None
        history = trainer.state.log_history
        if stopping["restored_best_step"] not in (None, trainer.state.global_step):
            history = history[:n_logged]  # the restored weights' re-evaluation is not a point of the training curve
        _save_adapter(trainer, folder / "adapter")
        summary = _summary(trainer, history, out, seconds, final_eval, device, dtype, cfg, after_step=resumed_step or 0)
        summary.update(stopping)
    summary["resumed_from_step"] = resumed_step
    summary["gpu_power"] = power.summary()
    summary["speed"] = {**speed, "measured_tokens_per_second": summary["tokens_per_second"],
                        "measured_peak_memory_mb": summary["peak_memory_mb"]}
    if reference is not None:
        summary["reference"] = {"folder": "train/nonprivate", "seconds": reference.get("seconds"),
                                "final_eval_loss": reference.get("final_eval_loss"),
                                "tokens_per_second": reference.get("tokens_per_second"),
                                "peak_memory_mb": reference.get("peak_memory_mb")}
    if main:
        shutil.rmtree(folder / "checkpoints", ignore_errors=True)
        write_json(folder / "summary.json", summary)
        rf.record_artefacts(*(f"{sub}/{name}" for name in ("adapter", "log.jsonl", "summary.json", "speed.json")))
    return summary


def build_trainer(cfg: Config, folder, train_ds, eval_ds, callbacks=(), resume: bool = False, tokenizer=None):
    """The training stage's trainer, ready to ``train()``: the 4-bit base loaded, kernels applied, LoRA added, the
    data prepared (packed on CUDA), and the throughput settings settled (a memory budget calibrated). ``folder``
    receives checkpoints/ and speed.json. ``train_ds``/``eval_ds``: prompt/completion rows, or rows already tokenised
    (input_ids and completion_mask; benchmarks/train_throughput.py times this same path on such rows). Returns the
    trainer and the settings."""
    import torch
    from peft import LoraConfig, prepare_model_for_kbit_training
    from trl import SFTTrainer

    from audited_ft.models import compute_dtype, load_base_model, load_tokenizer, pick_device, resolve_model
    from audited_ft.train.speed import apply_kernels, score_labelled_positions_only, set_checkpointing

    device = pick_device(cfg.train.device)
    dtype = compute_dtype(cfg.quantization.compute_dtype, device)
    resolved = resolve_model(cfg.model.name_or_path, cfg.model.licence)
    if tokenizer is None:
        tokenizer = load_tokenizer(resolved, cfg.model.revision, cfg.model.trust_remote_code)
    model = load_base_model(resolved, cfg.quantization, device, cfg.model.revision, cfg.model.trust_remote_code)
    args = _sft_config(cfg, folder, device, dtype)
    gc_on = getattr(args, _checkpointing_key(type(args)))
    kernels = apply_kernels(model, cfg.train.kernels, device)
    # TRL's chunked LM head: which positions it projects through the vocabulary (speed.score_labelled_positions_only)
    lm_head = ("labelled positions only" if device == "cuda" or (device == "cpu" and score_labelled_positions_only())
               else "every position (TRL's default off Triton)")
    if cfg.quantization.load_in_4bit and not distributed.fsdp_enabled() and cfg.train.unquantised_dtype == "float32":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gc_on,
                                                gradient_checkpointing_kwargs={"use_reentrant": False})
    elif gc_on:
        # the norms are not upcast to float32 as prepare_model_for_kbit_training would: FSDP-QLoRA needs every
        # parameter of a wrapped unit in one storage dtype, and train.unquantised_dtype=compute asks for it. TRL
        # makes the inputs require grads for checkpointing a PEFT model (SFTTrainer.__init__).
        set_checkpointing(model, True)
    lora = LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                      target_modules=cfg.lora.target_modules, task_type="CAUSAL_LM")
    if eval_ds is None:
        args.eval_strategy = "no"
    trainer = _trainer_class(SFTTrainer)(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                                         processing_class=tokenizer, peft_config=lora, callbacks=list(callbacks))
    from audited_ft.run.console import verbose

    if not verbose():  # our bar and log lines instead of transformers' raw dicts and nested bars
        from transformers.trainer_callback import PrinterCallback, ProgressCallback

        trainer.remove_callback(ProgressCallback)
        trainer.remove_callback(PrinterCallback)
        trainer.add_callback(_console_callback())
    if device == "cpu" and dtype == torch.float32:
        # TRL casts a quantised model's LoRA weights to bfloat16 (the QLoRA paper's recipe, for GPU memory) on every
        # device; on a CPU computing in float32 that turns each LoRA product into a bfloat16 matmul, which most CPUs
        # run far slower (benchmarks/dp_cost.py measured the step time: RESULTS.md, "DP-SGD"). Kept in float32 here.
        for param in trainer.model.parameters():
            if param.requires_grad and param.dtype != torch.float32:
                param.data = param.data.float()
    trainer._aft_lora_names = lora_file_names(trainer.model)  # before FSDP flattens the parameters
    speed = _speed_settings(cfg, folder, trainer, device, kernels, gc_on, resume=resume, lm_head=lm_head)
    return trainer, speed


def _speed_settings(cfg: Config, folder, trainer, device: str, kernels: str, gc_on: bool, resume: bool,
                    lm_head: str) -> dict:
    """Settle the throughput settings before training and return them for the summary: packing (and its collator),
    kernels, and with a memory budget on CUDA the calibrated micro-batch and checkpointing. Written to
    train/speed.json; a resumed run reuses that file's micro-batch and checkpointing, so it continues on the same
    batches as the interrupted one."""
    import torch

    from audited_ft.train.speed import PackedRowsCollator, calibrate, compile_layers, set_checkpointing

    t = cfg.train
    packing = packing_on(cfg, device)
    if packing:
        trainer.data_collator = PackedRowsCollator(trainer.processing_class.pad_token_id)
    speed = {"mode": distributed.mode(), "world_size": distributed.world_size(), "packing": packing,
             "pack_length": t.max_length if packing else None, "kernels": kernels, "lm_head": lm_head,
             "micro_batch": t.batch_size, "gradient_checkpointing": bool(gc_on), "memory_budget_gib": t.memory_budget_gib,
             "optimizer": str(getattr(trainer.args.optim, "value", trainer.args.optim)), "train_rows": len(trainer.train_dataset),
             # the dtype the unquantised weights train in (train.unquantised_dtype): float32 where the recipe upcasts
             "unquantised_dtype": str(trainer.model.get_input_embeddings().weight.dtype).removeprefix("torch.")}
    path = folder / "speed.json"
    if t.memory_budget_gib is not None and device != "cuda":
        speed["memory_budget_note"] = "ignored: the memory budget applies to CUDA training"
    elif t.memory_budget_gib is not None and t.privacy is not None:
        # the calibration times ordinary training steps; DP steps hold per-example gradients on top
        speed["memory_budget_note"] = "ignored with train.privacy: train.batch_size is used as set"
    elif t.memory_budget_gib is not None and distributed.fsdp_enabled():
        # FSDP places and shards the model only when training starts, so there is nothing to measure before it
        speed["memory_budget_note"] = ("ignored under FSDP: train.batch_size and train.gradient_checkpointing are "
                                       "used as set")
    elif t.memory_budget_gib is not None:
        earlier = RunView(folder, manifest_required=False).load("speed.json") if resume else None
        if earlier and earlier.get("calibration"):
            plan = earlier["calibration"]
        else:
            candidates = {"auto": [False, True], "on": [True], "off": [False]}[t.gradient_checkpointing]
            per_rank = -(-len(trainer.train_dataset) // distributed.world_size())
            plan = calibrate(trainer, t.memory_budget_gib, candidates, max_rows=max(1, min(per_rank, 512)))
            plan["rows"] = distributed.all_min(plan["rows"])
            plan["gradient_checkpointing"] = distributed.broadcast_flag(plan["gradient_checkpointing"])
        rows, gc_on = plan["rows"], plan["gradient_checkpointing"]
        trainer.args.per_device_train_batch_size = rows
        trainer.args.per_device_eval_batch_size = rows
        trainer._train_batch_size = trainer.args.train_batch_size
        setattr(trainer.args, _checkpointing_key(type(trainer.args)), gc_on)
        set_checkpointing(trainer.model, gc_on)
        speed.update(micro_batch=rows, gradient_checkpointing=gc_on, calibration=plan)
        torch.cuda.empty_cache()
    # after the calibration, whose timed micro-steps would otherwise include the compilation
    speed["compile"] = compile_layers(trainer.model, t.compile, device)
    if distributed.is_main():
        write_json(path, speed)
    return speed


def _stopping(trainer, enabled: bool) -> dict:
    """What early stopping did: whether training ended before its planned steps, and which step's adapter is kept."""
    state = trainer.state
    restored = enabled and state.best_model_checkpoint is not None
    return {"early_stopping": enabled, "stopped_early": bool(enabled and state.global_step < state.max_steps),
            "planned_steps": state.max_steps,
            "restored_best_step": state.best_global_step if restored else None}


def _final_eval_loss(trainer, log_cb, restored_step: int | None) -> float:
    if restored_step is not None and restored_step != trainer.state.global_step:
        # The best checkpoint was restored: evaluate the weights that are saved. Not written to train/log.jsonl (it
        # is not a point of the training curve); the summary's final_eval_loss then equals the best step's loss.
        trainer.remove_callback(log_cb)
        try:
            return trainer.evaluate()["eval_loss"]
        finally:
            trainer.add_callback(log_cb)
    # Reuse the periodic evaluation when it ran at the last step; otherwise evaluate once more (logged by the callback).
    last = [h for h in trainer.state.log_history if "eval_loss" in h]
    if last and last[-1]["step"] == trainer.state.global_step:
        return last[-1]["eval_loss"]
    return trainer.evaluate()["eval_loss"]


def _check_audits_passed(rf: RunFolder) -> None:
    from audited_ft.errors import GateFailed

    path = rf / "audits/summary.json"
    if not path.exists():
        raise RunFolderError(f"{path}: missing — run the audits first (audited-ft audit); training is gated on them")
    summary = RunView(rf.path).require("audits/summary.json", "audit")
    if not summary.get("passed", False):
        raise GateFailed(f"training blocked: audit(s) {', '.join(summary['blocking'])} failed "
                         f"(see {rf / 'audits'}); fix the data or record an accepted risk in the config")


def _summary(trainer, history, out, seconds, final_eval, device, dtype, cfg, after_step: int = 0) -> dict:
    """``after_step``: a resumed run's starting step; its throughput counts only the tokens trained since then
    (``seconds`` is the resumed part's wall time)."""
    evals = [(h["step"], h["eval_loss"]) for h in history if "eval_loss" in h]
    losses = [h["loss"] for h in history if "loss" in h]
    tokens = max((h.get("num_tokens", 0) for h in history), default=0)
    before = max((h.get("num_tokens", 0) for h in history if h.get("step", 0) <= after_step), default=0)
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    return {"steps": trainer.state.global_step, "epochs": round(trainer.state.epoch or 0, 3),
            "seconds": round(seconds, 2), "train_tokens": int(tokens),
            "tokens_per_second": round((tokens - before) / seconds, 1) if seconds else None,
            **loss_fields(losses, evals, final_eval),
            "mean_train_loss": (sum(losses) / len(losses)) if after_step and losses else out.training_loss,
            **footprint(trainer.model, trainable, device, dtype, cfg)}
