"""Bad inputs through the real CLI (typer's CliRunner, in process): one clear message, exit 2, no traceback.

Every case is a real file or small folder beside this module (``<case>/``) plus the expectation below: the exit code,
and the concrete message content — the file, the field and the offending value. Where the command created a run
folder, its manifest must say ``status: error`` and name the failed stage, and the stage's outputs must be absent:
nothing half-made is presented as complete. A few inputs are generated at test time because they are big or binary
(the 10 MB row, a truncated .gz, a 5000-digit number, a non-UTF-8 byte past the first 8 KiB).

pytest-timeout is not installed in this project's environment, so no timeout marker is set.
"""

from __future__ import annotations

import errno
import gzip
import json
import logging
import os
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from audited_ft.cli import app
from tests.conftest import make_tiny_rows, write_jsonl
from tests.paths import SAMPLE_RUN

HERE = Path(__file__).resolve().parent
SAMPLE_RUN = SAMPLE_RUN
AUDITS_OFF = "audits: {pii: {enabled: false}, leakage: {enabled: false}, profile: {enabled: false}}\n"
runner = CliRunner()


# ----------------------------------------------------------------------------------------------- helpers
def case_dir(name: str, tmp_path: Path) -> Path:
    """A copy of case folder ``name`` in tmp_path (run folders and generated files stay out of the checkout)."""
    dst = tmp_path / name
    shutil.copytree(HERE / name, dst)
    return dst


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def check_clean(result, code: int, *fragments: str) -> str:
    """Exit ``code``; one message holding every fragment; no traceback, no "internal error"; one paragraph."""
    out = result.output
    assert result.exit_code == code, out
    assert "Traceback" not in out and "internal error" not in out, out
    for fragment in fragments:
        assert fragment in out, f"{fragment!r} not in:\n{out}"
    if code == 2:
        message = out[out.index("error: "):]
        assert "\n\n" not in message.strip(), f"more than one paragraph:\n{message}"
    return out


def check_manifest(run: Path, stage: str, *fragments: str) -> dict:
    m = json.loads((run / "manifest.json").read_text())
    assert m["status"] == "error", m["status"]
    assert m["failed_stage"] == stage
    assert m["stages"][stage]["status"] == "error"
    for fragment in fragments:
        assert fragment in m["stages"][stage]["error"]
    return m


def no_temp_files(root: Path) -> None:
    left = [p for p in root.rglob("*.tmp")]
    assert not left, f"temporary files left behind: {left}"


# ----------------------------------------------------------------------------------------------- config cases
# `validate CONFIG`: no run folder is made. Fragments name the file (config.yaml), the field and the value.
CONFIG_CASES = {
    "bad_yaml": ["config.yaml, line 3, column 2: not valid YAML (", "expected <block end>"],
    "empty_config": ["config.yaml: the config file is empty; it needs at least a 'data:' section"],
    "config_is_a_list": ["config.yaml: the top level must be a mapping of sections, got list"],
    "config_non_utf8": ["config.yaml, line 2: not valid UTF-8 (byte offset 44: b'\\xe9sum'"],
    "unknown_key": ["config.yaml: config is not well-formed", "data.input_feild: unknown key. Did you mean 'input_field'?",
                    "trian: unknown key. Did you mean 'train'?"],
    "unknown_key_per_split": ["data.fields_by_split.test.target_feild: unknown key. Did you mean 'target_field'?"],
    "unknown_probe": ["probes.toxcity: unknown probe 'toxcity'. Did you mean 'toxicity'?", "Registered: "],
    "unknown_audit": ["audits.leakge: unknown audit 'leakge'. Did you mean 'leakage'?"],
    "string_for_number": ["config.yaml: config is not well-formed", "train.epochs: Input should be a valid number",
                          "(got 'two')"],
    "zero_and_negative": ["train.batch_size: Input should be greater than or equal to 1 (got 0)",
                          "lora.r: Input should be greater than or equal to 1 (got -4)",
                          "data.max_input_chars: Input should be greater than or equal to 1 (got 0)"],
    "split_fractions": ["data.split: Value error, split fractions must sum to 1, got 1.2"],
    "prompt_without_input": ["data.prompt_template: Value error, must contain '{input}' (got 'Summarise this dialogue.')"],
    "accepted_risks_not_a_list": ["accepted_risks: Input should be a valid list (got 5)"],
    "non_string_key": ["config.yaml: config is not well-formed", "  - 1: Keys should be strings (got 1)"],
    "bad_run_name": ["run.name: String should match pattern", "(got 'my run!')"],
    "run_name_parent": ["run.name: Value error, must not contain '..'", "(got '..')"],
    "yaml_alias_bomb": ["config.yaml, line 8: aliases expand this value to more than 100,000 nodes"],
    "duplicate_key": ["config.yaml, line 5: key 'train' is given twice (first on line 2)"],
}


