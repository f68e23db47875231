"""Task quality probe: ROUGE of base and adapter on the test split."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field

from audited_ft.eval.probes._base import PROBES, Probe, ProbeContext, ProbeOptions, ProbeOutcome, variant_prefix
from audited_ft.eval.stats import paired_metric
from audited_ft.run.keys import MetricSpec


class RougeOptions(ProbeOptions):
    split: Literal["test", "validation"] = Field("test", description="Split whose targets are the references.")
    renamed = {"max_items": "limit"}
    limit: Optional[int] = Field(None, ge=1, description="Score only the first N rows (None: all).")
    use_stemmer: bool = Field(True, description="Porter stemming before matching, as in the ROUGE paper's defaults.")


@PROBES.register("rouge")
class RougeProbe(Probe):
    """ROUGE-1/2/L/Lsum of greedy generations vs references on the test split, base vs adapter, paired bootstrap CIs.

    Measures lexical overlap with the reference summary (rouge-score's implementation, F-measure); the report shows
    side-by-side samples of base, adapter and reference next to it. A split with several references per item
    (``data.fields_by_split.<split>.reference_fields``, e.g. DialogSum's three test summaries) is scored against each
    and keeps the best match per ROUGE type (rouge-score's ``score_multi``, the usual multi-reference convention);
    base and adapter are scored the same way, so their difference stays paired.

    Blind spots: ROUGE cannot see meaning — a faithful paraphrase scores low and a fluent summary with a wrong fact can
    score high, so it is read next to the samples. Scores are for greedy decoding with the configured token limit; a
    truncated answer loses recall. One reference per item understates the quality of summaries worded differently; the
    best of several references overstates it against any single reference (scores are not comparable across the two).
    """

    metrics = (MetricSpec("rouge*", "F-measure", "higher_is_better", (0.0, 1.0),
                          "ROUGE F-measure of the greedy output against the reference"),)

    Options = RougeOptions
    KEYS = ("rouge1", "rouge2", "rougeL", "rougeLsum")

    def run(self, ctx: ProbeContext) -> ProbeOutcome:
        from rouge_score import rouge_scorer

        rows = ctx.splits[self.options.split][: self.options.limit]
        prompts = [ctx.model.prompt(r["input"]) for r in rows]
        scorer = rouge_scorer.RougeScorer(list(self.KEYS), use_stemmer=self.options.use_stemmer)
        scores: dict[str, dict[str, list[float]]] = {k: {} for k in self.KEYS}
        generations = {}
        for variant in ctx.model.variants:
            preds = ctx.model.generate(prompts, variant, ctx.max_new_tokens)
            per_item = [scorer.score_multi([_lsum(t) for t in r["references"]], _lsum(p)) if r.get("references")
                        else scorer.score(_lsum(r["target"]), _lsum(p)) for r, p in zip(rows, preds)]
            for k in self.KEYS:
                scores[k][variant] = [s[k].fmeasure for s in per_item]
            generations[variant] = [
                {"id": r["id"], "prompt": pr, "prediction": p, "reference": r["target"],
                 **({"references": len(r["references"])} if r.get("references") else {}),
                 **{k: round(s[k].fmeasure, 4) for k in self.KEYS}}
                for r, pr, p, s in zip(rows, prompts, preds, per_item)]
        metrics: dict[str, float] = {}
        for k in self.KEYS:
            for variant in ctx.model.variants:
                if variant == "base":
                    continue
                metrics.update(paired_metric(variant_prefix(f"rouge.{k}", variant), scores[k]["base"], scores[k][variant],
                                             ctx.stats))
        return ProbeOutcome(metrics=metrics, generations=generations)


def _lsum(text: str) -> str:
    # rougeLsum treats newlines as sentence boundaries; one sentence per line, as the reference implementation expects.
    import re

    return "\n".join(s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s)
