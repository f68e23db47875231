"""Gate stage (``check_gates``): thresholds from the config, and optionally a baseline run, against this run's numbers.

A gate compares the point estimate or one end of its confidence interval (``statistic: point | ci_low | ci_high``) of a
key with a ``min`` and/or ``max``. Keys are those of ``eval/metrics.json`` (a delta is just another key:
``rouge.rougeL.delta``) or an audit's numbers, ``audits.<audit>.<path in its summary>`` (e.g.
``audits.leakage.totals.contamination``), plus ``audits.<audit>.passed`` (1 unless the audit failed).

With a baseline run folder, every gated metric (direction read from its gate) and every ``regression.metrics`` entry
is compared with the baseline's value; a move the wrong way beyond the tolerance is a regression and fails the gate
stage. Outputs: ``gates.json``, ``gates.junit.xml`` (one test case per gate and per comparison) and ``gates.md`` (a
summary for a CI job page or a pull-request comment). The verdict printed and the exit code come from the same
``passed`` value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from audited_ft.config import Config, Gate
from audited_ft.errors import ConfigError, RunFolderError
from audited_ft.registry import did_you_mean
from audited_ft.runfolder import RunFolder, atomic_write_text, read_json, write_json
from audited_ft.textsafe import escape_controls


def _key(gate: Gate) -> str:
    return gate.metric if gate.statistic == "point" else f"{gate.metric}.{gate.statistic}"


def evaluate_gate(gate: Gate, metrics: dict[str, float]) -> dict:
    key = _key(gate)
    value = metrics[key]
    checks = []
    if gate.min is not None:
        checks.append((value >= gate.min, f"≥ min {gate.min:.3f}", f"< min {gate.min:.3f}"))
    if gate.max is not None:
        checks.append((value <= gate.max, f"≤ max {gate.max:.3f}", f"> max {gate.max:.3f}"))
    passed = all(ok for ok, _, _ in checks)
    words = [good if ok else bad for ok, good, bad in checks]
    return {"metric": gate.metric, "statistic": gate.statistic, "min": gate.min, "max": gate.max, "value": value,
            "passed": passed, "reason": gate.reason,
            "message": f"{'PASS' if passed else 'FAIL'} {key} = {value:.3f} {' and '.join(words)}"}


def gate_values(run_dir: Path) -> dict[str, float]:
    """The numbers gates may name: ``eval/metrics.json`` and every audit's numeric summary as ``audits.<name>.*``."""
    run_dir = Path(run_dir)
    values = dict(read_json(run_dir / "eval/metrics.json")) if (run_dir / "eval/metrics.json").is_file() else {}
    for path in sorted((run_dir / "audits").glob("*.json")):
        if path.stem == "summary":
            continue
        audit = read_json(path)
        if not isinstance(audit, dict):
            continue
        values[f"audits.{path.stem}.passed"] = 0.0 if audit.get("status") == "fail" else 1.0
        _flatten_numbers(audit.get("summary"), f"audits.{path.stem}", values)
    return values


def _flatten_numbers(obj: Any, prefix: str, out: dict[str, float]) -> None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            _flatten_numbers(v, f"{prefix}.{k}", out)
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        out[prefix] = float(obj)


def _unknown(keys: list[str], values: dict[str, float], where: str, what: str) -> None:
    missing = [k for k in keys if k not in values]
    if missing:
        valid = sorted(k for k in values if not k.endswith((".ci_low", ".ci_high", ".n")))
        lines = [f"  - {what} {k!r} is not in {where}.{did_you_mean(k, list(values))}" for k in missing]
        raise ConfigError(f"{what}s name unknown metrics:\n" + "\n".join(lines)
                          + f"\nValid metric keys: {', '.join(valid)}")


def regression_targets(cfg: Config) -> dict[str, tuple[str, float]]:
    """Metric → (direction, tolerance) compared with a baseline: the gated metrics (direction from the gate) and the
    ``regression.metrics`` entries (which win where both name a metric)."""
    reg = cfg.regression
    out: dict[str, tuple[str, float]] = {}
    if reg.from_gates:
        for g in cfg.gates:
            if (g.min is None) == (g.max is None):
                continue  # a band (min and max) says nothing about which way is better
            direction = "higher_is_better" if g.min is not None else "lower_is_better"
            out[g.metric] = (direction, reg.tolerances.get(g.metric, reg.default_tolerance))
    for metric, m in reg.metrics.items():
        tol = m.tolerance if m.tolerance is not None else reg.tolerances.get(metric, reg.default_tolerance)
        out[metric] = (m.direction, tol)
    return out