@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_config_case(case, tmp_path):
    d = case_dir(case, tmp_path)
    check_clean(invoke("validate", d / "config.yaml"), 2, *CONFIG_CASES[case])


def test_alias_bomb_is_refused_under_a_memory_limit(tmp_path):
    """The bomb in a separate process capped at 1 GiB of address space beyond what it has at start: refused with
    exit 2 before anything expands it (it used to end in a MemoryError, exit 3, while formatting the message)."""
    import subprocess
    import sys

    d = case_dir("yaml_alias_bomb", tmp_path)
    code = ("import resource, sys\n"
            "from audited_ft.cli import main\n"  # imports first: the limit is for the config, not the libraries
            "soft = resource.getrlimit(resource.RLIMIT_AS)[0]\n"
            "with open('/proc/self/statm') as f: used = int(f.read().split()[0]) * resource.getpagesize()\n"
            "resource.setrlimit(resource.RLIMIT_AS, (used + 2**30, resource.getrlimit(resource.RLIMIT_AS)[1]))\n"
            f"sys.argv = ['audited-ft', 'validate', {str(d / 'config.yaml')!r}]\n"
            "main()\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr[-2000:]
    assert "aliases expand this value to more than 100,000 nodes" in r.stderr + r.stdout
    assert "Traceback" not in r.stderr and "MemoryError" not in r.stderr


def test_a_bomb_or_duplicate_in_a_set_override_is_refused(tmp_path):
    d = case_dir("bad_yaml", tmp_path)  # the file is never read: the override is checked first or fails alike
    (d / "config.yaml").write_text("data: {source: data.jsonl}\n")
    bomb = "{a: &a [x, x, x, x, x, x, x, x, x, x], " + ", ".join(
        f"b{i}: &b{i} [" + ", ".join([f"*{'a' if i == 0 else f'b{i - 1}'}"] * 10) + "]" for i in range(6)) + "}"
    check_clean(invoke("validate", d / "config.yaml", "--set", f"train.extra={bomb}"), 2,
                "--set value", "aliases expand this value to more than 100,000 nodes")
    check_clean(invoke("validate", d / "config.yaml", "--set", "train={epochs: 1, epochs: 2}"), 2,
                "key 'epochs' is given twice")


def test_yaml_merge_keys_and_shared_anchors_still_load(tmp_path):
    from audited_ft.config import safe_yaml

    assert safe_yaml("base: &b {epochs: 1, lr: 0.1}\ntrain:\n  <<: *b\n  epochs: 2\n")["train"] == {"epochs": 2,
                                                                                                     "lr": 0.1}
    assert safe_yaml("x: &x [1, 2]\ny: *x\nz: *x\n") == {"x": [1, 2], "y": [1, 2], "z": [1, 2]}


@pytest.mark.parametrize("run_id", ["../escaped-run", "/tmp/abs", "a/b", "..", ".hidden", "a\x1b[31mb", "x" * 129,
                                    "a\\b"])
def test_a_run_id_is_a_name_never_a_path(run_id, tmp_path):
    out = tmp_path / "runs"
    r = invoke("audit", HERE.parents[1] / "configs/default.yaml", "--out", out, "--run-id", run_id)
    check_clean(r, 2, "--run-id", "not a name")
    assert "\x1b" not in r.output  # shown inert
    assert [p.name for p in tmp_path.iterdir()] in ([], ["runs"])  # nothing beside the output folder
    assert not (out.exists() and any(out.iterdir()))  # and nothing in it


def test_a_run_folder_symlinked_out_of_the_output_folder_is_refused(tmp_path):
    from audited_ft.errors import RunFolderError
    from audited_ft.run.folder import RunFolder

    (tmp_path / "runs").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "runs" / "r1").symlink_to(tmp_path / "elsewhere" / "r1")  # dangling, points outside
    with pytest.raises(RunFolderError, match="outside"):
        RunFolder.create(tmp_path / "runs", "r1")
    assert not (tmp_path / "elsewhere" / "r1").exists()


