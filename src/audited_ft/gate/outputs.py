"""The gate stage's results for CI: JUnit XML (one test case per gate and per baseline comparison) and a Markdown
summary for a job page or a pull-request comment. Names and messages come from data: control characters are shown as
escapes, and nothing can close the markup it is printed in."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree as ET

from audited_ft.textsafe import escape_controls


def _cases(out: dict) -> list[tuple[str, str, dict]]:
    cases = [("gates", f"{r['metric']}" + ("" if r["statistic"] == "point" else f".{r['statistic']}"), r)
             for r in out["results"]]
    cases += [("regression", f"{r['metric']} vs baseline", r) for r in (out.get("baseline") or {}).get("results", [])]
    return cases


def junit_xml(out: dict, run_id: str) -> str:
    """JUnit XML: one ``testcase`` per gate and per baseline comparison; failures carry the one-line explanation."""
    cases = _cases(out)
    # Metric names can come from data (a probe's group names): control characters are invalid in XML 1.0.
    cases = [(classname, escape_controls(name), {**r, "message": escape_controls(r["message"]),
                                                 "reason": escape_controls(r["reason"]) if r.get("reason") else None})
             for classname, name, r in cases]
    suite = ET.Element("testsuite", name=f"audited_ft gates ({escape_controls(run_id)})", tests=str(len(cases)),
                       failures=str(sum(not r["passed"] for _, _, r in cases)), errors="0", skipped="0")
    for classname, name, r in cases:
        case = ET.SubElement(suite, "testcase", classname=f"audited_ft.{classname}", name=name, time="0")
        if not r["passed"]:
            failure = ET.SubElement(case, "failure", message=r["message"], type="GateFailed")
            failure.text = r["message"] + (f"\nwhy this gate exists: {r['reason']}" if r.get("reason") else "")
        else:
            ET.SubElement(case, "system-out").text = r["message"]
    suites = ET.Element("testsuites", name="audited_ft")
    suites.append(suite)
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def _md(text: Any) -> str:
    # Control characters shown as escapes; no backtick, so a name cannot close the code span it is printed in.
    one_line = escape_controls(str(text).replace("\r\n", " ").replace("\n", " "))
    return one_line.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace("`", "'")


def markdown_summary(out: dict, run_id: str) -> str:
    """A Markdown summary for a CI job page or a pull-request comment."""
    verdict = "PASSED" if out["passed"] else "FAILED"
    lines = [f"## audited_ft gates: **{verdict}** (run `{_md(run_id)}`)", "",
             "| verdict | metric | value | bound | why |", "|---|---|---|---|---|"]
    for r in out["results"]:
        key = r["metric"] + ("" if r["statistic"] == "point" else f".{r['statistic']}")
        bound = " and ".join(b for b in (f"≥ {r['min']:g}" if r["min"] is not None else "",
                                         f"≤ {r['max']:g}" if r["max"] is not None else "") if b)
        lines.append(f"| {'✅ pass' if r['passed'] else '❌ FAIL'} | `{_md(key)}` | {r['value']:.3f} | {bound} | "
                     f"{_md(r.get('reason') or '')} |")
    base = out.get("baseline")
    if base:
        lines += ["", f"### Against baseline `{_md(base['run_id'])}`", "",
                  "| verdict | metric | value | baseline | change | better | tolerance |", "|---|---|---|---|---|---|---|"]
        for r in base["results"]:
            lines.append(f"| {'✅ ok' if r['passed'] else '❌ REGRESSED'} | `{_md(r['metric'])}` | {r['value']:.3f} | "
                         f"{r['baseline']:.3f} | {r['change']:+.3f} | {r['direction'].split('_')[0]} | "
                         f"{r['tolerance']:.3f} |")
    failed = [r["message"] for _, _, r in _cases(out) if not r["passed"]]
    if failed:
        lines += ["", "Failed:", *(f"- {_md(m)}" for m in failed)]
    return "\n".join(lines) + "\n"
