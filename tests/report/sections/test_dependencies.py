"""Dependency and licence inventory (audited_ft.report.sections.dependencies) on the sample run folder and edited copies of it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from audited_ft.report.sections.dependencies import (
    FLAG_LABELS,
    classify_licence,
    inventory,
    package_licence,
    proprietary_view,
)
from audited_ft.run.view import RunView

REPO = Path(__file__).resolve().parents[3]
SAMPLE = REPO / "tests" / "fixtures" / "sample_run"
LLAMA2 = "Llama 2 Community Licence Agreement (custom; commercial use limited above 700M monthly users)"


@pytest.fixture
def run_copy(tmp_path) -> Path:
    run = tmp_path / "run"
    for rel in ("manifest.json", "config.resolved.yaml", "data/stats.json", "eval/probes.json"):
        (run / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SAMPLE / rel, run / rel)
    return run


def _edit(run: Path, rel: str, change) -> None:
    path = run / rel
    if rel.endswith(".yaml"):
        data = yaml.safe_load(path.read_text())
        change(data)
        path.write_text(yaml.safe_dump(data))
    else:
        data = json.loads(path.read_text())
        change(data)
        path.write_text(json.dumps(data))


def _by_name(rows: list[dict]) -> dict[str, dict]:
    return {r["name"]: r for r in rows}


def test_sample_run_packages_have_licences():
    rows = inventory(RunView(SAMPLE))
    by = _by_name(rows)
    for pkg in ("torch", "transformers", "peft"):
        assert by[pkg]["kind"] == "python package" and by[pkg]["family"] == "open", by[pkg]
        assert by[pkg]["licence"] != "unknown" and by[pkg]["licence_source"].startswith("package metadata")
    assert "Apache" in by["transformers"]["licence"] and "BSD-3-Clause" in by["torch"]["licence"]
    assert by["torch"]["version"] == "2.13.0+cpu"
    model = by["smollm2-135m-instruct"]
    assert model["kind"] == "base model" and model["licence"].startswith("Apache-2.0")
    assert model["licence_source"] == "audited_ft.models.EMBEDDED" and "api_bound" not in model["flags"]
    probes = [r for r in rows if r["kind"] == "evaluation data"]
    assert {"CC BY 4.0", "MIT"} <= {r["licence"] for r in probes} and len(probes) == 6
    assert by["jigsaw-bilstm"]["licence"] == "MIT"  # read from the toxic-comment-classifier wheel
    assert not any(r["flags"] for r in rows), [r for r in rows if r["flags"]]


def test_hub_llama2_model_and_nc_dataset_are_flagged(run_copy):
    def model(m):
        m["model"] = {"name_or_path": "meta-llama/Llama-2-7b-hf", "licence": LLAMA2}

    def data(c):
        c["data"]["licence"] = "CC BY-NC-SA 4.0"
        c["model"]["name_or_path"] = "meta-llama/Llama-2-7b-hf"

    _edit(run_copy, "manifest.json", model)
    _edit(run_copy, "config.resolved.yaml", data)
    _edit(run_copy, "data/stats.json", lambda s: s.pop("licence"))
    view = proprietary_view(RunView(run_copy))
    by = _by_name(view["rows"])
    llama = by["meta-llama/Llama-2-7b-hf"]
    assert llama["flags"] == ["restricted", "api_bound"] and llama["family"] == "restricted"
    assert any("700 million monthly active users" in n for n in llama["notes"])
    assert any("Acceptable Use Policy" in n for n in llama["notes"])
    assert any("no revision pinned" in n for n in llama["notes"]) and any("gated" in n for n in llama["notes"])
    (train,) = [r for r in view["rows"] if r["kind"] == "training data"]
    assert train["flags"] == ["non_commercial"] and train["licence_source"] == "config.resolved.yaml data.licence"
    assert "api_bound" in by["Hugging Face Hub (huggingface.co)"]["flags"]
    assert view["counts"]["restricted"] == 1 and view["counts"]["non_commercial"] == 1
    assert view["counts"]["api_bound"] == 2


def test_hub_data_probe_sets_cuda_and_missing_packages(run_copy):
    def manifest(m):
        m["versions"]["surely-not-installed-pkg-9q"] = "1.0"
        m["hardware"].update(device="cuda", gpu_name="NVIDIA H100 80GB HBM3")

    def probes(p):
        p["bbq"]["info"]["data"]["source"] = "hub:heegyu/bbq:test"
        p["refusal"]["info"]["benign_data"] = {"set": "xstest", "title": "XSTest safe prompts", "items": 250,
                                               "total": 250, "source": "hub:walledai/XSTest:test", "licence": "CC-BY-4.0"}

    _edit(run_copy, "manifest.json", manifest)
    _edit(run_copy, "eval/probes.json", probes)
    _edit(run_copy, "data/stats.json", lambda s: s.update(sources={"train": "knkarthick/dialogsum:train"}))
    by = _by_name(inventory(RunView(run_copy)))
    assert by["surely-not-installed-pkg-9q"]["flags"] == ["unknown_licence"]
    assert by["NVIDIA GPU driver and CUDA runtime"]["flags"] == ["closed"]
    assert "api_bound" in by["BBQ (Bias Benchmark for QA) (bbq)"]["flags"]
    assert by["knkarthick/dialogsum:train"]["flags"] == ["api_bound"]
    assert by["XSTest safe prompts (xstest)"]["flags"] == ["api_bound"]  # the refusal probe's second set is listed
    assert "Hugging Face Hub (huggingface.co)" in by


@pytest.mark.parametrize("text, family, flags", [
    ("Apache-2.0", "open", []),
    ("MIT License", "open", []),
    ("BSD-3-Clause AND 0BSD AND MIT", "open", []),
    ("CC BY-NC-SA 4.0", "non-commercial", ["non_commercial"]),
    ("CC-BY-NC-4.0", "non-commercial", ["non_commercial"]),
    (LLAMA2, "restricted", ["restricted"]),
    ("LLAMA 2 COMMUNITY LICENSE AGREEMENT", "restricted", ["restricted"]),
    ("bigscience-openrail-m", "restricted", ["restricted"]),
    ("Other/Proprietary License", "closed", ["closed"]),
    ("NVIDIA Proprietary Software", "closed", ["closed"]),
    ("", "unknown", ["unknown_licence"]),
    (None, "unknown", ["unknown_licence"]),
    ("Frobnicator Public Covenant", "unknown", ["unknown_licence"]),
])
def test_classify_licence(text, family, flags):
    got_family, got_flags, _ = classify_licence(text)
    assert (got_family, got_flags) == (family, flags)


def test_package_licence_reads_metadata():
    licence, source, version = package_licence("pydantic")
    assert licence == "MIT" and source == "package metadata License-Expression" and version
    assert package_licence("surely-not-installed-pkg-9q")[0] is None


def test_absent_run_folder_is_tolerated(tmp_path):
    view = proprietary_view(RunView(tmp_path, manifest_required=False))
    assert view["problems"] and "manifest.json" in view["problems"][0]
    (model,) = [r for r in view["rows"] if r["kind"] == "base model"]
    assert model["name"] == "not recorded" and model["flags"] == ["unknown_licence"]
    assert view["gaps"] and view["gaps"][0][0] == "licences"


def test_dependencies_template_labels_flags_in_words_and_escapes(run_copy):
    from audited_ft.report.format import environment as _environment
    from audited_ft.report.format import template_dir

    hostile = "<script>alert(1)</script> CC BY-NC 4.0"
    _edit(run_copy, "config.resolved.yaml", lambda c: c["data"].update(licence=hostile))
    html = _environment(template_dir()).from_string('{% include "sections/_dependencies.html.j2" %}').render(
        dependencies=proprietary_view(RunView(run_copy)))
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)" in html
    assert FLAG_LABELS["non_commercial"] in html and "1 of " in html and "component(s) flagged" in html