def test_config_folder_and_missing_file(tmp_path):
    check_clean(invoke("validate", tmp_path), 2, f"{tmp_path}: is a folder, not a config file")
    check_clean(invoke("validate", tmp_path / "nope.yaml"), 2, "nope.yaml: config file not found")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file whatever its mode")
def test_unreadable_config_and_data(tmp_path):
    d = case_dir("csv_with_bom", tmp_path)
    (d / "config.yaml").chmod(0)
    check_clean(invoke("validate", d / "config.yaml"), 2, "config.yaml: cannot read config (Permission denied)")
    (d / "config.yaml").chmod(0o644)
    (d / "data.csv").chmod(0)
    check_clean(invoke("audit", d / "config.yaml", "--out", tmp_path / "runs", "--run-id", "r"), 2,
                "data.csv: cannot read (", "Permission denied")
    check_manifest(tmp_path / "runs/r", "data", "Permission denied")


@pytest.mark.parametrize("override, fragments", [
    ("train.epochs", ["--set 'train.epochs': expected key=value"]),
    ("data.source.path=x.jsonl", ["--set 'data.source.path=x.jsonl': 'data.source' is a value, not a section"]),
    ("gates.3.min=1", ["--set 'gates.3.min=1': 'gates' is a list of 0; '3' is not an index in it"]),
    ("train.epochs=nan", ["train.epochs: Input should be greater than 0 (got 'nan')"]),
    ("data.input_field=1e4", ["data.input_field: Input should be a valid string (got 10000.0)"]),
])
def test_bad_set_override(override, fragments, tmp_path):
    d = case_dir("bad_override", tmp_path)
    (d / "config.yaml").write_text((d / "config.yaml").read_text() + "gates: []\n")
    check_clean(invoke("validate", d / "config.yaml", "--set", override), 2, *fragments)


def test_an_exponent_override_is_a_number_and_inf_stays_text(tmp_path):
    """`--set` parses YAML; YAML 1.1 reads "2e-4" as text, so that form (and only that form) is made a number."""
    d = case_dir("bad_override", tmp_path)
    write_jsonl(d / "data.jsonl", make_tiny_rows())  # validate checks that the data file is there
    check_clean(invoke("validate", d / "config.yaml", "--set", "train.learning_rate=2e-4",
                       "--set", "model.name_or_path=inf"), 0, "OK — model inf")


# ----------------------------------------------------------------------------------------------- data cases
# `audit CONFIG`: the run folder is made, the data stage fails; its outputs must not exist.
DATA_CASES = {
    "jsonl_malformed_line": ["data.jsonl, line 3: not valid JSON (Expecting ',' delimiter, column 136)"],
    "jsonl_not_an_object": ["data.jsonl, line 2: expected a JSON object, got list"],
    "csv_missing_column": ["data.csv: data.target_field = 'summary' is not a field of this data.",
                           "Fields present: dialogue, id"],
    "csv_misspelt_column": ["data.csv: data.input_field = 'dialogue' is not a field of this data. "
                            "Did you mean 'dialog'?"],
    "csv_ragged_row": ["data.csv, line 3: 4 field(s), but the header has 3 (id, dialogue, summary)"],
    "csv_duplicate_header": ["data.csv, line 1: column 'summary' appears twice in the header"],
    "number_as_text": ["data.jsonl, row 1: field 'summary' must be text, got int ('42')"],
    "list_as_text": ["data.jsonl, row 2: field 'dialogue' must be text, got list (\"['#Person1#: hi'"],
    "empty_split_file": ["test.jsonl: split 'test' is empty (no rows)"],
    "all_rows_dropped": ["data.jsonl: every one of the 4 row(s) of split 'all' was dropped by cleaning (empty: 4)"],
    "all_train_rows_too_long": ["train.jsonl: every one of the 3 row(s) of split 'train' was dropped by cleaning "
                                "(too_long: 3)", "data.max_input_chars = 20"],
    "too_few_rows_to_split": ["data.jsonl: only 1 row(s) after cleaning: too few to split",
                              "data.split = (train 0.8, validation 0.1, test 0.1)"],
    "non_utf8_bytes": ["data.jsonl, line 2: not valid UTF-8 (byte offset {offset}: b'\\xe9 au'"],
    "missing_ids": ["data.jsonl, row 2: data.id_field 'id' must be a non-empty text or number, got NoneType"],
    "lone_surrogate": ["data.jsonl, row 2: field 'summary' holds an unpaired surrogate '\\ud83d' at character 7"],
    "json_not_a_list": ["data.json: a .json data file must hold a list of objects (one per row), got dict with "
                        "keys 'rows'"],
    "data_path_is_a_folder": ["data.source = '{dir}/rows.jsonl': is a folder, not a data file"],
    "missing_data_file": ["data.source = '{dir}/nope.jsonl': data file not found"],
}


