"""The whole pipeline through the CLI on a tiny random Llama in 4-bit (seconds): stage contract, run folder,
failure paths. The real embedded model runs in test_end_to_end.py."""

import json

import pytest
from typer.testing import CliRunner

from audited_ft.cli import app
from tests.tiny_model import tiny_config

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny_cfg(tmp_path_factory):
    from tests.conftest import make_tiny_rows

    return tiny_config(tmp_path_factory.mktemp("tiny"), make_tiny_rows())


def test_run_then_each_stage_again(tiny_cfg, tmp_path):
    r = runner.invoke(app, ["run", str(tiny_cfg), "--out", str(tmp_path), "--run-id", "t"])
    assert r.exit_code == 0, r.output
    run = tmp_path / "t"
    m = json.loads((run / "manifest.json").read_text())
    assert m["status"] == "passed" and [s["status"] for s in m["stages"].values()] == ["done"] * 6
    assert m["eval"]["precision"].startswith("nf4+double_quant base dequantised")
    summary = json.loads((run / "train/summary.json").read_text())
    assert summary["steps"] == 3 and summary["quantization"] == "nf4+double_quant"
    first = json.loads((run / "eval/metrics.json").read_text())
    for stage in ("eval", "gate", "report"):
        r = runner.invoke(app, [stage, str(run)])
        assert r.exit_code == 0, (stage, r.output)
    again = json.loads((run / "eval/metrics.json").read_text())
    assert again == first, "greedy evaluation of the same adapter is deterministic"
    cache = json.loads((run / "manifest.json").read_text())["eval"]["cache"]
    assert cache["misses"] == 0 and cache["hits"] >= 2, "the re-run reads the stored answers"


def test_failed_gate_exits_1_and_still_reports(tiny_cfg, tmp_path):
    r = runner.invoke(app, ["run", str(tiny_cfg), "--out", str(tmp_path), "--run-id", "g",
                            "--set", "gates.0.min=1.5"])
    assert r.exit_code == 1, r.output
    assert "verdict:    FAIL (gate(s) not passed: rouge.rougeL.adapter)" in r.output
    run = tmp_path / "g"
    assert json.loads((run / "manifest.json").read_text())["status"] == "failed"
    assert (run / "report.html").is_file()


def test_blocking_audit_stops_before_training(tiny_cfg, tmp_path):
    # The test split duplicated into train: the leakage audit blocks and training never starts.
    data = tiny_cfg.parent / "data.jsonl"
    rows = [json.loads(line) for line in data.read_text().splitlines()]
    leaky = tmp_path / "leaky.jsonl"
    leaky.write_text("".join(json.dumps(r) + "\n" for r in rows + [dict(r, id=r["id"] + "-copy") for r in rows]))
    r = runner.invoke(app, ["run", str(tiny_cfg), "--out", str(tmp_path), "--run-id", "b",
                            "--set", f"data.source={leaky}"])
    assert r.exit_code == 1, r.output
    assert "blocking audit(s): leakage" in r.output
    run = tmp_path / "b"
    assert not (run / "train").exists()
    assert (run / "report.html").is_file()
    m = json.loads((run / "manifest.json").read_text())
    assert m["stages"]["train"]["status"] == "pending"


