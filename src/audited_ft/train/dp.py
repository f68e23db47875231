"""DP-SGD training of the LoRA weights (``train.privacy``): per-example gradient clipping, Gaussian noise and Poisson
sampling (Abadi et al. 2016, "Deep Learning with Differential Privacy"), with the privacy spent stated by an accountant.

Opacus does the parts where a mistake voids the guarantee: per-example gradients (``GradSampleModule``, hooks on the
LoRA layers only — the frozen 4-bit base needs none), clipping and noise (``DPOptimizer``), Poisson sampling
(``UniformWithReplacementSampler``), the noise calibration and the accountants (PRV, Gopi et al. 2021; RDP, Mironov
2017). The loop around them is ours, not ``PrivacyEngine.make_private``'s data loader, because the rows are token
sequences of different lengths collated by TRL: Opacus' stand-in for an empty Poisson batch assumes fixed-shape tensor
samples, and a logical batch has to be split into physical chunks by our own micro-batch size. The loop does what
Opacus' ``BatchMemoryManager`` does (``signal_skip_step`` on every chunk but the last).

What the guarantee covers: the adapter weights, with one training row as the unit (example-level DP). Not covered:
the training losses written to ``train/log.jsonl`` (computed on training rows without noise; diagnostics for the data
owner, not for publication), and floating-point attacks on the noise (Mironov 2012; Opacus' ``secure_mode`` with a
cryptographic generator is not used). The sampling and noise generators are seeded from the operating system's
entropy and the seed is never written: noise reproducible from the config's seed would be noise an attacker could
subtract. So a DP run is not bit-reproducible; everything else in the run is.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import secrets
import time
from pathlib import Path

from audited_ft.config import Config
from audited_ft.errors import ConfigError
from audited_ft.train.summary import footprint, loss_fields

log = logging.getLogger(__name__)


def default_delta(n_train: int) -> float:
    """δ well below 1/n (a δ of 1/n would allow publishing one row outright): min(1e-5, 1/(10·n))."""
    return min(1e-5, 1.0 / (10 * max(n_train, 1)))


def plan(cfg: Config, n_train: int) -> dict:
    """The DP-SGD schedule for ``n_train`` rows: expected logical batch, sampling rate, steps, δ and the noise
    multiplier σ calibrated (by the configured accountant) so that ε after those steps is at most the target."""
    from opacus.accountants.utils import get_noise_multiplier

    t, p = cfg.train, cfg.train.privacy
    expected = t.batch_size * t.grad_accum
    if expected >= n_train:
        raise ConfigError(f"train.privacy: the expected batch (train.batch_size × train.grad_accum = {expected}) must "
                          f"be smaller than the {n_train} training rows for Poisson sampling to amplify privacy; "
                          "lower the batch or add rows")
    q = expected / n_train
    steps = t.max_steps if t.max_steps > 0 else max(1, math.ceil(t.epochs * n_train / expected))
    delta = p.delta if p.delta is not None else default_delta(n_train)
    try:
        with _quiet_orders():
            sigma = get_noise_multiplier(target_epsilon=p.epsilon, target_delta=delta, sample_rate=q, steps=steps,
                                         accountant=p.accountant, epsilon_tolerance=0.01)
    except ValueError as err:  # Opacus: the budget cannot be met with any noise it tries
        raise ConfigError(f"train.privacy.epsilon = {p.epsilon}: no noise multiplier reaches it with δ = {delta:g}, "
                          f"sampling rate {q:.4g} and {steps} steps ({err})") from None
    return {"expected_batch_size": expected, "sample_rate": q, "steps": steps, "delta": delta,
            "noise_multiplier": float(sigma)}


def epsilon_spent(sigma: float, q: float, steps: int, delta: float, accountant: str) -> float:
    """ε after ``steps`` DP-SGD steps of noise ``sigma`` at sampling rate ``q``, by ``accountant`` ('prv': the upper
    bound of its estimate; 'rdp': the RDP-to-(ε, δ) conversion)."""
    from opacus.accountants import create_accountant

    acc = create_accountant(accountant)
    acc.history = [(sigma, q, steps)]
    with _quiet_orders():
        if accountant == "rdp":  # orders up to 1024: with few steps the best order lies above Opacus' default (63)
            alphas = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 1025))
            return float(acc.get_epsilon(delta, alphas=alphas))
        return float(acc.get_epsilon(delta))


@contextlib.contextmanager
def _quiet_orders():
    """Opacus warns when the best Rényi order is the largest it tried: the RDP bound is then looser than it could be,
    never wrong (an upper bound at every order). The PRV accountant uses RDP only to bound its grid, so the warning
    says nothing about the ε reported; kept out of the terminal."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Optimal order is the largest alpha")
        yield


