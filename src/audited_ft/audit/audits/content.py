"""The ``content`` audit: harmful training text (toxicity, insults, threats, identity attacks), found before training."""

from __future__ import annotations

import logging
import re
import time
from typing import Literal

from pydantic import Field

from audited_ft.audit.audits._base import AUDITS, Audit, AuditContext, AuditOptions, AuditOutcome

log = logging.getLogger(__name__)


class ContentOptions(AuditOptions):
    """Options of the ``content`` audit (config section ``audits.content``)."""

    scorer: str = Field("jigsaw-bilstm", description="Toxicity scorer, as the toxicity probe names it.")
    scorer_options: dict = Field(default_factory=dict, description="Options of the scorer (batch size, checkpoint).")
    labels: list[str] = Field(["toxic", "severe_toxic", "threat", "insult", "identity_hate"], description=(
        "Outputs of the scorer that count (jigsaw-bilstm: toxic, severe_toxic, obscene, threat, insult, "
        "identity_hate; detoxify adds identity_attack and others). Labels the scorer lacks are listed as unmeasured."))
    fields: list[Literal["input", "target"]] = Field(["target", "input"], description=(
        "What is scored: the target is what the adapter learns to write; the input is what it learns to answer."))
    splits: list[str] = Field(["train"], description="Splits scored (the training data by default).")
    threshold: float = Field(0.5, gt=0, lt=1, description="A text is flagged when any counted label reaches this.")
    policy: Literal["fail", "warn", "drop"] = Field("fail", description=(
        "fail: the audit blocks training when the flagged share of training rows exceeds max_share (below it, warns); "
        "warn: warn when any row is flagged; drop: remove the flagged training rows and warn."))
    # 0.05, measured with the offline scorer (flagged share of training rows): all of DialogSum's train split 0.015
    # (quarrels in everyday dialogues; 0.004 of targets), StereoSet stereotype sentences 0.073, ToxiGen hateful
    # statements 0.237. 0.01 blocked the benign public task set; 0.05 still blocks both harmful sources.
    max_share: float = Field(0.05, ge=0, le=1, description="Largest share of training rows that may be flagged.")
    examples: int = Field(5, ge=0, le=50, description="Worst rows listed (excerpts masked and cut).")


@AUDITS.register("content")
class ContentAudit(Audit):
    """Harmful text in the training data: toxicity, insults, threats and identity attacks, scored before training.

    Measures: every training target and input (by default) through the same toxicity classifier the probes use
    (offline: the Jigsaw BiLSTM, labels toxic, severe_toxic, threat, insult, identity_hate); a row is flagged when any
    counted label reaches the threshold (0.5). Reports, per split, field and label, the share of flagged rows with a
    Wilson 95% interval, and the worst rows by row id with a masked, cut excerpt (words of four letters or more keep
    their first letter). Policy: fail (block training above max_share), warn, or drop the flagged training rows.
    A fine-tune on hateful statements teaches the model to write them; this audit says so before any GPU time.
    Blind spots: the classifier's own — it reads words, not intent (quoted or reported hate, reclaimed words, and
    sarcasm are misread; coded language and implicit stereotypes pass); it sees only the last 100 words of a text, so
    harm early in a long dialogue is missed; English only; a stereotype stated politely scores low.
    """

    Options = ContentOptions

    def run(self, ctx: AuditContext) -> AuditOutcome:
        from audited_ft.eval.scorers import get_scorer

        started = time.time()
        o: ContentOptions = self.options
        scorer = get_scorer(o.scorer, **o.scorer_options)
        summary: dict = {"scorer": scorer.describe(), "threshold": o.threshold, "policy": o.policy,
                         "max_share": o.max_share, "splits": {}, "unmeasured_labels": []}
        findings, flagged_ids = [], set()
        for split in o.splits:
            rows = ctx.splits.get(split) or []
            flagged_rows: set[str] = set()
            per_field = {}
            for field in o.fields:
                scores = scorer.score_labels([r[field] for r in rows])
                labels = [lab for lab in o.labels if lab in scores]
                summary["unmeasured_labels"] = sorted(set(o.labels) - set(scores))
                per_field[field] = _field_summary(scores, labels, o.threshold, len(rows))
                for i, row in enumerate(rows):
                    worst = max(((scores[lab][i], lab) for lab in labels), default=(0.0, None))
                    if worst[0] >= o.threshold:
                        flagged_rows.add(row["id"])
                        findings.append({"split": split, "row_id": row["id"], "field": field, "label": worst[1],
                                         "score": round(worst[0], 4), "excerpt": mask(row[field])})
            summary["splits"][split] = {"rows": len(rows), "flagged_rows": len(flagged_rows),
                                        "flagged_share": _share(len(flagged_rows), len(rows)), "fields": per_field}
            if split == "train":
                flagged_ids = flagged_rows
        findings.sort(key=lambda f: -f["score"])
        share = summary["splits"].get("train", {}).get("flagged_share", {}).get("value") or 0.0
        status, new_splits = "pass", None
        if flagged_ids:
            status = "fail" if o.policy == "fail" and share > o.max_share else "warn"
        if flagged_ids and o.policy == "drop":
            new_splits = {**ctx.splits, "train": [r for r in ctx.splits["train"] if r["id"] not in flagged_ids]}
            summary["dropped"] = {"rows": len(flagged_ids), "row_ids": sorted(flagged_ids)[:200]}
        summary["findings_total"] = len(findings)
        log.info("content: %d flagged training row(s) of %d", len(flagged_ids), len(ctx.splits.get("train") or []))
        return AuditOutcome(result={"status": status, "blocking": o.policy == "fail", "summary": summary,
                                    "findings": findings[: max(o.examples, 0)],
                                    "findings_truncated": len(findings) > o.examples,
                                    "seconds": round(time.time() - started, 2)}, splits=new_splits)


def _share(k: int, n: int) -> dict:
    from audited_ft.eval.stats import wilson_interval

    if not n:
        return {"value": None, "ci_low": None, "ci_high": None, "n": 0}
    low, high = wilson_interval(k, n)
    return {"value": k / n, "ci_low": low, "ci_high": high, "n": n, "method": "Wilson score interval, 95%"}


def _field_summary(scores: dict[str, list[float]], labels: list[str], threshold: float, n: int) -> dict:
    return {lab: {"flagged": sum(1 for s in scores[lab] if s >= threshold),
                  "share": _share(sum(1 for s in scores[lab] if s >= threshold), n),
                  "max": round(max(scores[lab], default=0.0), 4)} for lab in labels}


def mask(text: str, limit: int = 80) -> str:
    """A cut, masked excerpt: every word of four letters or more keeps its first letter ("you are an i****"), digits
    become 9 — enough to see what kind of text was flagged, not to republish it (or any personal data in it)."""
    text = re.sub(r"\s+", " ", str(text)).strip()[:limit]
    text = re.sub(r"\d", "9", text)
    return re.sub(r"\b([^\W\d_])([^\W\d_]{3,})\b", lambda m: m.group(1) + "*" * len(m.group(2)), text)
