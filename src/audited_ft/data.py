"""Data stage: load the splits, map fields, clean, split deterministically, fingerprint.

Rows leave this module as ``{"id": str, "input": str, "target": str}``. Every drop is counted by reason; every error
names the file, the line or row, the field and the value.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import logging
import random
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from audited_ft.errors import DataError

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
_FILE_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".csv", ".csv.gz", ".parquet")
_WS = re.compile(r"[ \t\f\v\r]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


@dataclass
class CleanStats:
    rows_in: int = 0
    rows_out: int = 0
    dropped: dict[str, int] = field(default_factory=dict)

    def drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1


# ----------------------------------------------------------------------------------------------- loading
def _is_file_source(source: str) -> bool:
    return Path(source).exists() or source.endswith(_FILE_SUFFIXES) or source.startswith((".", "/", "~"))


def load_records(source: str) -> list[dict]:
    """Records from a JSONL / JSON / CSV / Parquet file (optionally gzipped), or a hub id ``org/name[:split]``."""
    if _is_file_source(source):
        path = Path(source).expanduser()
        if not path.is_file():
            raise DataError(f"{source}: data file not found")
        return _load_file(path)
    return _load_hub(source)


def _open_text(path: Path) -> io.TextIOBase:
    raw = gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")
    return io.TextIOWrapper(raw, encoding="utf-8", errors="strict", newline="")


def _load_file(path: Path) -> list[dict]:
    name = path.name.removesuffix(".gz")
    try:
        if name.endswith(".jsonl"):
            return _load_jsonl(path)
        if name.endswith(".json"):
            with _open_text(path) as fh:
                data = json.load(fh)
            if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
                raise DataError(f"{path}: a .json data file must hold a list of objects")
            return data
        if name.endswith(".csv"):
            with _open_text(path) as fh:
                return list(csv.DictReader(fh))
        if name.endswith(".parquet"):
            import pyarrow.parquet as pq

            return pq.read_table(path).to_pylist()
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not valid UTF-8 (byte offset {exc.start}); re-encode the file as UTF-8") from None
    except (OSError, json.JSONDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    except Exception as exc:  # pyarrow raises its own error types
        if type(exc).__module__.startswith("pyarrow"):
            raise DataError(f"{path}: cannot read Parquet ({exc})") from None
        raise
    raise DataError(f"{path}: unsupported file type; use .jsonl, .json, .csv or .parquet (optionally .gz)")


def _load_jsonl(path: Path) -> list[dict]:
    rows = []
    with _open_text(path) as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}, line {n}: not valid JSON ({exc.msg}, column {exc.colno})") from None
            if not isinstance(obj, dict):
                raise DataError(f"{path}, line {n}: expected a JSON object, got {type(obj).__name__}")
            rows.append(obj)
    return rows


def _load_hub(source: str) -> list[dict]:
    name, _, split = source.partition(":")
    try:
        import datasets
    except ImportError:
        from audited_ft.errors import MissingDependency

        raise MissingDependency("loading hub data sets", "datasets") from None
    try:
        ds = datasets.load_dataset(name, split=split or "train")
    except Exception as exc:  # datasets raises many types for offline / unknown ids
        raise DataError(f"{source}: cannot load this hub data set ({type(exc).__name__}: {str(exc).splitlines()[0][:300]}). "
                        "Offline? Give a local file path instead.") from None
    return list(ds)


# ----------------------------------------------------------------------------------------------- cleaning
def normalise_whitespace(text: str) -> str:
    text = unicodedata.normalize("NFC", text)
    lines = [_WS.sub(" ", ln).strip() for ln in text.split("\n")]
    return _BLANK_LINES.sub("\n", "\n".join(lines)).strip()


def to_rows(records: list[dict], source: str, split: str, input_field: str, target_field: str,
            id_field: str | None) -> list[dict]:
    """Map source fields to ``id``/``input``/``target``; a missing field or a wrong type is a DataError naming it."""
    if not records:
        raise DataError(f"{source}: split '{split}' is empty")
    keys = set(records[0])
    for fld, what in ((input_field, "data.input_field"), (target_field, "data.target_field")) + (
            ((id_field, "data.id_field"),) if id_field else ()):
        if fld not in keys:
            from audited_ft.registry import did_you_mean

            raise DataError(f"{source}: {what} = {fld!r} is not a field of this data.{did_you_mean(fld, sorted(keys))} "
                            f"Fields present: {', '.join(sorted(keys))}")
    rows = []
    for n, rec in enumerate(records):
        out = {"id": str(rec.get(id_field)) if id_field else f"{split}-{n:05d}"}
        for fld, key in ((input_field, "input"), (target_field, "target")):
            value = rec.get(fld)
            if value is None:
                value = ""
            if not isinstance(value, str):
                raise DataError(f"{source}, row {n}: field {fld!r} must be text, got {type(value).__name__} "
                                f"({str(value)[:60]!r})")
            out[key] = value
        rows.append(out)
    return rows


def clean_rows(rows: list[dict], min_input: int, max_input: int, max_target: int) -> tuple[list[dict], CleanStats]:
    stats = CleanStats(rows_in=len(rows))
    seen_ids: set[str] = set()
    kept = []
    for row in rows:
        inp, tgt = normalise_whitespace(row["input"]), normalise_whitespace(row["target"])
        if not inp or not tgt:
            stats.drop("empty")
        elif len(inp) < min_input:
            stats.drop("too_short")
        elif len(inp) > max_input or len(tgt) > max_target:
            stats.drop("too_long")
        elif row["id"] in seen_ids:
            stats.drop("duplicate_id")
        else:
            seen_ids.add(row["id"])
            kept.append({"id": row["id"], "input": inp, "target": tgt})
    stats.rows_out = len(kept)
    return kept, stats


def split_rows(rows: list[dict], fractions, seed: int) -> dict[str, list[dict]]:
    """Deterministic shuffled split by fractions (same rows, seed and fractions → same splits)."""
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    n = len(rows)
    n_test = max(1, round(n * fractions.test))
    n_val = round(n * fractions.validation)
    if n - n_test - n_val < 1:
        raise DataError(f"only {n} rows after cleaning: too few to split into train/validation/test")
    test, val, train = order[:n_test], order[n_test:n_test + n_val], order[n_test + n_val:]
    return {"train": [rows[i] for i in sorted(train)], "validation": [rows[i] for i in sorted(val)],
            "test": [rows[i] for i in sorted(test)]}


def cap_rows(rows: list[dict], limit: int | None, seed: int) -> list[dict]:
    if limit is None or len(rows) <= limit:
        return rows
    keep = sorted(random.Random(seed).sample(range(len(rows)), limit))
    return [rows[i] for i in keep]


def fingerprint(rows: list[dict]) -> str:
    h = hashlib.sha256()
    for r in rows:
        h.update(json.dumps([r["id"], r["input"], r["target"]], ensure_ascii=False).encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()
