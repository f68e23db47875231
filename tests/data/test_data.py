import gzip
import json

import pytest

from audited_ft.config import SplitFractions
from audited_ft.data.records import clean_rows, fingerprint, load_records, normalise_whitespace, split_rows, to_rows
from audited_ft.errors import DataError
from tests.conftest import write_jsonl


def test_jsonl_gz_csv_parquet_load_the_same(tmp_path, tiny_rows):
    import pyarrow as pa
    import pyarrow.parquet as pq

    write_jsonl(tmp_path / "a.jsonl", tiny_rows)
    with gzip.open(tmp_path / "a.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in tiny_rows)
    import csv

    with open(tmp_path / "a.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(tiny_rows[0]))
        w.writeheader()
        w.writerows(tiny_rows)
    pq.write_table(pa.Table.from_pylist(tiny_rows), tmp_path / "a.parquet")
    for name in ("a.jsonl", "a.jsonl.gz", "a.csv", "a.parquet"):
        assert load_records(str(tmp_path / name)) == tiny_rows, name


def test_malformed_jsonl_names_file_and_line(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"a": 1}\n{"a": 2\n')
    with pytest.raises(DataError, match=r"bad.jsonl, line 2: not valid JSON"):
        load_records(str(p))


def test_non_utf8_and_missing_file(tmp_path):
    p = tmp_path / "latin.jsonl"
    p.write_bytes('{"a": "caf\xe9"}\n'.encode("latin-1"))
    with pytest.raises(DataError, match="not valid UTF-8"):
        load_records(str(p))
    with pytest.raises(DataError, match="not found"):
        load_records(str(tmp_path / "missing.jsonl"))


def test_missing_field_is_named_with_suggestion(tmp_path, tiny_rows):
    with pytest.raises(DataError, match=r"data.target_field = 'sumary' is not a field.*Did you mean 'summary'"):
        to_rows(tiny_rows, "x.jsonl", "train", "dialogue", "sumary", None)


def test_wrong_type_names_row_and_field():
    with pytest.raises(DataError, match=r"row 1: field 'dialogue' must be text, got int"):
        to_rows([{"dialogue": "a", "summary": "b"}, {"dialogue": 3, "summary": "c"}], "x", "train",
                "dialogue", "summary", None)


def test_cleaning_counts_drops_by_reason():
    rows = [{"id": "1", "input": "  hello \t world  ", "target": "ok"},
            {"id": "2", "input": "   ", "target": "x"},
            {"id": "3", "input": "y" * 50, "target": "x"},
            {"id": "1", "input": "dup id", "target": "x"},
            {"id": "5", "input": "fine", "target": "z" * 20}]
    kept, stats = clean_rows(rows, min_input=1, max_input=40, max_target=10)
    assert [r["id"] for r in kept] == ["1"]
    assert kept[0]["input"] == "hello world"
    assert stats.rows_in == 5 and stats.rows_out == 1
    assert stats.dropped == {"empty": 1, "too_long": 2, "duplicate_id": 1}


def test_normalise_whitespace_keeps_turns():
    assert normalise_whitespace("A:  hi \r\n\n\nB:\tyo ") == "A: hi\nB: yo"


def test_split_is_deterministic_disjoint_and_complete(tiny_rows):
    rows = to_rows(tiny_rows, "x", "all", "dialogue", "summary", "id")
    f = SplitFractions(train=0.6, validation=0.2, test=0.2)
    a, b = split_rows(rows, f, seed=7), split_rows(rows, f, seed=7)
    assert a == b
    ids = [r["id"] for s in a.values() for r in s]
    assert sorted(ids) == sorted(r["id"] for r in rows) and len(set(ids)) == len(ids)
    assert (len(a["train"]), len(a["validation"]), len(a["test"])) == (24, 8, 8)
    assert split_rows(rows, f, seed=8) != a


def test_fingerprint_changes_with_content(tiny_rows):
    rows = to_rows(tiny_rows, "x", "all", "dialogue", "summary", "id")
    fp = fingerprint(rows)
    rows[3]["target"] += "!"
    assert fingerprint(rows) != fp and len(fp) == 64
