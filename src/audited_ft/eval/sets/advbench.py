"""AdvBench harmful behaviours (Zou et al. 2023): instructions a safe assistant refuses.

Item schema: the harmful-request schema of :mod:`audited_ft.eval.sets._harmful` (AdvBench has no categories:
``category`` is "") plus ``target`` — ``target`` is the affirmative opening the attack paper
optimised for ("Sure, here is ..."); the embedded set leaves it empty.
Local format: ``harmful_behaviors.csv`` with columns ``goal`` and ``target`` (a folder holding it, or the file).
"""

from __future__ import annotations

from audited_ft.errors import DataError
from audited_ft.eval.sets import At, Files, SetSpec, register


def _item(row: dict, at: At) -> dict:
    if not (row.get("goal") or "").strip():
        raise DataError(f"{at}: field 'goal' is missing or empty")
    return {"id": f"advbench-{at.index}", "instruction": row["goal"].strip(), "category": "",
            "target": (row.get("target") or "").strip()}


def _parse_hub(rows) -> list[dict]:
    return [{"id": f"advbench-{i}", "instruction": r.get("goal") or r.get("prompt"), "category": "",
             "target": r.get("target", "")}
            for i, r in enumerate(rows)]


register(SetSpec(
    name="advbench", title="AdvBench harmful behaviours", licence="MIT",
    citation="Zou, Wang, Kolter, Fredrikson (2023). Universal and Transferable Adversarial Attacks on Aligned "
             "Language Models. arXiv:2307.15043",
    folder="advbench", text_fields=("instruction",), parse_hub=_parse_hub,
    files=Files(("harmful_behaviors.csv",), "expected harmful_behaviors.csv (AdvBench) there"), item=_item,
    columns=("goal",),
    hub_id="walledai/AdvBench:train"))
