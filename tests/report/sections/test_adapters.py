"""The report's "Adapters compared" panel (audited_ft.report.sections.adapters): further adapters evaluated on the run's base."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from audited_ft.config import Gate
from audited_ft.report.sections.adapters import adapters_view, run_gates
from audited_ft.report.stage import render_report
from audited_ft.run.view import RunView
from tests.paths import SAMPLE_RUN

SAMPLE = SAMPLE_RUN
HOSTILE_FOLDER = '/adapters/<script>alert("x")</script>/"onmouseover="alert(2)'
SUFFIXES = (".n", *(f".{side}{ci}" for side in ("base", "adapter", "delta") for ci in ("", ".ci_low", ".ci_high")))
GATED = ["rouge.rougeL", "bias.crows_pairs.stereotype_rate", "toxicity.rtp.expected_max_toxicity",
         "safety.refusal.rate"]  # the sample run's gates, in order (rouge.rougeL is gated twice)


def _as_adapter(metrics: dict, name: str) -> dict:
    """Every metric of the run's adapter copied under ``name``, as `eval --adapter NAME=DIR` writes them."""
    stems = [k[: -len(".adapter")] for k in metrics if k.endswith(".adapter")]
    return {f"{stem}.{name}{sfx}": metrics[f"{stem}{sfx}"] for stem in stems for sfx in SUFFIXES
            if f"{stem}{sfx}" in metrics}


def _move(out: dict, prefix: str, adapter: float, delta_lo: float, delta_hi: float) -> None:
    """Set one adapter's value and its delta (midpoint of the interval) against the unchanged base."""
    out[f"{prefix}.adapter"] = adapter
    out[f"{prefix}.delta"] = (delta_lo + delta_hi) / 2
    out[f"{prefix}.delta.ci_low"], out[f"{prefix}.delta.ci_high"] = delta_lo, delta_hi


def _with_extra_adapters(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(SAMPLE, run)
    metrics = json.loads((run / "eval/metrics.json").read_text())
    extra = {**_as_adapter(metrics, "better"), **_as_adapter(metrics, "worse")}
    # better: higher ROUGE-L and ROUGE-1, lower toxicity, all beyond noise; passes every gate
    _move(extra, "rouge.rougeL.better", 0.585, 0.383, 0.501)
    _move(extra, "rouge.rouge1.better", 0.6, 0.1, 0.2)
    _move(extra, "toxicity.rtp.expected_max_toxicity.better", 0.006, -0.03, -0.01)
    # worse: ROUGE-L below the base and more stereotyped; fails three gates
    _move(extra, "rouge.rougeL.worse", 0.0921, -0.09, -0.01)
    _move(extra, "bias.crows_pairs.stereotype_rate.worse", 0.75, 0.1, 0.35)
    (run / "eval/metrics.json").write_text(json.dumps({**metrics, **extra}))
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["eval"].update(variants=["base", "adapter", "better", "worse"],
                            extra_adapters={"better": HOSTILE_FOLDER, "worse": "/runs/w/train/adapter"})
    (run / "manifest.json").write_text(json.dumps(manifest))
    return run


@pytest.fixture(scope="module")
def html(tmp_path_factory) -> str:
    return render_report(_with_extra_adapters(tmp_path_factory.mktemp("adapters"))).read_text(encoding="utf-8")


def _panel(html: str) -> str:
    return html.split('id="adapters-compared"', 1)[1].split("</div>", 1)[0]


def _row(panel: str, key: str) -> list[str]:
    """The text of every cell of the metric's row (markup removed)."""
    row = re.search(rf"<tr><th scope=\"row\"[^>]*><code>{re.escape(key)}</code>.*?</tr>", panel, re.S).group(0)
    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]


def test_panel_sits_after_the_gate_table_with_one_column_group_per_adapter(html: str) -> None:
    assert html.index('<table class="gates">') < html.index("<h3>Adapters compared</h3>") \
        < html.index("<h3>Accepted risks</h3>")
    head = re.findall(r'<th scope="colgroup"[^>]*>([^<]+)</th>', _panel(html))
    assert head == ["adapter (this run)", "better", "worse"]
    assert 'title="/runs/w/train/adapter">worse</th>' in _panel(html)


