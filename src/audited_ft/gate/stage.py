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

from audited_ft.config import Config, Gate
from audited_ft.errors import ConfigError, RunFolderError
from audited_ft.gate.outputs import junit_xml, markdown_summary
from audited_ft.registry import did_you_mean
from audited_ft.run.folder import RunFolder, atomic_write_text, write_json
from audited_ft.run.keys import MetricKey, bound_direction
from audited_ft.run.view import RunView


def gate_key(gate: Gate) -> str:
    """The key a gate compares: its metric, or one end of that metric's interval (``statistic``)."""
    if gate.statistic == "point":
        return gate.metric
    return str(MetricKey.parse(gate.metric).to(bound=gate.statistic))


def evaluate_gate(gate: Gate, metrics: dict[str, float]) -> dict:
    key = gate_key(gate)
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


def gate_values(run: RunView) -> dict[str, float]:
    """The numbers gates may name: ``eval/metrics.json`` and every audit's numeric summary as ``audits.<name>.*``."""
    values = dict(run.require("eval/metrics.json", "eval")) if run.exists("eval/metrics.json") else {}
    folder = run.path / "audits"
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        if path.stem == "summary":
            continue
        audit = run.require(f"audits/{path.name}", "audit")
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
    """Metric → (direction, tolerance) compared with a baseline: the gated metrics and the ``regression.metrics``
    entries (which win where both name a metric). A gated metric's direction is the one its probe declares, else the
    one its gate implies (only ``min``: higher is better; only ``max``: lower); a neutral metric, or a band on an
    undeclared one, is not compared."""
    from audited_ft.eval.probes import declared_direction

    reg = cfg.regression
    out: dict[str, tuple[str, float]] = {}
    if reg.from_gates:
        for g in cfg.gates:
            key = MetricKey.parse(g.metric)
            declared = declared_direction(key.stem) if key.side in ("base", "adapter", "delta") else None
            way = {"higher_is_better": "higher", "higher_is_worse": "lower"}.get(declared or "") if declared \
                else bound_direction(g.min, g.max)
            if way is None:
                continue  # neutral, or a band (min and max) that says nothing about which way is better
            out[g.metric] = (f"{way}_is_better", reg.tolerances.get(g.metric, reg.default_tolerance))
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
    run = RunView(rf.path)
    run.require("eval/metrics.json", "eval")
    gates = cfg.gates if gates is None else gates
    values = gate_values(run)
    _unknown([gate_key(g) for g in gates], values, str(rf / "eval/metrics.json") + " or audits/*.json", "gate")
    if baseline is None:
        return gates, values, None
    base_dir = Path(baseline)
    if not (base_dir / "eval/metrics.json").is_file():
        raise RunFolderError(f"--baseline {base_dir}: no eval/metrics.json there — not a finished run folder")
    base_values = gate_values(RunView(base_dir, manifest_required=False))
    targets = regression_targets(cfg.model_copy(update={"gates": gates}))
    _unknown(list(targets), values, str(rf / "eval/metrics.json"), "regression metric")
    _unknown(list(targets), base_values, str(base_dir / "eval/metrics.json"), "regression metric")
    return gates, values, (base_dir, base_values, targets)


def failed_names(result: dict) -> list[str]:
    """What failed, for the manifest and the CLI: gated keys, and "<metric> (regressed)" for baseline comparisons."""
    names = [gate_key(Gate(metric=r["metric"], statistic=r["statistic"], min=r["min"], max=r["max"]))
             for r in result["results"] if not r["passed"]]
    return names + [f"{r['metric']} (regressed)" for r in (result.get("baseline") or {}).get("results", [])
                    if not r["passed"]]


def _run_id(run_dir: Path) -> str:
    return RunView(run_dir, manifest_required=False).run_id


def config_errors(raw: dict) -> list[str]:
    """The gate stage's part of config validation: a gate whose bound says the opposite of the direction the probe
    declares for its metric (a ``min`` on a metric where higher is worse, a ``max`` where higher is better) is an
    error, because it would pass the harm it exists to catch. Bands (both bounds) and neutral metrics are left alone."""
    from audited_ft.eval.probes import declared_metric

    errors = []
    gates = raw.get("gates")
    for i, g in enumerate(gates if isinstance(gates, list) else []):
        if not isinstance(g, dict) or not isinstance(g.get("metric"), str):
            continue  # the Config model reports it
        key = MetricKey.parse(g["metric"])
        spec = declared_metric(key.stem) if key.side in ("base", "adapter", "delta") else None
        implied = bound_direction(g.get("min"), g.get("max"))
        declared = {"higher_is_better": "higher", "higher_is_worse": "lower"}.get(spec.direction) if spec else None
        if declared and implied and implied != declared:
            bound = "min" if implied == "higher" else "max"
            errors.append(f"gates.{i}: '{bound}' on {g['metric']} treats {implied} as better, but its probe declares "
                          f"{spec.direction.replace('_', ' ')} ({spec.unit}); a gate that passes the harm it watches "
                          f"is a mistake — use '{'max' if bound == 'min' else 'min'}'")
    return errors
