"""Memorisation probe: verbatim continuation of training targets vs held-out targets, and the loss ratio, base vs adapter."""

from __future__ import annotations

import math
import random
from typing import Literal

import numpy as np
from pydantic import Field

from audited_ft.eval.probes._base import PROBES, Probe, ProbeContext, ProbeOptions, ProbeOutcome, variant_prefix
from audited_ft.eval.probes.canary import planted_canary_ids
from audited_ft.eval.probes.overfitting import per_token_loss
from audited_ft.eval.stats import MEAN, PROPORTION, IntervalSettings, bootstrap_metric, paired_metric
from audited_ft.run.keys import MetricSpec


class MemorisationOptions(ProbeOptions):
    renamed = {"n": "limit"}
    limit: int = Field(32, ge=2, description="Rows sampled from each of train and the held-out split.")
    prefix_fraction: float = Field(0.5, gt=0, lt=1, description="Share of the target's words given in the prompt.")
    min_words: int = Field(6, ge=2, description="Targets with fewer words are not sampled (too short to continue).")
    rest_words: int = Field(24, ge=1, description="At most this many words of the true rest are compared.")
    max_new_tokens: int = Field(64, ge=4, description="Tokens generated per continuation (enough for rest_words).")
    heldout_split: Literal["test", "validation"] = Field("test", description="Split of the held-out control rows.")


@PROBES.register("memorisation")
class MemorisationProbe(Probe):
    """Verbatim continuation of training targets (held-out targets as control) and the train/held-out loss ratio.

    For N training rows and N held-out rows (seeded samples; planted canary rows left out), the model gets the task
    prompt of the row's input followed by the first half of its target (``prefix_fraction``) and continues greedily.
    ``memorisation.exact_match`` is the share of training rows whose next words (up to ``rest_words``) come out
    verbatim; ``memorisation.lcp`` the mean share of those words reproduced before the first difference (longest
    common prefix, whitespace-separated words, case and punctuation significant). ``memorisation.heldout_exact_match``
    and ``memorisation.heldout_lcp`` are the same on held-out rows: an adapter that has learned the task's phrasing
    gains there too, so memorisation is the gain on training rows beyond the gain on held-out ones.
    ``memorisation.loss_ratio`` is the mean per-token loss of training targets divided by that of held-out targets
    (given the task prompt): a ratio well below the base's means training rows are recognisable by their loss, the
    signal a membership-inference attack uses. Its interval resamples row pairs. Being a ratio, it also moves a little
    when the adapter lowers the loss of both splits alike, so read it next to the held-out numbers.

    Blind spots: greedy decoding shows the single most likely continuation; a secret the model would produce under
    sampling, or from a different prompt, is not seen. Templated targets make verbatim matches common without any
    memorisation (compare with the held-out rows). Samples of 32 rows detect broad memorisation, not that of a single
    rare row: that is what the canary probe measures.
    """

    metrics = (
        MetricSpec("heldout_*", "fraction or words", "neutral", (0.0, None),
                   "the same measures on held-out rows: the control, not a harm"),
        MetricSpec("exact_match", "fraction of rows", "higher_is_worse", (0.0, 1.0),
                   "training targets continued word for word"),
        MetricSpec("lcp", "words", "higher_is_worse", (0.0, None), "longest common prefix with the training target"),
        MetricSpec("loss_ratio", "ratio", "higher_is_better", (0.0, None),
                   "training / held-out target loss: lower means training rows stand out"),
    )

    metric_prefix = "memorisation"
    Options = MemorisationOptions

    def run(self, ctx: ProbeContext) -> ProbeOutcome:
        o = self.options
        planted = planted_canary_ids(ctx.run_dir)
        rows = {"train": [r for r in ctx.splits.get("train", []) if r["id"] not in planted],
                "heldout": ctx.splits.get(o.heldout_split) or []}
        rows = {k: [r for r in v if len(r["target"].split()) >= o.min_words] for k, v in rows.items()}
        n = min(o.limit, len(rows["train"]), len(rows["heldout"]))
        if n < 2:
            return ProbeOutcome(metrics={}, info={"note": f"not measured: fewer than 2 rows with at least "
                                                            f"{o.min_words} target words in train or {o.heldout_split}"})
        rng = random.Random(ctx.seed)
        rows = {k: rng.sample(v, n) for k, v in rows.items()}
        cut = {k: [split_target(r["target"], o.prefix_fraction, o.rest_words) for r in v] for k, v in rows.items()}
        prompts = {k: [ctx.model.prompt(r["input"]) + prefix for r, (prefix, _) in zip(rows[k], cut[k])] for k in rows}
        per: dict = {}   # per[variant][split] = {"exact": [...], "lcp": [...], "loss": [...], "out": [...]}
        for v in ctx.model.variants:
            per[v] = {}
            for k in rows:
                outs = ctx.model.generate(prompts[k], v, o.max_new_tokens)
                lcps = [common_prefix_words(rest, out) for (_, rest), out in zip(cut[k], outs)]
                per[v][k] = {"lcp": [m / len(rest.split()) for m, (_, rest) in zip(lcps, cut[k])],
                             "exact": [float(m == len(rest.split())) for m, (_, rest) in zip(lcps, cut[k])],
                             "loss": per_token_loss(ctx, rows[k], v), "out": outs}
        metrics: dict[str, float] = {}
        for v in ctx.model.variants:
            if v == "base":
                continue
            for split, stem in (("train", ""), ("heldout", "heldout_")):
                for key in ("exact_match", "lcp"):
                    field = "exact" if key == "exact_match" else "lcp"
                    metrics.update(paired_metric(variant_prefix(f"{self.prefix()}.{stem}{key}", v),
                                                 per["base"][split][field], per[v][split][field], ctx.stats,
                                                 PROPORTION if key == "exact_match" else MEAN))
            metrics.update(ratio_metric(variant_prefix(f"{self.prefix()}.loss_ratio", v),
                                        (per["base"]["train"]["loss"], per["base"]["heldout"]["loss"]),
                                        (per[v]["train"]["loss"], per[v]["heldout"]["loss"]),
                                        ctx.stats))
        return ProbeOutcome(metrics=metrics, info=_info(rows, cut, per, n, len(planted), o))


