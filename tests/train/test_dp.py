"""DP-SGD (train.privacy): the config and what it refuses, the noise calibrated against the accountants, Poisson
sampling by simulation, one DP step against per-example gradients computed by hand on the tiny model (clipping, the
mean over the expected batch, the noise's scale, an empty batch), and a run through the pipeline that trains the DP
adapter beside its non-private reference, evaluates both and reports the guarantee."""

import json
import math

import numpy as np
import pytest

from audited_ft.config import validate_config
from audited_ft.errors import ConfigError
from audited_ft.train import dp


def _cfg(**train):
    return validate_config({"data": {"source": "x.jsonl"}, "train": train})


def test_config_off_by_default_and_checked():
    assert _cfg().train.privacy is None
    p = _cfg(privacy={"epsilon": 3}).train.privacy
    assert (p.epsilon, p.delta, p.max_grad_norm, p.accountant, p.reference) == (3, None, 1.0, "prv", True)
    with pytest.raises(ConfigError) as err:
        _cfg(privacy={"epsilon": 0, "max_grad_norm": -1, "accountant": "gdp", "epsillon": 2})
    text = str(err.value)
    for key in ("train.privacy.epsilon", "train.privacy.max_grad_norm", "train.privacy.accountant",
                "train.privacy.epsillon: unknown key"):
        assert key in text
    with pytest.raises(ConfigError, match="epsilon"):  # the budget has no default: privacy is a decision
        _cfg(privacy={"max_grad_norm": 1})
    for clash, word in (({"early_stopping": {"enabled": True}}, "early_stopping"), ({"packing": "on"}, "packing"),
                        ({"gradient_checkpointing": "on"}, "gradient_checkpointing")):
        with pytest.raises(ConfigError, match=word):
            _cfg(privacy={"epsilon": 8}, **clash)
    assert _cfg(privacy={"epsilon": 8}, packing="auto", gradient_checkpointing="auto").train.privacy.epsilon == 8


def test_packing_and_checkpointing_are_off_under_dp_on_cuda_too(tmp_path):
    import torch

    from audited_ft.run.folder import RunFolder
    from audited_ft.train.stage import _sft_config, packing_on

    cfg = _cfg(privacy={"epsilon": 8}, checkpoint_every_steps=5)
    assert not packing_on(cfg, "cuda") and packing_on(_cfg(), "cuda")
    args = _sft_config(cfg, RunFolder(tmp_path), "cpu", torch.float32)
    assert not args.packing and args.save_strategy == "no"  # no resumable checkpoints: DP noise is not replayed


def test_default_delta_is_well_below_one_over_n():
    assert dp.default_delta(216) == 1e-5
    assert dp.default_delta(10**6) == pytest.approx(1e-7)
    assert all(dp.default_delta(n) < 1 / n for n in (10, 216, 5000, 10**7))


@pytest.mark.parametrize("accountant", ["prv", "rdp"])
@pytest.mark.parametrize("epsilon", [1.0, 8.0])
def test_noise_is_calibrated_to_spend_at_most_the_budget(accountant, epsilon):
    cfg = _cfg(epochs=3, batch_size=8, grad_accum=2, privacy={"epsilon": epsilon, "accountant": accountant})
    plan = dp.plan(cfg, 216)
    assert plan["expected_batch_size"] == 16 and plan["sample_rate"] == pytest.approx(16 / 216)
    assert plan["steps"] == math.ceil(3 * 216 / 16) and plan["delta"] == 1e-5
    spent = dp.epsilon_spent(plan["noise_multiplier"], plan["sample_rate"], plan["steps"], plan["delta"], accountant)
    assert 0.97 * epsilon <= spent <= epsilon * 1.0001  # at most the budget, and not wastefully below it
    # more noise buys a smaller ε; the RDP bound is never tighter than PRV's for the same noise
    assert dp.epsilon_spent(plan["noise_multiplier"] * 1.5, plan["sample_rate"], plan["steps"], plan["delta"],
                            accountant) < spent
    if accountant == "prv":
        assert dp.epsilon_spent(plan["noise_multiplier"], plan["sample_rate"], plan["steps"], plan["delta"],
                                "rdp") >= spent


def test_plan_refuses_a_batch_as_large_as_the_data():
    with pytest.raises(ConfigError, match="expected batch"):
        dp.plan(_cfg(batch_size=8, grad_accum=2, privacy={"epsilon": 8}), 16)


def test_membership_bound_of_the_guarantee():
    assert dp.dp_bound_tpr(1.0, 1e-5, 0.01) == pytest.approx(math.e * 0.01 + 1e-5)
    assert dp.dp_bound_tpr(8.0, 1e-5, 0.01) == 1.0  # vacuous at ε = 8: e^8 · 1% > 1


