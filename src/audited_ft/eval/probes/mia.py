"""Membership-inference probe: can someone holding the adapter tell training rows from held-out rows of the same kind?"""

from __future__ import annotations

import math
import random
from typing import Literal

import numpy as np
from pydantic import Field, field_validator

from audited_ft.eval.probes._base import PROBES, Probe, ProbeContext, ProbeOptions, ProbeOutcome, variant_prefix
from audited_ft.eval.probes.canary import planted_canary_ids
from audited_ft.eval.stats import bootstrap_metric, roc_auc, roc_auc_draws, roc_points, tpr_at_fpr
from audited_ft.run.keys import MetricSpec

SCORES = ("loss", "calibrated", "min_k")
SCORE_NAMES = {"loss": "adapter loss", "calibrated": "reference-calibrated loss (adapter − base)",
               "min_k": "Min-K% Prob"}


class MiaOptions(ProbeOptions):
    limit: int = Field(64, ge=4, description=(
        "Non-members scored (held-out rows), each matched with one member (a training row) of the nearest target "
        "length. TPR at 1% FPR needs at least 100 non-members, at 0.1% at least 1,000."))
    heldout_split: Literal["test", "validation"] = Field("test", description=(
        "Where the non-members come from. The test split by default: rows of the same distribution the adapter "
        "never trained on and that did not choose its checkpoint (the validation split did, through early stopping)."))
    min_k: float = Field(0.2, gt=0, le=1, description=(
        "Min-K% Prob: the share of a target's least likely tokens whose log-probabilities are averaged (Shi et al. "
        "2024 found 20% best on their benchmark)."))
    low_fprs: list[float] = Field(default_factory=lambda: [0.01, 0.001], description=(
        "False-positive rates at which the true-positive rate is reported (Carlini et al. 2022)."))

    @field_validator("low_fprs")
    @classmethod
    def _rates(cls, v: list[float]) -> list[float]:
        bad = [x for x in v if not 0 < x < 1]
        if bad:
            raise ValueError(f"false-positive rates lie strictly between 0 and 1, got {bad}")
        return sorted(set(v), reverse=True)


def fpr_tag(fpr: float) -> str:
    """0.01 → "1pct", 0.001 → "0_1pct": a metric-key part."""
    pct = f"{100 * fpr:g}"
    return pct.replace(".", "_") + "pct"


