"""The real thing: the CLI runs the embedded default config end to end — real SmolLM2 in 4-bit NF4 on CPU, real
presidio, real training, real generation — then each stage re-runs on the finished run folder.

Slow (minutes on 2 cores): this is the run the README's first command does.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from audited_ft.cli import app

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


class _Result:
    def __init__(self, p: subprocess.CompletedProcess):
        self.exit_code, self.output = p.returncode, p.stdout + p.stderr


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """The run as `make run` starts it: its own process, output piped (no TTY), as in CI."""
    out = tmp_path_factory.mktemp("runs")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    p = subprocess.run([sys.executable, "-m", "audited_ft", "run", str(REPO / "configs/default.yaml"), "--out",
                        str(out), "--run-id", "e2e"], capture_output=True, text=True, env=env, timeout=1800)
    return _Result(p), out / "e2e"


@pytest.mark.slow
def test_default_run_passes_with_visible_effect(default_run):
    result, run = default_run
    assert result.exit_code == 0, result.output
    # the default's risk gates are too small to decide (verdict.inconclusive: warn): INCONCLUSIVE, exit 0
    assert "verdict:    INCONCLUSIVE" in result.output
    # issue 24: a quiet terminal — the stage lines, audits, probes, gates and verdict, no library noise — and the
    # full detail in the run folder's log
    lines = result.output.splitlines()
    assert len(lines) < 60, "\n".join(lines)
    for noise in ("Loading weights", "FutureWarning", "{'loss'", "\x1b[A", "it/s]", "examples/s"):
        assert noise not in result.output, noise
    assert "train: done in" in result.output and "gates:" in result.output and "file://" in result.output
    full = (run / "run.log").read_text(encoding="utf-8")
    assert "train step" in full and "probe rouge done" in full and len(full.splitlines()) > len(lines)
    m = json.loads((run / "manifest.json").read_text())
    assert m["status"] == "passed" and m["verdict"] == "INCONCLUSIVE"
    gates = json.loads((run / "gates.json").read_text())
    by_metric = {r["metric"]: r for r in gates["results"]}
    assert gates["verdict"]["word"] == "INCONCLUSIVE" and gates["verdict"]["exit_code"] == 0
    assert {by_metric["rouge.rougeL.delta"]["verdict"], by_metric["rouge.rougeL.adapter"]["verdict"]} == {"pass"}
    refusal = by_metric["safety.refusal.rate.delta"]  # the base never refuses: the probe is blind, said so
    assert refusal["verdict"] == "inconclusive" and "blind" in refusal["message"] and "base never refuses" in refusal["message"]
    assert not [r for r in gates["results"] if r["verdict"] == "fail"], gates["results"]
    assert all(s["status"] == "done" for s in m["stages"].values()), m["stages"]
    for key in ("config_hash", "versions", "seed", "datasets", "artefacts", "hardware"):
        assert m[key], key
    assert m["artefacts"]["eval/metrics.json"]
    metrics = json.loads((run / "eval/metrics.json").read_text())
    # The bar: the adapter beats the base on ROUGE-L outside the confidence interval.
    assert metrics["rouge.rougeL.delta.ci_low"] > 0
    assert metrics["rouge.rougeL.adapter"] > metrics["rouge.rougeL.base.ci_high"]
    # every probe of the default ran on base and adapter, each risk with a paired delta and its interval
    probes = json.loads((run / "eval/probes.json").read_text())
    for name in ("rouge", "overfitting", "memorisation", "canary", "crows_pairs", "bbq", "bold", "toxicity", "refusal"):
        assert probes[name]["status"] == "done", name
        assert probes[name]["description"] and probes[name]["limitations"], name  # the report's transparency table
    for key in ("bias.crows_pairs.stereotype_rate", "bias.bbq.bias_score_disambig", "bias.bold.max_group_gap.toxicity",
                "toxicity.rtp.expected_max_toxicity", "safety.refusal.rate", "memorisation.exact_match",
                "privacy.canary.exposure"):
        if metrics[f"{key}.delta.ci_low"] is None:  # too few items (2 canaries): said, never a [x, x] interval
            owner = next(p for p in probes.values() if key in (p.get("intervals") or {}))
            assert owner["intervals"][key]["not_estimable"], key
        else:
            assert metrics[f"{key}.delta.ci_low"] <= metrics[f"{key}.delta"] <= metrics[f"{key}.delta.ci_high"], key
    # no interval anywhere is [x, x] from fewer items than the minimum
    for key, value in metrics.items():
        if key.endswith(".ci_low") and value is not None:
            stem = key.rsplit(".", 2)[0]
            assert (metrics.get(f"{stem}.n") or 0) >= 10 or metrics[key] != metrics[key[:-6] + "ci_high"], key
    assert metrics["privacy.canary.planted"] == 2
    contamination = json.loads((run / "audits/leakage.json").read_text())["summary"]["contamination"]
    assert {"crows_pairs", "bbq", "advbench"} <= set(contamination["sets"])  # the probes' sets were checked


@pytest.mark.slow
def test_run_folder_artefacts(default_run):
    _, run = default_run
    for rel in ("config.resolved.yaml", "data/train.jsonl", "data/stats.json", "audits/pii.json",
                "audits/leakage.json", "audits/summary.json", "train/log.jsonl", "train/summary.json",
                "train/adapter/adapter_config.json", "train/adapter/adapter_model.safetensors",
                "eval/generations/base.jsonl", "eval/generations/adapter.jsonl", "gates.json", "report.html"):
        assert (run / rel).is_file(), rel
    log = [json.loads(line) for line in (run / "train/log.jsonl").read_text().splitlines()]
    assert any("loss" in r for r in log) and any("eval_loss" in r for r in log)
    summary = json.loads((run / "train/summary.json").read_text())
    assert summary["quantization"] == "nf4+double_quant" and summary["train_tokens"] > 0
    assert not list(run.rglob("*.tmp")), "no half-written files"


@pytest.mark.slow
def test_adapter_loads_with_peft(default_run):
    _, run = default_run
    from peft import PeftConfig, PeftModel
    from transformers import AutoModelForCausalLM

    from audited_ft.models import resolve_model

    cfg = PeftConfig.from_pretrained(str(run / "train/adapter"))
    assert cfg.r == 16
    base = AutoModelForCausalLM.from_pretrained(resolve_model("smollm2-135m-instruct").path)
    model = PeftModel.from_pretrained(base, str(run / "train/adapter"))
    assert sum("lora_A" in n for n, _ in model.named_parameters()) == 210  # 30 layers x 7 linear modules


@pytest.mark.slow
def test_report_and_gate_rerun_on_the_folder(default_run):
    _, run = default_run
    html = (run / "report.html").read_text()
    assert "Misalignment" in html and "rougeL" in html
    assert "Canary exposure (privacy.canary.*)" in html and "bias.crows_pairs" in html
    assert "the detector sees wording, not harm" in html  # the refusal probe's blind spots, from its docstring
    before = (run / "report.html").stat().st_mtime_ns
    r = runner.invoke(app, ["report", str(run)])
    assert r.exit_code == 0, r.output
    assert (run / "report.html").stat().st_mtime_ns >= before
    r = runner.invoke(app, ["gate", str(run)])
    assert r.exit_code == 0 and "verdict: INCONCLUSIVE" in r.output, r.output
    r = runner.invoke(app, ["gate", str(run), "--inconclusive", "fail"])
    assert r.exit_code == 1 and "verdict: INCONCLUSIVE" in r.output, r.output
