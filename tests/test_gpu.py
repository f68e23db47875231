"""The CUDA path: QLoRA training in bf16 with paged 8-bit AdamW and gradient checkpointing (skips without CUDA)."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from audited_ft.cli import app

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.gpu
def test_cuda_qlora_run(tmp_path):
    r = CliRunner().invoke(app, [
        "run", str(REPO / "configs/default.yaml"), "--out", str(tmp_path), "--run-id", "gpu",
        "--set", "train.device=cuda", "--set", "train.max_steps=4", "--set", "data.max_rows.test=16",
        "--set", "gates=[]"])
    assert r.exit_code == 0, r.output
    s = json.loads((tmp_path / "gpu/train/summary.json").read_text())
    assert s["device"] == "cuda" and s["compute_dtype"] == "bfloat16"
    assert s["peak_memory_kind"] == "cuda_allocated" and s["steps"] == 4
