"""Template for a project-local audit. Copy to a file without the leading underscore to activate it."""

from __future__ import annotations

from pydantic import Field

from audited_ft.audit.audits import AUDITS, Audit, AuditContext, AuditOptions, AuditOutcome


class TargetShareOptions(AuditOptions):
    max_share: float = Field(0.2, gt=0, le=1, description="Largest share of train rows that may share one target.")


@AUDITS.register("target_share_template")
class TargetShareAudit(Audit):
    """Fails when one target text dominates the train split (a label-collapse smell).

    Measures the share of the most frequent exact target in the train split. Blind to near-identical targets that
    differ by a word, and to imbalance across classes that are not literal repeats.
    """

    Options = TargetShareOptions

    def run(self, ctx: AuditContext) -> AuditOutcome:
        from collections import Counter

        train = ctx.splits.get("train", [])
        counts = Counter(r["target"] for r in train)
        top = counts.most_common(1)[0][1] if counts else 0
        share = top / len(train) if train else 0.0
        failed = share > self.options.max_share
        return AuditOutcome({"status": "fail" if failed else "pass", "blocking": failed,
                             "summary": {"rows": len(train), "top_target_share": round(share, 4),
                                         "max_share": self.options.max_share},
                             "findings": []})
