"""Sensitivity of the CrowS-Pairs probe on the real embedded model, on a harm held apart from the probe's data.

A deliberately bad adapter is trained to answer "Write a sentence about people." with StereoSet's *stereotype*
sentences (intrasentence, gender / race / religion; read from the data directory at run time, never stored here),
then the CrowS-Pairs probe scores 300 published pairs it never saw. What this measures (SmolLM2-135M, NF4 QLoRA on
CPU; figures in benchmarks/RESULTS.md): the adapter's log-likelihood margin towards the more-stereotypical sentence
rises clearly (Student t on the paired differences), while the stereotype *rate* — the share of pairs where the
stereotyped sentence wins — moves a few points, within the rate gate's margin of practical importance. The assertions
are therefore what a held-apart plant shows here: the margin moves beyond its interval, and the default gate on the
rate does not PASS the adapter at the default embedded size (36 pairs cannot show it no worse than the margin).
That a likelihood probe sees little of a model taught to *write* stereotypes is the probe's stated blind spot; the
earlier version of this test trained on the probe's own sentences and so only showed that memorised items are noticed.

Slow: about 4 minutes on 2 CPU cores (15 full-batch steps of 30 short rows; 2 x 300 pairs scored).
"""

import json
import logging
import random
import time
from pathlib import Path

import pytest

from tests.conftest import data_dir

pytestmark = pytest.mark.sensitivity

REPO = Path(__file__).resolve().parents[3]
log = logging.getLogger(__name__)


def _stereotypes(n: int) -> list[str]:
    out = []
    for domain in ("gender", "race", "religion"):
        items = json.loads((data_dir() / "stereoset_intrasentence_subset" / f"{domain}_test.json").read_text())
        out += [item["data"]["stereotype"]["sentence"] for item in items]
    random.Random(0).shuffle(out)
    return out[:n]


@pytest.mark.slow
@pytest.mark.realdata
def test_adapter_trained_on_stereoset_stereotypes_moves_crows_pairs(tmp_path):
    from audited_ft.eval.model import ModelUnderTest
    from audited_ft.eval.probes import PROBES, ProbeContext
    from audited_ft.eval.stats import IntervalSettings
    from audited_ft.gate.stage import evaluate_gate
    from audited_ft.pipeline import stage_audit, stage_data, stage_train, start_run

    started = time.time()
    train = tmp_path / "stereotyped.jsonl"
    train.write_text("".join(json.dumps({"id": f"plant-{i:03d}", "dialogue": "Write a sentence about people.",
                                         "summary": s}) + "\n" for i, s in enumerate(_stereotypes(300))),
                     encoding="utf-8")
    # Full-batch steps at a high learning rate: a deliberately bad adapter, cheap on CPU. Plain prompts without the
    # chat template keep the rows short (~25 tokens).
    overrides = ["run.name=bias-plant", "data.source=null", f"data.train={train}", f"data.test={train}",
                 "audits.pii.enabled=false", "audits.leakage.enabled=false", "audits.content.enabled=false",
                 "model.use_chat_template=false", "data.prompt_template='{input}'",
                 "train.max_steps=15", "train.batch_size=30", "train.learning_rate=0.002", "train.max_length=64",
                 "train.eval_every_steps=1000", "data.canaries.count=0"]
    cfg, rf = start_run(REPO / "configs/default.yaml", overrides, out=str(tmp_path / "runs"), run_id="plant")
    stage_data(cfg, rf)
    assert stage_audit(cfg, rf)["passed"]
    stage_train(cfg, rf)

    model = ModelUnderTest(cfg, rf.path / "train/adapter", batch_size=cfg.eval.batch_size)
    stats = IntervalSettings(bootstrap_samples=cfg.eval.bootstrap_samples, confidence=cfg.eval.confidence,
                             seed=cfg.run.seed)
    ctx = ProbeContext(model=model, splits={}, stats=stats)
    probe = PROBES.get("crows_pairs")
    published = probe(probe.Options(data=str(data_dir() / "crows_pairs"), limit=300)).run(ctx).metrics
    embedded = probe(probe.Options()).run(ctx).metrics
    key, margin = "bias.crows_pairs.stereotype_rate", "bias.crows_pairs.loglik_margin"
    for name, m in (("published 300", published), ("embedded 36", embedded)):
        log.warning("crows_pairs %s: rate delta %.3f [%.3f, %.3f]; margin delta %.2f [%.2f, %.2f] nats, p %.3f",
                    name, m[f"{key}.delta"], m[f"{key}.delta.ci_low"], m[f"{key}.delta.ci_high"],
                    m[f"{margin}.delta"], m[f"{margin}.delta.ci_low"], m[f"{margin}.delta.ci_high"],
                    m[f"{margin}.delta.p_value"])
    log.warning("bias sensitivity run: %.0f s", time.time() - started)
    assert published[f"{margin}.n"] == 300
    assert published[f"{margin}.delta.ci_low"] > 0 and published[f"{margin}.delta.p_value"] < 0.05
    assert published[f"{key}.delta"] > 0
    gate = next(g for g in cfg.gates if g.metric == f"{key}.delta")
    assert evaluate_gate(gate, embedded)["verdict"] != "pass"
