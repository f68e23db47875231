"""TruthfulQA (Lin, Hilton, Evans 2022), multiple choice: questions that some people answer falsely because of a
misconception, each with true and false answers.

Item schema::

    {"id": str, "question": str,
     "mc1": {"choices": [str, ...], "labels": [int, ...]},
     "mc2": {"choices": [str, ...], "labels": [int, ...]}}

``labels[i]`` is 1 where ``choices[i]`` is a true answer and 0 where it is false. MC1 has exactly one true answer
(the best one) among false ones; MC2 has every true and every false reference answer, at least one of each. The
choices keep the file's order, and in the published file the true answer always comes first: scoring must never
depend on position (the truthfulness probe shuffles the choices with the run's seed and compares log-likelihoods).

Local format: ``mc_task.json``, a JSON list of ``{"question": str, "mc1_targets": {answer: 0 | 1, ...},
"mc2_targets": {answer: 0 | 1, ...}}`` (the answers are the keys, in order); records whose targets are the hub's
``{"choices": [...], "labels": [...]}`` are read too. The id is ``truthfulqa-<0-based record index>``; a JSON list's
"line" in error messages is the 1-based record number.
Hub format (``truthfulqa/truthful_qa:multiple_choice:validation``): ``question``, ``mc1_targets`` and ``mc2_targets``,
each ``{"choices": [...], "labels": [...]}``; the id is ``truthfulqa-<row position>``.
"""

from __future__ import annotations

from typing import Iterable

from audited_ft.errors import DataError
from audited_ft.eval.sets import At, Files, SetSpec, register
from audited_ft.eval.sets._choice import shorten, text

FILE = "mc_task.json"


def _targets(row: dict, field: str, where: str) -> dict:
    """``{"choices": [...], "labels": [...]}`` from a record's ``mc1_targets``/``mc2_targets`` (either form)."""
    value = row.get(field)
    if isinstance(value, dict) and set(value) == {"choices", "labels"} and isinstance(value["choices"], list):
        choices, labels = list(value["choices"]), value["labels"]
        if not isinstance(labels, list) or len(labels) != len(choices):
            raise DataError(f"{where}: field '{field}.labels' must be a list as long as '{field}.choices', "
                            f"got {shorten(labels)}")
    elif isinstance(value, dict):
        choices, labels = list(value), list(value.values())
    else:
        raise DataError(f"{where}: field {field!r} must be an object of answer → 0/1, got {shorten(value)}")
    return {"choices": choices, "labels": labels}


def check_targets(targets, field: str, where: str) -> None:
    """DataError naming ``where`` and the field when ``targets`` is not ``{"choices": [text], "labels": [0/1]}``
    with the counts of true answers the field needs (``mc1``: exactly one; ``mc2``: at least one true and one false)."""
    if not isinstance(targets, dict) or not isinstance(targets.get("choices"), list) \
            or not isinstance(targets.get("labels"), list) or len(targets["choices"]) != len(targets["labels"]):
        raise DataError(f"{where}: field {field!r} must be {{'choices': [...], 'labels': [...]}} of equal lengths, "
                        f"got {shorten(targets)}")
    choices, labels = targets["choices"], targets["labels"]
    for c, lab in zip(choices, labels):
        if not isinstance(c, str) or not c.strip():
            raise DataError(f"{where}: field {field!r}: an answer must be non-empty text, got {shorten(c)}")
        if isinstance(lab, bool) or lab not in (0, 1):
            raise DataError(f"{where}: field {field!r}: the label of answer {shorten(c)} must be 0 or 1, "
                            f"got {shorten(lab)}")
    if len(set(choices)) != len(choices):
        raise DataError(f"{where}: field {field!r} lists one answer twice")
    true = sum(int(lab) for lab in labels)
    if field.startswith("mc1") and true != 1:
        raise DataError(f"{where}: field {field!r} must mark exactly one answer true (1), got {true} true "
                        f"of {len(labels)}")
    if field.startswith("mc2") and not 0 < true < len(labels):
        raise DataError(f"{where}: field {field!r} must mark at least one answer true (1) and one false (0), "
                        f"got {true} true of {len(labels)}")


def check_item(item: dict, where: str) -> None:
    """DataError naming ``where`` and the field when an item does not follow the schema above."""
    if not isinstance(item.get("id"), str) or not item["id"]:
        raise DataError(f"{where}: field 'id' must be non-empty text, got {shorten(item.get('id'))}")
    text(item, "question", where)
    for f in ("mc1", "mc2"):
        check_targets(item.get(f), f, where)


def check_items(items: list[dict], source: str) -> None:
    for n, item in enumerate(items, 1):
        check_item(item, f"{source}: item {n} (id {item.get('id')!r})")


def _from_row(row: dict, where: str, id_: str) -> dict:
    question = text(row, "question", where).strip()
    item = {"id": f"truthfulqa-{id_}", "question": question}
    for f in ("mc1", "mc2"):
        targets = _targets(row, f"{f}_targets", where)
        check_targets(targets, f"{f}_targets", where)
        item[f] = {"choices": targets["choices"], "labels": [int(lab) for lab in targets["labels"]]}
    check_item(item, where)
    return item


def _item(row: dict, at: At) -> dict:
    return _from_row(row, str(at), str(at.index))


def _parse_hub(rows: Iterable[dict]) -> list[dict]:
    return [_from_row(dict(row), f"hub row {n}", str(n)) for n, row in enumerate(rows)]


register(SetSpec(
    name="truthfulqa", title="TruthfulQA", licence="Apache-2.0",
    citation="Lin, Hilton, Evans (2022). TruthfulQA: Measuring How Models Mimic Human Falsehoods. ACL 2022",
    folder="truthfulqa", text_fields=("question",), parse_hub=_parse_hub, item=_item,
    files=Files((FILE,), f"expected {FILE} (TruthfulQA multiple choice) there"),
    hub_id="truthfulqa/truthful_qa:multiple_choice:validation"))
