"""The terminal of a run (issue 24): this project's lines only — stage starts and ends with their figures, a closing
gate table and the report as a file URL — libraries' bars, log dicts and warnings in the run folder's run.log instead;
-v shows them; the second run of a config prints an estimate of its time. Real processes, output piped as in CI."""

import os
import subprocess
import sys

import pytest

from tests.conftest import make_tiny_rows
from tests.tiny_model import tiny_config

NOISE = ("Loading weights", "FutureWarning", "{'loss'", "\x1b[A", "it/s]", "examples/s")


def _run(*args: str, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for inherited in ("AFT_DEBUG", "HF_HUB_DISABLE_PROGRESS_BARS", "TRANSFORMERS_NO_ADVISORY_WARNINGS"):
        env.pop(inherited, None)
    return subprocess.run([sys.executable, "-m", "audited_ft", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=600)


@pytest.mark.slow
def test_quiet_terminal_full_log_and_an_estimate_on_the_second_run(tmp_path):
    cfg = tiny_config(tmp_path, make_tiny_rows())
    p = _run("run", str(cfg), "--out", "runs", "--run-id", "one", cwd=tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    out = p.stdout + p.stderr
    for noise in NOISE:
        assert noise not in out, noise
    for stage in ("data", "audit", "train", "eval", "gate", "report"):
        assert f"{stage}: started" in out and f"{stage}: done in" in out, stage
    assert "train: done in" in out and "steps 3" in out  # the stage's key figures on its closing line
    assert "gates:\n  PASS" in out and "rouge.rougeL.adapter" in out and "file://" in out and "verdict:" in out
    assert max(len(line) for line in out.splitlines() if " INFO " in line) > 80, "piped: plain lines, not wrapped"
    assert "estimated time" not in out  # nothing measured yet for this config
    log = (tmp_path / "runs/one/run.log").read_text(encoding="utf-8")
    assert "FutureWarning" in log or "py.warnings" in log  # libraries' warnings kept, in the file
    assert "train step 1:" in log and "probe rouge done" in log
    debug = [line for line in log.splitlines() if " DEBUG " in line]
    assert debug and all(" DEBUG audited_ft" in line for line in debug), "only our DEBUG records reach the file"
    assert len(out.splitlines()) < len(log.splitlines())

    again = _run("run", str(cfg), "--out", "runs", "--run-id", "two", cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "estimated time: about" in again.stdout + again.stderr

    loud = _run("-v", "run", str(cfg), "--out", "runs", "--run-id", "three", cwd=tmp_path)
    assert loud.returncode == 0, loud.stdout + loud.stderr
    assert "Loading weights" in loud.stdout + loud.stderr  # -v: the libraries' output as they write it
