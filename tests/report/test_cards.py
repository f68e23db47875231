"""Model card and data card (audited_ft.report.cards) on a copy of the sample run folder, and on damaged or partial ones."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from audited_ft.errors import RunFolderError
from audited_ft.report.cards import dataset_id, hf_licence_id, md_escape, write_cards
from tests.paths import SAMPLE_RUN

SAMPLE = SAMPLE_RUN
HOSTILE = "<script>alert(1)</script> a|b\nnext line [x](http://evil.example) ![i](http://evil.example/p.png)"

pytestmark = pytest.mark.skipif(not SAMPLE.is_dir(), reason=f"sample run folder {SAMPLE} not found")


@pytest.fixture
def run(tmp_path: Path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(SAMPLE, dst, ignore=shutil.ignore_patterns("cache", "*.safetensors", "*.jsonl", "report.html"))
    for stale in ("train/adapter/model_card.md", "data/data_card.md"):
        (dst / stale).unlink(missing_ok=True)
    return dst


def _edit(path: Path, change) -> None:
    obj = json.loads(path.read_text(encoding="utf-8"))
    change(obj)
    path.write_text(json.dumps(obj), encoding="utf-8")


def _front_matter(text: str) -> dict:
    assert text.startswith("---\n"), text[:80]
    return yaml.safe_load(text.split("---\n", 2)[1])


def _unescaped_pipes(line: str) -> int:
    return len(re.findall(r"(?<!\\)\|", line))


def _assert_tables_intact(text: str) -> None:
    """Every row of every markdown table has as many cell separators as the table's header."""
    header = None
    for line in text.splitlines():
        if not line.startswith("|"):
            header = None
            continue
        if header is None:
            header = _unescaped_pipes(line)
        assert _unescaped_pipes(line) == header, line


def _cards(run: Path) -> tuple[str, str]:
    written = write_cards(run)
    return written["model_card"].read_text(encoding="utf-8"), written["data_card"].read_text(encoding="utf-8")


def test_both_cards_are_written_where_the_issue_says(run):
    written = write_cards(run)
    assert written == {"model_card": run / "train/adapter/model_card.md", "data_card": run / "data/data_card.md"}
    assert all(p.is_file() and p.stat().st_size > 500 for p in written.values())
    assert not list(run.rglob(".*.tmp"))  # atomic writes leave no temporary file behind


