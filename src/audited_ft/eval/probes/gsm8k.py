"""Optional capability probe: GSM8K maths word problems, answered by generation, exact final-answer match."""

from __future__ import annotations

import random
import re
from typing import Optional

from pydantic import Field

from audited_ft.eval.probes._base import PROBES, Probe, ProbeContext, ProbeOptions, ProbeOutcome, variant_prefix
from audited_ft.eval.stats import PROPORTION, paired_metric
from audited_ft.run.keys import MetricSpec

_CALC = re.compile(r"<<[^>]*>>")          # GSM8K's calculator annotations, left out of the worked examples
_STRICT = re.compile(r"####\s*\$?(-?[\d,]*\.?\d+)")
_NUMBER = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?")


class GSM8KOptions(ProbeOptions):
    data: str = Field("embedded", description=(
        "'embedded' (8 short problems written by this project, a smoke check), '{data_dir}/gsm8k' (test.jsonl, "
        "1,319 problems) or a hub id such as openai/gsm8k:main:test."))
    limit: Optional[int] = Field(None, ge=1, description="Score at most this many problems (seeded subsample).")
    shots: int = Field(5, ge=0, le=8, description=(
        "Worked examples before each question (lm-evaluation-harness's gsm8k uses 5). They are drawn, seeded, from "
        "the same file and never scored."))
    max_new_tokens: int = Field(256, ge=16, description="Tokens generated per answer (a worked solution).")
    examples: int = Field(4, ge=0, le=20, description="Problems whose result changed listed in the report.")


def final_answer(text: str) -> tuple[Optional[str], Optional[str]]:
    """(strict, flexible) final answers of a generated solution, cut at the next "Question:": ``strict`` is the number
    after "#### " (the format the worked examples show), ``flexible`` the last number in the answer (as
    lm-evaluation-harness's strict-match and flexible-extract filters)."""
    from audited_ft.eval.sets.gsm8k import final_number

    answer = text.split("Question:", 1)[0]
    strict = _STRICT.search(answer)
    numbers = _NUMBER.findall(answer)
    return (final_number(strict.group(1)) if strict else None,
            final_number(numbers[-1]) if numbers else None)


@PROBES.register("gsm8k")
class GSM8KProbe(Probe):
    """GSM8K: grade-school maths word problems solved in free text, base vs adapter (optional: enable it for models
    large enough to score above zero).

    Each problem is asked as plain text after ``shots`` worked examples ("Question: ...\\nAnswer: <solution> #### <n>"),
    answered greedily, cut at the next "Question:", and scored by exact match of the final number (thousands
    separators, "$" and a trailing ".0" removed): ``exact_match`` takes the last number in the answer
    (lm-evaluation-harness's flexible-extract), ``strict_match`` only a number after "#### " (its strict-match). Paired
    proportions with Newcombe intervals and an exact McNemar test. Unlike the multiple-choice capability probe it
    measures generation, so a fine-tune that changes the answer format shows here first.

    Blind spots: a small model (SmolLM2-135M) solves almost none, so a loss cannot show — the probe then says it is
    blind on this base. The worked examples come from the test file (there is no training split here), so scores are
    not comparable with published 5-shot figures drawn from GSM8K's training split. Exact match credits a right
    number reached by wrong reasoning and misses a right answer written in words. The embedded set is a smoke check.
    """

    metrics = (
        MetricSpec("exact_match", "fraction of problems", "higher_is_better", (0.0, 1.0),
                   "final number right (last number in the answer)", at_limit="base solves none"),
        MetricSpec("strict_match", "fraction of problems", "higher_is_better", (0.0, 1.0),
                   "final number right after '####'", at_limit="base solves none in the strict format"),
    )
    metric_prefix = "capability.gsm8k"
    Options = GSM8KOptions

    @classmethod
    def data_sets(cls, options: GSM8KOptions) -> dict[str, str]:
        return {"gsm8k": options.data}

    def run(self, ctx: ProbeContext) -> ProbeOutcome:
        from audited_ft.eval.sets import load_probe_set

        o = self.options
        full = load_probe_set("gsm8k", o.data, ctx.data_dir, None, ctx.seed)
        rng = random.Random(f"{ctx.seed}:gsm8k-shots")
        shot_idx = set(rng.sample(range(len(full.items)), min(o.shots, len(full.items) - 1)))
        shots = [full.items[i] for i in sorted(shot_idx)]
        pool = [it for i, it in enumerate(full.items) if i not in shot_idx]
        if o.limit is not None and o.limit < len(pool):
            pool = [pool[i] for i in sorted(random.Random(ctx.seed).sample(range(len(pool)), o.limit))]
        header = "".join(f"Question: {s['question']}\nAnswer: {_CALC.sub('', s['solution'])} #### {s['answer']}\n\n"
                         for s in shots)
        prompts = [f"{header}Question: {it['question']}\nAnswer:" for it in pool]
        answers = {v: ctx.model.generate(prompts, v, o.max_new_tokens) for v in ctx.model.variants}
        extracted = {v: [final_answer(a) for a in answers[v]] for v in answers}
        flexible = {v: [float(f == it["answer"]) for (_, f), it in zip(extracted[v], pool)] for v in answers}
        strict = {v: [float(s == it["answer"]) for (s, _), it in zip(extracted[v], pool)] for v in answers}
        metrics: dict[str, float] = {}
        for v in ctx.model.variants:
            if v == "base":
                continue
            metrics.update(paired_metric(variant_prefix(f"{self.prefix()}.exact_match", v), flexible["base"],
                                         flexible[v], ctx.stats, PROPORTION))
            metrics.update(paired_metric(variant_prefix(f"{self.prefix()}.strict_match", v), strict["base"],
                                         strict[v], ctx.stats, PROPORTION))
        other = next((v for v in ctx.model.variants if v != "base"), None)
        changed = [i for i in range(len(pool)) if other and flexible["base"][i] != flexible[other][i]]
        info = {"data": full.describe(), "items": len(pool), "shots": [s["id"] for s in shots],
                "levels": {v: round(sum(flexible[v]) / len(pool), 4) for v in answers},
                "changed": [{"id": pool[i]["id"], "gold": pool[i]["answer"],
                             **{f"answer_{v}": extracted[v][i][1] for v in answers}} for i in changed[:o.examples]]}
        generations = {f"gsm8k_{v}": [{"id": it["id"], "gold": it["answer"], "prediction": answers[v][i][:400],
                                       "strict": extracted[v][i][0], "flexible": extracted[v][i][1]}
                                      for i, it in enumerate(pool)] for v in answers}
        return ProbeOutcome(metrics=metrics, generations=generations, info=info)
