"""Capability drift probe: multiple-choice log-likelihood scoring of general-ability benchmarks, base vs adapter."""

from __future__ import annotations

from typing import Optional

import numpy as np
from pydantic import Field, field_validator

from audited_ft.eval.probes._base import PROBES, Probe, ProbeContext, ProbeOptions, ProbeOutcome, variant_prefix
from audited_ft.eval.stats import PROPORTION, bootstrap_metric, paired_metric
from audited_ft.run.keys import MetricSpec

# set name → (title, the accuracy the set is summarised by: lm-evaluation-harness reports acc_norm for these three,
# acc for WinoGrande, whose options share one continuation so that length normalisation changes nothing)
SETS = {"hellaswag": ("HellaSwag", "acc_norm"), "piqa": ("PIQA", "acc_norm"), "arc_easy": ("ARC-Easy", "acc_norm"),
        "arc_challenge": ("ARC-Challenge", "acc_norm"), "winogrande": ("WinoGrande", "acc")}


class CapabilityOptions(ProbeOptions):
    data: dict[str, str] = Field(default_factory=lambda: {name: "embedded" for name in SETS}, description=(
        "Set name → where it comes from: 'embedded' (the project's small offline set of 12 items), a path such as "
        "'{data_dir}/hellaswag', or a hub id. Sets left out are not run. Names: " + ", ".join(SETS) + "."))
    limit: Optional[int] = Field(None, ge=1, description=(
        "Score at most this many items per set: a seeded subsample (None: every item)."))
    examples: int = Field(5, ge=0, le=50, description="Items whose answer changed listed in the report, per set.")

    @field_validator("data")
    @classmethod
    def _known(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(SETS))
        if unknown:
            raise ValueError(f"unknown capability set(s) {', '.join(unknown)}; known: {', '.join(SETS)}")
        if not value:
            raise ValueError("name at least one set")
        return value