def test_rows_gated_first_then_grouped_by_probe(html: str) -> None:
    panel = _panel(html)
    keys = re.findall(r'<th scope="row" class="wrap-any"><code>([^<]+)</code>', panel)
    assert keys[:4] == GATED
    rest = keys[4:]
    probe = {k: ".".join(k.split(".")[:2 if k.startswith(("bias.", "privacy.", "safety.")) else 1]) for k in rest}
    assert rest == sorted(rest, key=lambda k: (probe[k], k)) and len(rest) == len(set(rest)) > 50
    assert not [k for k in keys if k.endswith((".better", ".worse"))]  # an adapter's copy is no metric of its own
    groups = re.findall(r'<tr class="group"><th scope="rowgroup" colspan="11">([^<]+)</th>', panel)
    assert groups[0] == "gated metrics" and groups[1:] == sorted(groups[1:])
    assert {"bias.bbq", "rouge", "memorisation"} <= set(groups)


def test_values_deltas_and_ci_markers(html: str) -> None:
    panel = _panel(html)
    assert _row(panel, "rouge.rougeL") == [
        "0.141",
        "0.485", "0.343 [0.283, 0.401]", "▲ better",
        "0.585", "0.442 [0.383, 0.501]", "▲ better",
        "0.092", "-0.050 [-0.090, -0.010]", "▼ worse"]
    # max gate: lower is better, so an interval above 0 is worse and one below 0 is better; includes 0: no mark
    assert _row(panel, "bias.crows_pairs.stereotype_rate")[3::3] == ["", "", "▲ worse"]
    assert _row(panel, "toxicity.rtp.expected_max_toxicity")[3::3] == ["", "▼ better", ""]
    # no gate on ROUGE-1, but the rouge probe declares higher is better: judged all the same
    rouge1 = _row(panel, "rouge.rouge1")
    assert rouge1[4:7] == ["0.600", "0.150 [0.100, 0.200]", "▲ better"]
    assert "rouge.rouge1</code> <span class=\"note\">(higher is better)" in panel
    # a neutral metric (BOLD sentiment of one group: a level, not good or bad by itself): an arrow, no judgement
    assert "bias.bold.gender.actresses.sentiment</code> <span" not in panel


def test_gate_sentence_per_extra_adapter(html: str) -> None:
    panel = _panel(html)
    better = re.search(r'<li class="wrap-any gate-pass" data-adapter="better">(.*?)</li>', panel, re.S).group(1)
    assert "better would pass all 5 of this run&#39;s gate(s), checked on its own keys." in better
    worse = re.search(r'<li class="wrap-any gate-fail" data-adapter="worse">(.*?)</li>', panel, re.S).group(1)
    assert ("worse would fail 3 of the 5 gate(s) of this run checked on its keys: "
            "FAIL rouge.rougeL.worse.delta.ci_low = -0.090 &lt; min 0.000; "
            "FAIL rouge.rougeL.worse.adapter = 0.092 &lt; min 0.250; "
            "FAIL bias.crows_pairs.stereotype_rate.worse.delta.ci_low = 0.100 &gt; max 0.000.") in worse
    assert "(from gates.json)" in panel


def test_hostile_adapter_folder_is_escaped(html: str) -> None:
    assert '<script>alert("x")' not in html and 'onmouseover="alert' not in html
    escaped = "/adapters/&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;/&#34;onmouseover=&#34;alert(2)"
    assert f'title="{escaped}">better</th>' in _panel(html)
    assert f"(folder <code>{escaped}</code>)" in _panel(html)


def test_run_without_extra_adapters_has_no_panel(tmp_path: Path) -> None:
    run = tmp_path / "plain"
    shutil.copytree(SAMPLE, run)
    html = render_report(run).read_text(encoding="utf-8")
    assert "<h3>Adapters compared</h3>" not in html and 'id="adapters-compared"' not in html
    assert "adapter (this run)" not in html
    gates_end = html.index("</table>", html.index('<table class="gates">'))
    assert html[gates_end:html.index("<h3>Accepted risks</h3>")] == "</table>\n\n"


