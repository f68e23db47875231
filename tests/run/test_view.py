"""RunView: the one reader of a run folder — files read once, absent and unreadable files explained, typed views."""

import json
import shutil

import pytest

from audited_ft.config import Config
from audited_ft.errors import RunFolderError
from audited_ft.run.view import RunView
from tests.paths import SAMPLE_RUN


@pytest.fixture
def run(tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(SAMPLE_RUN, folder)
    return folder


def test_reads_the_sample_run(run):
    view = RunView(run)
    assert view.run_id == json.loads((run / "manifest.json").read_text())["run_id"]
    assert view.metrics["eval.confidence"] == 0.95 and isinstance(view.config, Config)
    assert view.raw_config["run"]["seed"] == view.config.run.seed
    assert set(view.audits) == {"pii", "leakage", "profile"} and "summary" not in view.audits
    assert view.load("data/test.jsonl")[0]["id"] and view.load("eval/metrics.json") is view.metrics
    assert view.sources("eval/metrics.json")[0]["sha256"] == view.hashes["eval/metrics.json"]
    assert view.extra_adapters == {}


def test_absent_unreadable_and_misshapen_files_say_why(run):
    (run / "gates.json").unlink()
    (run / "train/summary.json").write_text("{not json", encoding="utf-8")
    (run / "eval/probes.json").write_text("[1, 2]", encoding="utf-8")
    view = RunView(run)
    assert view.gates is None and view.why_absent("gates.json", "gate").startswith("gates.json is absent (stage 'gate'")
    assert view.train_summary is None and "not valid JSON" in view.why_absent("train/summary.json", "train")
    assert view.probes is None and "expected a mapping, found list" in view.why_absent("eval/probes.json", "eval")
    assert "train/summary.json" in view.unreadable and "eval/probes.json" not in view.unreadable
    with pytest.raises(RunFolderError, match="run the 'gate' stage first"):
        view.require("gates.json", "gate")
    with pytest.raises(RunFolderError, match="not valid JSON"):
        view.require("train/summary.json", "train")


def test_a_folder_without_manifest_is_refused_unless_asked(tmp_path):
    with pytest.raises(RunFolderError, match="not a run folder, so there is nothing to report"):
        RunView(tmp_path, purpose="so there is nothing to report")
    view = RunView(tmp_path, manifest_required=False)
    assert view.manifest == {} and view.run_id == tmp_path.name and view.stages == {}


def test_a_config_that_no_longer_validates_is_none_with_the_reason(run):
    text = (run / "config.resolved.yaml").read_text(encoding="utf-8")
    (run / "config.resolved.yaml").write_text(text + "no_such_section: 1\n", encoding="utf-8")
    view = RunView(run)
    assert view.config is None and "no_such_section" in view.config_problem
    assert view.raw_config["no_such_section"] == 1  # the tolerant readers still see the file
    assert "config.resolved.yaml" not in view.unreadable  # readable, just not valid today


def test_extra_adapters_in_manifest_order(run):
    m = json.loads((run / "manifest.json").read_text())
    m["eval"].update(variants=["base", "adapter", "b", "a"], extra_adapters={"a": "/x/a", "b": "/x/b", "c": "/x/c"})
    (run / "manifest.json").write_text(json.dumps(m))
    assert RunView(run).extra_adapters == {"b": "/x/b", "a": "/x/a", "c": "/x/c"}
