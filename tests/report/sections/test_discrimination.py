"""The Algorithmic discrimination view: bias charts, per-group tables and sentences, on the sample run and on literals."""

from __future__ import annotations

import json
import re

import pytest
from markupsafe import Markup

from audited_ft.errors import DataError
from audited_ft.report import charts
from audited_ft.report.format import environment as _environment
from audited_ft.report.format import template_dir
from audited_ft.report.sections.discrimination import discrimination_view
from tests.paths import SAMPLE_RUN

SAMPLE = SAMPLE_RUN / "eval"
HOSTILE = "<script>alert(1)</script>$x$"
PARTIAL = "sections/_bias_charts.html.j2"


def _metric(stem: str, base: float, adapter: float, delta_ci: tuple[float, float], n: int = 8) -> dict:
    out = {f"{stem}.n": n, f"{stem}.delta.ci_low": delta_ci[0], f"{stem}.delta.ci_high": delta_ci[1]}
    for side, v in (("base", base), ("adapter", adapter)):
        out.update({f"{stem}.{side}": v, f"{stem}.{side}.ci_low": v - 0.1, f"{stem}.{side}.ci_high": v + 0.1})
    out[f"{stem}.delta"] = adapter - base
    return out


def _render(view: dict) -> str:
    return _environment(template_dir()).get_template(PARTIAL).render(bias_view=view)


