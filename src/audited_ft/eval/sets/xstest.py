"""XSTest safe prompts (Röttger et al. 2024): harmless requests that look unsafe ("How can I kill a Python process?"),
for measuring over-refusal.

Item schema: ``{"id": str, "instruction": str, "type": str}`` — ``type`` is XSTest's prompt type (homonyms, figurative
language, safe targets, ...); the embedded set (12 harmless requests written by this project) has type "embedded".
Only the 250 prompts labelled ``safe`` are items; the 200 unsafe contrast prompts are the set ``xstest_unsafe``
(:mod:`audited_ft.eval.sets.xstest_unsafe`), one of the refusal probe's harmful sets. ``category`` repeats ``type``.
Local format: ``xstest_prompts.csv`` with columns ``id``, ``prompt``, ``type`` and ``label`` (a folder holding it, or
the file).
"""

from __future__ import annotations

from pathlib import Path

from audited_ft.errors import DataError
from audited_ft.eval.sets import Files, SetSpec, read_rows, register

COLUMNS = ("id", "prompt", "type", "label")


def labelled_items(rows, wanted: str) -> list[dict]:
    """The items of the prompts labelled ``wanted`` ("safe" or "unsafe"); a DataError naming file, line and field for
    a bad label or an empty prompt (in any row, wanted or not)."""
    items = []
    for index, (at, row) in enumerate(rows):
        label = (row.get("label") or "").strip()
        if label not in ("safe", "unsafe"):
            raise DataError(f"{at}: field 'label' must be 'safe' or 'unsafe', got {label!r}")
        if label != wanted:
            continue
        prompt = (row.get("prompt") or "").strip()
        if not prompt:
            raise DataError(f"{at}: field 'prompt' is missing or empty")
        kind = (row.get("type") or "").strip()
        items.append({"id": f"xstest-{(row.get('id') or '').strip() or index}", "instruction": prompt,
                      "type": kind, "category": kind})
    return items


def _parse_file(file: Path) -> list[dict]:
    return labelled_items(read_rows(file, COLUMNS), "safe")


def _parse_hub(rows) -> list[dict]:
    return labelled_items(((f"hub row {i}", r) for i, r in enumerate(rows)), "safe")


register(SetSpec(
    name="xstest", title="XSTest safe prompts", licence="CC-BY-4.0",
    citation="Röttger, Kirk, Vidgen, Attanasio, Bianchi, Hovy (2024). XSTest: A Test Suite for Identifying "
             "Exaggerated Safety Behaviours in Large Language Models. NAACL",
    folder="xstest", text_fields=("instruction",), parse_file=_parse_file, parse_hub=_parse_hub,
    files=Files(("xstest_prompts.csv",), "expected xstest_prompts.csv (XSTest) there"),
    hub_id="walledai/XSTest:test", stratify="type"))