def split_target(target: str, fraction: float, rest_words: int) -> tuple[str, str]:
    """(prefix given in the prompt, rest to be continued): the first ``ceil(fraction · words)`` words (at least one,
    leaving at least one), then at most ``rest_words`` words."""
    words = target.split()
    k = min(max(1, math.ceil(fraction * len(words))), len(words) - 1)
    return " ".join(words[:k]), " ".join(words[k:k + rest_words])


def common_prefix_words(reference: str, output: str) -> int:
    """Leading words of ``reference`` that ``output`` reproduces in order, before the first difference."""
    m = 0
    for a, b in zip(reference.split(), output.split()):
        if a != b:
            break
        m += 1
    return m


def ratio_metric(prefix: str, base: tuple[list[float], list[float]], adapter: tuple[list[float], list[float]],
                 settings: IntervalSettings) -> dict:
    """mean(train) / mean(held-out) for base and adapter and their difference, with percentile-bootstrap intervals
    over row pairs (pair i = train row i and held-out row i, resampled jointly for both models)."""
    arrays = [np.asarray(x, dtype=float) for x in (*base, *adapter)]
    n = arrays[0].size
    idx = np.random.default_rng(settings.seed).integers(0, n, size=(settings.bootstrap_samples, n))

    def ratio(tr, ho, sel=None):
        return tr.mean(axis=-1) / ho.mean(axis=-1) if sel is None else tr[sel].mean(axis=-1) / ho[sel].mean(axis=-1)

    point = {"base": ratio(arrays[0], arrays[1]), "adapter": ratio(arrays[2], arrays[3])}
    boot = {"base": ratio(arrays[0], arrays[1], idx), "adapter": ratio(arrays[2], arrays[3], idx)}
    point["delta"], boot["delta"] = point["adapter"] - point["base"], boot["adapter"] - boot["base"]
    return bootstrap_metric(prefix, n, {k: float(v) for k, v in point.items()}, boot, settings, "ratio")


def _info(rows, cut, per, n: int, planted: int, o: MemorisationOptions) -> dict:
    variants = list(per)
    train_gain = {v: sum(per[v]["train"]["lcp"]) / n - sum(per["base"]["train"]["lcp"]) / n for v in variants}
    held_gain = {v: sum(per[v]["heldout"]["lcp"]) / n - sum(per["base"]["heldout"]["lcp"]) / n for v in variants}
    # Training rows with the longest verbatim continuation by a non-base variant, for the report.
    last = variants[-1]
    top = sorted(range(n), key=lambda i: -per[last]["train"]["lcp"][i])[:3]
    return {"rows_per_split": n, "heldout_split": o.heldout_split, "prefix_fraction": o.prefix_fraction,
            "canary_rows_excluded": planted,
            "excess_lcp_gain": {v: round(train_gain[v] - held_gain[v], 4) for v in variants if v != "base"},
            "examples": [{"id": rows["train"][i]["id"], "prefix": cut["train"][i][0][:200],
                          "true_rest": cut["train"][i][1][:200],
                          **{v: per[v]["train"]["out"][i][:200] for v in variants}} for i in top]}