@pytest.fixture(scope="module")
def sample() -> tuple[dict, dict]:
    if not (SAMPLE / "metrics.json").is_file():
        pytest.skip(f"sample run folder not found at {SAMPLE}")
    return (json.loads((SAMPLE / "metrics.json").read_text(encoding="utf-8")),
            json.loads((SAMPLE / "probes.json").read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def sample_view(sample) -> dict:
    return discrimination_view(*sample)


def test_sample_run_lists_the_three_probes_with_charts(sample_view):
    assert [p["name"] for p in sample_view["probes"]] == ["crows_pairs", "bbq", "bold"]
    assert sample_view["absent"] == [] and sample_view["problems"] == [] and sample_view["ci_label"] == "95% CI"
    crows = sample_view["probes"][0]
    types = crows["panels"][0]
    assert types["title"] == "Stereotype rate by bias type"
    assert isinstance(types["chart"], Markup) and str(types["chart"]).startswith("<svg")
    for group in ("socioeconomic", "race-color", "sexual-orientation", "all pairs"):
        assert f">{group}<" in str(types["chart"])
    # headline first: the overall rate, then the log-likelihood margin
    assert [r["group"] for r in types["headline"]][0] == "all pairs"
    assert types["headline"][0]["base"] == pytest.approx(0.5277777777777778)
    assert types["headline"][0]["n"] == 36
    # sorted by |delta|: socioeconomic is the only type that changed (-0.25), then ties by name
    assert [r["group"] for r in types["rows"][:3]] == ["socioeconomic", "age", "disability"]
    assert types["rows"][0]["delta"] == pytest.approx(-0.25)
    assert len(types["rows"]) == 9 and crows["not_covered"] == []
    assert crows["data"]["source"] == "embedded" and crows["data"]["n_items"] == 36


def test_sample_run_bbq_and_bold_panels(sample_view):
    bbq, bold = sample_view["probes"][1], sample_view["probes"][2]
    assert [p["title"].split(",")[0] for p in bbq["panels"]] == ["Accuracy", "Accuracy", "Bias score", "Bias score"]
    assert all(p["chart"] is not None for p in bbq["panels"])
    assert bbq["not_covered"] == ["physical_appearance", "race_ethnicity", "race_x_gender", "race_x_ses",
                                  "sexual_orientation"]
    ambig_bias = bbq["panels"][2]
    assert {r["group"] for r in ambig_bias["rows"][:2]} == {"disability_status", "gender_identity"}
    assert "nothing moved beyond its 95% CI" in bbq["sentence"]
    tox = bold["panels"][0]
    assert tox["headline"][0]["group"] == "largest gap, any domain"
    assert tox["headline"][0]["n"] == 31
    assert "gender / actors" in {r["group"] for r in tox["rows"]}
    assert bold["not_covered"] == ["political_ideology", "race"]
    # in the sample run, islam's sentiment rose with a CI of [0.153, 0.473]
    assert "writes more positively about religious_ideology / islam: +0.269 [0.153, 0.473]" in bold["sentence"]


def test_sample_charts_are_deterministic(sample, sample_view):
    metrics, probes = sample
    again = discrimination_view({k: v for k, v in metrics.items() if k.startswith("bias.crows_pairs.")}, probes)
    assert [p["name"] for p in again["probes"]] == ["crows_pairs"]
    assert str(again["probes"][0]["panels"][0]["chart"]) == str(sample_view["probes"][0]["panels"][0]["chart"])


def test_partial_renders_sample_view(sample_view):
    html = _render(sample_view)
    # as the lead includes it: the view under discrimination.bias, no bias_view variable
    env = _environment(template_dir())
    assert env.get_template(PARTIAL).render(discrimination={"bias": sample_view}) == html
    assert html.count("<svg") == 7
    assert "Not covered in this run" in html and "race_x_ses" in html
    assert "<strong>all pairs</strong>" in html
    assert "[-0.750, 0.000]" in html  # socioeconomic delta CI, through ui.ci and the num filter


def test_group_bars_is_deterministic_and_draws_the_reference():
    rows = [{"group": "age", "base": 0.5, "base_lo": 0.2, "base_hi": 0.8, "adapter": 0.7, "adapter_lo": 0.4,
             "adapter_hi": 0.9}, {"group": "religion", "base": 0.3, "adapter": None}]
    first = charts.group_bars(rows, "stereotype rate", "bias-test", 0.5, "no preference (0.5)")
    second = charts.group_bars(rows, "stereotype rate", "bias-test", 0.5, "no preference (0.5)")
    assert first == second
    assert "no preference (0.5)" in first and "no value" in first and 'id="bias-test-' in first
    assert charts.group_bars([{"group": "a", "base": None, "adapter": float("nan")}], "x", "bias-test") is None
    with pytest.raises(ValueError, match="chart name"):
        charts.group_bars(rows, "x", 'bad" onload="x')


def test_hostile_group_name_is_neutralised_in_svg_and_table():
    metrics = _metric(f"bias.crows_pairs.{HOSTILE}.stereotype_rate", 0.4, 0.6, (0.05, 0.35))
    view = discrimination_view(metrics, None)
    panel = view["probes"][0]["panels"][0]
    svg = str(panel["chart"])
    assert "<script" not in svg
    # drawn as one escaped <text> with literal dollars: mathtext would draw glyph paths and keep the text in a comment
    assert re.search(r"<text [^>]*>&lt;script&gt;alert\(1\)&lt;/script&gt;\$x\$</text>", svg)
    html = _render(view)
    assert "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;$x$" in html


def test_sentence_names_the_group_whose_delta_ci_excludes_zero():
    metrics = {**_metric("bias.crows_pairs.religion.stereotype_rate", 0.5, 0.62, (0.03, 0.21)),
               **_metric("bias.crows_pairs.age.stereotype_rate", 0.5, 0.45, (-0.2, 0.1)),
               **_metric("bias.crows_pairs.stereotype_rate", 0.5, 0.53, (-0.01, 0.07), n=16),
               **_metric("bias.bbq.ses.bias_score_ambig", 0.1, -0.2, (-0.5, -0.1))}
    view = discrimination_view(metrics, {})
    crows, bbq = view["probes"]
    assert crows["sentence"] == ("CrowS-Pairs, beyond the 95% CI: the adapter prefers the stereotyped sentence more "
                                 "often for religion: +0.120 [0.030, 0.210].")
    assert crows["moved"] == 1 and crows["data"] is None
    assert "leans less towards the stereotype in ambiguous contexts for ses: -0.300 [-0.500, -0.100]" in bbq["sentence"]
    assert [r["direction"] for r in crows["panels"][0]["rows"]] == [1, 0]
    assert view["absent"] == ["bold"]
    html = _render(view)
    assert "yes, higher" in html and "yes, lower" in html


def test_missing_probes_give_an_empty_view():
    for metrics in (None, {}, {"rouge.rougeL.base": 0.3}):
        view = discrimination_view(metrics, None)
        assert view["probes"] == [] and view["absent"] == ["crows_pairs", "bbq", "bold"]
        assert "<svg" not in _render(view)


def test_bad_values_are_named_not_raised():
    metrics = _metric("bias.crows_pairs.age.stereotype_rate", 0.5, 0.6, (0.0, 0.2))
    metrics["bias.crows_pairs.age.stereotype_rate.adapter"] = "oops"
    view = discrimination_view(metrics, None)
    assert view["problems"] == ["eval/metrics.json: bias.crows_pairs.age.stereotype_rate.adapter = 'oops' "
                                "is not a finite number; shown as —"]
    assert view["probes"][0]["panels"][0]["rows"][0]["adapter"] is None
    assert "is not a finite number" in _render(view)
    with pytest.raises(DataError, match="eval/metrics.json: expected a JSON object"):
        discrimination_view([1, 2], None)


def test_a_group_move_that_does_not_survive_the_adjustment_is_not_named():
    """The issue's BOLD case: n = 4 per group, many groups, a raw interval excluding 0 — chance once adjusted."""
    from audited_ft.report.sections.discrimination import discrimination_view

    metrics = {"eval.confidence": 0.95,
               **_metric("bias.bold.profession.engineers.toxicity", 0.01, 0.06, (0.001, 0.119), n=4),
               "bias.bold.profession.engineers.toxicity.delta.p_value": 0.03,
               "bias.bold.profession.engineers.toxicity.delta.q_value": 0.36,
               **_metric("bias.bold.gender.actresses.toxicity", 0.01, 0.50, (0.30, 0.70), n=40),
               "bias.bold.gender.actresses.toxicity.delta.p_value": 0.0001,
               "bias.bold.gender.actresses.toxicity.delta.q_value": 0.0012}
    view = discrimination_view(metrics, {})
    sentence = next(p for p in view["probes"] if p["name"] == "bold")["sentence"]
    assert "actresses" in sentence and "adjusted q = 0.001" in sentence
    assert "engineers" not in sentence
    assert "1 group-level move(s) beyond the raw interval did not survive the Benjamini–Hochberg adjustment" in sentence
