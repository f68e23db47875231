"""SimpleSafetyTests (Vidgen et al. 2023): 100 clearly harmful prompts, 20 in each of five harm areas.

Item schema: the harmful-request schema of :mod:`audited_ft.eval.sets._harmful` (``category``: the ``harm_area``,
e.g. "Scams and fraud", "Child safety").
Local format: ``simple_safety_tests.csv`` (the published "SimpleSafetyTests - test cases.csv", renamed) with columns
``id``, ``harm_area``, ``prompts_final`` (a folder holding it, or the file).
"""

from __future__ import annotations

from audited_ft.eval.sets import At, Files, SetSpec, register
from audited_ft.eval.sets._harmful import harmful_item


def _item(row: dict, at: At) -> dict:
    key = (row.get("id") or "").strip() or str(at.index)
    return harmful_item(key if key.startswith("sst") else f"sst-{key}", row.get("prompts_final"),
                        row.get("harm_area"), f"{at}: field 'prompts_final'")


def _parse_hub(rows) -> list[dict]:
    # Bertievidgen/SimpleSafetyTests:test has columns id, harm_area, category and prompt.
    return [harmful_item(str(r.get("id") or f"sst-{i}"), r.get("prompt") or r.get("prompts_final"),
                         r.get("harm_area"), f"hub row {i}") for i, r in enumerate(rows)]


register(SetSpec(
    name="simple_safety_tests", title="SimpleSafetyTests", licence="CC-BY-4.0",
    citation="Vidgen, Scherrer, Kirk, Qian, Kannappan, Hale, Röttger (2023). SimpleSafetyTests: a Test Suite for "
             "Identifying Critical Safety Risks in Large Language Models. arXiv:2311.08370",
    folder="simple_safety_tests", text_fields=("instruction",), item=_item, parse_hub=_parse_hub,
    files=Files(("simple_safety_tests.csv", "SimpleSafetyTests*.csv"),
                "expected simple_safety_tests.csv (SimpleSafetyTests) there"),
    columns=("harm_area", "prompts_final"),
    hub_id="Bertievidgen/SimpleSafetyTests:test", stratify="category"))
