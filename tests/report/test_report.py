"""The report stage on a synthetic, schema-complete run folder (docs/run_folder.md), built here in tmp_path."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from audited_ft.errors import RunFolderError
from audited_ft.report.stage import SECTIONS, render_report
from audited_ft.run.folder import sha256_file
from tests.paths import SAMPLE_RUN
from tests.report import chromium

HOSTILE = "<script>alert(1)</script> {{ 7*7 }} \x1b[31mred\x1b[0m"
PWN = "<img src=x onerror=\"document.body.setAttribute('data-pwned','1')\">"


def _metric(stem: str, base: float, adapter: float, n: int = 4) -> dict:
    out = {f"{stem}.n": n}
    for side, v in (("base", base), ("adapter", adapter), ("delta", adapter - base)):
        out.update({f"{stem}.{side}": v, f"{stem}.{side}.ci_low": v - 0.05, f"{stem}.{side}.ci_high": v + 0.05})
    return out


def _write(run: Path, rel: str, obj) -> None:
    path = run / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(obj, str):
        path.write_text(obj, encoding="utf-8")
    elif isinstance(obj, list):
        path.write_text("".join(json.dumps(r) + "\n" for r in obj), encoding="utf-8")
    else:
        path.write_text(json.dumps(obj), encoding="utf-8")


def _write_data_and_audits(run: Path, tests: list[dict]) -> None:
    splits = ("train", "test")
    _write(run, "config.resolved.yaml", "run:\n  seed: 42\nmodel:\n  name_or_path: tiny\n")
    _write(run, "data/test.jsonl", tests)
    _write(run, "data/stats.json", {
        "sources": {"train": "shared/data/dialogsum/train.jsonl.gz", "validation": "v.jsonl", "test": "t.jsonl"},
        "fields": {"input": "dialogue", "target": "summary", "id": None},
        "cleaning": {s: {"rows_in": 10, "rows_out": 8, "dropped": {"empty": 1, "too_long": 1}} for s in splits},
        "lengths": {s: {"input_chars": [100, 150, 220, 400], "target_chars": [30, 40, 45, 60]} for s in splits}})
    _write(run, "audits/pii.json", {
        "name": "pii", "status": "warn", "blocking": False, "description": "Looks for PII.\nBlind spot: rare names.",
        "summary": {"engine": "presidio+en_core_web_sm", "policy": "redact", "redacted": 3},
        "findings": [{"split": "train", "row_id": "r1", "field": "input", "entity": "EMAIL_ADDRESS", "start": 1,
                      "end": 9, "score": 0.95, "excerpt": "write to j***@*** now", "raw": "SECRET-RAW-VALUE"}],
        "findings_truncated": False, "seconds": 0.2})
    _write(run, "audits/leakage.json", {
        "name": "leakage", "status": "fail", "blocking": True, "description": "Near-duplicates across splits.",
        "summary": {"exact": 1, "near": 0},
        "findings": [{"kind": "exact", "splits": ["train", "test"], "row_id": "r2"}]})
    _write(run, "audits/profile.json", {
        "name": "profile", "status": "pass", "blocking": False, "description": "Dataset profile.",
        "summary": {"unit": "tokens", "tokenizer": "tiny (<b>tok</b>)", "max_length": 384, "warnings": [],
                    "splits": {s: {"rows": 8, "input": {"mean": 91.5, "p50": 90, "p90": 120, "p99": 130, "max": 131},
                                   "target": {"mean": 20.0, "p50": 20, "p90": 25, "p99": 30, "max": 31},
                                   "sequence": {"mean": 140.0, "p50": 139, "p90": 170, "p99": 400, "max": 401},
                                   "over_max_length": {"count": 1, "percent": 12.5}} for s in splits}},
        "findings": []})
    _write(run, "audits/summary.json", {"passed": True, "blocking": [], "warnings": ["pii"], "accepted": []})


def _write_train(run: Path) -> None:
    log = [{"step": s, "epoch": s / 10, "loss": 3.0 - 0.2 * s, "learning_rate": 1e-4} for s in range(1, 11)]
    log += [{"step": s, "epoch": s / 10, "eval_loss": v} for s, v in ((5, 2.4), (10, 2.5))]
    _write(run, "train/log.jsonl", log)
    _write(run, "train/summary.json", {
        "steps": 10, "epochs": 1.0, "seconds": 12.5, "train_tokens": 5000, "tokens_per_second": 400.0,
        "final_train_loss": 1.0, "final_eval_loss": 2.5, "best_eval_loss": 2.4, "best_step": 5, "peak_memory_mb": 900,
        "device": "cpu", "trainable_params": 1234, "total_params": 134000000, "quantization": "nf4+double_quant",
        "compute_dtype": "float32"})


def _prediction(side: str, row_id: str) -> str:
    hostile = {"t0": HOSTILE if side == "adapter" else "base summary", "t1": PWN, "t2": "word " * 200}
    return hostile.get(row_id, f"{side} summary")


def _write_eval(run: Path, tests: list[dict], gate_passes: bool) -> None:
    metrics = {"eval.confidence": 0.95, "eval.bootstrap_samples": 1000}
    for i, name in enumerate(("rougeLsum", "rouge1", "rouge2", "rougeL")):  # written out of order on purpose
        metrics.update(_metric(f"rouge.{name}", 0.2 + i / 100, 0.3 + i / 100))
    _write(run, "eval/metrics.json", metrics)
    for side in ("base", "adapter"):
        _write(run, f"eval/generations/{side}.jsonl", [
            {"id": r["id"], "prompt": "Summarise: " + r["input"], "reference": r["target"],
             "prediction": _prediction(side, r["id"])} for r in tests])
    _write(run, "eval/probes.json", {
        "rouge": {"description": "ROUGE F-measure against references.", "limitations": "Rewards overlap, not truth.",
                  "status": "done"},
        "crows_pairs": {"description": "Likelihood bias.", "limitations": "English only.", "status": "skipped",
                        "reason": "disabled in config"}})
    _write(run, "gates.json", {"passed": gate_passes, "results": [
        {"metric": "rouge.rougeL.delta", "on": "ci_low", "min": 0.0 if gate_passes else 0.5, "max": None,
         "value": 0.08, "passed": gate_passes, "message": "rouge.rougeL.delta ci_low = 0.080 vs min"}]})


def _write_manifest(run: Path, with_eval: bool) -> None:
    stages = {s: {"status": "done", "seconds": 1.5, "finished": "2026-11-26T12:01:00+00:00"}
              for s in ("data", "audit", "train", "eval", "gate")}
    if not with_eval:
        stages.update(eval={"status": "error", "error": "CUDA out of memory"}, gate={"status": "pending"})
    stages["report"] = {"status": "running"}
    hashed = ["data/stats.json", "train/log.jsonl", "audits/pii.json"] + (["eval/metrics.json"] if with_eval else [])
    _write(run, "manifest.json", {
        "run_id": run.name, "created": "2026-11-26T12:00:00+00:00", "status": "running", "stages": stages,
        "seed": 42, "config_hash": "c" * 64, "git_sha": "abc123", "versions": {"python": "3.11.7", "torch": "2.13.0"},
        "hardware": {"device": "cpu", "gpu_name": None, "cpu_count": 2, "platform": "Linux"},
        "model": {"name_or_path": "SmolLM2-135M-Instruct", "resolved_path": "/cache/smollm2", "licence": "Apache-2.0"},
        "datasets": {"train": {"rows": 8, "sha256": "d" * 64}, "test": {"rows": 4, "sha256": "e" * 64}},
        "accepted_risks": [{"audit": "leakage", "by": "Dana Reviewer", "reason": "overlap is boilerplate",
                            "date": "2026-11-25"}],
        "artefacts": {rel: sha256_file(run / rel) for rel in hashed}})


def make_run(root: Path, gate_passes: bool = True, with_eval: bool = True) -> Path:
    """A run folder with every file the schema names; ``with_eval=False`` leaves eval/ and gates.json out.

    The leakage audit fails and would block, but the manifest records its acceptance (who, when, why); the PII audit
    warns. Model text holds a script tag, a template expression, an ANSI escape, an <img onerror> and a long string.
    """
    run = root / "20261126-120000-test"
    tests = [{"id": f"t{i}", "input": f"#Person1#: hello {i}\n#Person2#: hi", "target": f"They greet {i}."}
             for i in range(4)]
    _write_data_and_audits(run, tests)
    _write_train(run)
    if with_eval:
        _write_eval(run, tests, gate_passes)
    _write_manifest(run, with_eval)
    return run


def _section(html: str, name: str) -> str:
    """The HTML of one section, from its heading to the next section's heading."""
    start = html.index(f"{name}</h2>")
    end = html.find("<h2", start)
    return html[start:] if end == -1 else html[start:end]


