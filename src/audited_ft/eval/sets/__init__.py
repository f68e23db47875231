"""Evaluation data sets: what the probes measure on, and what the leakage audit checks the training data against.

A set has a name (``advbench``, ``crows_pairs``, ...) and is loaded from one of three places, chosen by the probe's
``data`` option:

* ``embedded`` — a small set the project wrote itself, shipped in the package (``audited_ft/eval/sets/<name>.jsonl``,
  already in the set's item schema). The offline default; not a benchmark, a smoke check of the probe.
* a local path — a file or folder of the public set in its published format; ``{data_dir}`` expands to the data
  directory (``data.data_dir``, ``$AFT_DATA_DIR`` or ``../shared/data``).
* a hub id — ``org/name``, ``org/name:split`` or ``org/name:config:split``, loaded with ``datasets`` (needs
  internet).

Each module of this package registers one set with :func:`register` (the ``SETS`` registry): a :class:`SetSpec` that
says where its files lie, how one record becomes an item of the set's schema (documented in the module), and how hub
rows do; the files are read by one shared reader (:func:`read_rows`). The embedded file ``<name>.jsonl`` lies beside
its loader. Items are plain dicts; each has an ``id``.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

from audited_ft.errors import ConfigError, DataError, MissingDependency
from audited_ft.registry import Registry

EMBEDDED_DIR = Path(__file__).resolve().parent  # the embedded sets lie beside their loaders


@dataclass(frozen=True)
class Files:
    """Where a set's files lie under the path a config names: the path itself when it is a file, else the files
    matching ``patterns`` in the first of its ``subfolders`` that exists, else in the folder itself. ``expected``
    says, for the error when nothing matches, what should have been there."""

    patterns: tuple[str, ...]
    expected: str
    subfolders: tuple[str, ...] = ()
    keep: Optional[Callable[[Path], bool]] = None  # a further filter on a matched file (ToxiGen's names)


@dataclass
class SetSpec:
    """How to load one evaluation set.

    Local files are found by ``files`` and read by the shared reader (:func:`read_rows`: JSON lines, CSV or a JSON
    list, gzipped or not); ``item(row, at)`` maps one record to an item of the set's schema, naming ``at`` (file and
    line, :class:`At`) in any error. A set whose files are not records (BOLD's nested JSON, ToxiGen's text lines) gives
    ``parse_file(file)`` instead. ``columns`` are the record fields a CSV header must have.
    """

    name: str
    title: str                         # human name, e.g. "CrowS-Pairs"
    licence: str
    citation: str                      # short reference shown in the report
    folder: str                        # default folder name under the data directory
    text_fields: tuple[str, ...]       # item fields that hold probe text (contamination check)
    files: Files
    item: Optional[Callable[[dict, "At"], dict]] = None         # one record → one item
    parse_file: Optional[Callable[[Path], list[dict]]] = None    # one file → items (non-record formats)
    columns: tuple[str, ...] = ()      # fields a CSV header must have
    parse_hub: Optional[Callable[[Iterable[dict]], list[dict]]] = None  # datasets rows → items
    hub_id: Optional[str] = None       # default hub id ("org/name:split", "org/name:config:split") for users online
    stratify: Optional[str] = None     # item field kept balanced when a limit subsamples the set

    def parse_local(self, path: Path) -> list[dict]:
        """Every item of the set's local files under ``path`` (a file or a folder)."""
        items: list[dict] = []
        for file in set_files(path, self.files):
            if self.parse_file is not None:
                items += self.parse_file(file)
            else:
                items += [self.item(row, at) for at, row in read_rows(file, self.columns)]
        return items


@dataclass
class ProbeSet:
    name: str
    title: str
    items: list[dict]
    source: str                        # "embedded", a path, or "hub:<id>"
    licence: str
    citation: str
    text_fields: tuple[str, ...]
    total: int                         # items before any limit
    notes: list[str] = field(default_factory=list)

    def texts(self) -> list[str]:
        """Every probe text of the set (one per item and text field), for contamination checks."""
        out = []
        for item in self.items:
            for f in self.text_fields:
                value = item.get(f)
                if isinstance(value, str) and value.strip():
                    out.append(value)
                elif isinstance(value, list):
                    out += [v for v in value if isinstance(v, str) and v.strip()]
        return out

    def describe(self) -> dict:
        """What the report and eval/probes.json say about the data a probe used."""
        return {"set": self.name, "title": self.title, "source": self.source, "items": len(self.items),
                "total": self.total, "licence": self.licence, "citation": self.citation, "notes": self.notes}


