"""The ``profile`` audit: the dataset's shape before training — rows, lengths in tokens, truncation, cleaning drops."""

from __future__ import annotations

import logging
import time
from typing import Literal

import numpy as np
from pydantic import Field

from audited_ft.audit.audits._base import AUDITS, Audit, AuditContext, AuditOptions, AuditOutcome

log = logging.getLogger(__name__)

PERCENTILES = (50, 90, 99)


class ProfileOptions(AuditOptions):
    """Options of the ``profile`` audit (config section ``audits.profile``)."""

    over_length: Literal["fail", "warn", "ignore"] = Field(
        "warn", description="What a training row longer than train.max_length tokens (prompt + target) means: "
        "training truncates it, so the end of its target is never learned.")
    max_over_length_percent: float = Field(
        0.0, ge=0, le=100, description="Share of training rows (percent) that may be over-length before the "
        "over_length action applies.")
    bins: int = Field(20, ge=2, le=100, description="Histogram bins of the token-length distributions.")


@AUDITS.register("profile")
class ProfileAudit(Audit):
    """Dataset profile: rows per split, token lengths of input, target and the full training sequence, truncation.

    Measures: with the run's own tokenizer, prompt template and chat template, the token count of every input,
    target and training sequence (prompt + target + end token) per split — distribution (mean, percentiles, max,
    histogram), the rows longer than train.max_length (training cuts them, losing the end of the target), the
    padding a fixed-length batch would waste; and the cleaning counts of the data stage (empty, too long, ...).
    Blind spots: lengths only — content is the business of the pii and leakage audits; without the run's tokenizer
    (offline with a hub id) lengths fall back to whitespace words, which undercount tokens by roughly 1.3x in English.
    """

    Options = ProfileOptions

    def run(self, ctx: AuditContext) -> AuditOutcome:
        started = time.time()
        opts: ProfileOptions = self.options
        count, prompt, unit, notes = _counter(ctx.config)
        max_length = getattr(getattr(ctx.config, "train", None), "max_length", None)
        splits: dict = {}
        over: dict[str, list[str]] = {}
        for split, rows in ctx.splits.items():
            inputs = count([r["input"] for r in rows])
            targets = count([r["target"] for r in rows])
            prompts = count([prompt(r["input"]) for r in rows]) if prompt else inputs
            seqs = [p + t + 1 for p, t in zip(prompts, targets)]  # + the end-of-sequence token training appends
            splits[split] = {"rows": len(rows), "input": _dist(inputs, opts.bins), "target": _dist(targets, opts.bins),
                             "sequence": _dist(seqs, opts.bins), "tokens_total": int(sum(seqs)),
                             "target_tokens_total": int(sum(targets))}
            if max_length:
                long_rows = [str(r.get("id", i)) for i, (r, n) in enumerate(zip(rows, seqs)) if n > max_length]
                over[split] = long_rows
                splits[split]["over_max_length"] = {
                    "count": len(long_rows), "percent": round(100 * len(long_rows) / len(rows), 2) if rows else 0.0,
                    "row_ids": long_rows[:50]}
                # Fixed-length padding (every row padded to max_length) vs padding to the longest row of the split.
                useful = sum(min(n, max_length) for n in seqs)
                splits[split]["padding_share_at_max_length"] = round(1 - useful / (max_length * len(rows)), 3) \
                    if rows else 0.0
        train_over = splits.get("train", {}).get("over_max_length", {}).get("percent", 0.0)
        status = "pass"
        if max_length and train_over > opts.max_over_length_percent and opts.over_length != "ignore":
            status = opts.over_length
        if status == "pass" and unit != "tokens":
            status = "warn"
        cleaning = _cleaning(ctx)
        summary = {"unit": unit, "tokenizer": notes["tokenizer"], "prompt": notes["prompt"],
                   "max_length": max_length, "splits": splits, "cleaning": cleaning,
                   "warnings": notes["warnings"]}
        if max_length is None:
            summary["warnings"].append("train.max_length unknown (no run config): truncation not checked")
        findings = [{"kind": "over_max_length", "split": s, "row_id": rid, "field": "input+target"}
                    for s, ids in over.items() for rid in ids[:50]]
        result = {"name": self.name, "status": status, "blocking": status == "fail",
                  "summary": summary, "findings": findings,
                  "findings_truncated": any(len(ids) > 50 for ids in over.values()),
                  "seconds": round(time.time() - started, 2)}
        log.info("profile: %s (%s)", status, ", ".join(f"{s}: {v['rows']} rows, median {v['sequence'].get('p50', '-')} "
                                                       f"{unit}" for s, v in splits.items()))
        return AuditOutcome(result=result)


def _dist(values: list[int], bins: int) -> dict:
    if not values:
        return {"n": 0}
    x = np.asarray(values)
    counts, edges = np.histogram(x, bins=min(bins, max(1, int(x.max() - x.min()) + 1)))
    return {"n": int(x.size), "mean": round(float(x.mean()), 1), "min": int(x.min()),
            **{f"p{q}": int(np.percentile(x, q)) for q in PERCENTILES}, "max": int(x.max()),
            "histogram": {"edges": [round(float(e), 1) for e in edges], "counts": [int(c) for c in counts]}}


def _counter(cfg):
    """(count(texts) -> lengths, prompt(text) -> training prompt or None, unit, notes)."""
    notes: dict = {"tokenizer": None, "prompt": None, "warnings": []}
    if cfg is not None:
        try:
            from audited_ft.models import build_prompt, load_tokenizer, resolve_model

            resolved = resolve_model(cfg.model.name_or_path, cfg.model.licence)
            tok = load_tokenizer(resolved, cfg.model.revision, cfg.model.trust_remote_code)

            def count(texts: list[str]) -> list[int]:
                return [len(ids) for ids in tok(texts, add_special_tokens=False)["input_ids"]] if texts else []

            def prompt(text: str) -> str:
                return build_prompt(tok, cfg.data.prompt_template, text, cfg.model.use_chat_template,
                                    cfg.model.system_prompt)

            notes["tokenizer"] = f"{cfg.model.name_or_path} ({type(tok).__name__})"
            notes["prompt"] = "data.prompt_template" + (" + chat template" if cfg.model.use_chat_template
                                                        and getattr(tok, "chat_template", None) else "")
            return count, prompt, "tokens", notes
        except Exception as exc:  # offline hub id, missing package: profile in words and say so
            notes["warnings"].append(f"tokenizer of {cfg.model.name_or_path!r} not available "
                                     f"({str(exc).splitlines()[0][:200]}): lengths are whitespace words")
    else:
        notes["warnings"].append("no run config: lengths are whitespace words, prompt template not applied")

    def words(texts: list[str]) -> list[int]:
        return [len(t.split()) for t in texts]

    return words, None, "words", notes


def _cleaning(ctx: AuditContext) -> dict:
    """The data stage's cleaning counts (rows kept and dropped by reason), from data/stats.json."""
    from audited_ft.run.view import RunView

    if ctx.run_dir is None or not (ctx.run_dir / "data" / "stats.json").is_file():
        return {}
    return RunView(ctx.run_dir, manifest_required=False).require("data/stats.json", "data").get("cleaning", {})