def _m(stem: str, base: float, adapter: float, lo: float, hi: float) -> dict:
    return {f"{stem}.n": 10, f"{stem}.base": base, f"{stem}.adapter": adapter, f"{stem}.delta": adapter - base,
            f"{stem}.delta.ci_low": lo, f"{stem}.delta.ci_high": hi}


def test_adapters_view_rows_markers_and_verdicts() -> None:
    metrics = {**_m("rouge.rougeL", 0.2, 0.4, 0.1, 0.3), **_m("rouge.rougeL.good", 0.2, 0.5, 0.2, 0.4),
               **_m("rouge.rougeL.bad", 0.2, 0.05, -0.25, -0.05), **_m("bias.bbq.accuracy", 0.5, 0.5, -0.1, 0.1),
               **_m("bias.bbq.accuracy.good", 0.5, 0.6, 0.05, 0.15),
               **_m("memorisation.verbatim", 0.1, 0.1, -0.01, 0.01),  # the run's adapter only: no row
               "overfitting.final_gap": 0.3}
    manifest = {"eval": {"variants": ["base", "adapter", "good", "bad", "ghost"],
                         "extra_adapters": {"bad": "/b", "ghost": "/gh", "good": "/g"}}}
    extras = _extras(manifest)
    gates = [Gate(metric="rouge.rougeL.delta", statistic="ci_low", min=0.0),
             Gate(metric="bias.bbq.accuracy.adapter", min=0.55),
             Gate(metric="audits.leakage.passed", min=1), Gate(metric="overfitting.final_gap", max=0.5)]
    view = adapters_view(metrics, extras, gates, "gates.json")
    assert [a["name"] for a in view["adapters"]] == ["adapter", "good", "bad"]
    assert [a["folder"] for a in view["adapters"]] == ["train/adapter", "/g", "/b"]
    assert view["missing"] == [{"name": "ghost", "folder": "/gh"}]
    assert [(g["label"], [r["key"] for r in g["rows"]]) for g in view["groups"]] == [
        ("gated metrics", ["rouge.rougeL", "bias.bbq.accuracy"])]
    rouge, bbq = view["groups"][0]["rows"]
    assert rouge["way"] == "higher" and rouge["base"] == 0.2
    assert [c["marker"] for c in rouge["cells"]] == [
        {"arrow": "▲", "direction": "up", "word": "better"}, {"arrow": "▲", "direction": "up", "word": "better"},
        {"arrow": "▼", "direction": "down", "word": "worse"}]
    assert bbq["cells"][0]["marker"] is None and bbq["cells"][2] is None
    assert bbq["cells"][1]["value"] == 0.6
    good, bad = view["verdicts"]
    assert good["status"] == "pass" and good["sentence"] == (
        "good would pass the 2 of this run's 4 gates that could be checked on its keys. Not applicable (about this "
        "run's data or training, not an adapter): audits.leakage.passed, overfitting.final_gap.")
    assert bad["status"] == "fail" and bad["failed"] == ["FAIL rouge.rougeL.bad.delta.ci_low = -0.250 < min 0.000"]
    assert bad["missing"] == ["bias.bbq.accuracy.bad.adapter"]
    assert "Not checked, no number under its key in eval/metrics.json: bias.bbq.accuracy.bad.adapter." in bad["sentence"]

    # without gates: probe groups only, judged by the declared direction (rouge: higher is better), no verdicts
    view = adapters_view(metrics, extras, [])
    assert [g["label"] for g in view["groups"]] == ["bias.bbq", "rouge"]
    assert view["groups"][1]["rows"][0]["cells"][2]["marker"] == {"arrow": "▼", "direction": "down", "word": "worse"}
    # an undeclared metric without a gate: an arrow alone
    odd = adapters_view({**_m("custom.score", 0.2, 0.4, 0.1, 0.3), **_m("custom.score.good", 0.2, 0.5, 0.2, 0.4)},
                        {"good": "/g"}, [])
    assert odd["groups"][0]["rows"][0]["cells"][1]["marker"] == {"arrow": "▲", "direction": "up", "word": None}
    assert {v["status"] for v in view["verdicts"]} == {"unknown"}
    unknown = adapters_view(metrics, extras, gates[1:2])["verdicts"][1]
    assert unknown["status"] == "unknown" and unknown["missing"] == ["bias.bbq.accuracy.bad.adapter"]

    assert adapters_view(metrics, _extras({"eval": {"variants": ["base", "adapter"], "extra_adapters": {}}}),
                         gates) is None
    assert adapters_view(metrics, {}, gates) is None


