"""CrowS-Pairs (Nangia et al. 2020): minimal sentence pairs, one more stereotyping than the other.

Item schema: ``{"id": str, "sent_more": str, "sent_less": str, "stereo_antistereo": "stereo" | "antistereo",
"bias_type": str}``. As in the published file, ``sent_more`` is always the *more stereotypical* sentence of the pair
and ``sent_less`` the less stereotypical one. The direction says which of the two is about the historically
disadvantaged group: ``stereo`` — ``sent_more`` is, and it *demonstrates* a stereotype about that group;
``antistereo`` — ``sent_less`` is, and it *violates* a stereotype (so ``sent_more`` is the stereotype-consistent
version about the advantaged group). Either way "the model prefers ``sent_more``" is the stereotype-consistent choice;
the direction only splits the result. ``bias_type`` is one of the nine published types (race-color, gender,
socioeconomic, nationality, religion, age, sexual-orientation, physical-appearance, disability).

Local format: ``crows_pairs_anonymized.csv`` (a folder holding it, or the file) with columns ``sent_more``,
``sent_less``, ``stereo_antistereo`` and ``bias_type``; the unnamed first column, when present, gives the id.
Hub format: the same fields, where ``stereo_antistereo`` and ``bias_type`` may be class-label integers.
"""

from __future__ import annotations

from typing import Iterable

from audited_ft.errors import DataError
from audited_ft.eval.sets import At, Files, SetSpec, register

FILE = "crows_pairs_anonymized.csv"
FIELDS = ("sent_more", "sent_less", "stereo_antistereo", "bias_type")
DIRECTIONS = ("stereo", "antistereo")


def check_item(item: dict, where: str) -> None:
    """DataError naming ``where`` and the field when an item does not follow the schema above."""
    for f in FIELDS:
        if item.get(f) in (None, ""):
            raise DataError(f"{where}: field {f!r} is missing or empty")
    for f in ("sent_more", "sent_less", "bias_type"):
        if not isinstance(item[f], str):
            raise DataError(f"{where}: field {f!r} must be text, got {type(item[f]).__name__}")
    if item["stereo_antistereo"] not in DIRECTIONS:
        raise DataError(f"{where}: field 'stereo_antistereo' must be 'stereo' or 'antistereo', "
                        f"got {item['stereo_antistereo']!r}")
    if item["sent_more"].strip() == item["sent_less"].strip():
        raise DataError(f"{where}: 'sent_more' and 'sent_less' are the same sentence")


def check_items(items: list[dict], source: str) -> None:
    for n, item in enumerate(items, 1):
        check_item(item, f"{source}: item {n} (id {item.get('id')!r})")


def _item(row: dict, at: At) -> dict:
    index = (row.get("") or "").strip() or str(at.index)
    item = {"id": f"crows-{index}", **{f: (row[f] or "").strip() for f in FIELDS}}
    # the line a row ends on; quoted sentences never span lines in the published file
    check_item(item, str(at))
    return item


def _parse_hub(rows: Iterable[dict]) -> list[dict]:
    features = getattr(rows, "features", None) or {}
    items = []
    for n, row in enumerate(rows):
        item = {"id": f"crows-{row.get('id', n)}"}
        for f in FIELDS:
            value = row.get(f)
            if isinstance(value, int) and hasattr(features.get(f), "int2str"):
                value = features[f].int2str(value)  # class labels arrive as integers
            item[f] = value.strip() if isinstance(value, str) else value
        check_item(item, f"hub row {n}")
        items.append(item)
    return items


register(SetSpec(
    name="crows_pairs", title="CrowS-Pairs", licence="CC BY-SA 4.0",
    citation="Nangia, Vania, Bhalerao, Bowman (2020). CrowS-Pairs: A Challenge Dataset for Measuring Social Biases "
             "in Masked Language Models. EMNLP 2020",
    folder="crows_pairs", text_fields=("sent_more", "sent_less"), parse_hub=_parse_hub,
    files=Files((FILE,), f"expected {FILE} (CrowS-Pairs) there"), item=_item, columns=FIELDS,
    hub_id="nyu-mll/crows_pairs:test", stratify="bias_type"))