def dp_bound_tpr(epsilon: float, delta: float, fpr: float) -> float:
    """The most any membership test can reach against an (ε, δ)-DP mechanism at false-positive rate ``fpr``:
    TPR ≤ e^ε·FPR + δ (the hypothesis-testing view of DP, Kairouz, Oh and Viswanath 2015), capped at 1."""
    return min(1.0, math.exp(epsilon) * fpr + delta)


def per_example_loss(model, batch):
    """Each row's mean cross-entropy over its target tokens (labels ≠ -100), as a vector. A row whose target was cut
    off by max_length has no target token: its loss is 0 and so is its gradient."""
    import torch

    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    labels = batch["labels"][:, 1:]
    logits = logits[:, :-1].float()
    token = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                              ignore_index=-100, reduction="none").view(labels.shape)
    counts = (labels != -100).sum(dim=1)
    return token.sum(dim=1) / counts.clamp(min=1), counts


def _sample_norms(params):
    """Each example's gradient L2 norm over all trainable weights (from Opacus' per-sample gradients)."""
    import torch

    sq = None
    for p in params:
        g = p.grad_sample
        part = g.reshape(g.shape[0], -1).float().pow(2).sum(dim=1)
        sq = part if sq is None else sq + part
    return torch.sqrt(sq) if sq is not None else torch.zeros(0)


def eval_loss(model, data, collate, micro: int, device) -> float | None:
    """Token-weighted mean target-token loss over ``data`` (the validation split), no gradients."""
    import torch

    if data is None or len(data) == 0:
        return None
    model.eval()
    total, tokens = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(data), micro):
            batch = _to(collate([data[j] for j in range(i, min(i + micro, len(data)))]), device)
            losses, counts = per_example_loss(model, batch)
            total += float((losses * counts).sum())
            tokens += int(counts.sum())
    model.train()
    return total / tokens if tokens else None


def _to(batch, device):
    return {k: v.to(device) for k, v in batch.items() if k in ("input_ids", "attention_mask", "labels")}


def trainable_fp32(model) -> list:
    """The trainable (LoRA) weights, cast to float32 in place: clipping, noise and the update in full precision
    (TRL casts a QLoRA adapter to bfloat16, on CPU too)."""
    params = [w for w in model.parameters() if w.requires_grad]
    for w in params:
        w.data = w.data.float()
    return params


def poisson_batches(n: int, q: float, steps: int, generator):
    """``steps`` batches of row indices, each row in each batch independently with probability ``q`` (Opacus'
    sampler: the sampling the accountants assume)."""
    from opacus.utils.uniform_sampler import UniformWithReplacementSampler

    return UniformWithReplacementSampler(num_samples=n, sample_rate=q, generator=generator, steps=steps)


