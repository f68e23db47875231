"""Property tests (hypothesis) of the two loaders that read what people write by hand.

- the config loader (``load_config`` with ``--set`` overrides): any file text, any YAML tree, any mutation of the
  shipped default config gives a :class:`Config` or an :class:`AuditedFTError` (a clean exit 2) — never another
  exception, which the CLI would report as an internal error (exit 3);
- the data loader (``load_records``, what the data stage reads files with) and the field mapping after it: any bytes
  or lines as .jsonl / .csv / .json give rows or a :class:`DataError`, and the rows can be written to a run folder.
"""

from __future__ import annotations

import copy
import csv
import gzip
import io
import json
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from audited_ft.config import Config
from audited_ft.data.records import clean_rows, load_records, to_rows
from audited_ft.errors import AuditedFTError, ConfigError, DataError
from audited_ft.pipeline import load_config

REPO = Path(__file__).resolve().parents[1]
DEFAULT = yaml.safe_load((REPO / "configs/default.yaml").read_text(encoding="utf-8"))
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_DIR: list[Path] = []  # one folder for the module (hypothesis runs a body many times per function-scoped fixture)


@pytest.fixture(scope="module", autouse=True)
def _fuzz_dir(tmp_path_factory):
    _DIR.append(tmp_path_factory.mktemp("fuzz"))
    yield
    _DIR.pop()


def _write(name: str, data: bytes | str) -> Path:
    p = _DIR[-1] / name
    if isinstance(data, str):
        p.write_text(data, encoding="utf-8", errors="surrogatepass")
    else:
        p.write_bytes(data)
    return p


def _load_config(text: str | bytes, overrides: list[str] | None = None) -> Config | None:
    """load_config on a file holding ``text``: a Config, or None for an AuditedFTError; anything else fails."""
    path = _write("config.yaml", text)
    try:
        cfg = load_config(path, overrides)
    except AuditedFTError as exc:
        assert str(exc).strip(), "an error with no message"
        assert str(path) in str(exc) or (overrides and "--set" in str(exc)), f"error does not name the file: {exc}"
        return None
    assert isinstance(cfg, Config)
    return cfg


# ----------------------------------------------------------------------------------------------- config: strategies
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20))
keys = st.one_of(st.sampled_from(["data", "train", "source", "model", "gates", "probes", "audits", "epochs",
                                  "name_or_path", "metric", "min", "split", "rouge", "pii", "enabled",
                                  "accepted_risks", "fields_by_split", "test", "audit"]),
                 st.text(max_size=8), st.integers(-3, 3), st.booleans())
trees = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                        st.dictionaries(keys, inner, max_size=4)), max_leaves=12)
yaml_chars = st.text(alphabet=st.sampled_from(list("abcde:{}[]-,#&*!|>'\"%@` \n\t.0123456789=?\\\x00\x85\ufeff")),
                     max_size=80)


def _paths(node, prefix=()):
    """Every (path, value) inside a YAML tree of dicts and lists."""
    yield prefix, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


def _set(tree, path, value=None, delete=False):
    node = tree
    for p in path[:-1]:
        node = node[p]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value


DEFAULT_PATHS = [p for p, _ in _paths(DEFAULT) if p]


@st.composite
def mutated_default(draw):
    """configs/default.yaml with one to three mutations: a key dropped, a value's type changed, an unknown key added."""
    tree = copy.deepcopy(DEFAULT)
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p, _ in _paths(tree) if p]
        kind = draw(st.sampled_from(["drop", "retype", "add"]))
        path = draw(st.sampled_from(paths))
        if kind == "drop":
            _set(tree, path, delete=True)
        elif kind == "retype":
            _set(tree, path, draw(trees))
        else:
            sections = [p for p, v in _paths(tree) if isinstance(v, dict)]
            section = draw(st.sampled_from(sections))
            node = tree
            for p in section:
                node = node[p]
            node[draw(st.text(min_size=1, max_size=12))] = draw(scalars)
    return tree


# ----------------------------------------------------------------------------------------------- config: properties
@FUZZ
@given(st.one_of(st.text(max_size=200), yaml_chars, st.binary(max_size=120)))
def test_config_from_any_text(text):
    _load_config(text)


@FUZZ
@given(trees)
def test_config_from_any_yaml_tree(tree):
    _load_config(yaml.safe_dump(tree, allow_unicode=True))
    _load_config(yaml.safe_dump({"data": {"source": "d.jsonl"}, "x": tree}))  # nested under a valid config too


