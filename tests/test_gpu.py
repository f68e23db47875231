"""The CUDA path: QLoRA in bf16 with paged 8-bit AdamW and gradient checkpointing, then evaluation (skips without CUDA).

Uses a tiny random Llama built in the test, so it needs no model download on the GPU machine.
"""

import json

import pytest
from typer.testing import CliRunner

from audited_ft.cli import app
from audited_ft.eval.model import MAX_BATCH
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
    length-bucketed scoring, with answers to one prompt sharing a row, gives the same log-probabilities as one item
    per call."""
    from audited_ft.eval.model import ModelUnderTest
    from audited_ft.pipeline import open_run

    cfg = tiny_config(tmp_path, make_tiny_rows(), device="cuda")
    r = CliRunner().invoke(app, ["run", str(cfg), "--out", str(tmp_path / "runs"), "--run-id", "gpu",
                                 "--set", "train.max_steps=6", "--set", "train.checkpoint_every_steps=2"])
    assert r.exit_code == 0, r.output
    cfg_obj, rf = open_run(tmp_path / "runs/gpu")
    model = ModelUnderTest(cfg_obj, rf / "train/adapter")
    auto = model.batch_for(200)
    assert 1 < auto <= MAX_BATCH
    rows = [json.loads(line) for line in (rf / "data/test.jsonl").read_text().splitlines()]
    contexts, conts = [model.prompt(x["input"]) for x in rows], [x["target"] for x in rows]
    # plus three answers per prompt, as BBQ scores them: with the reference, four items share one row (the
    # context computed once)
    contexts += [model.prompt(x["input"]) for x in rows[:8] for _ in range(3)]
    conts += [a for _ in rows[:8] for a in (" the first", " the second", " cannot be determined")]
    assert sum(len(r) == 4 for r in model._rows(model._encode_pairs(contexts, conts, "score"))) == len(rows[:8])
    batched = model.score(contexts, conts, "adapter")
    model.cfg.eval.gpu_batch_size = 1
    assert model.batch_for(200) == 1
    single = model.score(contexts, conts, "adapter")
    assert [n for _, n in batched] == [n for _, n in single]
    assert max(abs(a - b) for (a, _), (b, _) in zip(batched, single)) < 0.05  # bf16 sums over ~30 tokens


@pytest.mark.gpu
def test_cuda_training_packs_and_fits_a_memory_budget(tmp_path):
    """On CUDA the stage packs rows, applies liger's kernels where installed, and with train.memory_budget_gib picks
    the micro-batch and checkpointing by measuring: the chosen micro-batch trains within the budget (the summary's
    peak plus the optimizer state, which the peak of paged optimizers does not show), and a smaller budget gives a
    smaller micro-batch."""
    rows = [dict(r, id=f"{r['id']}-{k}", dialogue=f"{r['dialogue']} Reference {k * 97 + i}.")
            for k in range(6) for i, r in enumerate(make_tiny_rows())]
    cfg = tiny_config(tmp_path, rows, device="cuda")
    chosen = {}
    for budget in (0.1, 0.6):
        run_id = f"b{budget}"
        r = CliRunner().invoke(app, ["run", str(cfg), "--out", str(tmp_path / "runs"), "--run-id", run_id,
                                     "--set", "train.max_steps=4", "--set", f"train.memory_budget_gib={budget}",
                                     "--set", "train.max_length=256", "--set", "eval.limit=2",
                                     "--set", "audits.leakage.enabled=false"])  # the rows are near-copies
        assert r.exit_code == 0, r.output
        s = json.loads((tmp_path / f"runs/{run_id}/train/summary.json").read_text())
        speed = s["speed"]
        assert speed["packing"] is True and speed["pack_length"] == 256
        cal = speed["calibration"]
        assert cal["budget_gib"] == budget and speed["micro_batch"] == cal["rows"] >= 1
        assert {t["gradient_checkpointing"] for t in cal["trials"]} == {False, True}
        assert s["peak_memory_mb"] / 1024 + cal["optimizer_state_gib"] <= budget * 1.05, (s["peak_memory_mb"], cal)
        chosen[budget] = cal["rows"]
    assert chosen[0.1] < chosen[0.6], chosen


@pytest.mark.gpu
def test_cuda_memory_budget_keeps_the_4bit_base_and_caps_batches(tmp_path):
    """eval.memory_budget_gib on a real card: a budget the dequantised base would crowd keeps the 4-bit base (said in
    the precision), and auto batches fit what the budget leaves, not the card's free memory."""
    import torch

    from audited_ft.eval.model import ModelUnderTest
    from audited_ft.pipeline import open_run

    cfg = tiny_config(tmp_path, make_tiny_rows(), device="cuda")
    r = CliRunner().invoke(app, ["run", str(cfg), "--out", str(tmp_path / "runs"), "--run-id", "gpu",
                                 "--set", "train.max_steps=2"])
    assert r.exit_code == 0, r.output
    cfg_obj, rf = open_run(tmp_path / "runs/gpu")
    whole = ModelUnderTest(cfg_obj, rf / "train/adapter")
    assert "dequantised" in whole.precision
    free_batch = whole.batch_for(200)
    del whole
    torch.cuda.empty_cache()
    cfg_obj.eval.memory_budget_gib = 1e-4  # about 100 KiB: less than the tiny model's weights
    tight = ModelUnderTest(cfg_obj, rf / "train/adapter")
    assert "not dequantised" in tight.precision and tight.dequantize_check["reason"]
    assert tight.batch_for(200) == 1 < free_batch  # nothing of the budget left: one sequence a call
