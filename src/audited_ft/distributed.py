"""Where this process stands in a multi-process launch (``accelerate launch`` / ``torchrun``), from the environment the
launcher sets. The training and evaluation stages run in several processes; every run-folder write (manifest, log,
adapter, summary, metrics, answers, cache) is made by the main process alone, the others compute and exit."""

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


# ------------------------------------------------------------------------------------------ the evaluation's shards
# The evaluation stage may also run in several processes (``accelerate launch -m audited_ft eval RUN`` / torchrun).
# Every process runs every probe in full (same data, same seeds, so the same model calls in the same order); only the
# model calls are shared out: each call's batches — formed exactly as one process forms them — go round-robin to the
# processes, and the per-item results are gathered back to every process. A batch computed by another process is
# the same batch (same items, same padding), so the results, and every metric after them, equal one process's.
# torch.distributed's object collectives (pickle over gloo or NCCL) carry the results: the payloads are the items'
# answers and log-probabilities, small next to the model calls, and the library already does the bookkeeping.


def start_group(device: str) -> bool:
    """Join the process group the launcher set up (gloo on the CPU, NCCL on CUDA); True when distributed."""
    if not is_distributed():
        return False
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        cuda = device == "cuda" and torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(local_rank())
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return True


def end_group(finished: bool) -> None:
    """Leave the process group before the interpreter exits. A gloo group left to the interpreter's shutdown now and
    then aborts a process ("terminate called without an active exception", exit -6) after its work is done; so the
    group is destroyed explicitly, after a barrier when the command finished (no process tears its threads down while
    another still talks to it); after an error without one (the others may never reach it)."""
    if not _group_ready():
        return
    import torch.distributed as dist

    if finished:
        dist.barrier()
    dist.destroy_process_group()


def _group_ready() -> bool:
    if not is_distributed():
        return False
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


BATCHES = [0]  # model batches this process computed in the evaluation (for the manifest: how the work was shared)


def mine(n: int) -> list[int]:
    """The batch indices (of ``n``) this process computes: every ``world_size``-th, from its rank."""
    picked = list(range(rank(), n, world_size())) if _group_ready() else list(range(n))
    BATCHES[0] += len(picked)
    return picked


def gather_items(local: dict) -> dict:
    """Every process's ``{item index: result}`` merged, on every process (results must pickle)."""
    if not _group_ready():
        return local
    import torch.distributed as dist

    parts: list = [None] * world_size()
    dist.all_gather_object(parts, local)
    merged: dict = {}
    for part in parts:
        merged.update(part)
    return merged


def broadcast(value):
    """Rank 0's ``value`` (anything that pickles) on every process."""
    if not _group_ready():
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def check_same_call(what: str, payload: str) -> None:
    """Stop with a clear error when the processes are about to share out different calls (their probes diverged:
    different data, seeds or library versions per process); sharing them would pair one process's items with
    another's results."""
    if not _group_ready():
        return
    import hashlib

    import torch.distributed as dist

    digest = hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()
    seen: list = [None] * world_size()
    dist.all_gather_object(seen, digest)
    if len(set(seen)) > 1:
        raise RuntimeError(f"{what}: the {world_size()} evaluation processes reached this model call with different "
                           "inputs; every process must run the same probes on the same data (same run folder, same "
                           "package versions)")