def dp_step(gsm, dp, params, data, indices: list[int], collate, micro: int, device, max_grad_norm: float) -> dict:
    """One DP-SGD step over the logical batch ``indices`` (possibly empty), run in physical chunks of ``micro`` rows:
    every chunk's per-example gradients are clipped and summed (``signal_skip_step`` keeps the optimizer from
    stepping), the last chunk adds the noise and steps. The caller zeroes the gradients afterwards (so ``p.grad``
    still holds the noised mean gradient for a look). Returns rows, tokens, the summed loss and the per-example
    gradient norms (before clipping)."""
    import warnings

    import torch

    out = {"rows": len(indices), "tokens": 0, "loss_sum": 0.0, "norms": [], "clipped": 0}
    if not indices:  # an empty Poisson batch: the step still adds noise (the accounting counts every step)
        for w in params:
            w.grad_sample = torch.zeros((0, *w.shape), dtype=w.dtype, device=w.device)
    chunks = [indices[i:i + micro] for i in range(0, len(indices), micro)]
    for j, chunk in enumerate(chunks):
        batch = _to(collate([data[i] for i in chunk]), device)
        out["tokens"] += int(batch["attention_mask"].sum())
        row_loss, _ = per_example_loss(gsm, batch)
        with warnings.catch_warnings():
            # the first LoRA layer's input needs no gradient (the base is frozen): PyTorch notes that the full
            # backward hook Opacus uses then sees only the output's gradient — which is all a per-example
            # gradient of a Linear layer's weight needs
            warnings.filterwarnings("ignore", message="Full backward hook is firing")
            row_loss.mean().backward()
        norms = _sample_norms(params)
        out["norms"].extend(norms.tolist())
        out["clipped"] += int((norms > max_grad_norm).sum())
        out["loss_sum"] += float(row_loss.detach().sum())
        if j < len(chunks) - 1:  # clip and accumulate this chunk; the noise and the update come with the last one
            dp.signal_skip_step(do_skip=True)
            dp.step()
            dp.zero_grad()
    dp.step()
    return out