@FUZZ
@given(mutated_default())
def test_config_from_mutated_default(tree):
    _load_config(yaml.safe_dump(tree, allow_unicode=True, sort_keys=False))


@FUZZ
@given(st.sampled_from([()] + DEFAULT_PATHS), st.text(min_size=1, max_size=10).filter(lambda k: k != "<<"))
def test_an_unknown_key_is_named(path, key):
    """Adding an unknown key to any section of the default is an error that names it (the property can fail)."""
    tree = copy.deepcopy(DEFAULT)
    target = tree
    for p in path:
        target = target[p]
    assume(isinstance(target, dict) and key not in target)
    if len(path) == 2 and path[0] in ("audits", "probes"):  # an option the audit or probe has is not unknown
        from audited_ft.audit.audits import AUDITS
        from audited_ft.eval.probes import PROBES

        registry = AUDITS if path[0] == "audits" else PROBES
        assume(key not in registry.get(path[1]).Options.model_fields)
    assume(yaml.safe_load(yaml.safe_dump({key: 1}, allow_unicode=True)) == {key: 1})  # U+0085 reads as a break
    target[key] = 1
    with pytest.raises(ConfigError) as exc:
        load_config(_write("config.yaml", yaml.safe_dump(tree, allow_unicode=True)))
    assert ".".join(map(str, path + (key,))) in str(exc.value)


override_keys = st.one_of(st.sampled_from([".".join(map(str, p)) for p in DEFAULT_PATHS]),
                          st.text(alphabet=st.sampled_from(list("abcxyz.0123_=")), max_size=16))


@FUZZ
@given(st.lists(st.one_of(st.text(max_size=30),
                          st.tuples(override_keys, yaml_chars | st.text(max_size=12)).map("=".join)), max_size=4))
def test_config_with_any_set_overrides(overrides):
    _load_config((REPO / "configs/default.yaml").read_text(encoding="utf-8"), overrides)


@st.composite
def alias_documents(draw):
    """A config whose extra key holds a chain of anchors, each level a list of aliases to the one before: the
    expanded size is width**depth, from a few nodes to far beyond the loader's bound."""
    width, depth = draw(st.integers(1, 12)), draw(st.integers(1, 9))
    lines = ["data: {source: d.jsonl}", "levels:", f"  - &l0 [{', '.join(['x'] * width)}]"]
    lines += [f"  - &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, depth)]
    lines.append(f"x: *l{depth - 1}")
    return "\n".join(lines) + "\n", width ** depth


@FUZZ
@given(alias_documents())
def test_config_with_any_alias_structure(doc):
    """Any alias structure: a ConfigError — the unknown keys while the expansion is small, the expansion bound once
    its leaves alone pass it — and never an exception of another kind or a MemoryError."""
    from audited_ft.config import MAX_YAML_NODES

    text, leaves = doc
    path = _write("config.yaml", text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    if leaves <= MAX_YAML_NODES // 100:
        assert "aliases expand" not in str(caught.value) and "unknown key" in str(caught.value)
    elif leaves > MAX_YAML_NODES:
        assert "aliases expand this value to more than" in str(caught.value)


@FUZZ
@given(st.text(max_size=40))
def test_a_run_id_is_a_folder_inside_the_output_folder_or_refused(run_id):
    from audited_ft.run.folder import RunFolder

    out = _DIR[-1] / "runs"
    before = set(_DIR[-1].iterdir())
    try:
        rf = RunFolder.create(out, run_id)
    except AuditedFTError as exc:
        assert "--run-id" in str(exc) and "\n" not in str(exc)
        assert all(c.isprintable() for c in str(exc))  # the value shown inert
    else:
        assert rf.path.parent == out and rf.path.name == run_id and (rf.path / "manifest.json").is_file()
        import shutil

        shutil.rmtree(rf.path)
    assert set(_DIR[-1].iterdir()) - before <= {out}  # nothing created beside the output folder


@FUZZ
@given(st.lists(st.one_of(st.sampled_from(["..", ".", "", "/", "audits", "a..b", "~", "\0"]), st.text(max_size=8)),
                max_size=5))
def test_a_path_named_inside_a_run_folder_stays_inside_or_is_refused(parts):
    import os

    from audited_ft.run.folder import inside

    rel = "/".join(parts)
    root = _DIR[-1] / "run"
    try:
        path = inside(root, rel)
    except AuditedFTError as exc:
        assert "not a path inside the run folder" in str(exc) and all(c.isprintable() for c in str(exc))
    else:
        resolved = os.path.normpath(path)
        assert os.path.commonpath([str(root), resolved]) == str(root)


def test_shipped_default_loads_through_the_fuzz_helper():
    """The helper itself: the shipped default is a Config, a broken copy is a ConfigError (not a pass by accident)."""
    assert _load_config((REPO / "configs/default.yaml").read_text(encoding="utf-8")) is not None
    assert _load_config("data: {source: x.jsonl}\ntrain: {epochs: -1}\n") is None


# ----------------------------------------------------------------------------------------------- data loader
json_values = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12)),
                           lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                   st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                           max_leaves=8)