EMBEDDED_LICENCE = "Apache-2.0 (written by the audited_ft project)"
SETS: Registry[SetSpec] = Registry("evaluation set", "audited_ft.eval.sets")


def register(spec: SetSpec) -> SetSpec:
    """Register a set under its name (each module of this package registers one)."""
    return SETS.add(spec.name, spec)


def spec(name: str) -> SetSpec:
    """The set ``name``; an unknown name is a ConfigError with a suggestion."""
    return SETS.get(name)


def embedded_items(name: str) -> list[dict]:
    """The items of the embedded file ``<name>.jsonl`` beside the loaders (already in the set's schema)."""
    return read_jsonl_items(EMBEDDED_DIR / f"{name}.jsonl")


def load_probe_set(name: str, data: str, data_dir: Path | str | None, limit: int | None = None,
                   seed: int = 0) -> ProbeSet:
    """Load set ``name`` from ``data`` ("embedded", a path, or a hub id); keep at most ``limit`` items.

    A limit keeps a seeded random subset in the original order, balanced over ``SetSpec.stratify`` when the set has
    one (round-robin over its values), so a small run still covers every bias type or category.
    """
    s = spec(name)
    data = (data or "embedded").strip()
    notes: list[str] = []
    if data == "embedded":
        if not (EMBEDDED_DIR / f"{name}.jsonl").is_file():
            raise ConfigError(f"evaluation set {name!r} has no embedded version; set its data option to a path "
                              f"or hub id (e.g. {{data_dir}}/{s.folder} or {s.hub_id})")
        items, source = embedded_items(name), "embedded"
        notes.append("embedded: a small set written by the audited_ft project to exercise the probe offline; "
                     "not the published benchmark, so its numbers are a smoke check, not a benchmark result")
    else:
        local = Path(data.replace("{data_dir}", str(data_dir or ""))).expanduser()
        from audited_ft.config import path_problem

        problem = path_problem(local, "entry")
        if problem:
            raise DataError(f"evaluation set {name!r}: {local} {problem}")
        if local.exists():
            items, source = s.parse_local(local), str(local)
        elif "{data_dir}" in data or data.startswith((".", "/", "~")) or data.count("/") != 1 and ":" not in data:
            raise DataError(f"evaluation set {name!r}: {local} does not exist (data directory: {data_dir}; set "
                            f"data.data_dir or AFT_DATA_DIR, or use data: embedded)")
        else:
            items, source = _load_hub(s, data), f"hub:{data}"
    for i, item in enumerate(items):
        item.setdefault("id", str(i))
    if not items:
        raise DataError(f"evaluation set {name!r} from {source}: no items")
    total = len(items)
    if limit is not None and limit < total:
        items = subsample(items, limit, seed, s.stratify)
        notes.append(f"seeded subsample of {len(items)} of {total} items"
                     + (f", balanced over {s.stratify}" if s.stratify else ""))
    # The embedded sets are the project's own text (in the shape of the published set, whose citation stays).
    licence = EMBEDDED_LICENCE if source == "embedded" else s.licence
    return ProbeSet(name=name, title=s.title, items=items, source=source, licence=licence, citation=s.citation,
                    text_fields=s.text_fields, total=total, notes=notes)


