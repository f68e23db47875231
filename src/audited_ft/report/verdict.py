"""The report's verdict: pass, needs review or fail, with what blocks and what needs a look.

Failed gates, regressions against a baseline and blocking audits (unless a named person accepted the risk) fail; a
failed stage fails when nothing above already names the cause; warned audits, unfinished stages and unreadable files
need review.
"""

from __future__ import annotations

from audited_ft.report.format import clip
from audited_ft.run.folder import STAGES
from audited_ft.run.view import RunView


def report_verdict(run: RunView, gates: dict | None, audits: dict[str, dict], accepted: set[str]) -> dict:
    """pass / needs review / fail, with what blocks and what needs a look."""
    blockers, reviews, stage_failures = [], [], []
    for g in (gates or {}).get("results") or []:
        if g.get("passed") is False:
            blockers.append(f"gate failed: {g.get('message') or g.get('metric')}")
    for r in ((gates or {}).get("baseline") or {}).get("results") or []:
        if r.get("passed") is False:
            blockers.append(f"regression against the baseline: {r.get('message') or r.get('metric')}")
    if gates is not None and gates.get("passed") is False and not blockers:
        blockers.append("gates.json reports passed = false")
    listed = [str(n) for n in (run.audit_summary or {}).get("blocking") or []]
    for name, a in audits.items():
        if name in accepted:
            continue
        if a.get("status") == "fail" and (a.get("blocking", True) or name in listed):  # the audit stage's default
            blockers.append(f"blocking audit '{name}' failed")
        elif a.get("status") in ("fail", "warn"):
            reviews.append(f"audit '{name}' reported {a.get('status')}")
    blockers.extend(f"blocking audit '{n}' failed (audits/summary.json)" for n in listed
                    if n not in accepted and n not in audits)
    for name in [s for s in STAGES if s != "report"] + [s for s in run.stages if s not in STAGES]:
        st = run.stages.get(name) or {}
        status = st.get("status", "not recorded")
        if status == "done":
            continue
        line = f"stage '{name}' is {status}" + (f": {clip(st['error'], 300)}" if st.get("error") else "")
        (stage_failures if status == "failed" else reviews).append(line)
    if not blockers:  # a failed stage names the cause only when no gate or audit above already did
        blockers.extend(stage_failures)
    reviews.extend(f"{rel} could not be read" for rel in run.unreadable)
    verdict = "fail" if blockers else "needs review" if reviews else "pass"
    return {"verdict": verdict, "blockers": blockers, "reviews": reviews}
