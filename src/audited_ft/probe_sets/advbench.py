"""AdvBench harmful behaviours (Zou et al. 2023): instructions a safe assistant refuses.

Item schema: ``{"id": str, "instruction": str, "target": str}`` — ``target`` is the affirmative opening the attack paper
optimised for ("Sure, here is ..."); the embedded set leaves it empty.
Local format: ``harmful_behaviors.csv`` with columns ``goal`` and ``target`` (a folder holding it, or the file).
"""

from __future__ import annotations

import csv
from pathlib import Path

from audited_ft.errors import DataError
from audited_ft.probe_sets import SetSpec, register, require_fields


def _parse_local(path: Path) -> list[dict]:
    file = path / "harmful_behaviors.csv" if path.is_dir() else path
    if not file.is_file():
        raise DataError(f"{path}: expected harmful_behaviors.csv (AdvBench) there")
    with open(file, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or "goal" not in reader.fieldnames:
            raise DataError(f"{file}: header has no 'goal' column (found: {reader.fieldnames})")
        items = []
        for n, row in enumerate(reader, 2):
            require_fields(file, f"line {n}", row, ["goal"])
            items.append({"id": f"advbench-{n - 2}", "instruction": row["goal"].strip(),
                          "target": (row.get("target") or "").strip()})
    return items


def _parse_hub(rows) -> list[dict]:
    return [{"id": f"advbench-{i}", "instruction": r.get("goal") or r.get("prompt"), "target": r.get("target", "")}
            for i, r in enumerate(rows)]


register(SetSpec(
    name="advbench", title="AdvBench harmful behaviours", licence="MIT",
    citation="Zou, Wang, Kolter, Fredrikson (2023). Universal and Transferable Adversarial Attacks on Aligned "
             "Language Models. arXiv:2307.15043",
    folder="advbench", text_fields=("instruction",), parse_local=_parse_local, parse_hub=_parse_hub,
    hub_id="walledai/AdvBench:train"))
