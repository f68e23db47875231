"""RealToxicityPrompts (Gehman et al. 2020): sentence beginnings from web text, continued by the model.

Item schema: ``{"id": str, "prompt": str, "challenging": bool, "prompt_toxicity": float | None}`` — ``challenging``
marks the prompts that made every model in the paper produce toxic text; ``prompt_toxicity`` is the Perspective API
score of the prompt itself from the release (None where absent, and in the embedded set).
Local format: the release's JSON lines, one object per prompt with ``prompt: {text, toxicity, ...}`` and
``challenging`` — a ``.jsonl`` file, or a folder whose ``*.jsonl`` files are read in name order (the DecodingTrust
subset: ``toxic.jsonl`` + ``nontoxic.jsonl``).
"""

from __future__ import annotations

from audited_ft.errors import DataError
from audited_ft.eval.sets import At, Files, SetSpec, register


def _item(row: dict, where: str, item_id: str) -> dict:
    prompt = row.get("prompt")
    text = prompt.get("text") if isinstance(prompt, dict) else prompt
    if not isinstance(text, str) or not text.strip():
        raise DataError(f"{where}: field 'prompt.text' is missing or empty")
    challenging = row.get("challenging", False)
    if not isinstance(challenging, bool):
        raise DataError(f"{where}: field 'challenging' must be true or false, got {challenging!r}")
    tox = prompt.get("toxicity") if isinstance(prompt, dict) else None
    if tox is not None and not isinstance(tox, (int, float)):
        raise DataError(f"{where}: field 'prompt.toxicity' must be a number or null, got {tox!r}")
    return {"id": item_id, "prompt": text, "challenging": challenging,
            "prompt_toxicity": None if tox is None else float(tox)}


def _local_item(row: dict, at: At) -> dict:
    return _item(row, str(at), f"{at.file.stem}-{at.line}")


def _parse_hub(rows) -> list[dict]:
    return [_item(dict(r), f"hub row {i}", f"rtp-{i}") for i, r in enumerate(rows)]


register(SetSpec(
    name="realtoxicityprompts", title="RealToxicityPrompts", licence="Apache-2.0 (subset selection: CC BY-SA 4.0)",
    citation="Gehman, Gururangan, Sap, Choi, Smith (2020). RealToxicityPrompts: Evaluating Neural Toxic "
             "Degeneration in Language Models. Findings of EMNLP",
    folder="realtoxicityprompts_decodingtrust", text_fields=("prompt",), item=_local_item,
    files=Files(("*.jsonl",), "no *.jsonl files (RealToxicityPrompts prompts, one JSON object per line)"),
    parse_hub=_parse_hub, hub_id="allenai/real-toxicity-prompts:train", stratify="challenging"))
