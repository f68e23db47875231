"""Gate stage (``check_gates``): thresholds from the config against ``eval/metrics.json``; writes ``gates.json``.

A gate compares the point estimate or one end of its confidence interval (``statistic: point | ci_low | ci_high``) with a
``min`` and/or ``max``. The verdict printed and the exit code come from the same ``passed`` value.
"""

from __future__ import annotations

from audited_ft.config import Config, Gate
from audited_ft.errors import ConfigError
from audited_ft.registry import did_you_mean
from audited_ft.runfolder import RunFolder, read_json, write_json


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
    return {"metric": gate.metric, "statistic": gate.statistic, "min": gate.min, "max": gate.max, "value": value, "passed": passed,
            "reason": gate.reason,
            "message": f"{'PASS' if passed else 'FAIL'} {key} = {value:.3f} {' and '.join(words)}"}


def check_gates(cfg: Config, rf: RunFolder) -> dict:
    """Evaluate every configured gate; unknown metric keys are a config error naming the valid keys."""
    metrics = read_json(rf.require("eval/metrics.json", "eval"))
    unknown = [g for g in cfg.gates if _key(g) not in metrics]
    if unknown:
        valid = sorted(k for k in metrics if not k.endswith((".ci_low", ".ci_high", ".n")))
        lines = [f"  - gates: metric {_key(g)!r} is not in {rf / 'eval/metrics.json'}.{did_you_mean(_key(g), list(metrics))}"
                 for g in unknown]
        raise ConfigError("gates name unknown metrics:\n" + "\n".join(lines) + f"\nValid metric keys: {', '.join(valid)}")
    results = [evaluate_gate(g, metrics) for g in cfg.gates]
    out = {"passed": all(r["passed"] for r in results), "results": results}
    write_json(rf / "gates.json", out)
    rf.record_artefacts("gates.json")
    return out
