"""The overfitting probe: curve numbers from a literal training log, degraded logs, and a planted train/held-out gap."""

import json

import pytest

from audited_ft.eval.probes import PROBES, ProbeContext
from audited_ft.eval.stats import IntervalSettings
from audited_ft.eval.probes.overfitting import curve
from tests.fakes import FakeModel

# Train loss per step 1..8; validation every 2 steps, best at step 4, then worse.
TRAIN = {1: 3.0, 2: 2.6, 3: 2.2, 4: 2.0, 5: 1.6, 6: 1.4, 7: 1.0, 8: 0.8}
EVALS = {2: 2.5, 4: 2.0, 6: 2.1, 8: 2.4}


def _log():
    rows = []
    for step in range(1, 9):
        rows.append({"step": step, "epoch": step / 8, "loss": TRAIN[step], "learning_rate": 1e-4})
        if step in EVALS:
            rows.append({"step": step, "epoch": step / 8, "eval_loss": EVALS[step]})
    return rows


def test_curve_numbers_by_hand():
    out, note = curve(_log(), {"stopped_early": False}, last_evals=3)
    # windows: (0,2] → 2.8, (2,4] → 2.1, (4,6] → 1.5, (6,8] → 0.9; gaps -0.3, -0.1, 0.6, 1.5
    assert out["train_loss_final"] == pytest.approx(0.9)
    assert out["val_loss_final"] == 2.4 and out["val_loss_best"] == 2.0 and out["best_step"] == 4
    assert out["final_gap"] == pytest.approx(1.5)
    assert out["val_loss_rise"] == pytest.approx(0.4)
    # slope of the gap over the last 3 evaluations (steps 4, 6, 8: -0.1, 0.6, 1.5): 0.4 per step, 40 per 100 steps
    assert out["gap_slope"] == pytest.approx(40.0)
    assert out["evaluations"] == 4 and out["stopped_early"] == 0.0
    assert note["status"] == "done" and [g["step"] for g in note["gaps"]] == [2, 4, 6, 8]


def test_curve_degrades_without_validation_loss():
    train_only = [r for r in _log() if "loss" in r]
    out, note = curve(train_only, {}, last_evals=4)
    assert out == {"train_loss_final": 0.8}
    assert note["status"].startswith("degraded: no validation loss was logged")


def test_single_evaluation_has_no_slope():
    rows = [r for r in _log() if r["step"] <= 2]
    out, note = curve(rows, {}, last_evals=4)
    assert "gap_slope" not in out and out["final_gap"] == pytest.approx(2.5 - 2.8)
    assert "fewer than 2" in note["gap_slope"]


@pytest.fixture
def splits():
    rows = [{"id": f"t{i}", "input": f"dialogue {i}", "target": f"person {i} books a table for {i} people"}
            for i in range(40)]
    return {"train": rows[:20], "validation": rows[20:25], "test": rows[25:]}


class MemorisingAdapter(FakeModel):
    """The adapter gives training targets a much higher likelihood than held-out ones."""

    def __init__(self, train_rows):
        super().__init__()
        self._train = {self.prompt(r["input"]) for r in train_rows}

    def adapter_bonus(self, context, continuation):
        return 4.0 if context in self._train else 0.5


def _probe(**options):
    cls = PROBES.get("overfitting")
    return cls(cls.Options(**options))


def test_reads_the_run_folder_and_sees_a_planted_gap(tmp_path, splits):
    (tmp_path / "train").mkdir()
    (tmp_path / "train/log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _log()))
    (tmp_path / "train/summary.json").write_text(json.dumps({"stopped_early": True, "restored_best_step": 4}))
    out = _probe(limit=15).run(ProbeContext(model=MemorisingAdapter(splits["train"]), splits=splits,
                                                run_dir=tmp_path, stats=IntervalSettings(bootstrap_samples=500)))
    m = out.metrics
    assert m["overfitting.final_gap"] == pytest.approx(1.5) and m["overfitting.stopped_early"] == 1.0
    assert out.info["curve"]["restored_best_step"] == 4
    # per-token losses: 8 words per target, so the bonus of 4 vs 0.5 widens the adapter's gap by 3.5 / 8
    assert m["overfitting.split_gap.delta"] == pytest.approx(3.5 / 8)
    assert m["overfitting.split_gap.delta.ci_low"] > 0.4
    assert abs(m["overfitting.split_gap.base"]) < m["overfitting.split_gap.delta.ci_low"]
    assert m["overfitting.split_gap.n"] == 15


def test_without_a_training_log_only_the_measured_gap(splits):
    out = _probe().run(ProbeContext(model=FakeModel(), splits=splits, stats=IntervalSettings(bootstrap_samples=200)))
    assert out.info["curve"].startswith("not available")
    assert {k.split(".")[1] for k in out.metrics} == {"split_gap"}
    assert out.metrics["overfitting.split_gap.n"] == 15  # min(32, 20 train, 15 test)


def test_canary_rows_are_left_out_of_the_training_sample(tmp_path, splits):
    (tmp_path / "data").mkdir()
    canary_rows = [{"id": f"canary-0-{k}", "input": "What is my secret code?", "target": "My secret code is 1."}
                   for k in range(30)]
    (tmp_path / "data/canaries.json").write_text(json.dumps(
        {"canaries": [{"id": "canary-0", "secret": "1", "rows": [r["id"] for r in canary_rows]}]}))
    with_canaries = dict(splits, train=canary_rows + splits["train"])

    class KnowsTheCanary(FakeModel):
        def adapter_bonus(self, context, continuation):
            return 100.0 if "secret code" in context else 0.0

    out = _probe(limit=40).run(ProbeContext(model=KnowsTheCanary(), splits=with_canaries, run_dir=tmp_path,
                                                stats=IntervalSettings(bootstrap_samples=200)))
    assert out.info["split_gap"]["canary_rows_excluded"] == 30
    assert out.metrics["overfitting.split_gap.delta"] == 0.0  # a canary row in the sample would move it by ~3