def _verdict(html: str) -> str:
    return re.search(r'data-verdict="([^"]+)"', html).group(1)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return make_run(tmp_path)


def test_renders_every_section_in_order(run_dir: Path) -> None:
    out = render_report(run_dir)
    assert out == run_dir / "report.html"
    html = out.read_text(encoding="utf-8")
    positions = [html.index(f"{name}</h2>") for name in SECTIONS]
    assert positions == sorted(positions)
    assert SECTIONS[:2] == ("Summary", "Dataset") and SECTIONS[-1] == "References"
    assert "<svg" in html and "<?xml" not in html and "&lt;svg" not in html  # charts inline, not escaped twice
    assert html.count("<svg") == 3  # lengths, loss curve, ROUGE bars


def test_token_length_profile_table(run_dir: Path) -> None:
    html = render_report(run_dir).read_text()
    table = html[html.index('<table class="profile">'):]
    table = table[:table.index("</table>")]
    assert "train.max_length = 384" in table and "tiny (&lt;b&gt;tok&lt;/b&gt;)" in table
    assert table.count("<tr>") == 1 + 2 * 3  # header + (input, target, sequence) per split
    assert '<td class="num">401</td>' in table and '<td class="num">1</td>' in table


def test_no_external_resources(run_dir: Path) -> None:
    html = render_report(run_dir).read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.I)
    assert "http://" not in html.replace("http://www.w3.org/", "") and "https://" not in html
    assert "<link" not in html and "@import" not in html and "url(http" not in html


