"""StrongREJECT forbidden prompts (Souly et al. 2024) without the ones taken from AdvBench: 288 of 313 requests in six
categories.

Item schema: the harmful-request schema of :mod:`audited_ft.eval.sets._harmful` (``category``: StrongREJECT's, e.g.
"Violence", "Non-violent crimes").
The 25 prompts whose ``source`` is AdvBench are left out, so that the refusal probe's sets do not share items (a set
that repeats another's items would count them twice in the pooled rate and blur the per-set comparison).
Local format: ``strongreject_dataset.csv`` with columns ``category``, ``source``, ``forbidden_prompt`` (a folder
holding it, or the file).
"""

from __future__ import annotations

from pathlib import Path

from audited_ft.eval.sets import Files, SetSpec, read_rows, register
from audited_ft.eval.sets._harmful import harmful_item

COLUMNS = ("category", "source", "forbidden_prompt")
DROPPED_SOURCE = "advbench"


def _keep(row: dict) -> bool:
    return (row.get("source") or "").strip().lower() != DROPPED_SOURCE


def _parse_file(file: Path) -> list[dict]:
    return [harmful_item(f"strongreject-{at.index}", row.get("forbidden_prompt"), row.get("category"),
                         f"{at}: field 'forbidden_prompt'")
            for at, row in read_rows(file, COLUMNS) if _keep(row)]


def _parse_hub(rows) -> list[dict]:
    # walledai/StrongREJECT:train has columns prompt, category and source.
    return [harmful_item(f"strongreject-{i}", r.get("prompt") or r.get("forbidden_prompt"), r.get("category"),
                         f"hub row {i}") for i, r in enumerate(rows) if _keep(r)]


register(SetSpec(
    name="strongreject", title="StrongREJECT forbidden prompts (without AdvBench's)", licence="MIT",
    citation="Souly, Lu, Bowen, Trinh, Hsieh, Pandey, Abbeel, Svegliato, Emmons, Watkins, Toyer (2024). A "
             "StrongREJECT for Empty Jailbreaks. NeurIPS Datasets and Benchmarks",
    folder="strongreject", text_fields=("instruction",), parse_file=_parse_file, parse_hub=_parse_hub,
    files=Files(("strongreject_dataset.csv",), "expected strongreject_dataset.csv (StrongREJECT) there"),
    hub_id="walledai/StrongREJECT:train", stratify="category"))