def subsample(items: list[dict], limit: int, seed: int, stratify: str | None = None) -> list[dict]:
    """``limit`` items, seeded; round-robin over the groups of ``stratify``; original order kept."""
    rng = random.Random(seed)
    if not stratify:
        keep = sorted(rng.sample(range(len(items)), limit))
        return [items[i] for i in keep]
    groups: dict = {}
    for i, item in enumerate(items):
        groups.setdefault(str(item.get(stratify)), []).append(i)
    for idx in groups.values():
        rng.shuffle(idx)
    picked: list[int] = []
    queues = [groups[k] for k in sorted(groups)]
    depth = 0
    while len(picked) < limit:
        for q in queues:
            if depth < len(q) and len(picked) < limit:
                picked.append(q[depth])
        depth += 1
    return [items[i] for i in sorted(picked)]


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line of a JSON-lines file (gzipped or not); a bad line is a DataError
    naming the file and line."""
    import gzip

    opener = gzip.open if str(path).lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}: line {n}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}: line {n}: expected a JSON object, got {type(row).__name__}")
            yield n, row


def set_files(path: Path, files: Files) -> list[Path]:
    """The files of a set under ``path`` (see :class:`Files`); a DataError saying what was expected when none."""
    if path.is_file():
        return [path]
    folder = next((path / sub for sub in files.subfolders if (path / sub).is_dir()), path)
    found = sorted({f for pattern in files.patterns for f in folder.glob(pattern) if f.is_file()})
    found = [f for f in found if files.keep is None or files.keep(f)]
    if not found:
        raise DataError(f"{path}: {files.expected}")
    return found


@dataclass(frozen=True)
class At:
    """Where a record was read: its file, line (1-based; a JSON list counts records) and index in the file (0-based).
    ``str(at)`` is the "file: line N" that error messages name."""

    file: Path
    line: int
    index: int

    def __str__(self) -> str:
        return f"{self.file}: line {self.line}"


def read_rows(file: Path, columns: Iterable[str] = ()) -> Iterator[tuple[At, dict]]:
    """(where, record) for each record of a JSON-lines, CSV or JSON-list file, gzipped or not, by its name. A CSV
    header lacking one of ``columns``, a bad line or a record that is not an object is a DataError naming the file
    (and line)."""
    import csv
    import gzip

    name = file.name.lower().removesuffix(".gz")
    opener = gzip.open if file.name.lower().endswith(".gz") else open
    if name.endswith(".csv"):
        with opener(file, "rt", encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in columns if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(f"{file}: header has no {', '.join(repr(m) for m in missing)} column "
                                f"(found: {reader.fieldnames})")
            for n, row in enumerate(reader):
                yield At(file, reader.line_num, n), row
    elif name.endswith(".json"):
        with opener(file, "rt", encoding="utf-8") as fh:
            try:
                data = json.load(fh)
            except json.JSONDecodeError as exc:
                raise DataError(f"{file}: line {exc.lineno}: not valid JSON ({exc.msg})") from None
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise DataError(f"{file}: expected a JSON list of objects, got {type(data).__name__}")
        for n, row in enumerate(data):
            yield At(file, n + 1, n), row
    else:
        for n, (line, row) in enumerate(iter_jsonl(file)):
            yield At(file, line, n), row


def read_jsonl_items(path: Path) -> list[dict]:
    """Rows of a JSON-lines file; a bad line is a DataError naming the file and line."""
    return [row for _, row in iter_jsonl(path)]


def require_fields(path: Path | str, where: str, row: dict, fields: Iterable[str]) -> None:
    """DataError naming file, row and field when ``row`` lacks one of ``fields`` (or it is empty)."""
    for f in fields:
        if row.get(f) in (None, ""):
            raise DataError(f"{path}: {where}: field {f!r} is missing or empty")


def _load_hub(s: SetSpec, data: str) -> list[dict]:
    if s.parse_hub is None:
        raise ConfigError(f"evaluation set {s.name!r} cannot be loaded from the hub; give a local path")
    try:
        import datasets
    except ImportError as exc:
        raise MissingDependency(f"Loading {s.title} from the hub", "datasets") from exc
    repo, _, rest = data.partition(":")
    config, _, split = rest.rpartition(":")  # "org/name:config:split" or "org/name:split"
    try:
        rows = datasets.load_dataset(repo, config or None, split=split or "train")
    except Exception as exc:  # offline, unknown id, gated: all surface as one clear error
        raise DataError(f"evaluation set {s.name!r}: cannot load hub dataset {data!r}: "
                        f"{str(exc).splitlines()[0][:300]}") from None
    return s.parse_hub(rows)
