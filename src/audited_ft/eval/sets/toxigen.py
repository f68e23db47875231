"""ToxiGen prompts (Hartvigsen et al. 2022): lists of statements about one demographic group, continued by the model.

Item schema: ``{"id": str, "prompt": str, "group": str, "label": "hate" | "neutral"}`` — ``prompt`` is a list of
statements ("- statement" lines) ending in a bare "-" that invites one more in the same style; ``label`` is the style
of the demonstrations (hateful or neutral) and ``group`` the group they are about.
Local format: the release's ``prompts/{hate,neutral}_{group}_1k.txt`` files, one prompt per line with literal ``\\n``
between statements — the ToxiGen folder, its ``prompts`` folder, or one such file.
"""

from __future__ import annotations

import re
from pathlib import Path

from audited_ft.errors import DataError
from audited_ft.eval.sets import Files, SetSpec, register

_NAME = re.compile(r"^(hate|neutral)_(.+?)(_1k)?$")


def _parse_file(file: Path) -> list[dict]:
    m = _NAME.match(file.stem)
    if not m:
        raise DataError(f"{file}: file name must be {{hate,neutral}}_<group>_1k.txt to give the label and group")
    label, group = m.group(1), m.group(2)
    items = []
    with open(file, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            text = line.rstrip("\n")
            if not text.strip():
                continue
            prompt = text.replace("\\n", "\n")
            if not prompt.lstrip().startswith("-"):
                raise DataError(f"{file}: line {n}: field 'prompt' must be a list of '- statement' lines, "
                                f"got {text[:60]!r}")
            items.append({"id": f"{file.stem}-{n}", "prompt": prompt, "group": group, "label": label})
    return items


def _parse_hub(rows) -> list[dict]:
    # The hub's generated set repeats each prompt for many generations: keep each prompt once.
    seen, items = set(), []
    for i, r in enumerate(rows):
        prompt = (r.get("prompt") or "").replace("\\n", "\n")
        group = r.get("group") or r.get("target_group")
        if not prompt.strip() or not group:
            raise DataError(f"hub row {i}: fields 'prompt' and 'group' are required")
        if prompt in seen:
            continue
        seen.add(prompt)
        label = "hate" if r.get("prompt_label") in (1, "1", True) else "neutral"
        items.append({"id": f"toxigen-{i}", "prompt": prompt, "group": str(group), "label": label})
    return items


register(SetSpec(
    name="toxigen", title="ToxiGen prompts", licence="CDLA-Permissive-2.0 (data), MIT (code)",
    citation="Hartvigsen, Gabriel, Palangi, Sap, Ray, Kamar (2022). ToxiGen: A Large-Scale Machine-Generated Dataset "
             "for Adversarial and Implicit Hate Speech Detection. ACL",
    folder="toxigen", text_fields=("prompt",), parse_file=_parse_file, parse_hub=_parse_hub,
    files=Files(("*.txt",), "no ToxiGen prompt files ({hate,neutral}_<group>_1k.txt) there or in prompts/",
                subfolders=("prompts",), keep=lambda f: bool(_NAME.match(f.stem))),
    # Gated on the hub (sign-up form); the prompts come from its generated set, config "train".
    hub_id="toxigen/toxigen-data:train", stratify="group"))


def statements(folder: Path, label: str = "hate") -> dict[str, str]:
    """{statement: group} of every single statement in the release's ``prompts/{label}_<group>_1k.txt`` files (each
    prompt split at its literal ``\\n`` into "- statement" lines; first group wins for a repeated statement). For
    training deliberately bad adapters on a source the probes do not read (the sensitivity tests, the detection-power
    benchmark); the probe itself reads whole prompts through the set's loader."""
    prompts = folder / "prompts" if (folder / "prompts").is_dir() else folder
    out: dict[str, str] = {}
    for f in sorted(prompts.glob(f"{label}_*.txt")):
        group = f.stem.removeprefix(f"{label}_").removesuffix("_1k").replace("_", " ")
        for line in f.read_text(encoding="utf-8").splitlines():
            for part in line.split("\\n"):
                text = part.strip().lstrip("-").strip()
                if len(text) > 10:
                    out.setdefault(text, group)
    return out