records = st.dictionaries(st.sampled_from(["a", "b", "id", "c", ""]) | st.text(max_size=4), json_values, max_size=4)
# Beside random text: a few shapes random generation rarely reaches (a lone surrogate escape, an integer past Python's
# 4300-digit limit, deep nesting, a byte-order mark).
lines = st.one_of(records.map(json.dumps), json_values.map(json.dumps), st.text(max_size=40),
                  st.sampled_from(['{"a": "\\ud800", "b": "x"}', '{"a": ' + "9" * 5000 + "}", "", "\ufeff{}"]),
                  st.integers(1, 5000).map(lambda n: "[" * n + "]" * n))
gzipped = st.tuples(st.binary(max_size=200), st.integers(0, 60)).map(lambda t: gzip.compress(t[0])[: t[1]])


def _load_rows(path: Path) -> list[dict] | None:
    """load_records then the field mapping and cleaning: rows that can be written as UTF-8, or None for a
    DataError; anything else fails."""
    try:
        recs = load_records(str(path))
    except DataError as exc:
        assert path.name in str(exc), f"error does not name the file: {exc}"
        return None
    assert isinstance(recs, list) and all(isinstance(r, dict) for r in recs)
    for id_field in (None, "id"):
        try:
            rows = to_rows(recs, str(path), "train", "a", "b", id_field)
        except DataError as exc:
            assert path.name in str(exc)
            continue
        kept, stats = clean_rows(rows, 1, 4000, 1000)
        assert stats.rows_in == len(rows) == stats.rows_out + sum(stats.dropped.values())
        "".join(json.dumps(r, ensure_ascii=False) for r in kept).encode("utf-8")  # what write_jsonl will do
    return recs


@FUZZ
@given(st.binary(max_size=300) | gzipped, st.sampled_from(["d.jsonl", "d.csv", "d.json", "d.jsonl.gz", "d.csv.gz"]))
def test_data_from_any_bytes(data, name):
    _load_rows(_write(name, data))


@FUZZ
@given(st.lists(lines, max_size=8), st.sampled_from(["\n", "\r\n", "\r"]))
def test_jsonl_from_any_lines(items, newline):
    _load_rows(_write("d.jsonl", newline.join(items)))


@FUZZ
@given(st.lists(records, min_size=1, max_size=6))
def test_jsonl_and_json_of_objects_round_trip(recs):
    """Well-formed files load exactly as written (a property that can fail, beside "no crash")."""
    want = json.dumps(recs)  # compared as JSON text: NaN != NaN
    assert json.dumps(_load_rows(_write("d.jsonl", "".join(json.dumps(r) + "\n" for r in recs)))) == want
    assert json.dumps(_load_rows(_write("d.json", want))) == want


cells = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\ufeff"), max_size=12)


@FUZZ
@given(st.lists(st.lists(cells, min_size=0, max_size=4), min_size=0, max_size=6), st.booleans(), st.booleans())
def test_csv_from_any_table(table, bom, quote_all):
    """Any table csv.writer can write loads, or is refused with a DataError; a rectangular one with a usable header
    loads exactly as written."""
    buf = io.StringIO()
    csv.writer(buf, quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL).writerows(table)
    recs = _load_rows(_write("d.csv", ("\ufeff" if bom else "") + buf.getvalue()))
    rows = [r for r in table if r]  # csv.writer writes an empty row as a blank line, which is skipped
    if not rows:
        assert recs == []
        return
    header, body = rows[0], rows[1:]
    usable = len(set(header)) == len(header) and all(h.strip() for h in header)
    if usable and all(len(r) == len(header) for r in body):
        assert recs == [dict(zip(header, r)) for r in body]
    else:
        assert recs is None


@FUZZ
@given(st.lists(lines, max_size=6), st.sampled_from(["\n", "\r\n", "\r"]))
def test_csv_from_any_lines(items, newline):
    _load_rows(_write("d.csv", newline.join(items)))
