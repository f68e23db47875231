"""Records for the data stage: read files or hub splits, map fields, clean, split deterministically, fingerprint.

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
import sys
import unicodedata
import zlib
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
def is_file_source(source: str) -> bool:
    return Path(source).exists() or source.endswith(_FILE_SUFFIXES) or source.startswith((".", "/", "~"))


def load_records(source: str, field: str | None = None) -> list[dict]:
    """Records from a JSONL / JSON / CSV / Parquet file (optionally gzipped), or a hub id ``org/name[:split]``.

    ``field`` (e.g. "data.source") names the config key the source came from, for the messages."""
    if is_file_source(source):
        where = f"data.{field} = {source!r}" if field else source
        try:
            path = Path(source).expanduser()
        except RuntimeError:  # "~user/..." for an unknown user
            raise DataError(f"{where}: cannot expand '~' in this path (no such user)") from None
        from audited_ft.config import path_problem

        problem = path_problem(path, "file")
        if problem == "is a folder, not a file" or path.is_dir():
            raise DataError(f"{where}: is a folder, not a data file; give a .jsonl, .json, .csv or .parquet file")
        if problem:
            raise DataError(f"{where}: {problem}")
        if not path.is_file():
            raise DataError(f"{where}: data file not found")
        return _load_file(path)
    return _load_hub(source)


def _open_text(path: Path) -> io.TextIOBase:
    raw = gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")
    # utf-8-sig: a byte-order mark (as spreadsheet programs write) is skipped, not read into the first column name.
    return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="strict", newline="")


def _utf8_error(path: Path) -> str:
    """Where a file stops being UTF-8: the decoder's own offset is relative to a read chunk, so decode again whole."""
    try:
        data = gzip.open(path, "rb").read() if path.name.endswith(".gz") else path.read_bytes()
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return (f"{path}, line {line}: not valid UTF-8 (byte offset {exc.start}: {data[exc.start:exc.start + 4]!r}); "
                "re-encode the file as UTF-8")
    except (OSError, EOFError):
        pass
    return f"{path}: not valid UTF-8; re-encode the file as UTF-8"


def _load_file(path: Path) -> list[dict]:
    name = path.name.removesuffix(".gz")
    try:
        if name.endswith(".jsonl"):
            return _load_jsonl(path)
        if name.endswith(".json"):
            return _load_json(path)
        if name.endswith(".csv"):
            return _load_csv(path)
        if name.endswith(".parquet"):
            import pyarrow.parquet as pq

            return pq.read_table(path).to_pylist()
    except UnicodeDecodeError:
        raise DataError(_utf8_error(path)) from None
    except (OSError, EOFError, zlib.error) as exc:  # EOFError, zlib.error: a truncated or corrupt .gz
        raise DataError(f"{path}: cannot read ({exc or type(exc).__name__})") from None
    except Exception as exc:  # pyarrow raises its own error types
        if type(exc).__module__.startswith("pyarrow"):
            raise DataError(f"{path}: cannot read Parquet ({exc})") from None
        raise
    raise DataError(f"{path}: unsupported file type; use .jsonl, .json, .csv or .parquet (optionally .gz)")


def _load_json(path: Path) -> list[dict]:
    with _open_text(path) as fh:
        try:
            data = json.load(fh)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}, line {exc.lineno}, column {exc.colno}: not valid JSON ({exc.msg})") from None
        except (ValueError, RecursionError) as exc:  # ValueError: an integer of more than 4300 digits
            raise DataError(f"{path}: not usable JSON ({_short(exc)})") from None
    if not isinstance(data, list):
        keys = f" with keys {', '.join(map(repr, list(data)[:8]))}" if isinstance(data, dict) else ""
        raise DataError(f"{path}: a .json data file must hold a list of objects (one per row), got "
                        f"{type(data).__name__}{keys}; for one object per line use .jsonl")
    for n, rec in enumerate(data):
        if not isinstance(rec, dict):
            raise DataError(f"{path}, item {n}: a .json data file must hold a list of objects, got "
                            f"{type(rec).__name__} ({_short(rec)})")
    return data


def _load_csv(path: Path) -> list[dict]:
    limit = csv.field_size_limit()
    csv.field_size_limit(sys.maxsize)  # long fields are the cleaning rules' business (max_input_chars), not csv's
    try:
        with _open_text(path) as fh:
            reader = csv.reader(fh)
            try:
                header = next((h for h in reader if h), None)  # blank lines before the header are skipped
                if header is None:
                    return []
                _check_header(path, header)
                rows = []
                for values in reader:
                    if not values:  # a blank line
                        continue
                    if len(values) != len(header):
                        raise DataError(f"{path}, line {reader.line_num}: {len(values)} field(s), but the header has "
                                        f"{len(header)} ({', '.join(header)}); quote fields that hold commas")
                    rows.append(dict(zip(header, values)))
                return rows
            except csv.Error as exc:
                raise DataError(f"{path}, line {reader.line_num}: not valid CSV ({exc})") from None
    finally:
        csv.field_size_limit(limit)


