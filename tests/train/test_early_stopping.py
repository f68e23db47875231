"""Early stopping (train.early_stopping): config, the trainer arguments it sets, and a real run on the tiny model that
stops on a validation plateau and keeps the best adapter, read back by the overfitting probe."""

import json

import pytest

from audited_ft.config import validate_config
from audited_ft.errors import ConfigError


def _cfg(**train):
    return validate_config({"data": {"source": "x.jsonl"}, "train": train})


def test_config_default_off_and_checked():
    es = _cfg().train.early_stopping
    assert (es.enabled, es.patience, es.min_delta) == (False, 3, 0.0)
    assert _cfg(early_stopping={"enabled": True, "patience": 2, "min_delta": 0.01}).train.early_stopping.patience == 2
    with pytest.raises(ConfigError) as err:
        _cfg(early_stopping={"patience": 0, "min_delta": -1, "patients": 3})
    text = str(err.value)
    assert "train.early_stopping.patience" in text and "train.early_stopping.min_delta" in text
    assert "train.early_stopping.patients: unknown key" in text


def test_trainer_arguments(tmp_path):
    import torch

    from audited_ft.run.folder import RunFolder
    from audited_ft.train.stage import _sft_config

    off = _sft_config(_cfg(eval_every_steps=5, checkpoint_every_steps=0), RunFolder(tmp_path), "cpu", torch.float32)
    assert off.save_strategy == "no" and not off.load_best_model_at_end
    resumable = _sft_config(_cfg(eval_every_steps=5, checkpoint_every_steps=7), RunFolder(tmp_path), "cpu",
                            torch.float32)
    assert resumable.save_strategy == "steps" and resumable.save_steps == 7 and not resumable.save_only_model
    assert resumable.save_total_limit == 1 and not resumable.load_best_model_at_end
    on = _sft_config(_cfg(eval_every_steps=5, early_stopping={"enabled": True}), RunFolder(tmp_path), "cpu",
                     torch.float32)
    # transformers needs matching evaluation and save schedules to restore the best checkpoint
    assert on.save_strategy == on.eval_strategy == "steps" and on.save_steps == on.eval_steps == 5
    assert on.load_best_model_at_end and on.metric_for_best_model == "eval_loss" and on.greater_is_better is False
    assert not on.save_only_model  # optimizer and RNG state too: a killed run resumes from it


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from tests.conftest import make_tiny_rows
    from tests.tiny_model import tiny_config

    tmp = tmp_path_factory.mktemp("es")
    return tmp, tiny_config(tmp, make_tiny_rows())


def _start(tiny, run_id, overrides, audits=True):
    from audited_ft.pipeline import stage_audit, stage_data, start_run
    from audited_ft.run.folder import write_json

    tmp, cfg_path = tiny
    cfg, rf = start_run(cfg_path, overrides, out=str(tmp / "runs"), run_id=run_id)
    stage_data(cfg, rf)
    if audits:
        stage_audit(cfg, rf)
    else:  # the training stage only reads the audits' verdict
        write_json(rf / "audits/summary.json", {"passed": True, "blocking": []})
    return cfg, rf


def test_stops_on_a_plateau_and_restores_the_best_adapter(tiny):
    from audited_ft.data.stage import load_splits
    from audited_ft.eval.probes import PROBES, ProbeContext
    from audited_ft.eval.stats import IntervalSettings
    from audited_ft.pipeline import stage_train
    from tests.fakes import FakeModel

    # A plateau made certain whatever the tiny model's random weights: with min_delta this large no evaluation after
    # the first counts as an improvement, so patience 2 stops training at step 6 of 12.
    cfg, rf = _start(tiny, "stop", ["train.max_steps=12", "train.eval_every_steps=2", "train.learning_rate=0.05",
                                    "train.lr_scheduler=constant", "train.early_stopping.enabled=true",
                                    "train.early_stopping.patience=2", "train.early_stopping.min_delta=100"])
    stage_train(cfg, rf)
    s = json.loads((rf / "train/summary.json").read_text())
    log = [json.loads(line) for line in (rf / "train/log.jsonl").read_text().splitlines()]
    evals = {r["step"]: r["eval_loss"] for r in log if "eval_loss" in r}
    assert s["early_stopping"] and s["stopped_early"] and s["steps"] == 6 and s["planned_steps"] == 12
    assert s["restored_best_step"] == s["best_step"] == min(evals, key=evals.get)
    # the saved adapter is the restored one: re-evaluated, it has the best step's loss, not the last step's
    assert s["final_eval_loss"] == pytest.approx(evals[s["best_step"]], rel=1e-4)
    if s["best_step"] != s["steps"]:
        assert abs(s["final_eval_loss"] - evals[s["steps"]]) > 1e-3
    assert max(r["step"] for r in log) == s["steps"] and len(evals) == s["steps"] // 2  # no extra curve point
    assert not (rf / "train/checkpoints").exists()
    assert (rf / "train/adapter/adapter_model.safetensors").is_file()

    cls = PROBES.get("overfitting")
    out = cls(cls.Options(limit=4)).run(ProbeContext(model=FakeModel(), splits=load_splits(rf), run_dir=rf.path,
                                                         stats=IntervalSettings(bootstrap_samples=200)))
    m = out.metrics
    assert m["overfitting.stopped_early"] == 1.0 and m["overfitting.best_step"] == s["best_step"]
    assert m["overfitting.val_loss_best"] == pytest.approx(s["best_eval_loss"])
    assert (m["overfitting.val_loss_rise"] > 0) == (s["best_step"] != s["steps"])
    assert out.info["curve"]["restored_best_step"] == s["best_step"]


def test_needs_a_validation_split(tiny):
    from audited_ft.pipeline import stage_train

    cfg, rf = _start(tiny, "noval", ["data.split.train=0.8", "data.split.validation=0", "data.split.test=0.2",
                                     "train.early_stopping.enabled=true"], audits=False)
    assert json.loads((rf / "manifest.json").read_text())["datasets"]["validation"]["rows"] == 0
    with pytest.raises(ConfigError, match="needs a validation split"):
        stage_train(cfg, rf)
    assert not (rf / "train/adapter").exists()
