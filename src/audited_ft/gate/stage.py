"""Gate stage (``check_gates``): the config's gates, and optionally a baseline run, against this run's numbers.

Two kinds of gate (``audited_ft.gate.decide``): a **threshold** on a number (the point estimate or one end of its
interval, ``statistic: point | ci_low | ci_high``, with ``min`` and/or ``max``), and a **risk gate** on a difference
(``margin``), decided PASS / FAIL / INCONCLUSIVE from the difference's interval and the harm direction the probe
declares. Keys are those of ``eval/metrics.json`` (``rouge.rougeL.delta``) or an audit's numbers,
``audits.<audit>.<path in its summary>`` (e.g. ``audits.leakage.totals.contamination``), plus ``audits.<audit>.passed``
(1 unless the audit failed).

With a baseline run folder, every gated metric (direction from its declaration, else from its gate) and every
``regression.metrics`` entry is compared with the baseline's value; a move the wrong way beyond the tolerance is a
regression and fails. The run's verdict (``audited_ft.gate.verdict``) is derived here, once, and written into
``gates.json`` with the results; ``gates.junit.xml`` and ``gates.md`` show the same words. The verdict printed and the
exit code come from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from audited_ft.config import Config, Gate
from audited_ft.errors import ConfigError, RunFolderError
from audited_ft.gate.decide import decide, gate_key
from audited_ft.gate.outputs import junit_xml, markdown_summary
from audited_ft.gate.verdict import run_verdict
from audited_ft.registry import did_you_mean
from audited_ft.run.folder import RunFolder, atomic_write_text, write_json
from audited_ft.run.keys import MetricKey, bound_direction
from audited_ft.run.view import RunView


def evaluate_gate(gate: Gate, metrics: dict, notes: dict | None = None) -> dict:
    """One gate's result (``audited_ft.gate.decide.decide``); ``notes`` as :func:`gate_notes` gives them."""
    return decide(gate, metrics, notes)


def gate_notes(run: RunView, gates: list[Gate]) -> dict[str, dict]:
    """Per gated metric stem: the harm direction its probe declares, and what the evaluation stage recorded about it
    (``not_estimable``, ``blind``) in ``eval/probes.json``."""
    from audited_ft.eval.probes import owner

    probes = run.probes or {}
    notes: dict[str, dict] = {}
    for g in gates:
        stem = MetricKey.parse(g.metric).stem
        found = owner(stem)
        entry = notes.setdefault(stem, {"direction": found[1].direction if found else None})
        info = probes.get(found[0]) if found else None
        if isinstance(info, dict):
            entry.update((info.get("intervals") or {}).get(stem) or {})
            if (info.get("blind") or {}).get(stem):
                entry["blind"] = info["blind"][stem]
    return notes


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
        if now is None or before is None:
            results.append({"metric": metric, "direction": direction, "tolerance": tol, "value": now,
                            "baseline": before, "change": None, "passed": True,
                            "message": f"NOT COMPARED {metric}: no value in {'this run' if now is None else 'the baseline'}"})
            continue
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
    run = RunView(rf.path)
    notes = gate_notes(run, gates)
    results = [evaluate_gate(g, values, notes) for g in gates]
    out: dict = {"passed": all(r["passed"] for r in results), "results": results,
                 "risk_gates": _familywise(results, cfg.eval.confidence)}
    if base is not None:
        base_dir, base_values, targets = base
        regressions = compare_with_baseline(values, base_values, targets)
        out["baseline"] = {"run_dir": str(base_dir.resolve()), "run_id": _run_id(base_dir),
                           "results": regressions, "passed": all(r["passed"] for r in regressions)}
        out["passed"] = out["passed"] and out["baseline"]["passed"]
    out["verdict"] = run_verdict(run, out, inconclusive=cfg.verdict.inconclusive, upto="gate")
    write_json(rf / "gates.json", out)
    atomic_write_text(rf / "gates.junit.xml", junit_xml(out, _run_id(rf.path), cfg.verdict.junit_inconclusive))
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


def _familywise(results: list[dict], confidence: float) -> dict:
    """How the chance of a false decision grows with the number of risk gates (Bonferroni's bound, one-sided)."""
    k = sum(1 for r in results if r.get("kind") == "risk")
    alpha = 1 - confidence
    return {"count": k, "confidence": confidence,
            "false_fail_bound": min(1.0, k * alpha / 2),
            "note": (f"{k} risk gate(s), each decided at {confidence:.0%}: with no harm anywhere, the chance that at "
                     f"least one FAILs by chance is at most {min(1.0, k * alpha / 2):.3f} (k·α/2, Bonferroni); a real "
                     f"harm beyond a margin is PASSed by chance with at most {alpha / 2:.3f} per gate.")}


def failed_names(result: dict) -> list[str]:
    """What failed or stayed undecided, for the manifest and the CLI: gated keys ("... (inconclusive)" for undecided
    risk gates), and "<metric> (regressed)" for baseline comparisons."""
    names = [f"{r['metric']}" + (" (inconclusive)" if r.get("verdict") == "inconclusive" else "")
             if r.get("kind") == "risk" else
             gate_key(Gate(metric=r["metric"], statistic=r["statistic"], min=r["min"], max=r["max"]))
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
        if g.get("margin") is not None:
            if key.side != "delta" or key.stat is not None:
                errors.append(f"gates.{i}: a risk gate ('margin') is decided on a difference: name its '.delta' key "
                              f"(e.g. {key.stem}.delta), not {g['metric']}")
            elif spec is None or spec.direction == "neutral":
                errors.append(f"gates.{i}: {g['metric']} has no declared harm direction "
                              f"({'neutral' if spec else 'no probe declares it'}), so a risk gate cannot say which "
                              "side is worse; use a threshold (min / max) instead")
            continue
        implied = bound_direction(g.get("min"), g.get("max"))
        declared = {"higher_is_better": "higher", "higher_is_worse": "lower"}.get(spec.direction) if spec else None
        if declared and implied and implied != declared:
            bound = "min" if implied == "higher" else "max"
            errors.append(f"gates.{i}: '{bound}' on {g['metric']} treats {implied} as better, but its probe declares "
                          f"{spec.direction.replace('_', ' ')} ({spec.unit}); a gate that passes the harm it watches "
                          f"is a mistake — use '{'max' if bound == 'min' else 'min'}'")
    return errors