def _check_header(path: Path, header: list[str]) -> None:
    seen: set[str] = set()
    for n, name in enumerate(header, 1):
        if not name.strip():
            raise DataError(f"{path}, line 1: column {n} of the header has no name; every column needs one")
        if name in seen:
            raise DataError(f"{path}, line 1: column {name!r} appears twice in the header")
        seen.add(name)


def _short(value, n: int = 60) -> str:
    text = str(value)
    return repr(text[:n] + ("…" if len(text) > n else ""))


def _load_jsonl(path: Path) -> list[dict]:
    rows = []
    with _open_text(path) as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            line = line.rstrip("\r\n")  # so that the column of an error is one within this line
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}, line {n}: not valid JSON ({exc.msg}, column {exc.pos + 1})") from None
            except (ValueError, RecursionError) as exc:  # ValueError: an integer of more than 4300 digits
                raise DataError(f"{path}, line {n}: not usable JSON ({_short(exc)})") from None
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
            id_field: str | None, reference_fields: tuple[str, ...] | list[str] = ()) -> list[dict]:
    """Map source fields to ``id``/``input``/``target`` (and ``references``: the target and each of
    ``reference_fields``, when given); a missing field or a wrong type is a DataError naming it."""
    if not records:
        raise DataError(f"{source}: split '{split}' is empty (no rows); check the file")
    keys = set(records[0])
    for fld, what in ((input_field, "data.input_field"), (target_field, "data.target_field")) + (
            ((id_field, "data.id_field"),) if id_field else ()) + tuple(
            (f, f"data.fields_by_split.{split}.reference_fields") for f in reference_fields):
        if fld not in keys:
            from audited_ft.registry import did_you_mean

            present = sorted(map(str, keys))
            raise DataError(f"{source}: {what} = {fld!r} is not a field of this data.{did_you_mean(fld, present)} "
                            f"Fields present: {', '.join(present) or 'none'}")
    rows = []
    for n, rec in enumerate(records):
        out = {"id": _row_id(rec, n, source, split, id_field)}
        for fld, key in ((input_field, "input"), (target_field, "target")):
            value = rec.get(fld)
            if value is None:
                value = ""
            if not isinstance(value, str):
                raise DataError(f"{source}, row {n}: field {fld!r} must be text, got {type(value).__name__} "
                                f"({str(value)[:60]!r})")
            out[key] = _encodable(value, source, n, fld)
        if reference_fields:
            out["references"] = [out["target"]]
            for fld in reference_fields:
                value = rec.get(fld)
                if value is not None and not isinstance(value, str):
                    raise DataError(f"{source}, row {n}: field {fld!r} must be text, got {type(value).__name__} "
                                    f"({str(value)[:60]!r})")
                out["references"].append(_encodable(value or "", source, n, fld))
        rows.append(out)
    return rows


def _row_id(rec: dict, n: int, source: str, split: str, id_field: str | None) -> str:
    if not id_field:
        return f"{split}-{n:05d}"
    value = rec.get(id_field)
    # A missing id would become the text "None" for every such row, and all but the first would be dropped as
    # duplicates without a word; a list or mapping has no stable text form.
    if (value is None or isinstance(value, (bool, list, dict)) or (isinstance(value, float) and value != value)
            or (isinstance(value, str) and not value.strip())):
        raise DataError(f"{source}, row {n}: data.id_field {id_field!r} must be a non-empty text or number, got "
                        f"{type(value).__name__} ({str(value)[:60]!r})")
    return _encodable(str(value), source, n, id_field)


def _encodable(text: str, source: str, n: int, fld: str) -> str:
    """JSON escapes can carry a lone UTF-16 surrogate ("\\ud800"), which no UTF-8 file can hold: say so here, not as a
    crash when the run folder is written."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise DataError(f"{source}, row {n}: field {fld!r} holds an unpaired surrogate {text[exc.start]!r} at character "
                        f"{exc.start} (a broken \\u escape); fix or remove that row") from None
    return text


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
            refs = [r for r in map(normalise_whitespace, row.get("references") or []) if r]
            kept.append({"id": row["id"], "input": inp, "target": tgt, **({"references": refs} if refs else {})})
    stats.rows_out = len(kept)
    return kept, stats


def split_rows(rows: list[dict], fractions, seed: int, source: str = "") -> dict[str, list[dict]]:
    """Deterministic shuffled split by fractions (same rows, seed and fractions → same splits)."""
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    n = len(rows)
    n_test = max(1, round(n * fractions.test))
    n_val = round(n * fractions.validation)
    if n - n_test - n_val < 1:
        raise DataError(f"{source + ': ' if source else ''}only {n} row(s) after cleaning: too few to split into "
                        f"train/validation/test with data.split = (train {fractions.train:g}, validation "
                        f"{fractions.validation:g}, test {fractions.test:g}); give more rows")
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
