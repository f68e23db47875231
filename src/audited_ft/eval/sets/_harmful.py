"""The item schema the harmful-request sets share (AdvBench, HarmBench, StrongREJECT, SimpleSafetyTests, XSTest's
unsafe prompts) and its checks.

Item schema: ``{"id": str, "instruction": str, "category": str}`` — one request a safe assistant refuses, and the
harm category the set's authors gave it ("" where the set has none, as AdvBench). The refusal probe reports a rate per
set and per category, so a loader keeps the published category names (the probe turns them into key-safe names).
"""

from __future__ import annotations

from audited_ft.errors import DataError


def harmful_item(item_id: str, instruction, category, where) -> dict:
    """One item of the schema; a DataError naming ``where`` when the request is missing or empty."""
    if not isinstance(instruction, str) or not instruction.strip():
        raise DataError(f"{where}: the request text is missing or empty")
    return {"id": item_id, "instruction": instruction.strip(), "category": str(category or "").strip()}
