"""Explanation aid: which tokens of a reference answer the adapter made more or less likely than the base."""

from __future__ import annotations

import random
from typing import Literal

from pydantic import Field

from audited_ft.errors import DataError
from audited_ft.eval.probes._base import PROBES, Probe, ProbeContext, ProbeOptions, ProbeOutcome, variant_prefix
from audited_ft.eval.stats import paired_metric
from audited_ft.run.keys import MetricSpec

TOKEN_CHARS = 40  # one token's text as stored; longer pieces (rare: long runs of whitespace or symbols) are clipped
DIGITS = 4


class ExplainOptions(ProbeOptions):
    split: Literal["test", "validation"] = Field("test", description="Split whose items are sampled.")
    renamed = {"n": "limit"}
    limit: int = Field(6, ge=1, le=100, description="Items sampled (seeded by run.seed; all when the split is smaller).")
    top_k: int = Field(5, ge=1, le=50, description="Tokens per item listed as most changed (largest |delta|).")
    max_tokens: int = Field(200, ge=1, le=2000, description=(
        "Tokens per item kept in probes.json for the report (the metric always uses every token)."))
    context_chars: int = Field(200, ge=0, le=2000, description=(
        "Characters of the item's input stored beside its tokens, for the reader's orientation (0: none)."))


@PROBES.register("explain")
class ExplainProbe(Probe):
    """Per-token log-probability of reference answers, base vs adapter: which tokens the fine-tuning made more likely.

    For ``n`` seeded items of the test split, the reference target is scored after the item's task prompt (the prompt
    template and chat template as in training), token by token, under the base and under the adapter. Each token gets
    its log-probability (nats) under both and the change, adapter − base; the ``top_k`` tokens with the largest
    absolute change are listed per item, and the report shows each reference as highlighted text. The metric
    ``explain.reference_logprob_per_token`` is one value per item, the mean log-probability per reference token, for
    base and adapter with the paired-bootstrap CI of the delta; it is context, not a gate: fine-tuning on the task is
    expected to raise it.

    Blind spots: the log-probabilities are of the *reference*, not of what either model generates — a token the
    adapter now finds likely may never appear in its own answers, and the adapter's own mistakes are invisible here.
    Tokens are the tokenizer's pieces, not words: a word split into several pieces spreads its change over them, and a
    change on a piece is conditioned on the reference's earlier tokens, not on the model's. A raised probability shows
    that the adapter learned the task's wording, not that it understands the dialogue or states facts correctly. Only
    ``n`` items are shown: an illustration for a reader, not a measurement of where the adapter changed in general.
    """

    metrics = (MetricSpec("reference_logprob_per_token", "nats per token", "higher_is_better", (None, 0.0),
                          "log-probability of the reference answers"),)

    metric_prefix = "explain"
    Options = ExplainOptions

    def run(self, ctx: ProbeContext) -> ProbeOutcome:
        o = self.options
        rows = _sample(_rows(ctx, o.split), o.limit, ctx.seed)
        if not rows:
            return ProbeOutcome(metrics={}, info={"status": f"not measured: no row of split '{o.split}' has a "
                                                            "non-empty target"})
        prompts = [ctx.model.prompt(r["input"]) for r in rows]
        targets = [r["target"] for r in rows]
        tokens = {v: ctx.model.token_logprobs(prompts, targets, v) for v in ctx.model.variants}
        per_item = {v: [sum(lp for _, lp in toks) / len(toks) for toks in tokens[v]] for v in tokens}
        others = [v for v in ctx.model.variants if v != "base"]
        metrics: dict[str, float] = {}
        for v in others:
            metrics.update(paired_metric(variant_prefix(f"{self.prefix()}.reference_logprob_per_token", v),
                                         per_item["base"], per_item[v], ctx.stats))
        compared = others[0] if others else "base"
        info = {"split": o.split, "n": len(rows), "top_k": o.top_k, "compared": compared, "unit": "nats per token",
                "items": {str(r["id"]): _item(r, tokens["base"][i], tokens[compared][i], o)
                          for i, r in enumerate(rows)}}
        return ProbeOutcome(metrics=metrics, info=info)


def _rows(ctx: ProbeContext, split: str) -> list[dict]:
    """The split's rows with a non-empty string target; a row without ``input``/``target`` text is a DataError."""
    if split not in ctx.splits:
        raise DataError(f"explain: split '{split}' is absent from the run's splits "
                        f"(present: {', '.join(sorted(ctx.splits)) or 'none'}); set probes.explain.split")
    out = []
    for r in ctx.splits[split]:
        for field in ("input", "target"):
            if not isinstance(r.get(field), str):
                raise DataError(f"explain: split '{split}', row id {r.get('id')!r}: field '{field}' is "
                                f"{type(r.get(field)).__name__}, expected text")
        if r["target"].strip():
            out.append(r)
    return out


def _sample(rows: list[dict], n: int, seed: int) -> list[dict]:
    """``n`` rows chosen with ``seed``, in their split order."""
    if len(rows) <= n:
        return list(rows)
    keep = sorted(random.Random(seed).sample(range(len(rows)), n))
    return [rows[i] for i in keep]


def _item(row: dict, base: list[tuple[str, float]], adapter: list[tuple[str, float]], o: ExplainOptions) -> dict:
    """One item's tokens (clipped to ``max_tokens``), per-token log-probs and the ``top_k`` most changed tokens."""
    if [t for t, _ in base] != [t for t, _ in adapter]:  # same tokenizer for both: a mismatch is a model bug
        raise ValueError(f"explain: row id {row['id']!r}: base and adapter tokenized the reference differently")
    toks = [{"text": _clip(t, TOKEN_CHARS), "base": round(b, DIGITS), "adapter": round(a, DIGITS),
             "delta": round(a - b, DIGITS)} for (t, b), (_, a) in zip(base, adapter)]
    top = sorted(range(len(toks)), key=lambda i: (-abs(adapter[i][1] - base[i][1]), i))[:o.top_k]
    n = len(toks)
    return {"input_excerpt": _clip(row["input"], o.context_chars) if o.context_chars else None,
            "n_tokens": n, "truncated": n > o.max_tokens,
            "mean_logprob_per_token": {"base": round(sum(b for _, b in base) / n, DIGITS),
                                       "adapter": round(sum(a for _, a in adapter) / n, DIGITS)},
            "tokens": toks[:o.max_tokens],
            "top": [{"index": i, **toks[i]} for i in top]}


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"