def test_poisson_sampling_by_simulation():
    """Every row in every batch independently with probability q — the assumption of the accountants: the mean batch
    size, each row's inclusion rate and the share of empty batches match the binomial model."""
    import torch

    n, q, steps = 40, 0.1, 4000
    batches = [list(b) for b in dp.poisson_batches(n, q, steps, torch.Generator().manual_seed(0))]
    assert len(batches) == steps
    sizes = np.array([len(b) for b in batches])
    se = math.sqrt(n * q * (1 - q) / steps)
    assert abs(sizes.mean() - n * q) < 4 * se
    counts = np.bincount(np.concatenate([b for b in batches if b]).astype(int), minlength=n)
    assert abs(counts / steps - q).max() < 4 * math.sqrt(q * (1 - q) / steps) + 1e-9 * n
    empty, p_empty = (sizes == 0).mean(), (1 - q) ** n
    assert abs(empty - p_empty) < 4 * math.sqrt(p_empty * (1 - p_empty) / steps)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from tests.conftest import make_tiny_rows
    from tests.tiny_model import tiny_config

    tmp = tmp_path_factory.mktemp("dp")
    return tmp, tiny_config(tmp, make_tiny_rows()), make_tiny_rows()


def _trainer(tiny, overrides):
    from datasets import Dataset

    from audited_ft.config import load_config
    from audited_ft.models import load_tokenizer, resolve_model
    from audited_ft.train.stage import _prompt_rows, build_trainer

    tmp, path, rows = tiny
    cfg = load_config(path, overrides)
    tok = load_tokenizer(resolve_model(cfg.model.name_or_path, cfg.model.licence), None, False)
    data = [{"input": r["dialogue"], "target": r["summary"]} for r in rows[:12]]
    trainer, _ = build_trainer(cfg, tmp / "t", Dataset.from_list(_prompt_rows(cfg, tok, data)), None, tokenizer=tok)
    return trainer


def _hand_gradients(trainer, params, indices):
    """Each row's gradient, one backward per row (no Opacus)."""
    import torch

    grads = []
    for i in indices:
        for w in params:
            w.grad = None
        batch = dp._to(trainer.data_collator([trainer.train_dataset[i]]), "cpu")
        loss, _ = dp.per_example_loss(trainer.model, batch)
        loss.sum().backward()
        grads.append(torch.cat([w.grad.flatten() for w in params]).clone())
        for w in params:
            w.grad = None
    return torch.stack(grads)


def test_one_dp_step_against_gradients_computed_by_hand(tiny):
    """Per-example gradients through Opacus equal one backward per row; the step's gradient is the sum of the rows'
    gradients, each clipped to norm C, over the expected batch size — whatever the physical chunks; the noise has
    standard deviation σC/B; an empty batch steps on noise alone."""
    import torch
    from opacus import GradSampleModule
    from opacus.optimizers import DPOptimizer

    trainer = _trainer(tiny, ["lora.dropout=0", "train.privacy.epsilon=8"])
    params = dp.trainable_fp32(trainer.model)
    assert all(w.dtype == torch.float32 for w in params)
    indices = [0, 3, 4, 7, 9, 10]
    hand = _hand_gradients(trainer, params, indices)
    norms = hand.norm(dim=1)
    ordered = norms.sort().values
    clip = float(ordered[2] + ordered[3]) / 2  # half the rows clipped, none at the bound itself
    expected_batch = 8
    target = (hand * (clip / norms).clamp(max=1.0)[:, None]).sum(0) / expected_batch
    gsm = GradSampleModule(trainer.model, batch_first=True, loss_reduction="mean")
    try:
        def step(sigma, rows, micro):
            opt = DPOptimizer(torch.optim.SGD(params, lr=0.0), noise_multiplier=sigma, max_grad_norm=clip,
                              expected_batch_size=expected_batch, loss_reduction="mean",
                              generator=torch.Generator().manual_seed(1))
            stats = dp.dp_step(gsm, opt, params, trainer.train_dataset, rows, trainer.data_collator, micro, "cpu",
                               clip)
            got = torch.cat([w.grad.flatten() for w in params]).clone()
            opt.zero_grad()
            return stats, got

        for micro in (6, 4, 1):  # one chunk, 4 + 2, one row at a time
            stats, got = step(0.0, indices, micro)
            assert torch.allclose(got, target, rtol=1e-3, atol=1e-6 * float(target.abs().max())), micro
            assert np.allclose(stats["norms"], norms.numpy(), rtol=1e-3)
            assert stats["clipped"] == int((norms > clip).sum()) and 0 < stats["clipped"] < len(indices)
            assert stats["rows"] == 6 and stats["tokens"] > 0
        sigma = 2.0
        _, noisy = step(sigma, indices, 4)
        sd = float((noisy - target).std())
        assert abs(sd / (sigma * clip / expected_batch) - 1) < 0.05  # ~10^4 weights: the estimate is within 2%
        stats, empty = step(sigma, [], 4)
        assert stats["rows"] == 0 and abs(float(empty.std()) / (sigma * clip / expected_batch) - 1) < 0.05
    finally:
        gsm._close()


