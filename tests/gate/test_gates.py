import pytest

from audited_ft.config import Gate
from audited_ft.errors import ConfigError
from audited_ft.gate.stage import check_gates, evaluate_gate
from audited_ft.pipeline import load_config
from audited_ft.run.folder import RunFolder, read_json, write_json

METRICS = {"rouge.rougeL.delta": 0.10, "rouge.rougeL.delta.ci_low": -0.01, "rouge.rougeL.delta.ci_high": 0.2,
           "rouge.rougeL.adapter": 0.4}


@pytest.mark.parametrize("gate,passed", [
    (Gate(metric="rouge.rougeL.delta", min=0.0), True),
    (Gate(metric="rouge.rougeL.delta", min=0.0, statistic="ci_low"), False),
    (Gate(metric="rouge.rougeL.delta", max=0.15, statistic="ci_high"), False),
    (Gate(metric="rouge.rougeL.adapter", min=0.3, max=0.5), True),
    (Gate(metric="rouge.rougeL.adapter", min=0.4), True),      # bounds are inclusive
    (Gate(metric="rouge.rougeL.adapter", max=0.39), False),
])
def test_gate_arithmetic(gate, passed):
    r = evaluate_gate(gate, METRICS)
    assert r["passed"] is passed
    assert r["message"].startswith("PASS" if passed else "FAIL")


def _run(tmp_path, gates_yaml):
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text("data: {source: a.jsonl}\n" + gates_yaml)
    rf = RunFolder.create(tmp_path / "runs", "r1")
    write_json(rf / "eval/metrics.json", METRICS)
    return load_config(cfg_path), rf


def test_check_gates_writes_gates_json(tmp_path):
    cfg, rf = _run(tmp_path, "gates:\n  - {metric: rouge.rougeL.delta, min: 0}\n"
                             "  - {metric: rouge.rougeL.delta, statistic: ci_low, min: 0}\n")
    out = check_gates(cfg, rf)
    assert out["passed"] is False
    assert read_json(rf / "gates.json") == out
    assert [r["passed"] for r in out["results"]] == [True, False]


def test_unknown_metric_lists_valid_keys(tmp_path):
    cfg, rf = _run(tmp_path, "gates:\n  - {metric: rouge.rougel.delta, min: 0}\n")
    with pytest.raises(ConfigError) as exc:
        check_gates(cfg, rf)
    assert "Did you mean 'rouge.rougeL.delta'" in str(exc.value)
    assert "Valid metric keys" in str(exc.value)


def test_audit_numbers_can_be_gated(tmp_path):
    cfg, rf = _run(tmp_path, "gates:\n  - {metric: audits.leakage.totals.contamination, max: 0}\n"
                             "  - {metric: audits.pii.passed, min: 1}\n")
    write_json(rf / "audits/leakage.json", {"name": "leakage", "status": "fail",
                                            "summary": {"totals": {"contamination": 3, "exact_cross_split": 0}}})
    write_json(rf / "audits/pii.json", {"name": "pii", "status": "warn", "summary": {"findings_total": 2}})
    out = check_gates(cfg, rf)
    assert [r["passed"] for r in out["results"]] == [False, True]
    assert out["results"][0]["message"] == "FAIL audits.leakage.totals.contamination = 3.000 > max 0.000"


def test_regression_direction_and_tolerance():
    from audited_ft.gate.stage import compare_with_baseline, regression_targets

    cfg = load_config_text("gates:\n  - {metric: rouge.rougeL.adapter, min: 0.2}\n"
                           "  - {metric: bias.rate.delta, statistic: ci_low, max: 0}\n"
                           "  - {metric: band, min: 0, max: 1}\n"
                           "regression:\n  default_tolerance: 0.02\n  tolerances: {bias.rate.delta: 0.1}\n"
                           "  metrics: {toxicity.p: {direction: lower_is_better}}\n")
    targets = regression_targets(cfg)
    assert targets == {"rouge.rougeL.adapter": ("higher_is_better", 0.02), "bias.rate.delta": ("lower_is_better", 0.1),
                       "toxicity.p": ("lower_is_better", 0.02)}  # a band says nothing about direction
    base = {"rouge.rougeL.adapter": 0.40, "bias.rate.delta": 0.00, "toxicity.p": 0.10}
    now = {"rouge.rougeL.adapter": 0.37, "bias.rate.delta": 0.09, "toxicity.p": 0.115}
    res = {r["metric"]: r for r in compare_with_baseline(now, base, targets)}
    assert res["rouge.rougeL.adapter"]["passed"] is False    # 0.03 worse, tolerance 0.02
    assert res["bias.rate.delta"]["passed"] is True          # 0.09 worse, its own tolerance 0.1
    assert res["toxicity.p"]["passed"] is True               # 0.015 worse, within 0.02
    assert res["rouge.rougeL.adapter"]["message"] == (
        "REGRESSED rouge.rougeL.adapter = 0.370 vs baseline 0.400 (-0.030; higher is better, tolerance 0.020)")
    res = compare_with_baseline({**now, "rouge.rougeL.adapter": 0.9}, base, targets)
    assert all(r["passed"] for r in res), "an improvement is never a regression"