def test_gate_against_a_baseline_run_and_gates_file(tiny_cfg, tmp_path):
    """Regression through the real CLI on two real run folders: a tiny-model run, and the committed SmolLM2 sample
    run (tests/fixtures/sample_run, ROUGE-L of its adapter 0.45) as the baseline the tiny run falls far short of."""
    import shutil
    from xml.etree import ElementTree as ET

    from tests.conftest import REPO

    gates = tmp_path / "gates.yaml"
    gates.write_text("gates:\n  - {metric: rouge.rougeL.adapter, min: 0.0, reason: any overlap}\n"
                     "regression: {default_tolerance: 0.05}\n")
    r = runner.invoke(app, ["run", str(tiny_cfg), "--out", str(tmp_path), "--run-id", "t", "--gates", str(gates)])
    assert r.exit_code == 0, r.output
    run = tmp_path / "t"
    assert "any overlap" in (run / "config.resolved.yaml").read_text()  # the gates used are recorded
    r = runner.invoke(app, ["gate", str(run), "--baseline", str(run)])
    assert r.exit_code == 0 and "OK rouge.rougeL.adapter" in r.output and "verdict: NEEDS REVIEW" in r.output, r.output

    sample = tmp_path / "sample"
    shutil.copytree(REPO / "tests/fixtures/sample_run", sample)
    r = runner.invoke(app, ["gate", str(run), "--baseline", str(sample)])
    assert r.exit_code == 1, r.output
    assert "REGRESSED rouge.rougeL.adapter" in r.output and "verdict: FAIL" in r.output
    assert json.loads((run / "manifest.json").read_text())["status"] == "failed"
    suite = ET.parse(run / "gates.junit.xml").getroot().find("testsuite")
    assert suite.get("failures") == "1" and suite.get("tests") == "2"
    assert "❌ REGRESSED" in (run / "gates.md").read_text()
    r = runner.invoke(app, ["report", str(run)])
    assert r.exit_code == 0 and "regression against the baseline" in (run / "report.html").read_text()

    # the sample's gates name bias and safety metrics the tiny run never measured: bad input, exit 2
    r = runner.invoke(app, ["gate", str(sample), "--baseline", str(run)])
    assert r.exit_code == 2 and "regression metrics name unknown metrics" in r.output, r.output
    r = runner.invoke(app, ["gate", str(run), "--baseline", str(tmp_path / "nope")])
    assert r.exit_code == 2 and "not a finished run folder" in r.output


