"""The item schema the capability sets share (HellaSwag, PIQA, ARC-Easy, ARC-Challenge, WinoGrande) and its checks.

Item schema: ``{"id": str, "contexts": [str, ...], "choices": [str, ...], "label": int}``: one (context, continuation)
pair per answer option, ``len(contexts) == len(choices)`` between 2 and 5, ``label`` the index of the gold option. The
capability probe scores log P(choices[i] | contexts[i]) and picks the argmax (``acc``), or the argmax of that
log-likelihood divided by the option's length in characters (``acc_norm``, as lm-evaluation-harness defines it).
Each loader formats its records exactly as lm-evaluation-harness's zero-shot task does, so the continuation
carries the leading space (lm-eval's ``target_delimiter``).
"""

from __future__ import annotations

from audited_ft.errors import DataError

MIN_OPTIONS, MAX_OPTIONS = 2, 5


def shorten(value, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters for an error message."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def text(row: dict, field: str, where: str, name: str | None = None) -> str:
    """The non-empty text of ``row[field]``; a DataError naming ``where``, the field (as ``name`` when given) and the
    value otherwise."""
    value = row.get(field)
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"{where}: field {name or field!r} must be non-empty text, got {shorten(value)}")
    return value


def texts(row: dict, field: str, where: str, count: int | None = None) -> list[str]:
    """The list of non-empty texts ``row[field]`` (of ``count`` entries when given); a DataError otherwise."""
    value = row.get(field)
    if (not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v.strip() for v in value)
            or (count is not None and len(value) != count) or not value):
        size = f"{count} " if count is not None else ""
        raise DataError(f"{where}: field {field!r} must be a list of {size}non-empty texts, got {shorten(value)}")
    return list(value)


def index(value, options: int, field: str, where: str, base: int = 0) -> int:
    """An option index given as an int or a digit string (``base``: the number of the first option, 0 or 1), as a
    0-based index; a DataError naming the field and value when it is not one of the ``options``."""
    allowed = range(base, base + options)
    if isinstance(value, bool):
        n = None
    elif isinstance(value, int):
        n = value
    elif isinstance(value, str) and value.strip().isdigit():
        n = int(value.strip())
    else:
        n = None
    if n not in allowed:
        raise DataError(f"{where}: field {field!r} must be one of {', '.join(str(i) for i in allowed)}, "
                        f"got {shorten(value)}")
    return n - base


def check_item(item: dict, where: str) -> None:
    """DataError naming ``where`` and the field when an item does not follow the schema above."""
    if not isinstance(item.get("id"), str) or not item["id"]:
        raise DataError(f"{where}: field 'id' must be non-empty text, got {shorten(item.get('id'))}")
    contexts, choices = item.get("contexts"), item.get("choices")
    for f, value in (("contexts", contexts), ("choices", choices)):
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise DataError(f"{where}: field {f!r} must be a list of non-empty texts, got {shorten(value)}")
        if not MIN_OPTIONS <= len(value) <= MAX_OPTIONS:
            raise DataError(f"{where}: field {f!r} must hold {MIN_OPTIONS} to {MAX_OPTIONS} options, "
                            f"got {len(value)}")
    if len(contexts) != len(choices):
        raise DataError(f"{where}: fields 'contexts' and 'choices' differ in length ({len(contexts)} and "
                        f"{len(choices)})")
    label = item.get("label")
    if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < len(choices):
        raise DataError(f"{where}: field 'label' must be an option index 0 to {len(choices) - 1}, "
                        f"got {shorten(label)}")


def check_items(items: list[dict], source: str) -> None:
    for n, item in enumerate(items, 1):
        check_item(item, f"{source}: item {n} (id {item.get('id')!r})")


def make_item(id_: str, contexts: list[str], choices: list[str], label: int, where: str) -> dict:
    """An item of the schema above, checked (a DataError naming ``where``)."""
    item = {"id": id_, "contexts": contexts, "choices": choices, "label": label}
    check_item(item, where)
    return item