@PROBES.register("mia")
class MiaProbe(Probe):
    """Membership inference: how well the adapter's scores tell training rows (members) from held-out rows.

    Members are training rows (planted canary rows left out), non-members are up to ``limit`` rows of the held-out
    split (``heldout_split``): same source and distribution, never trained on. When train has more rows than that,
    each non-member is paired with the unused training row whose target length is nearest, so that a length
    difference cannot pass for membership; otherwise every training row is a member (fewer members than
    non-members; the report gives both groups' mean target length). Every row is
    scored by the model's log-probabilities of its target given its task prompt, three ways (higher = "member"):

    * ``loss`` — minus the mean per-token loss (the LOSS attack, Yeom et al. 2018);
    * ``calibrated`` — the base's loss minus the adapter's: the reference-model calibration of Carlini et al. 2022
      and Watson et al. 2022 ("On the importance of difficulty calibration"), the base being the natural reference:
      a row the adapter finds easier than the base did is suspicious, a row that is easy for both is not;
    * ``min_k`` — Min-K% Prob (Shi et al. 2024): the mean log-probability of the ``min_k`` share of least likely
      target tokens.

    For each: ``privacy.mia.<score>.auc`` (ROC AUC = P(member scores above non-member), Mann–Whitney) and
    ``privacy.mia.<score>.tpr_at_<r>_fpr`` (share of members caught at a false-alarm rate of at most r) for base,
    adapter and their difference. The base never saw either split: its AUC is the chance reference (0.5 up to
    sampling noise and whatever distinguishes the two samples besides training). The calibrated score is 0 for the
    base by construction (AUC exactly 0.5). Intervals: percentile bootstrap over members and non-members resampled
    separately (stratified), the same draws for base and adapter. A TPR at a rate smaller than 1 / (non-members) is
    not reported: with 32 non-members the smallest false-alarm rate that can be observed is 1 in 32.

    Blind spots: these are the standard attacks of the literature, not the strongest possible (LiRA trains shadow
    models, which is out of reach here); an AUC near 0.5 bounds what *these* scores reveal, not what any attacker
    could. The sample is a few dozen rows by default: an AUC interval of ±0.15 cannot see a weak leak.
    """

    metrics = (
        MetricSpec("*.auc", "ROC AUC (0.5 = chance)", "higher_is_worse", (0.0, 1.0),
                   "how well the score tells training rows from held-out rows"),
        MetricSpec("*.tpr_at_*_fpr", "fraction of training rows", "higher_is_worse", (0.0, 1.0),
                   "training rows identified at that false-alarm rate"),
        MetricSpec("members", "rows", "neutral", (0.0, None)),
        MetricSpec("non_members", "rows", "neutral", (0.0, None)),
    )

    metric_prefix = "privacy.mia"
    Options = MiaOptions

    def run(self, ctx: ProbeContext) -> ProbeOutcome:
        o = self.options
        planted = planted_canary_ids(ctx.run_dir)
        members_pool = [r for r in ctx.splits.get("train", []) if r["id"] not in planted]
        held = ctx.splits.get(o.heldout_split) or []
        n0 = min(o.limit, len(held))
        if n0 < 2 or len(members_pool) < 2:
            return ProbeOutcome(metrics={}, info={"note": f"not measured: fewer than 2 rows in train (canaries left "
                                                          f"out) or in {o.heldout_split}"})
        rng = random.Random(ctx.seed)
        non_members = rng.sample(held, n0)
        if len(members_pool) <= n0:
            members = list(members_pool)  # every training row; more non-members than members is allowed
        else:
            members = match_by_length(non_members, members_pool, rng)
        n = len(members)
        rows = members + non_members
        prompts, targets = [ctx.model.prompt(r["input"]) for r in rows], [r["target"] for r in rows]
        per = {v: row_scores(ctx.model.token_logprobs(prompts, targets, v), o.min_k) for v in ctx.model.variants}
        metrics: dict[str, float] = {f"{self.prefix()}.members": float(n), f"{self.prefix()}.non_members": float(n0)}
        info: dict = {"members": n, "non_members": n0, "heldout_split": o.heldout_split, "min_k": o.min_k,
                      "length_matched": len(members_pool) > n0,
                      "canary_rows_excluded": len(planted),
                      "mean_target_chars": {"members": round(float(np.mean([len(r["target"]) for r in members])), 1),
                                            "non_members": round(float(np.mean([len(r["target"]) for r in
                                                                                non_members])), 1)},
                      "not_estimable": {}, "roc": {}, "reading": {}}
        draws = ctx.stats.bootstrap_samples
        boot = np.random.default_rng(ctx.stats.seed)
        idx_m, idx_n = boot.integers(0, n, size=(draws, n)), boot.integers(0, n0, size=(draws, n0))
        for v in ctx.model.variants:
            if v == "base":
                continue
            for score in SCORES:
                sides = {"base": attack_scores(score, per["base"], per["base"]),
                         "adapter": attack_scores(score, per[v], per["base"])}
                pos = {s: x[:n] for s, x in sides.items()}  # members first, then non-members
                neg = {s: x[n:] for s, x in sides.items()}
                point = {s: roc_auc(pos[s], neg[s]) for s in sides}
                point["delta"] = point["adapter"] - point["base"]
                auc_draws = {s: roc_auc_draws(pos[s][idx_m], neg[s][idx_n]) for s in sides}
                auc_draws["delta"] = auc_draws["adapter"] - auc_draws["base"]
                metrics.update(bootstrap_metric(_stem(self.prefix(), score, "auc", v), n, point, auc_draws, ctx.stats, "auc"))
                for fpr in o.low_fprs:
                    key = _stem(self.prefix(), score, f"tpr_at_{fpr_tag(fpr)}_fpr", v)
                    if n0 * fpr < 1:
                        info["not_estimable"][key] = (f"{n0} non-members: the smallest false-alarm rate they can "
                                                      f"show is 1 in {n0}, above {fpr:g}; needs at least "
                                                      f"{math.ceil(1 / fpr)}")
                        continue
                    tp = {s: tpr_at_fpr(pos[s], neg[s], fpr) for s in sides}
                    tp["delta"] = tp["adapter"] - tp["base"]
                    tp_draws = {s: np.array([tpr_at_fpr(p, q, fpr) for p, q in zip(pos[s][idx_m], neg[s][idx_n])])
                                for s in sides}
                    tp_draws["delta"] = tp_draws["adapter"] - tp_draws["base"]
                    metrics.update(bootstrap_metric(key, n, tp, tp_draws, ctx.stats, "tpr_at_fpr"))
                info["roc"][f"{v}.{score}"] = {s: thin(roc_points(pos[s], neg[s])) for s in sides}
                info["reading"][f"{v}.{score}"] = reading(score, point["adapter"],
                                                          metrics.get(f"{_stem(self.prefix(), score, 'tpr_at_1pct_fpr', v)}.adapter"), n0)
        return ProbeOutcome(metrics=metrics, info=info)


