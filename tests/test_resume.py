"""Crash and resume: kill -9 during training, `audited-ft run --resume`, evaluation resumed from cached answers, the
run-folder lock and unique run ids (issue 9)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from audited_ft.cli import app
from audited_ft.errors import RunFolderError
from audited_ft.run.folder import RunFolder
from tests.conftest import make_tiny_rows
from tests.tiny_model import tiny_config

runner = CliRunner()
AFT = [sys.executable, "-m", "audited_ft.cli"]


@pytest.fixture(scope="module")
def tiny_cfg(tmp_path_factory) -> Path:
    return tiny_config(tmp_path_factory.mktemp("tiny"), make_tiny_rows())


@pytest.fixture(scope="module")
def long_cfg(tmp_path_factory) -> Path:
    """The tiny pipeline with 60 training steps and a checkpoint every 5: long enough to be killed mid-way."""
    tmp = tmp_path_factory.mktemp("resume")
    cfg = tiny_config(tmp, make_tiny_rows())
    text = cfg.read_text().replace("train: {max_steps: 3, batch_size: 4, eval_every_steps: 2,",
                                   "train: {max_steps: 60, batch_size: 4, eval_every_steps: 20, "
                                   "checkpoint_every_steps: 5,")
    assert "max_steps: 60" in text
    cfg.write_text(text)
    return cfg


def _summary(run: Path) -> dict:
    return json.loads((run / "train/summary.json").read_text())


def test_kill_9_during_training_then_resume_matches_an_uninterrupted_run(long_cfg, tmp_path):
    out = tmp_path / "runs"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([*AFT, "run", str(long_cfg), "--out", str(out), "--run-id", "killed"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    run = out / "killed"
    deadline = time.time() + 240
    try:
        while time.time() < deadline and proc.poll() is None:
            steps = [int(p.parent.name.split("-")[1]) for p in run.glob("train/checkpoints/checkpoint-*/scheduler.pt")]
            if steps and max(steps) >= 10:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["stages"]["train"]["status"] == "running" and not (run / "train/adapter").exists()

    resumed = subprocess.run([*AFT, "run", "--resume", str(run)], env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    manifest = json.loads((run / "manifest.json").read_text())
    assert "resuming:" in resumed.stdout and f"verdict:    {manifest['verdict']}" in resumed.stdout
    assert manifest["verdict"] in ("PASS", "NEEDS REVIEW")  # the same words as gates.json and the report
    assert manifest["status"] == "passed" and manifest["resumes"][0]["interrupted"] == "train"
    assert all(manifest["stages"][s]["status"] == "done" for s in ("data", "audit", "train", "eval", "gate"))
    summary = _summary(run)
    # The newest *complete* checkpoint: the kill may land while the next one is being written
    assert summary["resumed_from_step"] >= 5 and summary["resumed_from_step"] % 5 == 0 and summary["steps"] == 60
    assert (run / "train/adapter/adapter_model.safetensors").is_file() and not (run / "train/checkpoints").exists()
    steps = [json.loads(line)["step"] for line in (run / "train/log.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and steps[-1] == 60  # the log has no step twice: the lines after the checkpoint went

    whole = runner.invoke(app, ["run", str(long_cfg), "--out", str(out), "--run-id", "whole"])
    assert whole.exit_code == 0, whole.output
    reference = _summary(out / "whole")
    # Same seed, CPU, optimizer/scheduler/RNG state and data position restored: the stated tolerance is 1e-4 on the
    # losses, 1e-6 on every evaluation metric.
    for key in ("final_train_loss", "final_eval_loss", "mean_train_loss"):
        assert summary[key] == pytest.approx(reference[key], abs=1e-4), key
    metrics = [json.loads((out / r / "eval/metrics.json").read_text()) for r in ("killed", "whole")]
    assert metrics[0].keys() == metrics[1].keys() and any(k.endswith(".adapter") for k in metrics[0])
    for key, value in metrics[1].items():
        assert metrics[0][key] == pytest.approx(value, abs=1e-6), key
    # the adapters themselves: every LoRA tensor within 1e-3 (float32 on a CPU: audited_ft.train.stage.build_trainer)
    from safetensors.torch import load_file

    a, b = (load_file(str(out / r / "train/adapter/adapter_model.safetensors")) for r in ("killed", "whole"))
    assert a.keys() == b.keys()
    assert max((a[k].float() - b[k].float()).abs().max().item() for k in a) <= 1e-3


def test_evaluation_resumes_from_cached_answers(tiny_cfg, tmp_path):
    """A crash during evaluation (the manifest left at eval running, no metrics written): resume recomputes no model
    answer that the cache holds and gives the same metrics."""
    out = tmp_path / "runs"
    assert runner.invoke(app, ["run", str(tiny_cfg), "--out", str(out), "--run-id", "r"]).exit_code == 0
    run = RunFolder(out / "r")
    before = json.loads((run / "eval/metrics.json").read_text())
    first = run.manifest()["eval"]["cache"]
    assert first["misses"] > 0
    # What a kill during the eval stage leaves behind: eval marked running, its outputs not yet written.
    m = run.manifest()
    m["status"] = "running"
    m["stages"]["eval"] = {"status": "running"}
    for s in ("gate", "report"):
        m["stages"][s] = {"status": "pending"}
    run.write_manifest(m)
    (run / "eval/metrics.json").unlink()
    result = runner.invoke(app, ["run", "--resume", str(run.path)])
    assert result.exit_code == 0, result.output
    cache = run.manifest()["eval"]["cache"]
    assert cache == {"hits": first["misses"], "misses": 0}
    after = json.loads((run / "eval/metrics.json").read_text())
    assert after == before
    assert run.manifest()["resumes"][0]["stages"] == ["eval", "gate"]


def test_resume_refuses_a_finished_run_and_extra_arguments(tiny_cfg, tmp_path):
    out = tmp_path / "runs"
    assert runner.invoke(app, ["run", str(tiny_cfg), "--out", str(out), "--run-id", "done"]).exit_code == 0
    again = runner.invoke(app, ["run", "--resume", str(out / "done")])
    assert again.exit_code == 2 and "already finished (passed)" in again.output
    both = runner.invoke(app, ["run", str(tiny_cfg), "--resume", str(out / "done")])
    assert both.exit_code == 2 and "CONFIG cannot be given with it" in both.output
    neither = runner.invoke(app, ["run"])
    assert neither.exit_code == 2 and "needs a CONFIG" in neither.output
    missing = runner.invoke(app, ["run", "--resume", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "not a run folder" in missing.output


def test_a_held_run_folder_is_refused_with_the_holders_pid(tmp_path):
    import shutil

    shutil.copytree(Path(__file__).parent / "fixtures/sample_run", tmp_path / "held")
    rf = RunFolder.open(tmp_path / "held")
    with rf.lock():
        with pytest.raises(RunFolderError, match=rf"in use by another audited-ft process \(pid {os.getpid()}\)"):
            with rf.lock():
                pass
        result = runner.invoke(app, ["report", str(rf.path)])
        assert result.exit_code == 2 and "in use by another audited-ft process" in result.output
    # released on exit, also when the holder dies: a child process takes it, is killed, and the lock is free again
    code = ("import sys, time; from audited_ft.run.folder import RunFolder\n"
            "with RunFolder(sys.argv[1]).lock():\n    print('held', flush=True); time.sleep(60)")
    child = subprocess.Popen([sys.executable, "-c", code, str(rf.path)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "held"
        with pytest.raises(RunFolderError, match=f"pid {child.pid}"):
            with rf.lock():
                pass
    finally:
        child.kill()
        child.wait(10)
    with rf.lock():
        pass


def test_parallel_runs_get_distinct_folders(tmp_path):
    from audited_ft.pipeline import _create_folder

    made, errors = [], []

    def create():
        try:
            made.append(_create_folder(tmp_path, "same", None).path)
        except Exception as exc:  # pragma: no cover - the assertion below shows it
            errors.append(exc)

    threads = [threading.Thread(target=create) for _ in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(made)) == 24
    with pytest.raises(RunFolderError, match="already exists"):
        _create_folder(tmp_path, "same", made[0].name)


def test_latest_checkpoint_passes_over_one_cut_short(tmp_path):
    from audited_ft.train.stage import _CHECKPOINT_FILES, latest_checkpoint

    def checkpoint(step: int, files=_CHECKPOINT_FILES, state_step=None):
        d = tmp_path / f"checkpoint-{step}"
        d.mkdir()
        for f in files:
            (d / f).write_text(json.dumps({"global_step": step if state_step is None else state_step}))
        return d

    assert latest_checkpoint(tmp_path) == (None, None)
    good = checkpoint(5)
    checkpoint(10, files=_CHECKPOINT_FILES[1:])  # killed before trainer_state.json was written
    checkpoint(15, state_step=10)  # a state from another step
    bad = checkpoint(20)
    (bad / "trainer_state.json").write_text('{"global_st')  # cut short mid-write
    assert latest_checkpoint(tmp_path) == (str(good), 5)
