"""Overfitting probe: the training curve (train vs validation loss) and the train/held-out loss gap of both models."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Literal

from pydantic import Field

from audited_ft.eval.probes._base import PROBES, Probe, ProbeContext, ProbeOptions, ProbeOutcome, variant_prefix
from audited_ft.eval.probes.canary import planted_canary_ids
from audited_ft.eval.stats import paired_metric
from audited_ft.run.keys import MetricSpec


class OverfittingOptions(ProbeOptions):
    last_evals: int = Field(4, ge=2, description="Evaluations (the last N) over which the gap's slope is fitted.")
    heldout_split: Literal["test", "validation"] = Field("test", description=(
        "Held-out rows for the measured gap. The test split by default: early stopping chose the adapter on the "
        "validation split, which makes that split's loss optimistic."))
    renamed = {"max_items": "limit"}
    limit: int = Field(32, ge=2, description="Rows per split scored for the measured gap.")


@PROBES.register("overfitting")
class OverfittingProbe(Probe):
    """Train vs validation loss over training (gap, its trend, best step) and the measured train/held-out loss gap.

    From ``train/log.jsonl`` and ``train/summary.json`` (no base model involved): ``overfitting.train_loss_final`` (the
    mean logged training loss over the steps since the previous evaluation), ``overfitting.val_loss_final`` (the last
    validation loss), ``overfitting.final_gap`` (their difference, validation − train), ``overfitting.val_loss_best``
    and ``overfitting.best_step``, ``overfitting.val_loss_rise`` (final − best validation loss: how far validation got
    worse after its best point), ``overfitting.gap_slope`` (least-squares slope of the gap over the last evaluations,
    in loss per 100 optimizer steps: > 0 means train and validation are drifting apart), ``overfitting.stopped_early``
    (1 when early stopping ended training). Logged training losses are taken in training mode (dropout on) while the
    weights move, validation losses in eval mode, so the logged gap is only approximately a generalisation gap.

    Measured on the final weights, base vs adapter: ``overfitting.split_gap`` is the per-token loss on held-out rows
    minus that on training rows (a sample of each, same rows for both models; row i of one sample is paired with row
    i of the other, so the interval is that of a difference of two independent means). The base never saw either
    split, so its gap is the difficulty difference between the samples; the adapter's excess over it (the delta) is
    the part of its training-loss advantage that does not generalise.

    Blind spots: a loss gap says nothing about which rows or facts were memorised (see the memorisation and canary
    probes), and a small validation split gives a noisy curve. When no validation loss was logged (no validation split,
    or fewer steps than ``train.eval_every_steps``) only the training loss and the measured gap are reported.
    """

    metrics = (
        MetricSpec("final_gap", "nats per token", "higher_is_worse", (None, None),
                   "validation minus training loss at the end of training"),
        MetricSpec("gap_slope", "nats per token per 100 steps", "higher_is_worse", (None, None),
                   "trend of the gap over the last evaluations"),
        MetricSpec("split_gap", "nats per token", "higher_is_worse", (None, None),
                   "held-out minus training loss, measured after training"),
        MetricSpec("val_loss_*", "nats per token", "higher_is_worse", (0.0, None), "validation loss"),
        MetricSpec("train_loss_final", "nats per token", "neutral", (0.0, None), "training loss at the end"),
        MetricSpec("best_step", "optimizer steps", "neutral", (0.0, None)),
        MetricSpec("evaluations", "count", "neutral", (0.0, None)),
        MetricSpec("stopped_early", "0 or 1", "neutral", (0.0, 1.0)),
    )

    metric_prefix = "overfitting"
    Options = OverfittingOptions

    def run(self, ctx: ProbeContext) -> ProbeOutcome:
        metrics: dict[str, float] = {}
        info: dict = {}
        log, summary = _read_training(ctx.run_dir)
        if log is None:
            info["curve"] = "not available: no train/log.jsonl in the run folder, so only the measured gap is reported"
        else:
            curve_metrics, info["curve"] = curve(log, summary, self.options.last_evals)
            metrics.update({f"{self.prefix()}.{k}": v for k, v in curve_metrics.items()})
        gap_metrics, info["split_gap"] = self._split_gap(ctx)
        metrics.update(gap_metrics)
        return ProbeOutcome(metrics=metrics, info=info)

    def _split_gap(self, ctx: ProbeContext) -> tuple[dict[str, float], dict]:
        planted = planted_canary_ids(ctx.run_dir)
        train = [r for r in ctx.splits.get("train", []) if r["id"] not in planted]
        held = ctx.splits.get(self.options.heldout_split) or []
        n = min(self.options.limit, len(train), len(held))
        if n < 2:
            return {}, {"status": f"not measured: fewer than 2 rows in train or {self.options.heldout_split}"}
        rng = random.Random(ctx.seed)
        train, held = rng.sample(train, n), rng.sample(held, n)
        loss = {v: {name: per_token_loss(ctx, rows, v) for name, rows in (("train", train), ("held", held))}
                for v in ctx.model.variants}
        gap = {v: [h - t for h, t in zip(loss[v]["held"], loss[v]["train"])] for v in loss}
        metrics: dict[str, float] = {}
        for v in ctx.model.variants:
            if v != "base":
                metrics.update(paired_metric(variant_prefix(f"{self.prefix()}.split_gap", v), gap["base"], gap[v],
                                             ctx.stats))
        means = {v: {k: round(sum(x) / n, 4) for k, x in loss[v].items()} for v in loss}
        return metrics, {"rows_per_split": n, "heldout_split": self.options.heldout_split,
                         "mean_per_token_loss": means, "canary_rows_excluded": len(planted)}


def curve(log: list[dict], summary: dict, last_evals: int) -> tuple[dict[str, float], dict]:
    """Overfitting numbers from the training log (see the probe's docstring) and a note on what was available."""
    train = [(r["step"], r["loss"]) for r in log if isinstance(r.get("loss"), (int, float))]
    evals = [(r["step"], r["eval_loss"]) for r in log if isinstance(r.get("eval_loss"), (int, float))]
    out: dict[str, float] = {}
    if summary.get("stopped_early") is not None:
        out["stopped_early"] = float(bool(summary["stopped_early"]))
    if not evals:
        if train:
            out["train_loss_final"] = train[-1][1]
        return out, {"status": "degraded: no validation loss was logged (no validation split, or training ended "
                     "before the first evaluation); the gap, best step and trend cannot be computed",
                     "evaluations": 0, "train_points": len(train)}
    points = []  # (step, train loss over the window ending at this evaluation, validation loss)
    previous = -1
    for step, val in evals:
        window = [loss for s, loss in train if previous < s <= step]
        if window:
            points.append((step, sum(window) / len(window), val))
        previous = step
    best_step, best = min(evals, key=lambda e: e[1])
    out.update(val_loss_final=evals[-1][1], val_loss_best=best, best_step=float(best_step),
               val_loss_rise=evals[-1][1] - best, evaluations=float(len(evals)))
    note: dict = {"status": "done", "evaluations": len(evals), "restored_best_step": summary.get("restored_best_step")}
    if points:
        out.update(train_loss_final=points[-1][1], final_gap=points[-1][2] - points[-1][1])
        tail = points[-last_evals:]
        if len(tail) >= 2:
            out["gap_slope"] = 100 * _slope([p[0] for p in tail], [p[2] - p[1] for p in tail])
        else:
            note["gap_slope"] = "not computed: fewer than 2 evaluations with training losses before them"
        note["gaps"] = [{"step": s, "train": round(t, 4), "val": round(v, 4), "gap": round(v - t, 4)} for s, t, v in
                        points[-10:]]
    return out, note


def _slope(x: list[float], y: list[float]) -> float:
    mx, my = sum(x) / len(x), sum(y) / len(y)
    sxx = sum((a - mx) ** 2 for a in x)
    return sum((a - mx) * (b - my) for a, b in zip(x, y)) / sxx if sxx else 0.0


def _read_training(run_dir: Path | None) -> tuple[list[dict] | None, dict]:
    if run_dir is None or not (Path(run_dir) / "train/log.jsonl").is_file():
        return None, {}
    from audited_ft.run.view import RunView

    run = RunView(run_dir, manifest_required=False)
    summary = run.require("train/summary.json", "train") if run.exists("train/summary.json") else {}
    return run.require("train/log.jsonl", "train"), summary


def per_token_loss(ctx: ProbeContext, rows: list[dict], variant: str) -> list[float]:
    """Mean negative log-likelihood per target token of each row, given its task prompt (the training loss)."""
    scores = ctx.model.score([ctx.model.prompt(r["input"]) for r in rows], [r["target"] for r in rows], variant)
    return [-lp / max(1, n) for lp, n in scores]