def test_junit_and_markdown_outputs(tmp_path):
    from xml.etree import ElementTree as ET

    cfg, rf = _run(tmp_path, "gates:\n  - {metric: rouge.rougeL.delta, min: 0, reason: 'must <beat> | base'}\n"
                             "  - {metric: rouge.rougeL.delta, statistic: ci_low, min: 0}\n")
    base = RunFolder.create(tmp_path / "runs", "base")
    write_json(base / "eval/metrics.json", {**METRICS, "rouge.rougeL.delta": 0.2})
    out = check_gates(cfg, rf, baseline=base.path)
    assert out["passed"] is False and out["baseline"]["results"][0]["passed"] is False  # 0.10 vs 0.20
    suite = ET.parse(rf / "gates.junit.xml").getroot().find("testsuite")
    cases = suite.findall("testcase")
    assert suite.get("tests") == "3" and suite.get("failures") == "2" and len(cases) == 3
    assert [c.find("failure") is not None for c in cases] == [False, True, True]
    assert cases[2].get("name") == "rouge.rougeL.delta vs baseline"
    md = (rf / "gates.md").read_text()
    assert md.startswith("## audited_ft: **FAIL**")
    assert "must &lt;beat> \\| base" in md and "❌ REGRESSED" in md and "`rouge.rougeL.delta.ci_low`" in md


def test_gates_file_is_checked(tmp_path):
    from audited_ft.pipeline import load_gates_file

    good = tmp_path / "g.yaml"
    good.write_text("- {metric: rouge.rougeL.adapter, min: 0.3}\n")
    assert load_gates_file(good) == {"gates": [{"metric": "rouge.rougeL.adapter", "min": 0.3}]}
    bad = tmp_path / "b.yaml"
    bad.write_text("gates:\n  - {metric: x, mni: 0.3}\n")
    with pytest.raises(ConfigError, match="gates.0.mni: unknown key"):
        load_gates_file(bad)
    bad.write_text("thresholds: []\n")
    with pytest.raises(ConfigError, match="expected a list of gates"):
        load_gates_file(bad)


def load_config_text(text: str):
    import yaml

    from audited_ft.config import validate_config

    return validate_config({"data": {"source": "a.jsonl"}, **yaml.safe_load(text)})


def test_the_shipped_ci_workflow_runs_the_gate_and_publishes_its_outputs():
    import yaml

    from tests.conftest import REPO

    wf = yaml.safe_load((REPO / ".github/workflows/audit.yml").read_text())
    steps = wf["jobs"]["audit"]["steps"]
    script = "\n".join(s.get("run", "") for s in steps)
    assert "make setup" in script and "audited-ft" in script and "--baseline baseline" in script
    uploaded = "\n".join(s.get("with", {}).get("path", "") for s in steps if "upload-artifact" in s.get("uses", ""))
    for name in ("report.html", "gates.junit.xml", "gates.md", "eval/metrics.json"):
        assert name in uploaded, name
    assert steps[-1]["if"] == "steps.run.outputs.exit_code != '0'" and "exit 1" in steps[-1]["run"]


def test_a_gate_whose_bound_contradicts_the_declared_direction_is_a_config_error(tmp_path):
    """A max on the refusal rate (higher is better) or a min on toxicity (higher is worse) would pass the harm the
    gate watches: refused with the reason; bands and neutral metrics are left alone."""
    from audited_ft.errors import ConfigError
    from audited_ft.pipeline import load_config

    path = tmp_path / "c.yaml"
    path.write_text("data: {source: a.jsonl}\ngates:\n"
                    "  - {metric: safety.refusal.rate.delta, statistic: ci_low, max: 0.0}\n"
                    "  - {metric: toxicity.rtp.expected_max_toxicity.delta, min: -0.1}\n"
                    "  - {metric: rouge.rougeL.adapter, min: 0.2}\n"
                    "  - {metric: bias.crows_pairs.stereotype_rate.delta, min: -0.1, max: 0.1}\n"
                    "  - {metric: bias.bold.gender.actors.sentiment.adapter, min: 0.0}\n")
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    lines = [line for line in str(exc.value).splitlines() if line.startswith("  - ")]
    assert len(lines) == 2
    assert "gates.0: 'max' on safety.refusal.rate.delta treats lower as better" in lines[0]
    assert "higher is better" in lines[0] and "use 'min'" in lines[0]
    assert "gates.1: 'min' on toxicity.rtp.expected_max_toxicity.delta" in lines[1] and "use 'max'" in lines[1]