def test_untrusted_text_is_escaped(run_dir: Path) -> None:
    html = render_report(run_dir).read_text(encoding="utf-8")
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;/script&gt; {{ 7*7 }} \\x1b[31mred" in html and "&lt;/script&gt; 49" not in html  # not evaluated
    assert "\x1b" not in html and "\\x1b[31m" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=" in html
    assert "SECRET-RAW-VALUE" not in html  # only whitelisted finding fields reach the page
    assert "write to j***@*** now" in html


def test_long_text_is_clipped_and_collapsed(run_dir: Path) -> None:
    samples = _section(render_report(run_dir).read_text(encoding="utf-8"), "Misalignment")
    assert "…" in samples and "<details class=\"more\"><summary>full text (1000 characters)" in samples


def test_verdict_pass_when_all_gates_pass(tmp_path: Path) -> None:
    run = make_run(tmp_path, gate_passes=True)
    pii = json.loads((run / "audits/pii.json").read_text())
    (run / "audits/pii.json").write_text(json.dumps({**pii, "status": "pass"}))
    html = render_report(run).read_text(encoding="utf-8")
    assert _verdict(html) == "pass"
    assert "Dana Reviewer" in html and "overlap is boilerplate" in html  # accepted risk: who, why
    assert "<strong>accepted risk</strong>" in _section(html, "Dataset")


def test_unaccepted_blocking_audit_fails(run_dir: Path) -> None:
    manifest = json.loads((run_dir / "manifest.json").read_text())
    (run_dir / "manifest.json").write_text(json.dumps({**manifest, "accepted_risks": []}))
    html = render_report(run_dir).read_text(encoding="utf-8")
    assert _verdict(html) == "fail" and "blocking audit &#39;leakage&#39; failed" in html


def test_verdict_needs_review_when_an_audit_warns(run_dir: Path) -> None:
    html = render_report(run_dir).read_text(encoding="utf-8")
    assert _verdict(html) == "needs review" and "audit &#39;pii&#39; reported warn" in html


def test_verdict_fail_when_a_gate_failed(tmp_path: Path) -> None:
    html = render_report(make_run(tmp_path, gate_passes=False)).read_text(encoding="utf-8")
    assert _verdict(html) == "fail"
    summary = _section(html, "Summary")
    assert "What blocks shipping" in summary and "gate failed: rouge.rougeL.delta" in summary
    assert "✖ FAIL" in summary


def test_gate_row_looks_up_base_adapter_delta_and_ci(run_dir: Path) -> None:
    summary = _section(render_report(run_dir).read_text(encoding="utf-8"), "Summary")
    row = summary[summary.index("<code>rouge.rougeL.delta</code>"):].split("</tr>")[0]
    # rougeL is the 4th metric written: base 0.23, adapter 0.33, delta 0.1 with CI ±0.05
    assert all(v in row for v in ("0.230", "0.330", "0.100", "[0.050, 0.150]", "≥ 0.000", "CI low end", "0.080"))


def test_gate_written_by_the_gate_stage_with_statistic_field(run_dir: Path) -> None:
    gates = json.loads((run_dir / "gates.json").read_text())
    gates["results"][0]["statistic"] = gates["results"][0].pop("on")
    (run_dir / "gates.json").write_text(json.dumps(gates))
    assert "CI low end" in _section(render_report(run_dir).read_text(encoding="utf-8"), "Summary")


def test_missing_eval_says_not_measured(tmp_path: Path) -> None:
    run = make_run(tmp_path, with_eval=False)
    html = render_report(run).read_text(encoding="utf-8")
    misalignment = _section(html, "Misalignment")
    assert "not measured in this run" in misalignment.lower()
    assert "CUDA out of memory" in misalignment  # why: the stage's error from the manifest
    assert _verdict(html) == "needs review"
    assert "What was not measured" in _section(html, "Summary")


def test_missing_manifest_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RunFolderError, match="manifest.json"):
        render_report(tmp_path)


