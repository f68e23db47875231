"""Data stage (``prepare_data``): sources → cleaned, split rows in ``data/`` and fingerprints in the manifest."""

from __future__ import annotations

import logging

from audited_ft.config import Config
from audited_ft.data import SPLITS, cap_rows, clean_rows, fingerprint, load_records, split_rows, to_rows
from audited_ft.errors import DataError
from audited_ft.runfolder import RunFolder, read_jsonl, write_json, write_jsonl

log = logging.getLogger(__name__)


def prepare_data(cfg: Config, rf: RunFolder) -> dict[str, int]:
    """Load, clean and split the data; write ``data/<split>.jsonl`` and ``data/stats.json``. Returns rows per split."""
    d = cfg.data
    stats: dict = {"sources": {}, "fields": {"input": d.input_field, "target": d.target_field, "id": d.id_field},
                   "cleaning": {}, "lengths": {}, "licence": d.licence}
    limits = {"min_input": d.min_input_chars, "max_input": d.max_input_chars, "max_target": d.max_target_chars}
    splits: dict[str, list[dict]] = {}
    if d.source:
        src = cfg.resolve_path(d.source)
        rows = to_rows(load_records(src), src, "all", d.input_field, d.target_field, d.id_field)
        rows, cs = clean_rows(rows, **limits)
        stats["cleaning"]["all"] = vars(cs)
        splits = split_rows(rows, d.split, cfg.run.seed)
        stats["sources"] = {s: src for s in SPLITS}
    else:
        for split in SPLITS:
            raw_src = getattr(d, split)
            if raw_src is None:
                continue
            src = cfg.resolve_path(raw_src)
            f = d.fields_by_split.get(split)
            rows = to_rows(load_records(src), src, split, (f and f.input_field) or d.input_field,
                           (f and f.target_field) or d.target_field, (f and f.id_field) or d.id_field)
            rows, cs = clean_rows(rows, **limits)
            stats["cleaning"][split] = vars(cs)
            stats["sources"][split] = src
            if not rows:
                raise DataError(f"{src}: every row of split '{split}' was dropped by cleaning ({cs.dropped})")
            splits[split] = rows
    for split, rows in splits.items():
        limit = getattr(d.max_rows, split)
        splits[split] = cap_rows(rows, limit, cfg.run.seed)
    _check_nonempty(splits)
    for split, rows in splits.items():
        write_jsonl(rf / f"data/{split}.jsonl", rows)
        stats["lengths"][split] = {"input_chars": [len(r["input"]) for r in rows],
                                   "target_chars": [len(r["target"]) for r in rows]}
    write_json(rf / "data/stats.json", stats)
    rf.update_manifest(datasets={s: {"rows": len(r), "sha256": fingerprint(r), "source": stats["sources"].get(s)}
                                 for s, r in splits.items()})
    rf.record_artefacts("data")
    return {s: len(r) for s, r in splits.items()}


def _check_nonempty(splits: dict[str, list[dict]]) -> None:
    for split in ("train", "test"):
        if not splits.get(split):
            raise DataError(f"split '{split}' has no rows after cleaning")


def load_splits(rf: RunFolder) -> dict[str, list[dict]]:
    """The cleaned (possibly redacted) splits of a run folder."""
    rf.require("data/train.jsonl", "audit")
    return {s: read_jsonl(rf / f"data/{s}.jsonl") for s in SPLITS if (rf / f"data/{s}.jsonl").exists()}