def test_several_adapters_on_one_base_switched_and_mixed(tiny_cfg, tmp_path):
    """Two adapters trained on the same base: `eval --adapter` measures the second on run A's loaded base exactly as
    run B measured it alone, and one mixed batch (PEFT's per-row adapter routing) answers as each variant alone."""
    from audited_ft.eval.model import ModelUnderTest
    from audited_ft.pipeline import open_run

    for rid, lr in (("a", "0.0002"), ("b", "0.02")):
        r = runner.invoke(app, ["run", str(tiny_cfg), "--out", str(tmp_path), "--run-id", rid,
                                "--set", f"train.learning_rate={lr}"])
        assert r.exit_code == 0, r.output
    a, b = tmp_path / "a", tmp_path / "b"
    alone_a = json.loads((a / "eval/metrics.json").read_text())
    alone_b = json.loads((b / "eval/metrics.json").read_text())
    r = runner.invoke(app, ["eval", str(a), "--adapter", f"other={b / 'train/adapter'}"])
    assert r.exit_code == 0, r.output
    assert "variants: base, adapter, other" in r.output and "peak memory process_rss" in r.output
    both = json.loads((a / "eval/metrics.json").read_text())
    for key in ("rouge.rougeL.adapter", "rouge.rougeL.base", "rouge.rouge1.delta"):
        assert both[key] == alone_a[key], key
    assert both["rouge.rougeL.other.adapter"] == alone_b["rouge.rougeL.adapter"]
    assert both["rouge.rougeL.other.base"] == alone_a["rouge.rougeL.base"]
    manifest = json.loads((a / "manifest.json").read_text())
    assert manifest["eval"]["extra_adapters"] == {"other": str(b / "train/adapter")}

    cfg, rf = open_run(a)
    model = ModelUnderTest(cfg, a / "train/adapter", batch_size=4, extra_adapters={"other": b / "train/adapter"})
    prompts = [model.prompt(row["input"]) for row in json.loads("[" + ",".join(
        (a / "data/test.jsonl").read_text().splitlines()) + "]")][:4]
    alone = {v: model.generate(prompts, v, 6) for v in ("base", "adapter", "other")}
    assert len({tuple(x) for x in alone.values()}) > 1, "the variants must answer differently for this to test anything"
    variants = [("base", "adapter", "other")[i % 3] for i in range(3 * len(prompts))]
    mixed = model.generate_mixed([p for p in prompts for _ in range(3)], variants, 6)
    expected = [alone[v][i // 3] for i, v in enumerate(variants)]
    assert mixed == expected

    r = runner.invoke(app, ["eval", str(a), "--adapter", f"other={tmp_path}"])
    assert r.exit_code == 2 and "not a PEFT adapter folder" in r.output
    r = runner.invoke(app, ["eval", str(a), "--adapter", f"Base={b / 'train/adapter'}"])
    assert r.exit_code == 2 and "adapter name" in r.output
    assert json.loads((a / "manifest.json").read_text())["stages"]["eval"]["status"] == "done"  # left as it was


def test_full_precision_reference_is_a_third_variant(tiny_cfg, tmp_path, monkeypatch):
    """eval.reference=full_precision: the unquantised base answers as variant `full_precision`, its keys compare it
    with the 4-bit base (what quantisation changed); it scores and generates exactly as a run configured without
    quantisation does; when its memory does not fit it is skipped with the reason recorded."""
    import audited_ft.eval.model as em
    from audited_ft.pipeline import open_run

    r = runner.invoke(app, ["run", str(tiny_cfg), "--out", str(tmp_path), "--run-id", "fp",
                            "--set", "eval.reference=full_precision"])
    assert r.exit_code == 0, r.output
    run = tmp_path / "fp"
    manifest = json.loads((run / "manifest.json").read_text())["eval"]
    assert manifest["variants"][-1] == "full_precision"
    assert manifest["reference"]["loaded"] and manifest["reference"]["dtype"] == "float32"
    assert manifest["reference"]["estimated_gib"] is not None and manifest["reference"]["free_gib"] > 0
    m = json.loads((run / "eval/metrics.json").read_text())
    assert m["rouge.rougeL.full_precision.base"] == m["rouge.rougeL.base"]  # the same 4-bit base on the same items
    assert "rouge.rougeL.full_precision.adapter" in m and "rouge.rougeL.full_precision.delta.ci_low" in m

    cfg, _ = open_run(run)
    model = em.ModelUnderTest(cfg, run / "train/adapter", batch_size=4, reference="full_precision")
    unquantised = cfg.model_copy(update={"quantization": cfg.quantization.model_copy(update={"load_in_4bit": False})})
    plain = em.ModelUnderTest(unquantised, run / "train/adapter", batch_size=4, reference="full_precision")
    assert plain.reference_model is None and "not quantised" in plain.reference["reason"]
    ctx, cont = ["The weather today is"], [" sunny and warm, with a light breeze."]
    got = model.score(ctx, cont, "full_precision")[0][0]
    assert got == pytest.approx(plain.score(ctx, cont, "base")[0][0], rel=1e-5)  # the unquantised base itself
    assert got != model.score(ctx, cont, "base")[0][0]  # quantisation changes the base, or nothing is tested
    assert model.generate([model.chat("Hi")], "full_precision", 4) == plain.generate([plain.chat("Hi")], "base", 4)

    monkeypatch.setattr(em, "HEADROOM", 1e12)
    skipped = em.ModelUnderTest(cfg, run / "train/adapter", batch_size=4, reference="full_precision")
    assert skipped.reference_model is None and "full_precision" not in skipped.variants
    assert skipped.reference["reason"].startswith("not enough memory: the full-precision weights need about")


def test_full_precision_reference_in_the_report(tiny_cfg, tmp_path):
    """The report's Compute section splits each headline change into quantisation's and the adapter's; the
    full_precision keys stay out of the other sections' tables and out of "Adapters compared"."""
    from tests.report.test_report import _section

    r = runner.invoke(app, ["run", str(tiny_cfg), "--out", str(tmp_path), "--run-id", "fpr",
                            "--set", "eval.reference=full_precision"])
    assert r.exit_code == 0, r.output
    html = (tmp_path / "fpr" / "report.html").read_text(encoding="utf-8")
    compute = _section(html, "Compute resources")
    assert "What the 4-bit quantisation changed" in compute and "quantisation (NF4 − full)" in compute
    assert "<th scope=\"row\">rouge.rougeL</th>" in compute
    for name in ("Misalignment", "Overfitting"):
        assert "full_precision" not in _section(html, name), name
    assert "Adapters compared" not in html