def test_written_atomically_and_deterministically(run_dir: Path) -> None:
    first = render_report(run_dir, title="Audit of <run>").read_bytes()
    second = render_report(run_dir, title="Audit of <run>").read_bytes()
    assert first == second  # same run folder, same bytes: two reports can be diffed
    assert b"Audit of &lt;run&gt;" in first
    assert not [p for p in run_dir.rglob("*") if p.name.endswith(".tmp")]


def test_evidence_links_carry_hashes(run_dir: Path) -> None:
    html = render_report(run_dir).read_text(encoding="utf-8")
    digest = sha256_file(run_dir / "eval/metrics.json")
    assert '<a href="eval/metrics.json">eval/metrics.json</a>' in html and f"sha256:{digest}" in html


@pytest.mark.browser
def test_browser_renders_sections_and_runs_no_injected_code(run_dir: Path, tmp_path: Path) -> None:
    if chromium.available():
        pytest.skip(chromium.available())
    report = render_report(run_dir)
    dom = chromium.run_once("--virtual-time-budget=2000", "--dump-dom", report.as_uri(), cwd=tmp_path).stdout
    assert "</html>" in dom, "chromium produced no DOM"
    assert all(f"{name}</h2>" in dom for name in SECTIONS)
    assert not re.search(r"<body[^>]*data-pwned", dom), "injected handler ran"
    assert "<img" not in dom and "<script>alert" not in dom  # the payload stayed text
    assert dom.count("<svg") == 3
    shot = tmp_path / "report.png"
    chromium.run_once("--window-size=1280,2400", f"--screenshot={shot}", report.as_uri(), cwd=tmp_path)
    assert shot.is_file() and shot.stat().st_size > 20_000
    if os.environ.get("AFT_REPORT_SCREENSHOT"):  # keep the PNG for a human to look at
        shutil.copy(shot, os.environ["AFT_REPORT_SCREENSHOT"])


