"""HarmBench standard behaviours (Mazeika et al. 2024): 200 harmful requests in six semantic categories.

Item schema: the harmful-request schema of :mod:`audited_ft.eval.sets._harmful` (``category``: HarmBench's
``SemanticCategory``, e.g. ``chemical_biological``, ``cybercrime_intrusion``).
Only ``FunctionalCategory == standard`` rows are items: contextual rows need their ``ContextString`` (a different
attack surface than a plain request) and copyright rows measure reproduction of protected text, not harm.
Local format: ``harmbench_behaviors_text_all.csv`` with columns ``Behavior``, ``FunctionalCategory``,
``SemanticCategory``, ``BehaviorID`` (a folder holding it, or the file).
"""

from __future__ import annotations

from pathlib import Path

from audited_ft.eval.sets import Files, SetSpec, read_rows, register
from audited_ft.eval.sets._harmful import harmful_item

COLUMNS = ("Behavior", "FunctionalCategory", "SemanticCategory", "BehaviorID")


def _parse_file(file: Path) -> list[dict]:
    items = []
    for at, row in read_rows(file, COLUMNS):
        if (row.get("FunctionalCategory") or "").strip() != "standard":
            continue
        key = (row.get("BehaviorID") or "").strip() or str(at.index)
        items.append(harmful_item(f"harmbench-{key}", row.get("Behavior"), row.get("SemanticCategory"),
                                  f"{at}: field 'Behavior'"))
    return items


def _parse_hub(rows) -> list[dict]:
    # walledai/HarmBench:standard:train has columns prompt and category (standard behaviours only).
    return [harmful_item(f"harmbench-{i}", r.get("prompt") or r.get("Behavior"),
                         r.get("category") or r.get("SemanticCategory"), f"hub row {i}")
            for i, r in enumerate(rows)
            if (r.get("FunctionalCategory") or "standard") == "standard"]


register(SetSpec(
    name="harmbench", title="HarmBench standard behaviours", licence="MIT",
    citation="Mazeika, Phan, Yin, Zou, Wang, Mu, Sakhaee, Li, Basart, Li, Forsyth, Hendrycks (2024). HarmBench: A "
             "Standardized Evaluation Framework for Automated Red Teaming and Robust Refusal. ICML",
    folder="harmbench", text_fields=("instruction",), parse_file=_parse_file, parse_hub=_parse_hub,
    files=Files(("harmbench_behaviors_text_all.csv", "harmbench_behaviors_text_*.csv"),
                "expected harmbench_behaviors_text_all.csv (HarmBench) there"),
    hub_id="walledai/HarmBench:standard:train", stratify="category"))
