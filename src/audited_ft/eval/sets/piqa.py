"""PIQA (Bisk et al. 2020): physical commonsense, pick the better of two solutions to a goal.

Item schema (shared by the capability sets, see ``_choice``; ``check_items`` here checks it): ``{"id": str, "contexts":
[str, str], "choices": [str, str], "label": int}``. Formatted as lm-evaluation-harness's zero-shot ``piqa`` task: both
options share the context ``"Question: " + goal + "\\nAnswer:"``; the choices are ``" " + sol1`` and ``" " + sol2``;
``label`` is 0 or 1 (the gold solution is ``sol{label+1}``). lm-eval reports ``acc_norm``.

Local format: ``valid_with_labels.jsonl`` (the fields ``goal``, ``sol1``, ``sol2``, ``label``), or, where that file is
absent, the official pair ``valid.jsonl`` (``goal``, ``sol1``, ``sol2``) and ``valid-labels.lst`` (one ``0``/``1`` a
line, aligned with the jsonl): a record without ``label`` takes it from ``<name>-labels.lst`` beside its file. The id
is ``piqa-<0-based line index>``.
Hub format (``ybisk/piqa:validation``): the same fields, ``label`` an integer; the id is ``piqa-<row position>``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from audited_ft.errors import DataError
from audited_ft.eval.sets import At, Files, SetSpec, read_rows, register
from audited_ft.eval.sets._choice import check_items, index, make_item, text

JOINED = "valid_with_labels.jsonl"
SPLIT = "valid.jsonl"


def _from_row(row: dict, where: str, id_: str) -> dict:
    goal, sol1, sol2 = (text(row, f, where) for f in ("goal", "sol1", "sol2"))
    label = index(row.get("label"), 2, "label", where)
    context = "Question: " + goal + "\nAnswer:"
    return make_item(f"piqa-{id_}", [context, context], [" " + sol1, " " + sol2], label, where)


def labels_file(file: Path) -> Path:
    """The labels file of an official PIQA jsonl: ``valid.jsonl`` → ``valid-labels.lst``."""
    stem = file.name.removesuffix(".gz").removesuffix(".jsonl")
    return file.with_name(f"{stem}-labels.lst")


def _read_labels(path: Path, at: At) -> list[tuple[int, str]]:
    """(line number, label text) of each non-blank line of a ``*-labels.lst`` file."""
    if not path.is_file():
        raise DataError(f"{at}: field 'label' is missing and there is no labels file {path.name} beside the file "
                        f"(give {JOINED}, or {SPLIT} with valid-labels.lst)")
    with open(path, encoding="utf-8") as fh:
        return [(n, line.strip()) for n, line in enumerate(fh, 1) if line.strip()]


def _parse_file(file: Path) -> list[dict]:
    items: list[dict] = []
    labels: list[tuple[int, str]] | None = None
    lst = labels_file(file)
    for at, row in read_rows(file):
        if "label" not in row:
            if labels is None:
                labels = _read_labels(lst, at)
            if at.index >= len(labels):
                raise DataError(f"{at}: no label for this record: {lst} has only {len(labels)} labels")
            n, value = labels[at.index]
            index(value, 2, "label", f"{lst}: line {n}")  # a bad label names the labels file's line
            row = {**row, "label": value}
        items.append(_from_row(row, str(at), str(at.index)))
    if labels is not None and len(labels) != len(items):
        raise DataError(f"{lst}: has {len(labels)} labels but {file.name} has {len(items)} records")
    return items


def _keep(file: Path) -> bool:
    # The joined file wins; the official pair is read only where it is absent.
    return file.name == JOINED or not (file.parent / JOINED).is_file()


def _parse_hub(rows: Iterable[dict]) -> list[dict]:
    return [_from_row(dict(row), f"hub row {n}", str(n)) for n, row in enumerate(rows)]


register(SetSpec(
    name="piqa", title="PIQA", licence="AFL-3.0",
    citation="Bisk, Zellers, Le Bras, Gao, Choi (2020). PIQA: Reasoning about Physical Commonsense in Natural "
             "Language. AAAI 2020",
    folder="piqa", text_fields=("contexts", "choices"), parse_hub=_parse_hub, parse_file=_parse_file,
    files=Files((JOINED, SPLIT), f"expected {JOINED}, or {SPLIT} with valid-labels.lst (PIQA validation) there",
                keep=_keep),
    hub_id="ybisk/piqa:validation"))
