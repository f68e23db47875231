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


@pytest.mark.gpu
def test_cuda_batches_from_free_memory_and_scores_like_one_at_a_time(tmp_path):
    """eval.gpu_batch_size auto picks a batch from the free GPU memory (blocks torch caches count as free), and the
    length-bucketed scoring gives the same log-probabilities as one item per call."""
    from audited_ft.generation import ModelUnderTest
    from audited_ft.pipeline import open_run

    cfg = tiny_config(tmp_path, make_tiny_rows(), device="cuda")
    r = CliRunner().invoke(app, ["run", str(cfg), "--out", str(tmp_path / "runs"), "--run-id", "gpu",
                                 "--set", "train.max_steps=6", "--set", "train.checkpoint_every_steps=2"])
    assert r.exit_code == 0, r.output
    cfg_obj, rf = open_run(tmp_path / "runs/gpu")
    model = ModelUnderTest(cfg_obj, rf / "train/adapter")
    auto = model.batch_for(200)
    assert 1 < auto <= 256
    rows = [json.loads(line) for line in (rf / "data/test.jsonl").read_text().splitlines()]
    contexts, conts = [model.prompt(x["input"]) for x in rows], [x["target"] for x in rows]
    batched = model.score(contexts, conts, "adapter")
    model.cfg.eval.gpu_batch_size = 1
    assert model.batch_for(200) == 1
    single = model.score(contexts, conts, "adapter")
    assert [n for _, n in batched] == [n for _, n in single]
    assert max(abs(a - b) for (a, _), (b, _) in zip(batched, single)) < 0.05  # bf16 sums over ~30 tokens
