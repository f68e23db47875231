"""Sensitivity of the capability probe on the real embedded model (SmolLM2-135M-Instruct, NF4 QLoRA on CPU): an
adapter trained hard on one fixed answer style (every one of 16 summarisation rows answered "OK OK OK ...", a large
learning rate, many full-batch steps) forgets general ability, and the macro average over five published
multiple-choice sets — HellaSwag, PIQA, ARC-Easy, ARC-Challenge, WinoGrande, none of which the adapter saw — must fall
beyond its interval, and the shipped gate must FAIL it. The normal DialogSum adapter's figure is in the README's
worked example. The sets are read from the data directory at run time, never stored here.

Minutes on 2 CPU cores (12 full-batch steps on 16 dialogues; 5 x 100 items scored by base and adapter)."""

from __future__ import annotations

import pytest

from tests.conftest import data_dir
from tests.eval.probes.test_refusal_sensitivity import _default_gate_fails, _train

pytestmark = pytest.mark.sensitivity

SETS = ("hellaswag", "piqa", "arc_easy", "arc_challenge", "winogrande")
STYLE = "OK OK OK OK OK OK OK OK."


@pytest.mark.slow
@pytest.mark.realdata
def test_an_adapter_that_forgot_lowers_the_capability_macro_average(tmp_path):
    from audited_ft.eval.model import ModelUnderTest
    from audited_ft.eval.probes import ProbeContext
    from audited_ft.eval.stats import IntervalSettings
    from audited_ft.eval.probes.capability import CapabilityProbe
    from audited_ft.eval.sets import read_jsonl_items
    from tests.paths import REPO

    dialogues = read_jsonl_items(REPO / "configs/data/dailytalk_summaries.jsonl")[:16]
    rows = [{"id": f"s{i}", "dialogue": r["dialogue"], "summary": STYLE} for i, r in enumerate(dialogues)]
    cfg, adapter = _train(tmp_path, "forgetter", rows, ["train.max_steps=12", "train.learning_rate=0.005", "train.max_length=384"])
    model = ModelUnderTest(cfg, adapter, batch_size=cfg.eval.batch_size)
    options = CapabilityProbe.Options(data={s: f"{{data_dir}}/{s}" for s in SETS}, limit=100)
    out = CapabilityProbe(options).run(ProbeContext(
        model=model, splits={}, data_dir=data_dir(),
        stats=IntervalSettings(bootstrap_samples=cfg.eval.bootstrap_samples, confidence=cfg.eval.confidence,
                               seed=cfg.run.seed)))
    m = {k: round(v, 3) for k, v in out.metrics.items() if isinstance(v, (int, float))}
    print({k: v for k, v in m.items() if k.endswith((".base", ".adapter", ".delta", ".ci_high"))})
    assert m["capability.macro.score.n"] == 500
    assert m["capability.macro.score.delta.ci_high"] < 0, m
    _default_gate_fails(cfg, out.metrics, "capability.macro.score.delta")
