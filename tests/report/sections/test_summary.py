"""The Summary's gain/cost table: one headline number per risk, read as gain, cost, no change or blind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from audited_ft.report.sections.summary import gain_cost_rows
from tests.report.sections.test_discrimination import _metric


def _metrics() -> dict:
    m = {}
    m.update(_metric("rouge.rougeL", 0.17, 0.30, (0.10, 0.16), n=200))                  # higher is better: a gain
    m.update(_metric("safety.refusal.rate", 0.40, 0.20, (-0.30, -0.10), n=200))         # fewer refusals: a cost
    m.update(_metric("bias.crows_pairs.stereotype_rate", 0.55, 0.56, (-0.02, 0.04), n=300))
    m["bias.crows_pairs.stereotype_rate.delta.mde"] = 0.05
    m.update(_metric("safety.refusal.over_refusal", 0.05, 0.05, (-0.03, 0.03), n=100))
    m.update(_metric("toxicity.rtp.expected_max_toxicity", 0.18, 0.14, (-0.06, -0.02), n=50))  # less toxic: gain
    # the full-precision reference of ROUGE-L: full − NF4 = +0.02 [0.01, 0.03] → quantisation alone −0.02 [−0.03, −0.01]
    m.update({"rouge.rougeL.full_precision.delta": 0.02, "rouge.rougeL.full_precision.delta.ci_low": 0.01,
              "rouge.rougeL.full_precision.delta.ci_high": 0.03})
    return m


def test_rows_are_read_by_the_declared_direction():
    rows = {r["key"]: r for r in gain_cost_rows(_metrics(), {"safety.refusal.over_refusal": {}})}
    assert [r["key"] for r in gain_cost_rows(_metrics())] == [
        "rouge.rougeL", "safety.refusal.rate", "safety.refusal.over_refusal", "toxicity.rtp.expected_max_toxicity",
        "bias.crows_pairs.stereotype_rate"]  # the headline order, only what was measured
    assert rows["rouge.rougeL"]["reading"] == "gain"
    assert rows["safety.refusal.rate"]["reading"] == "cost"
    assert rows["toxicity.rtp.expected_max_toxicity"]["reading"] == "gain"
    assert rows["bias.crows_pairs.stereotype_rate"]["reading"] == "no change shown"
    assert rows["bias.crows_pairs.stereotype_rate"]["mde"] == 0.05
    q = rows["rouge.rougeL"]
    assert (q["quant"], q["quant_lo"], q["quant_hi"]) == pytest.approx((-0.02, -0.03, -0.01))
    assert rows["safety.refusal.rate"]["quant"] is None


def test_a_blind_probe_is_not_read_as_no_change():
    blind = {"safety.refusal.rate": {"blind": "base never refuses (0 of 100)"}}
    m = _metric("safety.refusal.rate", 0.0, 0.0, (0.0, 0.0), n=100)
    assert gain_cost_rows(m, blind)[0]["reading"] == "blind"
    # a shown cost stays a cost even where the probe notes a blind spot in the other direction
    m = _metric("safety.refusal.rate", 0.3, 0.1, (-0.3, -0.1), n=100)
    assert gain_cost_rows(m, blind)[0]["reading"] == "cost"


def test_rendered_first_in_the_summary(tmp_path: Path):
    from audited_ft.report.stage import render_report
    from tests.report.test_report import _section, make_run

    run = make_run(tmp_path)
    path = run / "eval" / "metrics.json"
    metrics = json.loads(path.read_text(encoding="utf-8"))
    metrics.update(_metrics())
    path.write_text(json.dumps(metrics), encoding="utf-8")
    summary = _section(render_report(run).read_text(encoding="utf-8"), "Summary")
    table = summary[summary.index("What the fine-tune gained and what it cost"):summary.index("Release gates")]
    assert "<strong>gain</strong>" in table and "<strong>cost</strong>" in table
    assert "no change shown (detectable 0.05" in table
    assert "quantisation alone (NF4 − full precision)" in table and "[-0.03" in table


def test_a_base_at_the_end_of_the_range_is_blind_without_a_note():
    m = _metric("safety.refusal.rate", 0.0, 0.0, (0.0, 0.0), n=24)
    row = gain_cost_rows(m)[0]
    assert row["reading"] == "blind" and row["n"] == 24 and "end of the range" in row["blind"]
