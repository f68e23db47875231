"""The evaluation stage under a two-process launch (torchrun, gloo on the CPU; ``accelerate launch`` sets the same
environment): the model calls' batches are shared out and gathered, and every metric, answer and interval equals
what one process computes from the same trained adapter."""

import json
import os
import shutil
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from audited_ft.cli import app
from tests.conftest import make_tiny_rows
from tests.tiny_model import tiny_config

runner = CliRunner()

# Probes that reach every model method: generate (rouge, memorisation, refusal), score with shared contexts
# (crows_pairs, bbq, capability, truthfulness), token_logprobs (mia, explain), sample (toxicity), and the liveness
# check's fresh scoring. Batches of 3, so every call has several batches to share out.
PROBES = {"rouge": {}, "overfitting": {"limit": 6}, "memorisation": {"limit": 6}, "mia": {"limit": 8},
          "crows_pairs": {"limit": 12}, "bbq": {"limit": 9}, "toxicity": {"limit": 4, "samples_per_prompt": 2},
          "refusal": {"limit": 4, "benign_limit": 4}, "capability": {"limit": 5}, "truthfulness": {"limit": 6},
          "explain": {"limit": 3}}


@pytest.mark.slow
def test_two_processes_evaluate_exactly_as_one(tmp_path):
    cfg = tiny_config(tmp_path, make_tiny_rows())
    sets = ["--set", f"probes={json.dumps(PROBES)}", "--set", "eval.batch_size=3", "--set", "gates=[]"]
    r = runner.invoke(app, ["run", str(cfg), "--out", str(tmp_path / "runs"), "--run-id", "one", *sets])
    assert r.exit_code == 0, r.output
    one = tmp_path / "runs" / "one"
    two = tmp_path / "runs" / "two"
    shutil.copytree(one, two, ignore=shutil.ignore_patterns("eval", "report.html"))
    assert not (two / "eval").exists()

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        "-m", "audited_ft", "eval", str(two)], capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-4000:]
    assert p.stdout.count("eval: done —") == 1, "the main process alone reports"
    assert "2 processes" in p.stdout

    manifest = json.loads((two / "manifest.json").read_text())
    ev = manifest["eval"]
    assert manifest["stages"]["eval"]["status"] == "done"
    assert ev["processes"] == 2 and len(ev["batches_per_process"]) == 2
    assert min(ev["batches_per_process"]) > 0, "both processes computed batches"
    single = json.loads((one / "manifest.json").read_text())["eval"]
    assert single["processes"] == 1 and sum(ev["batches_per_process"]) == single["batches_per_process"][0]

    assert json.loads((two / "eval/metrics.json").read_text()) == json.loads((one / "eval/metrics.json").read_text())
    for f in sorted((one / "eval/generations").glob("*.jsonl")):
        assert (two / "eval/generations" / f.name).read_text() == f.read_text(), f.name
    cached = sorted(q.name for q in (one / "eval/cache").iterdir())
    assert sorted(q.name for q in (two / "eval/cache").iterdir()) == cached, "the main process wrote every entry"
    probes_one = json.loads((one / "eval/probes.json").read_text())
    probes_two = json.loads((two / "eval/probes.json").read_text())
    for name in PROBES:
        assert probes_two[name]["status"] == "done"
        assert probes_two[name]["info"] == probes_one[name]["info"], name

    # the rest of the run in one process: gates and report from the gathered evaluation
    r = runner.invoke(app, ["run", "--resume", str(two)])
    assert r.exit_code == 0, r.output
    assert (two / "report.html").is_file()


@pytest.mark.slow
def test_a_resumed_multi_process_evaluation_reads_the_cache(tmp_path):
    """The processes agree on cache hits (the main process reads the entry and shares it), so a second launch on the
    same folder computes nothing and still gives the same metrics."""
    cfg = tiny_config(tmp_path, make_tiny_rows())
    sets = ["--set", 'probes={"rouge": {}, "crows_pairs": {"limit": 8}}', "--set", "eval.batch_size=3"]
    r = runner.invoke(app, ["run", str(cfg), "--out", str(tmp_path / "runs"), "--run-id", "c", *sets])
    assert r.exit_code == 0, r.output
    run = tmp_path / "runs" / "c"
    first = json.loads((run / "eval/metrics.json").read_text())
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        "-m", "audited_ft", "eval", str(run)], capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-4000:]
    ev = json.loads((run / "manifest.json").read_text())["eval"]
    assert ev["cache"]["misses"] == 0 and ev["cache"]["hits"] > 0
    assert json.loads((run / "eval/metrics.json").read_text()) == first


@pytest.mark.parametrize("rank", ["0", "1"])
def test_other_commands_still_refuse_a_launch(tmp_path, monkeypatch, rank):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", rank)
    r = runner.invoke(app, ["gate", str(tmp_path)])
    assert r.exit_code == 2 and "Only training and evaluation run on several GPUs" in r.output
