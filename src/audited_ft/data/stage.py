"""Data stage (``prepare_data``): sources → cleaned, split rows in ``data/`` and fingerprints in the manifest.

Optionally plants canaries (random secrets, ``data.canaries``) in the train split after cleaning and splitting, so no
cleaning rule or cap can drop them and no held-out split holds them; they are recorded in ``data/canaries.json``.
"""

from __future__ import annotations

import logging
import math
import random

from audited_ft.config import CanaryConfig, Config
from audited_ft.data.records import SPLITS, cap_rows, clean_rows, fingerprint, load_records, split_rows, to_rows
from audited_ft.errors import DataError
from audited_ft.run.folder import RunFolder, write_json, write_jsonl
from audited_ft.run.view import RunView

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
        rows = to_rows(load_records(src, "source"), src, "all", d.input_field, d.target_field, d.id_field)
        rows, cs = _clean(rows, limits, src, "all", d.id_field)
        stats["cleaning"]["all"] = vars(cs)
        splits = split_rows(rows, d.split, cfg.run.seed, source=src)
        stats["sources"] = {s: src for s in SPLITS}
    else:
        for split in SPLITS:
            raw_src = getattr(d, split)
            if raw_src is None:
                continue
            src = cfg.resolve_path(raw_src)
            f = d.fields_by_split.get(split)
            id_field = (f and f.id_field) or d.id_field
            rows = to_rows(load_records(src, split), src, split, (f and f.input_field) or d.input_field,
                           (f and f.target_field) or d.target_field, id_field, (f and f.reference_fields) or ())
            rows, cs = _clean(rows, limits, src, split, id_field)
            stats["cleaning"][split] = vars(cs)
            stats["sources"][split] = src
            splits[split] = rows
    for split, rows in splits.items():
        limit = getattr(d.max_rows, split)
        splits[split] = cap_rows(rows, limit, cfg.run.seed)
    _check_nonempty(splits)
    if d.canaries.count:
        seed = cfg.run.seed if d.canaries.seed is None else d.canaries.seed
        splits["train"], canaries = plant_canaries(splits["train"], d.canaries, seed)
        write_json(rf / "data/canaries.json", canaries)
        stats["canaries"] = {"count": canaries["count"], "repeats": canaries["repeats"],
                             "rows_added": canaries["rows_added"], "split": "train", "file": "data/canaries.json"}
        rf.update_manifest(canaries={**stats["canaries"], "space_bits": canaries["space_bits"]})
    for split, rows in splits.items():
        write_jsonl(rf / f"data/{split}.jsonl", rows)
        stats["lengths"][split] = {"input_chars": [len(r["input"]) for r in rows],
                                   "target_chars": [len(r["target"]) for r in rows]}
    write_json(rf / "data/stats.json", stats)
    rf.update_manifest(datasets={s: {"rows": len(r), "sha256": fingerprint(r), "source": stats["sources"].get(s)}
                                 for s, r in splits.items()})
    rf.record_artefacts("data")
    return {s: len(r) for s, r in splits.items()}


def _clean(rows: list[dict], limits: dict, src: str, split: str, id_field: str | None):
    """clean_rows, plus the two outcomes a person must hear about: nothing left (an error) and dropped duplicate ids."""
    ids = [r["id"] for r in rows]
    rows, cs = clean_rows(rows, **limits)
    if not rows:
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(cs.dropped.items()))
        raise DataError(f"{src}: every one of the {cs.rows_in} row(s) of split '{split}' was dropped by cleaning "
                        f"({reasons}); the rules are data.min_input_chars = {limits['min_input']}, "
                        f"data.max_input_chars = {limits['max_input']}, data.max_target_chars = {limits['max_target']}, "
                        "and no empty input or target")
    if cs.dropped.get("duplicate_id"):
        seen: set[str] = set()
        first = next(i for i in ids if i in seen or seen.add(i))
        log.warning("%s: %d row(s) of split '%s' dropped because their data.id_field %r value repeats an earlier "
                    "row's (first: %r); ids should be unique", src, cs.dropped["duplicate_id"], split, id_field, first)
    return rows, cs


def plant_canaries(train: list[dict], c: CanaryConfig, seed: int) -> tuple[list[dict], dict]:
    """Insert ``c.repeats`` copies of each of ``c.count`` canary rows at seeded random places of ``train``.

    Returns the new train rows and the record written to ``data/canaries.json``: the format, and per canary its
    secret and the ids of its rows (``canary-<i>-<copy>``). Secrets are drawn uniformly from the format's space.
    """
    clash = [r["id"] for r in train if str(r["id"]).startswith("canary-")]
    if clash:
        raise DataError(f"data.canaries: train row id {clash[0]!r} uses the prefix 'canary-' reserved for planted rows")
    rng = random.Random(f"canaries:{seed}")
    secrets: dict[str, None] = {}
    while len(secrets) < min(c.count, len(c.alphabet) ** c.length):
        secrets["".join(rng.choice(c.alphabet) for _ in range(c.length))] = None
    record, planted = [], []
    for i, secret in enumerate(secrets):
        target = c.template.replace("{secret}", secret)
        ids = [f"canary-{i}-{k}" for k in range(c.repeats)]
        planted += [{"id": rid, "input": c.input, "target": target} for rid in ids]
        record.append({"id": f"canary-{i}", "secret": secret, "input": c.input, "template": c.template, "rows": ids})
    # Interleave: each canary row goes to a seeded random position, the data rows keep their order.
    slots = set(rng.sample(range(len(train) + len(planted)), len(planted)))
    data, extra = iter(train), iter(planted)
    rows = [next(extra) if k in slots else next(data) for k in range(len(train) + len(planted))]
    return rows, {"count": len(record), "repeats": c.repeats, "rows_added": len(planted), "seed": seed,
                  "input": c.input, "template": c.template, "alphabet": c.alphabet, "length": c.length,
                  "space_bits": round(c.length * math.log2(len(c.alphabet)), 3), "canaries": record}


def _check_nonempty(splits: dict[str, list[dict]]) -> None:
    for split in ("train", "test"):
        if not splits.get(split):
            raise DataError(f"split '{split}' has no rows after cleaning")


def load_splits(rf: RunFolder) -> dict[str, list[dict]]:
    """The cleaned (possibly redacted) splits of a run folder."""
    rf.require("data/train.jsonl", "audit")
    run = RunView(rf.path, manifest_required=False)
    return {s: run.require(f"data/{s}.jsonl", "data") for s in SPLITS if run.exists(f"data/{s}.jsonl")}