def compare_with_baseline(current: dict[str, float], baseline: dict[str, float],
                          targets: dict[str, tuple[str, float]]) -> list[dict]:
    """One result per target metric: the change against the baseline and whether it is a regression."""
    results = []
    for metric, (direction, tol) in targets.items():
        now, before = current[metric], baseline[metric]
        change = now - before
        worse = -change if direction == "higher_is_better" else change
        passed = worse <= tol + 1e-12
        better = "higher" if direction == "higher_is_better" else "lower"
        verdict = "OK" if passed else "REGRESSED"
        results.append({"metric": metric, "direction": direction, "tolerance": tol, "value": now,
                        "baseline": before, "change": change, "passed": passed,
                        "message": f"{verdict} {metric} = {now:.3f} vs baseline {before:.3f} ({change:+.3f}; "
                                   f"{better} is better, tolerance {tol:.3f})"})
    return results


def check_gates(cfg: Config, rf: RunFolder, baseline: Path | None = None,
                gates: list[Gate] | None = None) -> dict:
    """Evaluate the gates (``gates`` or the config's) and, with ``baseline``, the regression checks; write
    ``gates.json``, ``gates.junit.xml`` and ``gates.md``. Unknown keys are a config error naming the valid keys."""
    gates, values, base = preflight_gates(cfg, rf, baseline, gates)
    results = [evaluate_gate(g, values) for g in gates]
    out: dict = {"passed": all(r["passed"] for r in results), "results": results}
    if base is not None:
        base_dir, base_values, targets = base
        regressions = compare_with_baseline(values, base_values, targets)
        out["baseline"] = {"run_dir": str(base_dir.resolve()), "run_id": _run_id(base_dir),
                           "results": regressions, "passed": all(r["passed"] for r in regressions)}
        out["passed"] = out["passed"] and out["baseline"]["passed"]
    write_json(rf / "gates.json", out)
    atomic_write_text(rf / "gates.junit.xml", junit_xml(out, _run_id(rf.path)))
    atomic_write_text(rf / "gates.md", markdown_summary(out, _run_id(rf.path)))
    rf.record_artefacts("gates.json", "gates.junit.xml", "gates.md")
    return out


def preflight_gates(cfg: Config, rf: RunFolder, baseline: Path | None = None, gates: list[Gate] | None = None):
    """Everything ``check_gates`` needs, checked without writing: the run's metrics exist, every gated and
    regression key is known (in this run and the baseline), the baseline is a finished run. The ``gate`` command
    calls it before the run folder is touched, so a typo in a gates file leaves a finished run's manifest as it was.
    Returns (gates, this run's values, (baseline folder, its values, regression targets) or None)."""
    rf.require("eval/metrics.json", "eval")
    gates = cfg.gates if gates is None else gates
    values = gate_values(rf.path)
    _unknown([_key(g) for g in gates], values, str(rf / "eval/metrics.json") + " or audits/*.json", "gate")
    if baseline is None:
        return gates, values, None
    base_dir = Path(baseline)
    if not (base_dir / "eval/metrics.json").is_file():
        raise RunFolderError(f"--baseline {base_dir}: no eval/metrics.json there — not a finished run folder")
    base_values = gate_values(base_dir)
    targets = regression_targets(cfg.model_copy(update={"gates": gates}))
    _unknown(list(targets), values, str(rf / "eval/metrics.json"), "regression metric")
    _unknown(list(targets), base_values, str(base_dir / "eval/metrics.json"), "regression metric")
    return gates, values, (base_dir, base_values, targets)


def failed_names(result: dict) -> list[str]:
    """What failed, for the manifest and the CLI: gated keys, and "<metric> (regressed)" for baseline comparisons."""
    names = [_key(Gate(metric=r["metric"], statistic=r["statistic"], min=r["min"], max=r["max"]))
             for r in result["results"] if not r["passed"]]
    return names + [f"{r['metric']} (regressed)" for r in (result.get("baseline") or {}).get("results", [])
                    if not r["passed"]]


def _run_id(run_dir: Path) -> str:
    manifest = Path(run_dir) / "manifest.json"
    if manifest.is_file():
        m = read_json(manifest)
        if isinstance(m, dict) and m.get("run_id"):
            return str(m["run_id"])
    return Path(run_dir).name


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
