"""The run's verdict, derived once: PASS, NEEDS REVIEW, INCONCLUSIVE or FAIL, with what led to it.

* FAIL — a gate failed, a metric regressed against the baseline, a blocking audit failed (unless a named person accepted
  the risk), or a stage failed where nothing above already names the cause. Exit 1.
* INCONCLUSIVE — no failure, but a risk gate could not be decided (interval too wide, not estimable, or the probe blind
  on this base). Exit 1 unless ``verdict.inconclusive: warn`` (or ``--inconclusive warn``), then 0.
* NEEDS REVIEW — nothing failed or was undecided, but a person has to look: an audit warned, a stage did not finish, a
  file could not be read, or a headline metric moved in its harmful direction beyond its interval and no gate watches
  it (a significant harm that no gate names can never give PASS). Exit 0.
* PASS — none of the above. Exit 0.

The gate stage writes this verdict into ``gates.json``; the terminal, ``gates.md``, the JUnit file and the report print
that same word. A run that stopped before the gate stage (a blocking audit) gets its verdict from the same function.
"""

from __future__ import annotations

from audited_ft.run.folder import STAGES
from audited_ft.run.keys import MetricKey
from audited_ft.run.view import RunView
from audited_ft.textsafe import clip

PASS, REVIEW, INCONCLUSIVE, FAIL = "pass", "needs review", "inconclusive", "fail"
WORDS = {PASS: "PASS", REVIEW: "NEEDS REVIEW", INCONCLUSIVE: "INCONCLUSIVE", FAIL: "FAIL"}


def run_verdict(run: RunView, gates: dict | None, inconclusive: str = "fail", upto: str = "report") -> dict:
    """The verdict of the run in ``run`` given its gate results (``gates.json``'s content, or the results the gate
    stage is about to write); stages from ``upto`` on are not judged (they are running). Returns ``verdict``, its
    ``word``, ``exit_code``, and the ``blockers``, ``undecided`` and ``reviews`` behind it."""
    audits = run.audits
    accepted_risks = run.manifest.get("accepted_risks") or (run.audit_summary or {}).get("accepted") or []
    accepted = {str(r.get("audit")) for r in accepted_risks if isinstance(r, dict)}
    blockers, undecided, reviews, stage_failures = [], [], [], []
    for g in (gates or {}).get("results") or []:
        state = g.get("verdict") or {True: "pass", False: "fail"}.get(g.get("passed"))
        if state == "fail":
            blockers.append(f"gate failed: {g.get('message') or g.get('metric')}")
        elif state == "inconclusive":
            undecided.append(f"gate undecided: {g.get('message') or g.get('metric')}")
    for r in ((gates or {}).get("baseline") or {}).get("results") or []:
        if r.get("passed") is False:
            blockers.append(f"regression against the baseline: {r.get('message') or r.get('metric')}")
    if gates is not None and gates.get("passed") is False and not blockers and not undecided:
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
    judged = list(STAGES[:STAGES.index(upto)]) if upto in STAGES else list(STAGES)
    for name in judged + [s for s in run.stages if s not in STAGES]:
        st = run.stages.get(name) or {}
        status = st.get("status", "not recorded")
        if status == "done":
            continue
        line = f"stage '{name}' is {status}" + (f": {clip(st['error'])}" if st.get("error") else "")
        (stage_failures if status == "failed" else reviews).append(line)
    if not blockers:  # a failed stage names the cause only when no gate or audit above already did
        blockers.extend(stage_failures)
    reviews.extend(unwatched_harms(run, gates))
    reviews.extend(f"{rel} could not be read" for rel in run.unreadable)
    verdict = FAIL if blockers else INCONCLUSIVE if undecided else REVIEW if reviews else PASS
    exit_code = 1 if verdict == FAIL or (verdict == INCONCLUSIVE and inconclusive == "fail") else 0
    return {"verdict": verdict, "word": WORDS[verdict], "exit_code": exit_code, "inconclusive_policy": inconclusive,
            "blockers": blockers, "undecided": undecided, "reviews": reviews}


def unwatched_harms(run: RunView, gates: dict | None) -> list[str]:
    """Headline metrics (declared, not neutral, not a group-level one) whose difference moved in the harmful direction
    beyond its interval while no gate names the metric."""
    from audited_ft.eval.probes import owner

    metrics = run.metrics or {}
    variants = list(run.extra_adapters)
    watched = {MetricKey.parse(str(g.get("metric", ""))).stem for g in (gates or {}).get("results") or []}
    out = []
    for key in sorted(metrics):
        k = MetricKey.parse(key, variants)
        if k.side != "delta" or k.stat is not None or k.variant is not None or k.stem in watched:
            continue
        found = owner(k.stem)
        if found is None or found[1].group is not None or found[1].direction == "neutral":
            continue
        low, high = metrics.get(str(k.to(stat="ci_low"))), metrics.get(str(k.to(stat="ci_high")))
        if low is None or high is None:
            continue
        harmful = low > 0 if found[1].direction == "higher_is_worse" else high < 0
        if harmful:
            out.append(f"{k.stem} moved in its harmful direction ({found[1].direction.replace('_', ' ')}): delta "
                       f"{metrics[key]:+.3f} [{low:+.3f}, {high:+.3f}], and no gate watches it")
    return out