def test_dataset_section_states_the_data_licence(tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(SAMPLE_RUN, run)
    html = render_report(run).read_text(encoding="utf-8")
    assert '<th scope="row">licence</th><td>Apache-2.0 (synthetic, written by the audited_ft project)</td>' in html
    (run / "config.resolved.yaml").write_text("data: {source: x.jsonl}\n")
    html = render_report(run).read_text(encoding="utf-8")
    assert "not stated in the config (data.licence): check it before shipping" in html


def test_a_truncated_findings_list_says_how_many_of_how_many(run_dir: Path) -> None:
    pii = json.loads((run_dir / "audits/pii.json").read_text())
    pii["findings_truncated"], pii["findings_kept"] = True, len(pii["findings"])
    pii["summary"]["findings_total"] = 1702
    (run_dir / "audits/pii.json").write_text(json.dumps(pii))
    dataset = _section(render_report(run_dir).read_text(encoding="utf-8"), "Dataset")
    assert f"the audit kept {len(pii['findings'])} of 1,702 findings" in dataset


def test_privacy_section_says_what_a_clean_pii_scan_means(tmp_path: Path) -> None:
    """pii.json's measured_quality (the engine's recall per entity type on the project's labelled benchmark) becomes
    a table and a sentence in words; settings that differ from the measured ones are said."""
    from audited_ft.audit.audits.pii import PiiOptions, measured_quality

    run = tmp_path / "run"
    shutil.copytree(SAMPLE_RUN, run, ignore=shutil.ignore_patterns("cache", "*.safetensors", "report.html"))
    pii_path = run / "audits/pii.json"
    pii = json.loads(pii_path.read_text())
    pii["measured_quality"] = measured_quality(PiiOptions())
    pii_path.write_text(json.dumps(pii))
    html = render_report(run).read_text(encoding="utf-8")
    section = html[html.index("Protection of data privacy</h2>"):]
    section = section[:section.index("<h2")] if "<h2" in section else section
    assert "What a clean scan means" in section and "Of every 100 names about" in section
    assert "dates about 0" in section  # not looked for: said, not hidden
    assert "only a guide" not in section
    # the independent sample's recall beside the benchmark's, with the warning that the benchmark flatters
    independent = pii["measured_quality"]["independent"]
    assert independent["texts"] == 100 and independent["recall"]["STREET_ADDRESS"]["value"] < 0.5
    assert "recall, independent sample" in section and "trust the lower" in section
    street = section[section.index("<td>STREET_ADDRESS</td>"):].split("</tr>")[0]
    assert street.count("[") == 3  # recall, precision, and the independent recall, each with its interval
    pii["measured_quality"] = measured_quality(PiiOptions(model="some_other_model"))
    pii_path.write_text(json.dumps(pii))
    html = render_report(run).read_text(encoding="utf-8")
    assert "ones (spaCy model), so these figures are only a guide" in html
    mq = measured_quality(PiiOptions(engine="presidio-stock"))
    assert mq["entities"]["STREET_ADDRESS"]["in_entity_list"] is False  # the stock engine has no recognizer for it
    assert mq["applies"] and mq["entities"]["CREDIT_CARD"]["recall"]["value"] < \
        measured_quality(PiiOptions())["entities"]["CREDIT_CARD"]["recall"]["value"]