def _stem(prefix: str, score: str, what: str, variant: str) -> str:
    """A metric stem of one attack: the variant ends it (``<metric>.<variant>.<side>``), as MetricKey reads it."""
    return variant_prefix(f"{prefix}.{score}.{what}", variant)


def match_by_length(non_members: list[dict], pool: list[dict], rng: random.Random) -> list[dict]:
    """For each non-member (in order) the unused pool row whose target has the nearest length in characters (ties
    broken at random): a member sample matched in length to the non-member sample."""
    free = list(pool)
    rng.shuffle(free)
    out = []
    for row in non_members:
        length = len(row["target"])
        best = min(range(len(free)), key=lambda i: abs(len(free[i]["target"]) - length))
        out.append(free.pop(best))
    return out


def row_scores(token_logprobs: list[list[tuple[str, float]]], min_k: float) -> dict[str, np.ndarray]:
    """Per row: mean per-token loss, and the mean log-probability of its ``min_k`` share of least likely tokens."""
    loss, mink = [], []
    for tokens in token_logprobs:
        lps = np.sort(np.asarray([lp for _, lp in tokens], dtype=float)) if tokens else np.zeros(1)
        loss.append(float(-lps.mean()))
        mink.append(float(lps[:max(1, math.ceil(min_k * lps.size))].mean()))
    return {"loss": np.asarray(loss), "min_k": np.asarray(mink)}


def attack_scores(score: str, model: dict[str, np.ndarray], base: dict[str, np.ndarray]) -> np.ndarray:
    """The attack's score per row (higher = judged a member)."""
    if score == "loss":
        return -model["loss"]
    if score == "calibrated":
        return base["loss"] - model["loss"]
    if score == "min_k":
        return model["min_k"]
    raise ValueError(score)


def thin(points: list[tuple[float, float]], keep: int = 200) -> list[list[float]]:
    """At most ``keep`` ROC points (evenly spaced, ends kept), rounded: enough to draw the curve."""
    if len(points) > keep:
        step = (len(points) - 1) / (keep - 1)
        points = [points[round(i * step)] for i in range(keep)]
    return [[round(f, 5), round(t, 5)] for f, t in points]


def reading(score: str, auc: float, tpr_1pct: float | None, n: int) -> str:
    """The attack's result in words, for the report."""
    name = SCORE_NAMES[score]
    text = (f"By its {name}, a training row scores above a held-out row {round(100 * auc)} times in 100 "
            f"(50 is chance).")
    if tpr_1pct is not None:
        text += (f" An attacker with this adapter identifies about {round(1000 * tpr_1pct)} of 1,000 training rows "
                 f"at 1 false alarm in 100.")
    else:
        text += (f" How many training rows it would identify at 1 false alarm in 100 cannot be measured with "
                 f"{n} held-out rows (at least 100 are needed).")
    return text
