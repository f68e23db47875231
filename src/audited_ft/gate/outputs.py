"""The gate stage's results for CI: JUnit XML (one test case per gate and per baseline comparison) and a Markdown
summary for a job page or a pull-request comment, in the words of ``gates.json``: PASS / FAIL / INCONCLUSIVE per gate
and the run's verdict. Names and messages come from data: control characters are shown as escapes, and nothing can
close the markup it is printed in."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree as ET

from audited_ft.textsafe import escape_controls

MARKS = {"pass": "✅ PASS", "fail": "❌ FAIL", "inconclusive": "❔ INCONCLUSIVE"}


def _state(r: dict) -> str:
    return r.get("verdict") or ("pass" if r.get("passed") else "fail")


def _cases(out: dict) -> list[tuple[str, str, dict]]:
    cases = [("gates", f"{r['metric']}" + ("" if r["statistic"] == "point" else f".{r['statistic']}"), r)
             for r in out["results"]]
    cases += [("regression", f"{r['metric']} vs baseline", r) for r in (out.get("baseline") or {}).get("results", [])]
    return cases


def junit_xml(out: dict, run_id: str, inconclusive: str = "failure") -> str:
    """JUnit XML: one ``testcase`` per gate and per baseline comparison; failures carry the one-line explanation. An
    inconclusive gate is a failure of type ``GateInconclusive`` or, with ``inconclusive="skipped"``, a skipped test."""
    cases = _cases(out)
    # Metric names can come from data (a probe's group names): control characters are invalid in XML 1.0.
    cases = [(classname, escape_controls(name), {**r, "message": escape_controls(r["message"]),
                                                 "reason": escape_controls(r["reason"]) if r.get("reason") else None})
             for classname, name, r in cases]
    states = [_state(r) for _, _, r in cases]
    skipped = states.count("inconclusive") if inconclusive == "skipped" else 0
    failures = states.count("fail") + (states.count("inconclusive") - skipped)
    verdict = (out.get("verdict") or {}).get("word")
    suite = ET.Element("testsuite", name=f"audited_ft gates ({escape_controls(run_id)})"
                       + (f": {verdict}" if verdict else ""), tests=str(len(cases)), failures=str(failures),
                       errors="0", skipped=str(skipped))
    for (classname, name, r), state in zip(cases, states):
        case = ET.SubElement(suite, "testcase", classname=f"audited_ft.{classname}", name=name, time="0")
        detail = r["message"] + (f"\nwhy this gate exists: {r['reason']}" if r.get("reason") else "")
        if state == "pass":
            ET.SubElement(case, "system-out").text = r["message"]
        elif state == "inconclusive" and inconclusive == "skipped":
            ET.SubElement(case, "skipped", message=r["message"]).text = detail
        else:
            kind = "GateInconclusive" if state == "inconclusive" else "GateFailed"
            ET.SubElement(case, "failure", message=r["message"], type=kind).text = detail
    suites = ET.Element("testsuites", name="audited_ft")
    suites.append(suite)
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def _md(text: Any) -> str:
    # Control characters shown as escapes; no backtick, so a name cannot close the code span it is printed in.
    one_line = escape_controls(str(text).replace("\r\n", " ").replace("\n", " "))
    return one_line.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace("`", "'")


def _num(value: Any, spec: str = ".3f") -> str:
    return "—" if value is None else format(value, spec)


def markdown_summary(out: dict, run_id: str) -> str:
    """A Markdown summary for a CI job page or a pull-request comment."""
    verdict = (out.get("verdict") or {}).get("word") or ("PASS" if out["passed"] else "FAIL")
    lines = [f"## audited_ft: **{verdict}** (run `{_md(run_id)}`)", "",
             "| verdict | metric | value | interval | bound or margin | why |", "|---|---|---|---|---|---|"]
    for r in out["results"]:
        key = r["metric"] + ("" if r["statistic"] == "point" else f".{r['statistic']}")
        if r.get("kind") == "risk":
            bound = f"margin {r['margin']:g} ({(r.get('direction') or '').replace('_', ' ')})"
            interval = f"[{_num(r.get('ci_low'), '+.3f')}, {_num(r.get('ci_high'), '+.3f')}]"
        else:
            bound = " and ".join(b for b in (f"≥ {r['min']:g}" if r["min"] is not None else "",
                                             f"≤ {r['max']:g}" if r["max"] is not None else "") if b)
            interval = ""
        lines.append(f"| {MARKS[_state(r)]} | `{_md(key)}` | {_num(r.get('value'))} | {interval} | {bound} | "
                     f"{_md(r.get('reason') or '')} |")
    base = out.get("baseline")
    if base:
        lines += ["", f"### Against baseline `{_md(base['run_id'])}`", "",
                  "| verdict | metric | value | baseline | change | better | tolerance |", "|---|---|---|---|---|---|---|"]
        for r in base["results"]:
            lines.append(f"| {'✅ ok' if r['passed'] else '❌ REGRESSED'} | `{_md(r['metric'])}` | {_num(r['value'])} | "
                         f"{_num(r['baseline'])} | {_num(r['change'], '+.3f')} | {r['direction'].split('_')[0]} | "
                         f"{r['tolerance']:.3f} |")
    for title, state in (("Failed", "fail"), ("Undecided", "inconclusive")):
        found = [r["message"] for _, _, r in _cases(out) if _state(r) == state]
        if found:
            lines += ["", f"{title}:", *(f"- {_md(m)}" for m in found)]
    family = out.get("risk_gates") or {}
    if family.get("count"):
        lines += ["", _md(family.get("note", ""))]
    return "\n".join(lines) + "\n"