def choice_scores(model, items: list[dict], variant: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per item, (log-likelihood of each option, the same divided by the option's length in characters) — the two
    scores behind lm-evaluation-harness's ``acc`` and ``acc_norm``. One batched scoring call for all options of all
    items (options sharing a context share its forward pass in the scorer)."""
    contexts = [c for it in items for c in it["contexts"]]
    choices = [c for it in items for c in it["choices"]]
    scored = model.score(contexts, choices, variant)
    out, k = [], 0
    for it in items:
        m = len(it["choices"])
        ll = np.array([lp for lp, _ in scored[k:k + m]], dtype=float)
        lengths = np.array([max(1, len(c)) for c in it["choices"]], dtype=float)
        out.append((ll, ll / lengths))
        k += m
    return out


def correct(scores: list[tuple[np.ndarray, np.ndarray]], labels: list[int], which: int) -> list[float]:
    """1.0 where the option with the highest score (``which``: 0 raw, 1 length-normalised) is the gold one. Ties go
    to the first option, as ``numpy.argmax`` (and lm-evaluation-harness) break them."""
    return [1.0 if int(np.argmax(s[which])) == y else 0.0 for s, y in zip(scores, labels)]


@PROBES.register("capability")
class CapabilityProbe(Probe):
    """General capability: does the fine-tune cost the model what it could do before (catastrophic forgetting)?

    Zero-shot multiple choice on HellaSwag (sentence completion), PIQA (physical commonsense), ARC-Easy and
    ARC-Challenge (grade-school science) and WinoGrande (pronoun resolution), scored as lm-evaluation-harness does:
    every option's log-likelihood given its context (plain text, no chat template, no task prompt), the highest wins.
    ``acc``: the raw log-likelihood; ``acc_norm``: the log-likelihood divided by the option's length in characters
    (lm-evaluation-harness's normalisation, which removes the preference for short options). Each set is summarised by
    the accuracy lm-evaluation-harness reports for it (acc_norm; acc for WinoGrande, whose two options share one
    continuation), and ``macro.score`` averages those over the sets run. Per set, base and adapter with Wilson
    intervals and the paired difference (Newcombe; exact McNemar); the macro average's intervals by a percentile
    bootstrap that resamples items within each set, base and adapter together.

    Blind spots: multiple-choice likelihood is not generation — a model can keep its rankings and still answer worse
    in free text (and the reverse). The embedded sets (12 items each) only exercise the probe; they are not the
    benchmarks, and their intervals are wide. A 135M model sits near chance on ARC-Challenge and WinoGrande (25% and
    50%), where a loss cannot show: the probe says so (blind spots) when the base is within its interval of chance.
    """

    metrics = (
        MetricSpec("macro.score", "fraction correct", "higher_is_better", (0.0, 1.0),
                   "mean over the sets of each set's reported accuracy"),
        MetricSpec("*.acc_norm", "fraction correct", "higher_is_better", (0.0, 1.0),
                   "options ranked by log-likelihood per character", group="capability set"),
        MetricSpec("*.acc", "fraction correct", "higher_is_better", (0.0, 1.0),
                   "options ranked by log-likelihood", group="capability set"),
    )
    metric_prefix = "capability"
    Options = CapabilityOptions

    @classmethod
    def data_sets(cls, options: CapabilityOptions) -> dict[str, str]:
        return dict(options.data)

    def run(self, ctx: ProbeContext) -> ProbeOutcome:
        from audited_ft.eval.sets import load_probe_set

        o = self.options
        metrics: dict[str, float] = {}
        info: dict = {"sets": {}, "chance": {}, "changed": {}}
        rows_out: dict[str, list[dict]] = {}
        per_set: dict[str, dict[str, list[float]]] = {}
        for name in SETS:
            if name not in o.data:
                continue
            probe_set = load_probe_set(name, o.data[name], ctx.data_dir, o.limit, ctx.seed)
            items = probe_set.items
            labels = [int(it["label"]) for it in items]
            scores = {v: choice_scores(ctx.model, items, v) for v in ctx.model.variants}
            acc = {v: correct(scores[v], labels, 0) for v in scores}
            norm = {v: correct(scores[v], labels, 1) for v in scores}
            headline = norm if SETS[name][1] == "acc_norm" else acc
            per_set[name] = headline
            chance = float(np.mean([1.0 / len(it["choices"]) for it in items]))
            info["sets"][name] = probe_set.describe()
            info["chance"][name] = round(chance, 4)
            for v in ctx.model.variants:
                if v == "base":
                    continue
                stem = variant_prefix(f"{self.prefix()}.{name}", v)
                metrics.update(paired_metric(f"{stem}.acc", acc["base"], acc[v], ctx.stats, PROPORTION))
                if SETS[name][1] == "acc_norm":
                    metrics.update(paired_metric(f"{stem}.acc_norm", norm["base"], norm[v], ctx.stats, PROPORTION))
            other = next((v for v in ctx.model.variants if v != "base"), None)
            if other is not None:
                info["changed"][name] = _changed(items, scores, headline, other, o.examples,
                                                 1 if SETS[name][1] == "acc_norm" else 0)
            rows_out[f"capability_{name}"] = [
                {"id": it["id"], "label": labels[i], "choices": list(it["choices"]),
                 # one context for all options (most sets), else one per option (WinoGrande's two sentences)
                 **({"context": it["contexts"][0]} if len(set(it["contexts"])) == 1
                    else {"contexts": list(it["contexts"])}),
                 **{f"pick_{v}": int(np.argmax(scores[v][i][1 if SETS[name][1] == "acc_norm" else 0]))
                    for v in scores},
                 **{f"correct_{v}": headline[v][i] for v in scores}}
                for i, it in enumerate(items)]
        for v in ctx.model.variants:
            if v != "base" and per_set:
                metrics.update(macro_metric(variant_prefix(f"{self.prefix()}.macro", v),
                                            {k: (s["base"], s[v]) for k, s in per_set.items()}, ctx.stats))
        info["blind"] = _at_chance(metrics, info["chance"], self.prefix())
        info["reported"] = {name: SETS[name][1] for name in per_set}
        info["normalisation"] = ("acc_norm: log-likelihood divided by the option's length in characters "
                                 "(lm-evaluation-harness); acc: raw log-likelihood")
        return ProbeOutcome(metrics=metrics, generations=rows_out, info=info)


def macro_metric(prefix: str, per_set: dict[str, tuple[list[float], list[float]]], settings) -> dict:
    """The mean over sets of each set's accuracy, base and adapter (``per_set``: set → (base, adapter) per-item
    outcomes), as ``<prefix>.score`` keys: intervals by a percentile bootstrap that resamples items within each set
    (stratified), base and adapter with the same draws (coverage measured in tests/eval/probes/test_capability.py)."""
    rng = np.random.default_rng(settings.seed)
    draws = settings.bootstrap_samples
    point = {"base": float(np.mean([np.mean(b) for b, _ in per_set.values()])),
             "adapter": float(np.mean([np.mean(a) for _, a in per_set.values()]))}
    point["delta"] = point["adapter"] - point["base"]
    sums = {"base": np.zeros(draws), "adapter": np.zeros(draws)}
    for b, a in per_set.values():
        b, a = np.asarray(b, dtype=float), np.asarray(a, dtype=float)
        idx = rng.integers(0, len(b), size=(draws, len(b)))
        sums["base"] += b[idx].mean(axis=1)
        sums["adapter"] += a[idx].mean(axis=1)
    k = len(per_set)
    d = {"base": sums["base"] / k, "adapter": sums["adapter"] / k}
    d["delta"] = d["adapter"] - d["base"]
    n = sum(len(b) for b, _ in per_set.values())
    return bootstrap_metric(prefix + ".score", n, point, d, settings, "macro")


def _at_chance(metrics: dict, chance: dict[str, float], prefix: str) -> dict[str, str]:
    """{stem: reason} for the sets where the base's interval reaches chance: there a fine-tune that costs ability has
    no room to show it (the base already guesses)."""
    out = {}
    for name, level in chance.items():
        stem = f"{prefix}.{name}.{SETS[name][1]}"
        value, low = metrics.get(f"{stem}.base"), metrics.get(f"{stem}.base.ci_low")
        if value is not None and low is not None and low <= level:
            out[stem] = (f"the base scores {value:.2f} (interval from {low:.2f}) where guessing scores {level:.2f}: "
                         "a loss of this ability cannot show below chance")
    return out


def _changed(items, scores, headline, other: str, k: int, which: int) -> list[dict]:
    """Up to ``k`` items the adapter got wrong where the base was right (then the reverse), with both picks."""
    lost = [i for i in range(len(items)) if headline["base"][i] == 1.0 and headline[other][i] == 0.0]
    gained = [i for i in range(len(items)) if headline["base"][i] == 0.0 and headline[other][i] == 1.0]
    out = []
    for i in (lost + gained)[:k]:
        out.append({"id": items[i]["id"], "lost": i in lost, "gold": int(items[i]["label"]),
                    "pick_base": int(np.argmax(scores["base"][i][which])),
                    f"pick_{other}": int(np.argmax(scores[other][i][which]))})
    return out