@pytest.mark.parametrize("case", sorted(DATA_CASES))
def test_data_case(case, tmp_path):
    d = case_dir(case, tmp_path)
    offset = (d / "data.jsonl").read_bytes().index(b"\xe9") if case == "non_utf8_bytes" else None
    fragments = [f.format(dir=d, offset=offset) for f in DATA_CASES[case]]
    r = invoke("audit", d / "config.yaml", "--out", tmp_path / "runs", "--run-id", "r")
    check_clean(r, 2, *fragments)
    run = tmp_path / "runs/r"
    check_manifest(run, "data", fragments[0])
    assert not (run / "data/train.jsonl").exists() and not (run / "audits").exists()
    no_temp_files(run)


def test_non_utf8_offset_is_the_files_not_a_read_chunks(tmp_path):
    """The decoder's own offset counts from the start of the chunk it was reading (8 KiB): the message must give the
    byte offset in the file, and its line."""
    rows = make_tiny_rows()
    text = "".join(json.dumps(r) + "\n" for r in rows * 3).encode("utf-8")
    assert len(text) > 20_000
    bad = text + b'{"id": "x", "dialogue": "caf\xe9", "summary": "s"}\n'
    (tmp_path / "big.jsonl").write_bytes(bad)
    (tmp_path / "c.yaml").write_text("data: {source: big.jsonl}\n")
    check_clean(invoke("audit", tmp_path / "c.yaml", "--out", tmp_path / "runs", "--run-id", "r"), 2,
                f"big.jsonl, line {len(rows) * 3 + 1}: not valid UTF-8 (byte offset {bad.index(b'caf') + 3}:")


@pytest.mark.parametrize("name, content, fragment", [
    ("data.jsonl.gz", gzip.compress(b'{"dialogue": "a", "summary": "b"}\n' * 50)[:40],
     "data.jsonl.gz: cannot read (Compressed file ended before the end-of-stream marker was reached)"),
    ("data.jsonl.gz", b'{"dialogue": "not gzip"}\n', "data.jsonl.gz: cannot read (Not a gzipped file"),
    ("data.jsonl", b'{"dialogue": ' + b"7" * 5000 + b', "summary": "s"}\n',
     "data.jsonl, line 1: not usable JSON ('Exceeds the limit (4300 digits)"),
    ("data.json", b"[" * 100_000 + b"]" * 100_000, "data.json: not usable JSON ('maximum recursion depth exceeded"),
    ("data.json", b'[{"dialogue": "a", "summary": "b"}, 3]', "data.json, item 1: a .json data file must hold a "
                                                             "list of objects, got int ('3')"),
    ("data.json", b'[{"dialogue": "a",\n "summary": }]', "data.json, line 2, column 13: not valid JSON (Expecting value)"),
    ("data.parquet", b"PAR1 not really", "data.parquet: cannot read Parquet ("),
])
def test_generated_unreadable_files(name, content, fragment, tmp_path):
    (tmp_path / name).write_bytes(content)
    (tmp_path / "c.yaml").write_text(f"data: {{source: {name}}}\n")
    r = invoke("audit", tmp_path / "c.yaml", "--out", tmp_path / "runs", "--run-id", "r")
    check_clean(r, 2, fragment)
    check_manifest(tmp_path / "runs/r", "data", fragment)


