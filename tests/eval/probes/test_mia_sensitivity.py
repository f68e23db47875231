"""Sensitivity of the membership-inference probe through the real pipeline (data → train → eval) on a tiny
random-weight Llama (tests/tiny_model.py): an adapter trained for many epochs on 12 rows of random words must be
caught — AUC near 1, a true-positive rate at 1% false positives above 1% — and the base, which saw neither split, is
the chance reference; one trained for a single small step is invisible to the plain loss but not to the
base-calibrated score. 120 non-members, so
that the 1% rate is measurable. The real model's figures (the default config) are in benchmarks/RESULTS.md."""

from __future__ import annotations

import json
import random

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.sensitivity]


def _rows(n: int = 140) -> list[dict]:
    rng = random.Random(5)
    words = [f"w{k}" for k in range(400)]
    return [{"id": f"m{i:03d}", "dialogue": " ".join(rng.choices(words, k=12)),
             "summary": " ".join(rng.choices(words, k=10))} for i in range(n)]


def _run(tmp, epochs: int, lr: float, max_steps: int | None = None, privacy: str = ""):
    from audited_ft.pipeline import stage_data, stage_eval, stage_train, start_run
    from audited_ft.run.folder import write_json
    from tests.tiny_model import build_tiny_llama

    rows = _rows()
    data = tmp / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    model = build_tiny_llama(tmp / "tiny-llama", [r["dialogue"] + " " + r["summary"] for r in rows])
    steps = f", max_steps: {max_steps}" if max_steps else ""
    cfg = tmp / "mia.yaml"
    cfg.write_text(f"""
run: {{name: mia-sensitivity, seed: 4}}
model: {{name_or_path: {model}, use_chat_template: false}}
data: {{source: {data}, id_field: id, split: {{train: 0.1, validation: 0.02, test: 0.88}},
        max_rows: {{train: 12, validation: 2, test: 120}}, prompt_template: "{{input}} =>"}}
train: {{epochs: {epochs}, batch_size: 4, learning_rate: {lr}, lr_scheduler: constant, max_length: 64,
         eval_every_steps: 100000, device: cpu{steps}{privacy}}}
lora: {{r: 16, alpha: 32, dropout: 0.0}}
quantization: {{load_in_4bit: false}}
eval: {{max_new_tokens: 4, batch_size: 32, bootstrap_samples: 1000}}
audits: {{leakage: {{}}, pii: {{enabled: false}}}}
probes: {{mia: {{limit: 120}}}}
gates: []
""")
    cfg_obj, rf = start_run(cfg, out=str(tmp / "runs"), run_id="s")
    stage_data(cfg_obj, rf)
    write_json(rf / "audits/summary.json", {"passed": True, "blocking": []})  # audits are not under test here
    stage_train(cfg_obj, rf)
    stage_eval(cfg_obj, rf)
    return json.loads((rf.path / "eval/metrics.json").read_text()), \
        json.loads((rf.path / "eval/probes.json").read_text())["mia"]["info"]


def _show(m):
    print({k: round(v, 3) for k, v in m.items() if k.startswith("privacy.mia.") and isinstance(v, float)
           and ".ci_" not in k and "p_value" not in k and "mde" not in k})


def test_an_adapter_that_memorised_its_rows_is_caught(tmp_path):
    m, info = _run(tmp_path, epochs=60, lr=0.01)
    _show(m)
    assert m["privacy.mia.members"] == 12 and m["privacy.mia.non_members"] == 120
    for score in ("loss", "calibrated", "min_k"):
        assert m[f"privacy.mia.{score}.auc.adapter"] > 0.9, score
        assert m[f"privacy.mia.{score}.auc.delta.ci_low"] > 0.1, score
        assert m[f"privacy.mia.{score}.tpr_at_1pct_fpr.adapter"] > 0.01, score
    # the base saw neither split: chance, within its interval
    assert m["privacy.mia.loss.auc.base.ci_low"] <= 0.5 <= m["privacy.mia.loss.auc.base.ci_high"]
    assert "privacy.mia.loss.tpr_at_0_1pct_fpr" in info["not_estimable"]  # 120 non-members cannot show 1 in 1,000


def test_one_small_step_is_seen_by_the_calibrated_score_only(tmp_path):
    """One optimizer step at a learning rate of 1e-4: the adapter's plain loss tells members no better than the
    base's does (the rows' own difficulty dominates), but the base-calibrated loss sees that these rows, and not the
    held-out ones, got easier (measured: AUC 0.70 against 0.64 for the plain loss, whose base is at 0.63)."""
    m, _ = _run(tmp_path, epochs=1, lr=0.0001, max_steps=1)
    _show(m)
    for score in ("loss", "min_k"):
        assert m[f"privacy.mia.{score}.auc.delta.ci_low"] <= 0.0 <= m[f"privacy.mia.{score}.auc.delta.ci_high"], score
    assert m["privacy.mia.calibrated.auc.adapter"] > 0.6 and m["privacy.mia.calibrated.auc.delta.ci_low"] > 0.0


def test_dp_training_hides_what_the_same_recipe_without_dp_memorises(tmp_path):
    """The memorising recipe above, trained with DP-SGD at ε = 1 (train.privacy; the non-private reference trained
    beside it in the same run): the non-private adapter is caught as before, the DP adapter's attacks stay at chance
    — every AUC interval holds 0.5 — as the guarantee says they must (TPR ≤ e^ε·FPR + δ: at most 0.03 at 1% FPR)."""
    m, _ = _run(tmp_path, epochs=60, lr=0.01, privacy=", privacy: {epsilon: 1, max_grad_norm: 1.0}")
    _show(m)
    for score in ("loss", "calibrated", "min_k"):
        assert m[f"privacy.mia.{score}.auc.nonprivate.adapter"] > 0.9, score
        low, high = m[f"privacy.mia.{score}.auc.adapter.ci_low"], m[f"privacy.mia.{score}.auc.adapter.ci_high"]
        assert low <= 0.5 <= high, (score, low, high)
        assert m[f"privacy.mia.{score}.tpr_at_1pct_fpr.adapter"] <= 1 / 12, score  # at most one of the 12 rows
