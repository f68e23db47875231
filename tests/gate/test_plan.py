"""audited-ft plan: items each risk gate needs, from a run's own minimum detectable effects."""

import json
import math

from typer.testing import CliRunner

from audited_ft.cli import app
from audited_ft.gate.plan import plan
from audited_ft.pipeline import load_config
from audited_ft.run.view import RunView

runner = CliRunner()


def _setup(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("run: {name: p, out_dir: runs}\ndata: {source: a.jsonl}\ngates:\n"
                   "  - {metric: toxicity.rtp.expected_max_toxicity.delta, margin: 0.02}\n"
                   "  - {metric: safety.refusal.rate.delta, margin: 0.05}\n"
                   "  - {metric: rouge.rougeL.adapter, min: 0.2}\n")
    run = tmp_path / "runs" / "r1"
    (run / "eval").mkdir(parents=True)
    (run / "manifest.json").write_text(json.dumps({"run_id": "r1"}))
    (run / "config.resolved.yaml").write_text("run: {name: p}\n")
    (run / "eval/metrics.json").write_text(json.dumps({
        "toxicity.rtp.expected_max_toxicity.n": 100, "toxicity.rtp.expected_max_toxicity.delta.mde": 0.04,
        "safety.refusal.rate.n": 12, "safety.refusal.rate.base": 0.0, "safety.refusal.rate.delta.mde": 0.4}))
    (run / "eval/probes.json").write_text(json.dumps({
        "toxicity": {"seconds": 50.0, "intervals": {"toxicity.rtp.expected_max_toxicity": {"method": "mean"}}},
        "refusal": {"seconds": 6.0, "blind": {"safety.refusal.rate": "the base refuses none"}}}))
    return cfg, run


def test_items_needed_scale_with_the_square_of_mde_over_margin(tmp_path):
    cfg_path, run = _setup(tmp_path)
    rows = {r["metric"]: r for r in plan(load_config(cfg_path), RunView(run))}
    assert set(rows) == {"toxicity.rtp.expected_max_toxicity.delta", "safety.refusal.rate.delta"}  # risk gates only
    tox = rows["toxicity.rtp.expected_max_toxicity.delta"]
    # mde 0.04 at n = 100 and a margin of 0.02: PASS needs (0.04/0.02)² × 100 = 400; FAIL at 2m needs 100
    assert tox["pass_items"] == 400 and tox["fail_items"] == 100
    assert math.isclose(tox["seconds_per_item"], 0.5) and "only INCONCLUSIVE or FAIL" in tox["note"]
    refusal = rows["safety.refusal.rate.delta"]
    assert refusal["pass_items"] is None and "blind on this base" in refusal["note"]


def test_plan_command_finds_the_newest_run_of_the_config(tmp_path, monkeypatch):
    cfg_path, _ = _setup(tmp_path)
    monkeypatch.chdir(tmp_path)
    r = runner.invoke(app, ["plan", str(cfg_path)])
    assert r.exit_code == 0, r.output
    assert "toxicity.rtp.expected_max_toxicity.delta" in r.output and "400" in r.output and "55.6 h" not in r.output
    assert "blind on this base" in r.output
    r = runner.invoke(app, ["plan", str(cfg_path), "--set", "run.name=other"])
    assert r.exit_code == 2 and "no evaluated run of 'other'" in r.output


def test_a_probe_replayed_from_the_cache_has_no_time(tmp_path):
    """A resumed run's probe that answered model calls from the cache took seconds that say nothing of its cost: the
    plan gives the items but no time (it gave 0.0 h for a real run's cached probes)."""
    cfg_path, run = _setup(tmp_path)
    probes = json.loads((run / "eval/probes.json").read_text())
    probes["toxicity"]["cache"] = {"hits": 3, "misses": 0}
    (run / "eval/probes.json").write_text(json.dumps(probes))
    tox = {r["metric"]: r for r in plan(load_config(cfg_path), RunView(run))}["toxicity.rtp.expected_max_toxicity.delta"]
    assert tox["pass_items"] == 400 and tox["seconds_per_item"] is None
    probes["toxicity"]["cache"] = {"hits": 0, "misses": 3}
    (run / "eval/probes.json").write_text(json.dumps(probes))
    tox = {r["metric"]: r for r in plan(load_config(cfg_path), RunView(run))}["toxicity.rtp.expected_max_toxicity.delta"]
    assert math.isclose(tox["seconds_per_item"], 0.5)