# ----------------------------------------------------------------------------------------------- handled inputs
@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_ten_megabyte_row_is_dropped_by_the_length_rule(fmt, tmp_path):
    """Decision: a 10 MB row is not an error. It is read (the CSV reader's 128 KiB field limit is lifted for the
    read, so CSV and JSONL behave alike) and dropped by the cleaning rule data.max_input_chars as "too_long", counted
    in data/stats.json like any other drop; the run goes on with the other rows. An error would make one stray row
    stop a whole data set, which the length rules exist to handle."""
    import csv

    rows = make_tiny_rows()
    huge = {"id": "huge", "dialogue": "#Person1#: " + "blah " * 2_000_000, "summary": "A very long dialogue."}
    assert len(huge["dialogue"]) >= 10_000_000
    path = tmp_path / f"data.{fmt}"
    if fmt == "jsonl":
        write_jsonl(path, rows[:20] + [huge] + rows[20:])
    else:
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=["id", "dialogue", "summary"])
            w.writeheader()
            w.writerows(rows[:20] + [huge] + rows[20:])
    (tmp_path / "c.yaml").write_text(f"data: {{source: data.{fmt}, id_field: id}}\n" + AUDITS_OFF)
    r = invoke("audit", tmp_path / "c.yaml", "--out", tmp_path / "runs", "--run-id", "r")
    check_clean(r, 0)
    run = tmp_path / "runs/r"
    stats = json.loads((run / "data/stats.json").read_text())
    assert stats["cleaning"]["all"] == {"rows_in": 41, "rows_out": 40, "dropped": {"too_long": 1}}
    kept = [json.loads(ln) for s in ("train", "validation", "test") for ln in (run / f"data/{s}.jsonl").open()]
    assert len(kept) == 40 and "huge" not in {k["id"] for k in kept}
    assert sum((run / f"data/{s}.jsonl").stat().st_size for s in ("train", "validation", "test")) < 100_000


def test_csv_with_byte_order_mark_reads_its_first_column(tmp_path):
    """A BOM (as spreadsheet programs write) is skipped, not read into the first column's name ('\\ufeffid')."""
    d = case_dir("csv_with_bom", tmp_path)
    assert (d / "data.csv").read_bytes().startswith(b"\xef\xbb\xbfid,")
    check_clean(invoke("audit", d / "config.yaml", "--out", tmp_path / "runs", "--run-id", "r"), 0)
    ids = {json.loads(ln)["id"] for s in ("train", "test") for ln in (tmp_path / f"runs/r/data/{s}.jsonl").open()}
    assert ids == {f"r{i}" for i in range(6)}


def test_duplicate_ids_are_dropped_counted_and_named(tmp_path, caplog):
    """Decision: as documented (README, Data), rows whose id repeats an earlier row's are dropped and counted by
    reason ("duplicate_id"), not an error — the first row with the id is kept. The data stage warns once per split,
    naming the file, the id field and the first repeated id, so the drop is never silent."""
    d = case_dir("duplicate_ids", tmp_path)
    with caplog.at_level(logging.WARNING, logger="audited_ft.data.stage"):
        check_clean(invoke("audit", d / "config.yaml", "--out", tmp_path / "runs", "--run-id", "r"), 0)
    warning = " ".join(r.getMessage() for r in caplog.records if r.name == "audited_ft.data.stage")
    assert f"{d / 'data.jsonl'}: 1 row(s) of split 'all' dropped because their data.id_field 'id' value repeats an " \
           "earlier row's (first: 'r1')" in warning
    stats = json.loads((tmp_path / "runs/r/data/stats.json").read_text())
    assert stats["cleaning"]["all"]["dropped"] == {"duplicate_id": 1}


# ----------------------------------------------------------------------------------------------- run-folder cases
@pytest.fixture
def run_copy(tmp_path) -> Path:
    """tests/fixtures/sample_run, whose adapter folder holds only adapter_config.json, given a weight file: a valid
    safetensors file with one zero tensor. It is never loaded in these tests, which fail on the model first; it only
    gets the run past the check that the adapter has safetensors weights."""
    import numpy as np
    from safetensors.numpy import save_file

    run = tmp_path / "run"
    shutil.copytree(SAMPLE_RUN, run)
    save_file({"placeholder": np.zeros(1, dtype=np.float32)}, str(run / "train/adapter/adapter_model.safetensors"))
    return run