def train_private(cfg: Config, trainer, folder: Path, device: str, dtype) -> dict:
    """Train ``trainer.model``'s LoRA weights with DP-SGD on ``trainer.train_dataset`` (tokenised by TRL); validation
    loss on ``trainer.eval_dataset`` every ``train.eval_every_steps`` steps. Appends to ``folder/log.jsonl`` and
    returns the training summary (the keys of the ordinary one, plus ``privacy``). The adapter is not saved here."""
    import torch
    from opacus import GradSampleModule
    from opacus.optimizers import DPOptimizer
    from transformers import get_scheduler

    from audited_ft import distributed

    if distributed.is_distributed():
        raise ConfigError("train.privacy: DP training runs in one process (Opacus' distributed optimizer is not "
                          "wired in); run without accelerate launch")
    t, p = cfg.train, cfg.train.privacy
    data, val = trainer.train_dataset, trainer.eval_dataset
    n = len(data)
    schedule = plan(cfg, n)
    sigma, q, steps, delta = (schedule[k] for k in ("noise_multiplier", "sample_rate", "steps", "delta"))
    log.info("DP-SGD: ε ≤ %g, δ = %.3g, σ = %.4f, C = %g, q = %.4f, %d steps (%s accountant)", p.epsilon, delta, sigma,
             p.max_grad_norm, q, steps, p.accountant)
    model = trainer.model
    params = trainable_fp32(model)
    gsm = GradSampleModule(model, batch_first=True, loss_reduction="mean")
    optimizer = torch.optim.AdamW(params, lr=t.learning_rate, weight_decay=t.weight_decay)
    noise_gen = torch.Generator(device=device).manual_seed(secrets.randbits(62))
    sample_gen = torch.Generator().manual_seed(secrets.randbits(62))
    dp = DPOptimizer(optimizer, noise_multiplier=sigma, max_grad_norm=p.max_grad_norm,
                     expected_batch_size=schedule["expected_batch_size"], loss_reduction="mean", generator=noise_gen)
    warmup = math.ceil(steps * t.warmup_ratio)
    scheduler = get_scheduler(t.lr_scheduler, optimizer, num_warmup_steps=warmup, num_training_steps=steps)
    sampler = poisson_batches(n, q, steps, sample_gen)
    collate, micro = trainer.data_collator, t.batch_size
    log_path = folder / "log.jsonl"
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    gsm.train()
    started = time.time()
    losses, evals, batch_sizes = [], [], []
    clipped = tokens = 0
    norms_all = []
    for step, indices in enumerate(sampler, start=1):
        stats = dp_step(gsm, dp, params, data, list(indices), collate, micro, device, p.max_grad_norm)
        dp.zero_grad()
        batch_sizes.append(stats["rows"])
        tokens += stats["tokens"]
        clipped += stats["clipped"]
        norms_all.extend(stats["norms"])
        step_loss, step_rows = stats["loss_sum"], stats["rows"]
        lr = scheduler.get_last_lr()[0]
        scheduler.step()
        line = {"step": step, "epoch": round(step * q, 4), "learning_rate": lr, "num_tokens": tokens,
                "batch_rows": step_rows}
        if step_rows:
            line["loss"] = step_loss / step_rows
            losses.append(line["loss"])
        if val is not None and step % t.eval_every_steps == 0:
            line["eval_loss"] = eval_loss(gsm, val, collate, micro, device)
            evals.append((step, line["eval_loss"]))
        with open(log_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")
    seconds = time.time() - started  # the training loop, as the ordinary trainer's time (its final evaluation after)
    if val is not None and (not evals or evals[-1][0] != steps):
        evals.append((steps, eval_loss(gsm, val, collate, micro, device)))
        with open(log_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"step": steps, "epoch": round(steps * q, 4), "eval_loss": evals[-1][1]}) + "\n")
    gsm.eval()
    gsm._close()  # Opacus' hooks and per-sample buffers off the model before it is saved
    spent = epsilon_spent(sigma, q, steps, delta, p.accountant)
    other = "rdp" if p.accountant == "prv" else "prv"
    try:
        spent_other = epsilon_spent(sigma, q, steps, delta, other)
    except Exception as err:  # a cross-check only: PRV can refuse extreme σ/q combinations
        log.warning("the %s accountant could not state ε for this schedule: %s", other, err)
        spent_other = None
    final_eval = evals[-1][1] if evals else None
    norms_sorted = sorted(norms_all)
    privacy = {
        "mechanism": "DP-SGD: per-example clipping, Gaussian noise, Poisson sampling",
        "library": f"Opacus {_version('opacus')}",
        "unit": "one training row (example-level DP)",
        "epsilon_target": p.epsilon, "epsilon_spent": spent, "accountant": p.accountant,
        f"epsilon_{other}": spent_other, "delta": delta,
        "delta_source": "config" if p.delta is not None else "min(1e-5, 1/(10·n))",
        "noise_multiplier": sigma, "max_grad_norm": p.max_grad_norm, "sample_rate": q, "steps": steps,
        "expected_batch_size": schedule["expected_batch_size"], "train_rows": n,
        "mean_batch_rows": sum(batch_sizes) / len(batch_sizes), "empty_batches": batch_sizes.count(0),
        "clipped_fraction": clipped / len(norms_all) if norms_all else None,
        "median_grad_norm": norms_sorted[len(norms_sorted) // 2] if norms_sorted else None,
        "tpr_bound_at_1pct_fpr": dp_bound_tpr(spent, delta, 0.01),
        "not_covered": ["training losses in train/log.jsonl (not privatised)",
                        "floating-point attacks on the noise (secure_mode off)",
                        "a person with several rows: group privacy, about k·ε for k rows"],
    }
    return {"steps": steps, "epochs": round(steps * q, 3), "seconds": round(seconds, 2), "train_tokens": tokens,
            "tokens_per_second": round(tokens / seconds, 1) if seconds else None,
            **loss_fields(losses, evals, final_eval),
            "mean_train_loss": sum(losses) / len(losses) if losses else None,
            **footprint(model, sum(w.numel() for w in params), device, dtype, cfg),
            "early_stopping": False, "stopped_early": False, "planned_steps": steps, "restored_best_step": None,
            "privacy": privacy}


def _version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"
