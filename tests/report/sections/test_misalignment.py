"""The Misalignment section's safety-breadth panel: refusal per set and per harm category, from literal metrics and
rendered in a full report."""

from __future__ import annotations

import json
from pathlib import Path

from audited_ft.report.sections.misalignment import safety_breadth
from tests.report.sections.test_discrimination import _metric


def _breadth_metrics() -> dict:
    m = {"eval.confidence": 0.95}
    m.update(_metric("safety.refusal.rate", 0.8, 0.6, (-0.3, -0.1), n=120))
    m.update(_metric("safety.refusal.advbench.rate", 0.9, 0.85, (-0.12, 0.02), n=40))
    m.update(_metric("safety.refusal.simple_safety_tests.rate", 0.8, 0.45, (-0.5, -0.2), n=40))
    m.update(_metric("safety.refusal.simple_safety_tests.scams_and_fraud.rate", 0.9, 0.1, (-1.0, -0.5), n=10))
    m.update(_metric("safety.refusal.simple_safety_tests.child_safety.rate", 0.9, 0.6, (-0.6, -0.01), n=10))
    m["safety.refusal.simple_safety_tests.scams_and_fraud.rate.delta.q_value"] = 0.01
    m["safety.refusal.simple_safety_tests.child_safety.rate.delta.q_value"] = 0.2  # beyond its CI, not after BH
    m.update(_metric("safety.refusal.over_refusal", 0.1, 0.1, (-0.05, 0.05), n=40))
    m.update(_metric("safety.refusal.benign.homonyms.over_refusal", 0.0, 0.0, (0.0, 0.0), n=20))
    return m


def test_panels_sentences_and_the_adjustment():
    view = safety_breadth(_breadth_metrics(), "95% CI")
    titles = [p["title"] for p in view["panels"]]
    assert titles == ["Refusal of harmful requests, per set", "Refusal of harmful requests, per harm category",
                      "Refusal of harmless requests (over-refusal), per XSTest type"]
    per_set, per_cat, _ = view["panels"]
    assert per_set["headline"][0]["group"] == "all harmful requests"
    assert [r["group"] for r in per_set["rows"]] == ["SimpleSafetyTests", "AdvBench"]  # largest change first
    assert "the adapter refuses fewer requests of SimpleSafetyTests: -0.350 [-0.500, -0.200]" in per_set["sentence"]
    rows = {r["group"]: r for r in per_cat["rows"]}
    assert rows["SimpleSafetyTests: scams and fraud"]["direction"] == -1
    assert rows["SimpleSafetyTests: child safety"]["direction"] == 0
    assert rows["SimpleSafetyTests: child safety"]["not_significant_after_adjustment"]
    assert "scams and fraud" in per_cat["sentence"] and "child safety" not in per_cat["sentence"]
    assert "did not survive the Benjamini–Hochberg adjustment" in per_cat["sentence"]


def test_one_set_without_categories_has_no_panel():
    m = _metric("safety.refusal.rate", 0.8, 0.6, (-0.3, -0.1), n=120)
    assert safety_breadth(m, "95% CI") is None


def test_rendered_in_the_misalignment_section(tmp_path: Path):
    from audited_ft.report.stage import render_report
    from tests.report.test_report import _section, make_run

    run = make_run(tmp_path)
    path = run / "eval" / "metrics.json"
    metrics = json.loads(path.read_text(encoding="utf-8"))
    metrics.update(_breadth_metrics())
    metrics["safety.refusal.simple_safety_tests.<b>x</b>.rate.base"] = "oops"  # an edited file: shown as —
    path.write_text(json.dumps(metrics), encoding="utf-8")
    html = _section(render_report(run).read_text(encoding="utf-8"), "Misalignment")
    assert "Safety breadth: refusal per set and per harm category" in html
    table = html[html.index("Refusal of harmful requests, per harm category"):]
    assert "SimpleSafetyTests: scams and fraud" in table and "not after adjustment" in table
    assert "<b>x</b>" not in html
    # the per-category rows are not repeated in the table of all safety metrics
    assert html.count("simple_safety_tests.scams_and_fraud.rate") == 0


def test_no_breadth_without_refusal_metrics():
    assert safety_breadth({}, "95% CI") is None
