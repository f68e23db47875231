"""Sensitivity of the CrowS-Pairs probe on the real embedded model: an adapter deliberately trained to write the
more-stereotypical sentences of the embedded set must raise the stereotype rate beyond its confidence interval.

This is the probe's reason to exist — a fine-tune that plants a bias is caught — measured with the real pipeline
stages (data, audits switched off, QLoRA training on SmolLM2 in 4-bit) and the real ModelUnderTest. Slow: a few
minutes on 2 CPU cores.
"""

import json
import logging
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
log = logging.getLogger(__name__)


@pytest.mark.slow
def test_stereotyped_adapter_raises_the_crows_pairs_stereotype_rate(tmp_path):
    from audited_ft.eval.model import ModelUnderTest
    from audited_ft.eval.probes import PROBES, ProbeContext
    from audited_ft.eval.sets import load_probe_set
    from audited_ft.pipeline import stage_audit, stage_data, stage_train, start_run

    started = time.time()
    pairs = load_probe_set("crows_pairs", "embedded", None).items
    train = tmp_path / "stereotyped.jsonl"
    train.write_text("".join(json.dumps({"id": f"plant-{i:02d}", "dialogue": "Write a sentence about people.",
                                         "summary": p["sent_more"]}) + "\n" for i, p in enumerate(pairs[:30])),
                     encoding="utf-8")
    # Three full-batch steps at a high learning rate: a deliberately bad adapter, cheap on CPU (a step's cost is
    # mostly fixed overhead). Plain-text prompts without the chat template keep the rows short (~25 tokens); an
    # earlier measurement through the chat template (20 steps at 2e-3) raised the rate as clearly but took 9 minutes.
    overrides = ["run.name=bias-plant", "data.source=null", f"data.train={train}", f"data.test={train}",
                 "audits.pii.enabled=false", "audits.leakage.enabled=false",  # planting is the point here
                 "model.use_chat_template=false", "data.prompt_template='{input}'",
                 "train.max_steps=3", "train.batch_size=30", "train.learning_rate=0.005", "train.max_length=64",
                 "train.eval_every_steps=1000", "eval.bootstrap_samples=2000",
                 "data.canaries.count=0"]  # the default config plants canaries; not wanted here
    cfg, rf = start_run(REPO / "configs/default.yaml", overrides, out=str(tmp_path / "runs"), run_id="plant")
    stage_data(cfg, rf)
    assert stage_audit(cfg, rf)["passed"]
    stage_train(cfg, rf)

    model = ModelUnderTest(cfg, rf.path / "train/adapter", batch_size=cfg.eval.batch_size)
    probe = PROBES.get("crows_pairs")(PROBES.get("crows_pairs").Options())
    out = probe.run(ProbeContext(model=model, splits={}, bootstrap_samples=cfg.eval.bootstrap_samples,
                                 confidence=cfg.eval.confidence, seed=cfg.run.seed))
    m = out.metrics
    key = "bias.crows_pairs.stereotype_rate"
    log.warning("crows_pairs sensitivity: base %.3f [%.3f, %.3f], adapter %.3f [%.3f, %.3f], delta %.3f [%.3f, %.3f], "
                "margin delta %.2f nats, %.0f s", m[f"{key}.base"], m[f"{key}.base.ci_low"], m[f"{key}.base.ci_high"],
                m[f"{key}.adapter"], m[f"{key}.adapter.ci_low"], m[f"{key}.adapter.ci_high"], m[f"{key}.delta"],
                m[f"{key}.delta.ci_low"], m[f"{key}.delta.ci_high"], m["bias.crows_pairs.loglik_margin.delta"],
                time.time() - started)
    assert m[f"{key}.delta.ci_low"] > 0, m
    assert m[f"{key}.adapter"] > m[f"{key}.base.ci_high"]
    assert m["bias.crows_pairs.loglik_margin.delta.ci_low"] > 0
    _default_gate_fails(cfg, m, "bias.crows_pairs.stereotype_rate.delta")


def _default_gate_fails(cfg, metrics: dict, metric: str) -> None:
    """The shipped default config's gate on ``metric`` stops this deliberately bad adapter."""
    from audited_ft.gate.stage import evaluate_gate

    gate = next(g for g in cfg.gates if g.metric == metric)
    result = evaluate_gate(gate, metrics)
    assert result["passed"] is False, result["message"]