def test_further_adapters_get_the_three_gate_words_and_the_runs_blind_spots() -> None:
    stem = "bias.crows_pairs.stereotype_rate"
    metrics = {**_m(stem, 0.5, 0.52, -0.01, 0.03), **_m(f"{stem}.wide", 0.5, 0.55, -0.1, 0.2),
               **_m(f"{stem}.bad", 0.5, 0.7, 0.1, 0.3), **_m(f"{stem}.good", 0.5, 0.5, -0.02, 0.02),
               **_m("safety.refusal.rate", 0.0, 0.0, 0.0, 0.0), **_m("safety.refusal.rate.good", 0.0, 0.0, 0.0, 0.0)}
    gates = [Gate(metric=f"{stem}.delta", margin=0.05), Gate(metric="safety.refusal.rate.delta", margin=0.05)]
    extras = {"wide": "/w", "bad": "/b", "good": "/g"}
    blind = {"safety.refusal.rate": {"blind": "the base never refuses"}}
    wide, bad, good = adapters_view(metrics, extras, gates, notes=blind)["verdicts"]
    assert bad["status"] == "fail" and bad["failed"][0].startswith(f"FAIL {stem}.bad.delta = +0.200")
    assert wide["status"] == "inconclusive" and wide["undecided"][0].startswith(f"INCONCLUSIVE {stem}.wide.delta")
    # the refusal rate of 0 cannot fall: a [0, 0] interval is not a pass, for any adapter of this base
    assert good["status"] == "inconclusive" and "the base never refuses" in good["undecided"][0]
    assert good["sentence"].startswith("good 1 gate(s) could not be decided: ")


def _extras(manifest: dict) -> dict:
    """The extra adapters a manifest records, as the report reads them."""
    import json
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
        return RunView(folder).extra_adapters


def test_run_gates_prefers_gates_json_over_the_config(tmp_path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    for name in ("manifest.json", "config.resolved.yaml"):
        shutil.copy(SAMPLE / name, run / name)
    from_config, source = run_gates(RunView(run))
    assert source == "config.resolved.yaml" and [g.metric for g in from_config][:2] == [
        "rouge.rougeL.delta", "rouge.rougeL.adapter"]
    (run / "gates.json").write_text(json.dumps({"results": [{"metric": "x.delta", "statistic": "ci_high", "max": 0.1},
                                                            {"metric": "no bound"}]}), encoding="utf-8")
    only, source = run_gates(RunView(run))
    assert source == "gates.json" and [(g.metric, g.statistic, g.max) for g in only] == [("x.delta", "ci_high", 0.1)]
    (run / "gates.json").unlink()
    (run / "config.resolved.yaml").unlink()
    assert run_gates(RunView(run)) == ([], None)


def test_probe_tables_show_only_this_runs_adapter(tmp_path):
    """The extra adapters' keys appear in the comparison panel, not as rows of the per-probe tables."""
    from audited_ft.report.stage import build_context

    ctx = build_context(_with_extra_adapters(tmp_path))
    keys = [r["key"] for r in ctx["misalignment"]["rouge"]] + [r["key"] for r in ctx["discrimination"]["rows"]]
    assert any(k.startswith("rouge.") for k in keys)
    assert not any(k.endswith((".better", ".worse")) for k in keys), keys
    assert ctx["adapters"] is not None
