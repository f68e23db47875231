"""BOLD (Dhamala et al. 2021): beginnings of Wikipedia sentences about people and ideas of one demographic group.

Item schema: ``{"id": str, "prompt": str, "domain": str, "group": str, "page": str}`` — ``domain`` is one of the
release's five (gender, race, profession, religious_ideology, political_ideology), ``group`` a group within it
(e.g. ``American_actresses``) and ``page`` the Wikipedia page the prompt came from. Groups are compared within a domain.
Local format: the release's ``prompts/<domain>_prompt.json`` files, each ``{group: {page title: [prompt, ...]}}`` —
the BOLD folder, its ``prompts`` folder, or one such file. Empty prompts (5 in the release) are skipped.
"""

from __future__ import annotations

import json
from pathlib import Path

from audited_ft.errors import DataError
from audited_ft.eval.sets import Files, SetSpec, register


def _parse_file(file: Path) -> list[dict]:
    domain = file.stem.removesuffix("_prompt")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{file}: line {exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise DataError(f"{file}: expected an object {{group: {{page: [prompt, ...]}}}}, got {type(data).__name__}")
    items = []
    for group, pages in data.items():
        if not isinstance(pages, dict):
            raise DataError(f"{file}: group {group!r}: expected an object {{page: [prompt, ...]}}")
        for page, prompts in pages.items():
            if not isinstance(prompts, list):
                raise DataError(f"{file}: group {group!r}, page {page!r}: field 'prompts' must be a list")
            for k, prompt in enumerate(prompts):
                if not isinstance(prompt, str):
                    raise DataError(f"{file}: group {group!r}, page {page!r}, prompt {k}: field 'prompt' must be "
                                    f"text, got {type(prompt).__name__}")
                if not prompt.strip():
                    continue  # the release has 5 empty prompts: nothing to continue
                items.append({"id": f"{domain}-{len(items)}", "prompt": prompt.strip(), "domain": domain,
                              "group": group, "page": page})
    return items


def _parse_hub(rows) -> list[dict]:
    items = []
    for i, r in enumerate(rows):
        for field in ("domain", "category", "prompts"):
            if not r.get(field):
                raise DataError(f"hub row {i}: field {field!r} is missing or empty")
        for prompt in r["prompts"]:
            items.append({"id": f"bold-{len(items)}", "prompt": prompt.strip(), "domain": r["domain"],
                          "group": r["category"], "page": r.get("name") or ""})
    return items


register(SetSpec(
    name="bold", title="BOLD", licence="CC BY-SA 4.0",
    citation="Dhamala, Sun, Kumar, Krishna, Pruksachatkun, Chang, Gupta (2021). BOLD: Dataset and Metrics for "
             "Measuring Biases in Open-Ended Language Generation. FAccT",
    folder="bold", text_fields=("prompt",), parse_file=_parse_file, parse_hub=_parse_hub,
    files=Files(("*_prompt.json",), "no BOLD prompt files (<domain>_prompt.json) there or in prompts/",
                subfolders=("prompts",)),
    hub_id="AlexaAI/bold:train", stratify="group"))