def _set_model(run: Path, model_yaml: Path) -> None:
    cfg = yaml.safe_load((run / "config.resolved.yaml").read_text())
    cfg["model"].update(yaml.safe_load(model_yaml.read_text()))
    (run / "config.resolved.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))


def test_missing_model_path(run_copy, tmp_path):
    d = case_dir("missing_model_path", tmp_path)
    _set_model(run_copy, d / "model.yaml")
    msg = "model.name_or_path = '/nonexistent/audited-ft/models/llama': no such folder"
    check_clean(invoke("eval", run_copy), 2, msg)
    check_manifest(run_copy, "eval", msg)


def test_hub_id_while_offline_is_a_model_error(run_copy, tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # read once, at import
    d = case_dir("hub_id_offline", tmp_path)
    _set_model(run_copy, d / "model.yaml")
    msg = "model.name_or_path = 'acme-audited-ft-tests/no-such-model': cannot load the tokenizer (offline, or not a model?)"
    check_clean(invoke("eval", run_copy), 2, msg)
    check_manifest(run_copy, "eval", msg)


def test_adapter_of_another_base_model(run_copy, tmp_path):
    import numpy as np
    from safetensors.numpy import save_file

    d = case_dir("adapter_other_base", tmp_path)
    save_file({"placeholder": np.zeros(1, dtype=np.float32)}, str(d / "adapter/adapter_model.safetensors"))
    r = invoke("eval", run_copy, "--adapter", f"other={d / 'adapter'}")
    msg = (f"--adapter other={d / 'adapter'}: its adapter_config.json has base_model_name_or_path = "
           "'meta-llama/Llama-2-7b-hf', but this run's adapter was trained on "
           "'/root/.cache/audited_ft/models/smollm2-135m-instruct-0.1.2'")
    check_clean(r, 2, msg)
    assert json.loads((run_copy / "manifest.json").read_text())["status"] == "passed"  # checked before it is touched


def test_adapter_folder_without_adapter_config(run_copy, tmp_path):
    check_clean(invoke("eval", run_copy, "--adapter", f"other={tmp_path}"), 2,
                f"--adapter other={tmp_path}: no adapter_config.json there — not a PEFT adapter folder")
    assert json.loads((run_copy / "manifest.json").read_text())["status"] == "passed"  # checked before it is touched


@pytest.mark.parametrize("case, fragments", [
    ("gates_unknown_metric", ["gates name unknown metrics:", "gate 'rouge.rougeL.detla' is not in",
                              "eval/metrics.json or audits/*.json. Did you mean 'rouge.rougeL.delta'?"]),
    ("gates_bad_key", ["gates.yaml: config is not well-formed", "gates.0.mni: unknown key. Did you mean 'min'?"]),
    ("gates_not_a_list", ["gates.yaml: expected a list of gates, or a mapping with 'gates'", "got str"]),
])
def test_bad_gates_file(case, fragments, run_copy, tmp_path):
    d = case_dir(case, tmp_path)
    before = {f: (run_copy / f).read_bytes() for f in ("gates.json", "manifest.json")}
    check_clean(invoke("gate", run_copy, "--gates", d / "gates.yaml"), 2, *fragments)
    # the old result is not overwritten by a half check, and the finished run's manifest (its verdict) is left as it
    # was: a gates file is checked before the run folder is touched (unknown metric keys included)
    assert {f: (run_copy / f).read_bytes() for f in before} == before


# ----------------------------------------------------------------------------------------------- full disk
class _FullDisk:
    """Stands in for ``os`` inside audited_ft.run.folder: renaming a finished temporary file onto a path that
    ``full(path)`` picks fails with ENOSPC, as the last step of a write on a full disk would."""

    def __init__(self, full):
        self._full = full

    def __getattr__(self, name):
        return getattr(os, name)

    def replace(self, src, dst):
        if self._full(Path(dst)):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
        return os.replace(src, dst)


@pytest.fixture
def tiny_config(tmp_path) -> Path:
    write_jsonl(tmp_path / "d.jsonl", make_tiny_rows())
    (tmp_path / "c.yaml").write_text("data: {source: d.jsonl}\n" + AUDITS_OFF)
    return tmp_path / "c.yaml"


def test_disk_full_while_writing_data(tiny_config, tmp_path, monkeypatch):
    import audited_ft.run.folder as runfolder

    monkeypatch.setattr(runfolder, "os", _FullDisk(lambda p: p.parent.name == "data"))
    r = invoke("audit", tiny_config, "--out", tmp_path / "runs", "--run-id", "r")
    run = tmp_path / "runs/r"
    msg = f"{run / 'data'}/"
    out = check_clean(r, 2, msg, ".jsonl: cannot write it — the disk is full (No space left on device)",
                      "Nothing half-written was left in its place; free space and re-run")
    assert out.count("error: ") == 1
    check_manifest(run, "data", "the disk is full")
    assert not list((run / "data").iterdir())  # no data file, no temporary file
    no_temp_files(run)


def test_disk_full_from_the_first_write(tiny_config, tmp_path, monkeypatch):
    """Nothing can be written, not even the manifest: the message still says which file, and no file is left
    looking complete (the run folder holds no manifest, so no command takes it for a run)."""
    import audited_ft.run.folder as runfolder

    monkeypatch.setattr(runfolder, "os", _FullDisk(lambda p: True))
    r = invoke("audit", tiny_config, "--out", tmp_path / "runs", "--run-id", "r")
    check_clean(r, 2, f"{tmp_path / 'runs/r/manifest.json'}: cannot write it — the disk is full")
    assert list((tmp_path / "runs/r").iterdir()) == []


@pytest.mark.parametrize("err, code, fragment", [
    (errno.ENOSPC, 2, "/x/runs/r/train/adapter/adapter_model.safetensors: cannot write it — the disk is full "
                      "(No space left on device). free space and re-run"),
    (errno.EACCES, 2, "/x/runs/r/train/adapter/adapter_model.safetensors: cannot write it — permission denied "
                      "(Permission denied). fix the permissions and re-run"),
    (errno.ECONNRESET, 3, "internal error (ConnectionResetError)"),
])
def test_cli_maps_disk_and_permission_errors_from_any_writer(err, code, fragment, monkeypatch):
    """A library that writes on its own (safetensors, matplotlib) raises a plain OSError: a full disk or a refused
    permission is the user's to fix (exit 2, the file named); any other OSError stays a bug (exit 3)."""
    import audited_ft.config

    def fail(*_a, **_k):
        raise OSError(err, os.strerror(err), "/x/runs/r/train/adapter/adapter_model.safetensors")

    monkeypatch.setattr(audited_ft.config, "load_config", fail)
    r = invoke("validate", "any.yaml")
    assert r.exit_code == code and fragment in r.output and "Traceback" not in r.output, r.output


def test_config_with_a_control_character(tmp_path):
    (tmp_path / "c.yaml").write_text("data: {source: d.jsonl}\nreport: {title: \"a\x07b\"}\n")
    check_clean(invoke("validate", tmp_path / "c.yaml"), 2,
                "c.yaml, line 2, column 19: not valid YAML (the character U+0007 is not allowed in YAML)")


def test_empty_config_completed_by_set_is_fine(tmp_path):
    (tmp_path / "c.yaml").write_text("")
    write_jsonl(tmp_path / "d.jsonl", make_tiny_rows())
    check_clean(invoke("validate", tmp_path / "c.yaml", "--set", "data.source=d.jsonl"), 0, "c.yaml: OK")


# ----------------------------------------------------------------------------------------------- filesystem oddities
def _odd_paths(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """name → (path, fragment of the message): entries that exist but are not regular readable files."""
    loop = tmp_path / "loop.yaml"
    loop.symlink_to(loop)
    dangling = tmp_path / "dangling.yaml"
    dangling.symlink_to(tmp_path / "gone.yaml")
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * 1_000_001)
    return {"loop": (loop, "is a symbolic link loop"), "dangling": (dangling, "(a dangling link)"),
            "fifo": (fifo, "is a named pipe (FIFO), not a regular file"),
            "device": (Path("/dev/null"), "is a character device, not a regular file"),
            "big": (big, "is 1,000,001 bytes, too large")}


def test_config_paths_that_are_not_regular_files_are_named_not_opened(tmp_path):
    for name, (path, fragment) in _odd_paths(tmp_path).items():
        check_clean(invoke("validate", path), 2, f"{path}: ", fragment)
        check_clean(invoke("gate", SAMPLE_RUN, "--gates", path), 2, "--gates", fragment)


def test_data_paths_that_are_not_regular_files_are_named_not_opened(tmp_path):
    odd = _odd_paths(tmp_path)
    for name in ("loop", "dangling", "fifo"):
        path, fragment = odd[name]
        config = tmp_path / f"{name}-config.yaml"
        config.write_text(f"data: {{source: {path}}}\n")
        check_clean(invoke("validate", config), 2, f"data.source = '{path}'", fragment)  # before any run folder
        out = tmp_path / f"runs-{name}"
        check_clean(invoke("audit", config, "--out", out), 2, f"data.source = '{path}'", fragment)
        (run,) = list(out.iterdir())  # the run folder records the failed stage; nothing outside it
        check_manifest(run, "data", fragment)
        no_temp_files(out)


def test_validate_finds_what_the_run_would_fail_on(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("data: {source: nope.jsonl}\n"
                      "audits: {pii: {entities: [SSN, PERSON], policy: {CREDITCARD: fail}}}\n"
                      "probes: {crows_pairs: {data: '{data_dir}/crows_pairs'}}\n")
    out = check_clean(invoke("validate", config, "--set", f"data.data_dir={tmp_path / 'no-such-dir'}"), 2,
                      "well-formed but cannot run")
    assert "data.source = 'nope.jsonl': data file not found" in out
    assert "audits.pii.entities: unknown entity type 'SSN' (did you mean 'US_SSN'?)" in out
    assert "audits.pii.policy: unknown entity type 'CREDITCARD' (did you mean 'CREDIT_CARD'?)" in out
    assert f"data.data_dir ({tmp_path / 'no-such-dir'}), named by a probe's '{{data_dir}}': does not exist" in out
    config.write_text("data: {source: embedded}\ngates: [{metric: rouge.rougeL.adapter, min: 0.5, max: 0.2}]\n")
    check_clean(invoke("validate", config), 2, "gates.0: Value error, 'min' (0.5) is above 'max' (0.2)")


def test_output_folders_that_are_not_folders_are_named_before_anything_is_written(tmp_path):
    odd = _odd_paths(tmp_path)
    afile = tmp_path / "a-file"
    afile.write_text("x")
    cases = {**{n: odd[n] for n in ("loop", "dangling", "fifo")}, "file": (afile, "is a file, not a folder")}
    before = sorted(p.name for p in tmp_path.iterdir())
    for name, (path, fragment) in cases.items():
        fragment = fragment.replace("not a regular file", "not a folder").split(";")[0]
        r = invoke("audit", HERE.parents[1] / "configs/default.yaml", "--out", path, "--run-id", "r1")
        check_clean(r, 2, f"--out {path}: ", fragment)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing made, nothing followed


def test_run_and_adapter_folders_that_are_not_folders_are_named(run_copy, tmp_path):
    odd = _odd_paths(tmp_path)
    afile = tmp_path / "a-file"
    afile.write_text("x")
    cases = {**{n: odd[n] for n in ("loop", "dangling", "fifo")}, "file": (afile, "is a file, not a folder")}
    for name, (path, fragment) in cases.items():
        fragment = fragment.replace("not a regular file", "not a folder").split(";")[0]
        check_clean(invoke("eval", path), 2, f"{path}: ", fragment, "not a run folder")
        check_clean(invoke("eval", run_copy, "--adapter", f"other={path}"), 2, f"--adapter other={path}: ", fragment)
    assert json.loads((run_copy / "manifest.json").read_text())["status"] == "passed"  # checked before it is touched
    fifo_manifest = tmp_path / "fifo-run"
    fifo_manifest.mkdir()
    os.mkfifo(fifo_manifest / "manifest.json")  # opening it would block: refused, not read
    check_clean(invoke("eval", fifo_manifest), 2, "manifest.json: is a named pipe (FIFO)")


def test_probe_set_paths_are_checked_by_validate_and_by_the_loader(tmp_path):
    from audited_ft.errors import DataError
    from audited_ft.eval.sets import load_probe_set

    odd = _odd_paths(tmp_path)
    config = tmp_path / "config.yaml"
    config.write_text(f"data: {{source: embedded}}\nprobes:\n  crows_pairs: {{data: '{odd['fifo'][0]}'}}\n"
                      f"  toxicity: {{data: {{rtp: '{odd['loop'][0]}'}}}}\n"
                      "  bbq: {data: '{data_dir}/no-such-set'}\n")
    out = check_clean(invoke("validate", config, "--set", f"data.data_dir={tmp_path}"), 2, "cannot run")
    assert f"probes.crows_pairs.data = '{odd['fifo'][0]}'" in out and "is a named pipe (FIFO)" in out
    assert f"probes.toxicity.data.rtp = '{odd['loop'][0]}'" in out and "is a symbolic link loop" in out
    assert f"probes.bbq.data = '{{data_dir}}/no-such-set' ({tmp_path / 'no-such-set'}): does not exist" in out
    for name in ("loop", "dangling", "fifo"):
        path, fragment = odd[name]
        with pytest.raises(DataError, match=fragment.split(",")[0].replace("(", r"\(").replace(")", r"\)")):
            load_probe_set("crows_pairs", str(path), None)
