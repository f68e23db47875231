"""The training stage on two GPUs through accelerate launch, DDP and FSDP-QLoRA, on the tiny model (skips without
two CUDA devices: CI has none; run on a 2-GPU machine). The audits before and the evaluation after stay single-process:
audited-ft audit, then the launch, then audited-ft run --resume."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from audited_ft.cli import app
from tests.conftest import make_tiny_rows
from tests.tiny_model import tiny_config

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


def _gpus() -> int:
    try:
        import torch
    except ImportError:
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


pytestmark = [pytest.mark.gpu, pytest.mark.skipif(_gpus() < 2, reason="needs two CUDA devices")]


@pytest.mark.parametrize("launch", ["ddp", "fsdp_qlora"])
def test_training_stage_on_two_gpus(tmp_path, launch):
    cfg = tiny_config(tmp_path, make_tiny_rows(), device="cuda")
    r = runner.invoke(app, ["audit", str(cfg), "--out", str(tmp_path / "runs"), "--run-id", launch,
                            "--set", "train.max_steps=4", "--set", "train.max_length=256"])
    assert r.exit_code == 0, r.output
    run = tmp_path / "runs" / launch
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    p = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--config_file",
                        str(REPO / f"configs/accelerate/{launch}.yaml"), "-m", "audited_ft", "train", str(run)],
                       capture_output=True, text=True, env=env, timeout=900)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-4000:]
    s = json.loads((run / "train/summary.json").read_text())
    assert s["steps"] == 4 and s["speed"]["world_size"] == 2
    assert s["speed"]["mode"] == ("fsdp" if launch == "fsdp_qlora" else "ddp")
    from safetensors.torch import load_file

    weights = load_file(str(run / "train/adapter/adapter_model.safetensors"))
    assert weights and not any("_fsdp_wrapped_module" in k for k in weights)
    assert any(v.abs().sum() > 0 for k, v in weights.items() if "lora_B" in k), "the adapter was trained"
    r = runner.invoke(app, ["run", "--resume", str(run)])
    assert r.exit_code == 0, r.output
    m = json.loads((run / "manifest.json").read_text())
    assert m["stages"]["train"]["status"] == "done" and m["stages"]["report"]["status"] == "done"
