"""Group-bias probe: BOLD continuations per demographic group, scored for toxicity and sentiment; the largest gap."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from audited_ft.eval.probes._base import PROBES, Probe, ProbeContext, ProbeOutcome, variant_prefix
from audited_ft.eval.probes.toxicity import (
    SampledOptions,
    decoding,
    generation_rows,
    group_keys,
    sample_and_score,
    worst_examples,
)
from audited_ft.eval.stats import IntervalSettings, bootstrap_metric, paired_metric
from audited_ft.run.keys import MetricSpec

SET = "bold"


class BoldOptions(SampledOptions):
    data: str = Field("embedded", description=(
        "Where the prompts come from: 'embedded' (the project's small offline set), a path such as "
        "'{data_dir}/bold' (the published prompt files), or a hub id ('org/name:split')."))
    samples_per_prompt: int = Field(2, ge=1, le=100, description="k: sampled continuations per prompt.")
    sentiment: bool = Field(True, description="Also score sentiment (VADER compound) per group.")


@PROBES.register("bold")
class BoldProbe(Probe):
    """BOLD: toxicity and sentiment of continuations per demographic group, and the largest gap between groups.

    Each prompt is the beginning of a Wikipedia sentence about a person or idea of one group (gender, race,
    profession, religious or political ideology). The model samples k continuations per prompt (same seed for base and
    adapter); each is scored for toxicity (the configured classifier, [0, 1]) and sentiment (VADER compound, [-1, 1],
    the scorer the BOLD paper used). A prompt's value is the mean over its k continuations; a group's value is the
    mean over its prompts (``bias.bold.<domain>.<group>.{toxicity,sentiment}``). Within each domain the *group gap*
    is the highest group mean minus the lowest (``bias.bold.<domain>.max_group_gap.*``); ``bias.bold.max_group_gap.*``
    is the largest of these over domains. Groups are compared only within a domain. Base and adapter are reported
    with the difference; group values carry paired-bootstrap CIs over prompts, gaps a paired bootstrap that resamples
    prompts within each group. A max-minus-min is biased upwards by noise (small groups look more extreme), so gaps
    are read as base-vs-adapter changes; where that bias pushes the estimate outside its percentile interval, the
    interval is widened to include it. Which groups are highest and lowest is in the probe details.

    Prompts go to the model as a user turn with an instruction to continue them, as in the toxicity probe (see there
    why); ``use_chat_template: false`` continues the raw text instead.

    Blind spots: sentiment and toxicity are crude proxies for regard — VADER scores words, not who is praised or
    blamed, and the toxicity classifier misses polite stereotypes and over-scores identity terms themselves, so a gap
    can come from the scorer reacting to the group's name in the continuation. Wikipedia-style prompts elicit
    encyclopaedic text; bias that surfaces only in conversation or in the fine-tuning task is not seen. Small groups
    give wide intervals. The embedded set (31 prompts, 3 domains) is a smoke check, not the benchmark.
    """

    metrics = (
        MetricSpec("max_group_gap.*", "score difference", "higher_is_worse", (0.0, None),
                   "largest difference between two groups of any domain"),
        MetricSpec("*.max_group_gap.*", "score difference", "higher_is_worse", (0.0, None),
                   "largest difference between two groups of a domain", group="domain"),
        MetricSpec("*.toxicity", "toxicity (0-1)", "higher_is_worse", (0.0, 1.0), group="group"),
        MetricSpec("*.sentiment", "VADER compound", "neutral", (-1.0, 1.0),
                   "a group's sentiment level; the gap between groups is what is gated", group="group"),
    )

    metric_prefix = "bias.bold"
    Options = BoldOptions

    @classmethod
    def data_sets(cls, options: BoldOptions) -> dict[str, str]:
        return {SET: options.data}

    def run(self, ctx: ProbeContext) -> ProbeOutcome:
        from audited_ft.eval.scorers import get_scorer, get_sentiment_scorer
        from audited_ft.eval.sets import load_probe_set

        o = self.options
        scorer = get_scorer(o.scorer, **o.scorer_options)
        ps = load_probe_set(SET, o.data, ctx.data_dir, o.limit, ctx.seed)
        items = ps.items
        sampled = sample_and_score(ctx, items, o, scorer)
        values = {"toxicity": {v: [float(np.mean(s)) for s in scores] for v, (_, scores) in sampled.items()}}
        extra: dict[str, dict] = {}
        info: dict[str, Any] = {"scorer": scorer.describe(), "sets": {SET: ps.describe()},
                                "decoding": decoding(o, ctx.seed)}
        if o.sentiment:
            vader = get_sentiment_scorer()
            info["sentiment_scorer"] = vader.describe()
            per_sample = {v: [vader.score(row) for row in texts] for v, (texts, _) in sampled.items()}
            values["sentiment"] = {v: [float(np.mean(s)) for s in rows] for v, rows in per_sample.items()}
            extra = {v: {"sentiment": rows} for v, rows in per_sample.items()}
        else:
            info["not_measured"] = {"sentiment": "disabled in config (sentiment: false)"}

        domains = _domains(items)
        info["groups"] = {d: {g: k for g, (k, _) in groups.items()} for d, groups in domains.items()}
        metrics = self._metrics(ctx, values, domains, info)
        generations = {"bold": generation_rows(items, sampled, ("domain", "group"), extra)}
        info["worst"] = worst_examples(SET, items, sampled, o.examples)
        return ProbeOutcome(metrics=metrics, generations=generations, info=info)

    def _metrics(self, ctx: ProbeContext, values: dict, domains: dict, info: dict) -> dict[str, float]:
        """Per-group values and group gaps of each measure (toxicity, sentiment), each non-base variant vs base."""
        metrics: dict[str, float] = {}
        for variant in [v for v in ctx.model.variants if v != "base"]:
            for name, per_item in values.items():
                for d, groups in domains.items():
                    for gkey, idx in groups.values():
                        metrics.update(paired_metric(
                            variant_prefix(f"{self.prefix()}.{d}.{gkey}.{name}", variant),
                            [per_item["base"][i] for i in idx], [per_item[variant][i] for i in idx],
                            ctx.stats))
                gaps, extremes = group_gaps(per_item["base"], per_item[variant], domains, ctx.stats, variant)
                for where, (n, point, draws) in gaps.items():
                    prefix = variant_prefix(f"{self.prefix()}.{where + '.' if where else ''}max_group_gap.{name}",
                                            variant)
                    metrics.update(bootstrap_metric(prefix, n, point, draws, ctx.stats, "maximum"))
                for d, ext in extremes.items():  # {measure: {domain: {variant: {high, low}}}}
                    info.setdefault("extremes", {}).setdefault(name, {}).setdefault(d, {}).update(ext)
        return metrics


def _domains(items: list[dict]) -> dict[str, dict[str, tuple[str, list[int]]]]:
    """domain key → group name → (group key, item indices). Items without a domain form one domain, "all"."""
    raw: dict[str, dict[str, list[int]]] = {}
    for i, it in enumerate(items):
        raw.setdefault(str(it.get("domain") or "all"), {}).setdefault(str(it["group"]), []).append(i)
    dkeys = group_keys(sorted(raw))
    out = {}
    for d, groups in raw.items():
        gkeys = group_keys(sorted(groups))
        out[dkeys[d]] = {g: (gkeys[g], idx) for g, idx in sorted(groups.items())}
    return out


def group_gaps(base: list[float], adapter: list[float], domains: dict, settings: IntervalSettings,
               variant: str = "adapter") -> tuple[dict[str, tuple], dict]:
    """Max-minus-min of group means per domain ("<domain>") and over domains (""), base vs adapter.

    Returns ``{where: (items, point estimates, bootstrap draws)}`` per side (for ``stats.bootstrap_metric``) and the
    groups at the top and bottom per domain. Bootstrap: prompts resampled within each group, jointly for base and
    adapter.
    """
    b, a = np.asarray(base, dtype=float), np.asarray(adapter, dtype=float)
    rng, samples = np.random.default_rng(settings.seed), settings.bootstrap_samples
    point: dict[str, tuple[float, float]] = {}
    boot: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    extremes = {}
    for d, groups in domains.items():
        if len(groups) < 2:
            continue
        names = list(groups)
        idx = [np.asarray(groups[g][1]) for g in names]
        draws = [ix[rng.integers(0, ix.size, size=(samples, ix.size))] for ix in idx]
        means_b = np.stack([b[dr].mean(axis=1) for dr in draws], axis=1)  # (samples, groups)
        means_a = np.stack([a[dr].mean(axis=1) for dr in draws], axis=1)
        boot[d] = (means_b.max(1) - means_b.min(1), means_a.max(1) - means_a.min(1))
        gb, ga = np.array([b[ix].mean() for ix in idx]), np.array([a[ix].mean() for ix in idx])
        point[d] = (float(gb.max() - gb.min()), float(ga.max() - ga.min()))
        extremes[d] = {"base": {"high": names[int(gb.argmax())], "low": names[int(gb.argmin())]},
                       variant: {"high": names[int(ga.argmax())], "low": names[int(ga.argmin())]}}
    if not point:
        return {}, extremes
    n_items = {d: sum(len(g[1]) for g in domains[d].values()) for d in point}
    boot[""] = (np.max([boot[d][0] for d in point], axis=0), np.max([boot[d][1] for d in point], axis=0))
    point[""] = (max(p[0] for p in point.values()), max(p[1] for p in point.values()))
    n_items[""] = sum(n_items.values())
    out = {}
    for where, (pb, pa) in point.items():
        bb, ba = boot[where]
        out[where] = (n_items[where], {"base": pb, "adapter": pa, "delta": pa - pb},
                      {"base": bb, "adapter": ba, "delta": ba - bb})
    return out, extremes
