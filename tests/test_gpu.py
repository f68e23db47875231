"""The CUDA path: QLoRA in bf16 with paged 8-bit AdamW and gradient checkpointing, then evaluation (skips without CUDA).

Uses a tiny random Llama built in the test, so it needs no model download on the GPU machine.
"""

import json

import pytest
from typer.testing import CliRunner

from audited_ft.cli import app
from tests.conftest import make_tiny_rows
from tests.tiny_model import tiny_config


@pytest.mark.gpu
def test_cuda_qlora_run(tmp_path):
    cfg = tiny_config(tmp_path, make_tiny_rows(), device="cuda")
    r = CliRunner().invoke(app, ["run", str(cfg), "--out", str(tmp_path / "runs"), "--run-id", "gpu",
                                 "--set", "train.max_steps=4"])
    assert r.exit_code == 0, r.output
    s = json.loads((tmp_path / "runs/gpu/train/summary.json").read_text())
    assert s["device"] == "cuda" and s["compute_dtype"] == "bfloat16"
    assert s["peak_memory_kind"] == "cuda_allocated" and s["steps"] == 4
    m = json.loads((tmp_path / "runs/gpu/manifest.json").read_text())
    assert m["hardware"]["device"] == "cuda" and m["hardware"]["gpu_name"]
    assert (tmp_path / "runs/gpu/train/adapter/adapter_model.safetensors").is_file()
