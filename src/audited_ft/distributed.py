"""Where this process stands in a multi-process launch (``accelerate launch`` / ``torchrun``), from the environment the
launcher sets. Only the training stage runs in several processes; every run-folder write (manifest, log, adapter,
summary) is made by the main process alone, the others train and exit."""

from __future__ import annotations

import os


def rank() -> int:
    return int(os.environ.get("RANK", "0") or 0)


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0") or 0)


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def is_main() -> bool:
    return rank() == 0


def is_distributed() -> bool:
    return world_size() > 1


def fsdp_enabled() -> bool:
    """accelerate launch with an FSDP config sets ACCELERATE_USE_FSDP for the script it starts."""
    return is_distributed() and os.environ.get("ACCELERATE_USE_FSDP", "").lower() in ("1", "true", "yes")


def mode() -> str:
    if not is_distributed():
        return "single"
    return "fsdp" if fsdp_enabled() else "ddp"


def all_min(value: int) -> int:
    """The smallest ``value`` over all processes (every rank must agree on a batch size, or they would run a different
    number of steps and wait on each other forever); ``value`` itself when not distributed."""
    if not is_distributed():
        return value
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        return value
    t = torch.tensor([value], device="cuda" if torch.cuda.is_available() and dist.get_backend() == "nccl" else "cpu")
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return int(t.item())


def broadcast_flag(value: bool) -> bool:
    """Rank 0's ``value`` on every rank."""
    if not is_distributed():
        return value
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        return value
    t = torch.tensor([int(value)], device="cuda" if torch.cuda.is_available() and dist.get_backend() == "nccl" else "cpu")
    dist.broadcast(t, src=0)
    return bool(t.item())