@pytest.fixture(scope="module")
def dp_run(tiny):
    from audited_ft.pipeline import run_pipeline, start_run

    tmp, path, _ = tiny
    cfg, rf = start_run(path, ["train.privacy.epsilon=4", "train.max_steps=4", "train.batch_size=2",
                               "train.grad_accum=2"], out=str(tmp / "runs"), run_id="dp")
    return cfg, rf, run_pipeline(cfg, rf)


def test_dp_run_trains_both_adapters_evaluates_and_reports(dp_run):
    from audited_ft.run.view import RunView

    cfg, rf, result = dp_run
    assert result.status in ("passed", "failed")
    summary = json.loads((rf / "train/summary.json").read_text())
    p = summary["privacy"]
    assert p["epsilon_spent"] <= 4.0001 and p["accountant"] == "prv" and p["epsilon_rdp"] >= p["epsilon_spent"]
    assert p["steps"] == summary["steps"] == 4 and p["expected_batch_size"] == 4 and p["train_rows"] == 24
    assert p["sample_rate"] == pytest.approx(4 / 24) and p["delta"] == 1e-5 and p["noise_multiplier"] > 0
    assert summary["reference"]["folder"] == "train/nonprivate" and summary["reference"]["seconds"] > 0
    assert summary["speed"]["packing"] is False
    lines = [json.loads(x) for x in (rf / "train/log.jsonl").read_text().splitlines()]
    # one line per step; Poisson sampling (seeded from the OS, by design) can draw an empty batch — about a 5% chance
    # over these 4 steps (q = 1/6, 24 rows) — whose step then has no loss: it once failed CI asserting a loss each step
    steps = [x for x in lines if "batch_rows" in x]
    assert [x["step"] for x in steps] == [1, 2, 3, 4]
    assert all(("loss" in x) == (x["batch_rows"] > 0) for x in steps)
    assert [x["step"] for x in lines if "eval_loss" in x] == [2, 4]  # every eval_every_steps (2), the last included
    ref = json.loads((rf / "train/nonprivate/summary.json").read_text())
    assert "privacy" not in ref and ref["steps"] == 4
    assert (rf / "train/nonprivate/adapter/adapter_model.safetensors").is_file()
    metrics = json.loads((rf / "eval/metrics.json").read_text())
    assert "rouge.rougeL.nonprivate.adapter" in metrics and "rouge.rougeL.adapter" in metrics
    assert RunView(rf.path).manifest["eval"]["extra_adapters"] == {
        "nonprivate": str(rf.path / "train/nonprivate/adapter")}
    html = (rf / "report.html").read_text()
    assert "A formal guarantee: differentially private training" in html
    assert f"ε = {p['epsilon_spent']:.2f}" in html and "non-private adapter" in html and "DP adapter" in html
    assert "No formal privacy guarantee" not in html
    card = (rf / "train/adapter/model_card.md").read_text()
    assert f"({p['epsilon_spent']:.2f}, 1e-05)-differentially private per training row by the PRV accountant" in card


def test_report_of_a_partial_privacy_record_renders(dp_run, tmp_path):
    """train/summary.json is a file a person can edit: a privacy record with only ε and δ still renders, with the
    rest shown as absent."""
    import shutil

    from audited_ft.report.stage import render_report

    _, rf, _ = dp_run
    copy = tmp_path / "run"
    shutil.copytree(rf.path, copy)
    summary = json.loads((copy / "train/summary.json").read_text())
    summary["privacy"] = {"epsilon_spent": 2.0, "delta": 1e-5, "not_covered": "not a list"}
    (copy / "train/summary.json").write_text(json.dumps(summary))
    html = render_report(copy).read_text()
    assert "ε = 2.00" in html and "A formal guarantee" in html


def test_resume_keeps_a_finished_reference_and_trains_the_dp_adapter_again(dp_run):
    from audited_ft.train.stage import train_adapter

    cfg, rf, _ = dp_run
    ref_weights = rf / "train/nonprivate/adapter/adapter_model.safetensors"
    dp_weights = rf / "train/adapter/adapter_model.safetensors"
    ref_before, dp_before = ref_weights.read_bytes(), dp_weights.read_bytes()
    summary = train_adapter(cfg, rf, resume=True)
    assert ref_weights.read_bytes() == ref_before  # the complete reference is kept
    assert dp_weights.read_bytes() != dp_before  # fresh noise: a new DP adapter
    assert summary["reference"]["seconds"] == json.loads((rf / "train/nonprivate/summary.json").read_text())["seconds"]


def test_a_run_without_dp_says_it_has_no_guarantee(tiny):
    from audited_ft.pipeline import run_pipeline, start_run

    tmp, path, _ = tiny
    cfg, rf = start_run(path, [], out=str(tmp / "runs"), run_id="plain")
    run_pipeline(cfg, rf)
    html = (rf / "report.html").read_text()
    assert "No formal privacy guarantee" in html and "Guarantee: none" in html
    assert not (rf / "train/nonprivate").exists()