def test_front_matter_parses_with_the_hugging_face_keys(run):
    meta = _front_matter(_cards(run)[0])
    assert meta["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"  # the embedded alias's hub id
    assert meta["license"] == "apache-2.0"  # manifest licence is null: falls back to models.EMBEDDED
    assert meta["datasets"] == ["dailytalk_summaries"]
    assert meta["library_name"] == "peft" and meta["pipeline_tag"] == "text-generation"
    assert {"audited-ft", "qlora", "lora"} <= set(meta["tags"])


def test_results_table_shows_rouge_l_from_metrics_json(run):
    metrics = json.loads((run / "eval/metrics.json").read_text())
    card = _cards(run)[0]
    rows = [line for line in card.splitlines() if line.startswith("| rouge.rougeL |")]
    assert len(rows) == 1, rows
    cells = [c.strip() for c in rows[0].strip("|").split(" | ")]
    want = [f"{metrics[f'rouge.rougeL.{k}']:.3f}" for k in ("base", "adapter", "delta")]
    assert cells[3:6] == want
    assert cells[6] == f"[{metrics['rouge.rougeL.delta.ci_low']:.3f}, {metrics['rouge.rougeL.delta.ci_high']:.3f}]"
    assert "PASS" in cells[7] and "≥ 0.250" in cells[7]  # both rouge.rougeL gates sit in this one row
    assert any(line.startswith("| bias.bbq.accuracy\\_ambig | bbq |") for line in card.splitlines())


def test_sections_carry_the_run_s_facts(run):
    card, data = _cards(run)
    for text in ("rank r = 16, alpha = 32", "4-bit nf4", "training tokens: 16,272", "optimizer steps: 13",
                 "1fdab38263449f1996299916d548fdf0df3b8af2879dae6fa5167a7c988973ff", "[report.html](../../report.html)",
                 'PeftModel.from_pretrained(base, ', 'from_pretrained("HuggingFaceTB/SmolLM2-135M-Instruct")',
                 "Summarize the following dialogue in one sentence.", "**Release gates:** all passed (5 gates"):
        assert text in card, text
    assert "| train | /work/main/configs/data/dailytalk\\_summaries.jsonl | 104 | b3a3f2c68c4022b7 |" in data
    assert "| exact\\_within\\_split | 19 | warn |" in data and "| ngram\\_overlap\\_cross\\_split | 27 | warn |" in data
    assert "| train | 104 | 85.1 / 90 / 106 / 117 |" in data  # token lengths from audits/profile.json
    _assert_tables_intact(card)
    _assert_tables_intact(data)


def test_without_eval_the_card_says_not_measured(run):
    shutil.rmtree(run / "eval")
    card = _cards(run)[0]
    results = card.split("## Evaluation results", 1)[1].split("## Training details", 1)[0]
    assert "Not measured in this run — eval/metrics.json is absent" in results
    assert "| rouge.rougeL | — | — | — | — | — | — |" in results  # the gate is listed, with no numbers to show
    assert "eval/probes.json is absent" in card.split("### What each probe cannot see", 1)[1]


def test_planted_markup_in_probe_limitation_and_dataset_name_is_escaped(run):
    _edit(run / "eval/probes.json", lambda p: p["rouge"].update(limitations=HOSTILE))
    _edit(run / "data/stats.json", lambda s: s["sources"].update(train=f"{HOSTILE}.jsonl"))
    _edit(run / "manifest.json", lambda m: m["datasets"]["train"].update(source=f"{HOSTILE}.jsonl"))
    card, data = _cards(run)
    for text in (card, data):
        assert "<script" not in text and "<img" not in text
        own = re.sub(r"\[report\.html\]\((\.\./)+report\.html\)", "", text)  # the cards' own link
        assert not re.search(r"(?<!\\)\]\(", own)  # no unescaped "](": neither link nor image syntax survives
        assert "&lt;script&gt;alert(1)&lt;/script&gt; a\\|b next line \\[x\\](http://evil.example)" in text
        _assert_tables_intact(text)
    assert "- **rouge:** &lt;script&gt;" in card
    assert "| train | &lt;script&gt;" in data
    datasets = _front_matter(card)["datasets"]
    assert len(datasets) == 2 and all(re.fullmatch(r"[A-Za-z0-9._-]+", d) for d in datasets), datasets


def test_pii_section_shows_counts_and_policies_never_findings(run):
    secret = "jane.roe@example.org"

    def plant(a):
        a["summary"]["counts"]["train"]["EMAIL_ADDRESS"] = 3
        a["summary"]["counts"]["test"]["EMAIL_ADDRESS"] = 1
        a["findings"] = [{"split": "train", "row_id": "r1", "entity": "EMAIL_ADDRESS", "excerpt": f"mail {secret}",
                          "value": secret}]

    _edit(run / "audits/pii.json", plant)
    data = _cards(run)[1]
    assert "| EMAIL\\_ADDRESS | redact | 3 | 0 | 1 | 4 |" in data
    assert "jane" not in data and "example.org" not in data


def test_licence_unknown_is_said_and_a_hub_licence_is_mapped(run):
    _edit(run / "manifest.json", lambda m: m["model"].update(name_or_path="acme/chat-7b", licence=None))
    card = _cards(run)[0]
    meta = _front_matter(card)
    assert meta["license"] == "unknown" and meta["base_model"] == "acme/chat-7b"
    assert "**Base model licence:** unknown" in card
    _edit(run / "manifest.json", lambda m: m["model"].update(licence="CC BY 4.0"))
    assert _front_matter(_cards(run)[0])["license"] == "cc-by-4.0"


def test_bare_or_damaged_run_folder_gives_cards_that_say_what_is_missing(tmp_path):
    run = tmp_path / "bare"
    (run / "train/adapter").mkdir(parents=True)
    (run / "data").mkdir()
    (run / "manifest.json").write_text(json.dumps({"run_id": "bare", "stages": {"eval": {"status": "pending"}}}))
    (run / "train/adapter/adapter_config.json").write_text("{}")
    (run / "data/stats.json").write_text("[1, 2]")  # wrong shape
    (run / "gates.json").write_text("{not json")
    (run / "config.resolved.yaml").write_text("model: [unclosed")
    card, data = _cards(run)
    assert "eval/metrics.json is absent (stage 'eval' is pending)" in card
    assert "gates.json could not be read" in card and "config.resolved.yaml could not be read" in card
    assert "**Base model licence:** unknown" in card and _front_matter(card)["license"] == "unknown"
    assert "data/stats.json could not be read" in data and "audits/pii.json is absent" in data


def test_folder_without_manifest_is_refused(tmp_path):
    with pytest.raises(RunFolderError, match="manifest.json"):
        write_cards(tmp_path)


def test_adapterless_run_writes_only_the_data_card(run):
    shutil.rmtree(run / "train")
    assert set(write_cards(run)) == {"data_card"}


@pytest.mark.parametrize("text, want", [
    ("Apache-2.0 (SmolLM2, Hugging Face TB)", "apache-2.0"), ("CC BY-SA 4.0", "cc-by-sa-4.0"), ("MIT", "mit"),
    ("Llama 3.1 Community License", "other"), (None, "unknown"), ("  ", "unknown")])
def test_hf_licence_id(text, want):
    assert hf_licence_id(text) == want


@pytest.mark.parametrize("source, want", [
    ("knkarthick/dialogsum:train", "knkarthick/dialogsum"), ("/data/dialogsum/train.jsonl.gz", "train"),
    ("configs/data/dailytalk_summaries.jsonl", "dailytalk_summaries"), ("data/x.csv", "x")])
def test_dataset_id(source, want):
    assert dataset_id(source) == want


def test_md_escape_neutralises_markdown_and_html():
    assert md_escape("a|b\nc <b>x</b> [l](u) *e* `c` \x1b[31m") == (
        "a\\|b c &lt;b&gt;x&lt;/b&gt; \\[l\\](u) \\*e\\* \\`c\\` \\\\x1b\\[31m")
    assert md_escape(None) == "—" and md_escape("x" * 50, limit=10) == "x" * 10 + "…"


def test_front_matter_holds_a_model_index_and_co2_that_the_hub_library_reads_back(run):
    """The model-index (this run's results) and co2_eq_emissions (grams, the training stage's estimate) in the
    front matter, read back with huggingface_hub's own card parser as the Hub reads them."""
    from huggingface_hub import ModelCard

    from audited_ft.report.sections.compute import compute_view
    from audited_ft.run.view import RunView

    text = _cards(run)[0]
    data = ModelCard(text).data
    metrics = json.loads((run / "eval/metrics.json").read_text())
    by_type = {r.metric_type: r for r in data.eval_results}
    assert by_type["rouge.rougeL"].metric_value == round(metrics["rouge.rougeL.adapter"], 4)
    assert by_type["rouge.rougeL"].task_type == "text-generation"
    assert by_type["rouge.rougeL"].dataset_type == "audited-ft/rouge"
    assert len(by_type) >= 6 and all(isinstance(r.metric_value, float) for r in data.eval_results)
    train = next(r for r in compute_view(RunView(run))["footprint"]["stages"] if r["stage"] == "train")
    co2 = data.co2_eq_emissions
    assert co2["emissions"] == round(train["co2e_kg"] * 1000, 3) and co2["training_type"] == "fine-tuning"
    assert "estimate" in co2["source"]


def test_front_matter_without_metrics_has_no_model_index(run):
    (run / "eval/metrics.json").unlink()
    meta = _front_matter(_cards(run)[0])
    assert "model-index" not in meta and meta["library_name"] == "peft"
