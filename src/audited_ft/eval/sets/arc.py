"""ARC, the AI2 Reasoning Challenge (Clark et al. 2018): grade-school science multiple choice, two sets.

``arc_easy`` (ARC-Easy) and ``arc_challenge`` (ARC-Challenge: the questions that both a retrieval and a
word co-occurrence baseline answered wrongly) share this loader.

Item schema (shared by the capability sets, see ``_choice``; ``check_items`` here checks it): ``{"id": str, "contexts":
[str, ...], "choices": [str, ...], "label": int}`` with 3 to 5 options. Formatted as lm-evaluation-harness's zero-shot
``arc_easy`` / ``arc_challenge`` tasks: every option shares the context ``"Question: " + stem + "\\nAnswer:"``; the
choices are ``" " + text`` in the published order; ``label`` is the index of the choice whose ``label`` equals
``answerKey`` (lm-eval's ``choices.label.index(answerKey)``). Choice labels are letters ``A``-``E`` or, in some rows,
digits ``1``-``5``; the key is matched on the label text, never converted to a position (a copy that maps digit keys by
arithmetic gets them off by one). An ``answerKey`` naming no choice, or two choices with one label, is a DataError.
lm-eval reports ``acc_norm``.

Local format: ``ARC-Easy-Test.jsonl`` / ``ARC-Challenge-Test.jsonl`` (AI2's jsonl) with the fields ``id``,
``question.stem``, ``question.choices[]`` (``text``, ``label``) and ``answerKey``; other fields are ignored. The id is
the record's ``id``, or ``arc-<0-based line index>`` where it is null.
Hub format (``allenai/ai2_arc:ARC-Easy:test``, ``allenai/ai2_arc:ARC-Challenge:test``): ``id``, ``question`` (the
stem), ``choices`` (``{"text": [...], "label": [...]}``) and ``answerKey``.
"""

from __future__ import annotations

from typing import Iterable

from audited_ft.errors import DataError
from audited_ft.eval.sets import At, Files, SetSpec, register
from audited_ft.eval.sets._choice import MAX_OPTIONS, MIN_OPTIONS, check_items, make_item, shorten, text


def _build(id_: str, stem: str, texts: list, labels: list, key, where: str) -> dict:
    if not MIN_OPTIONS <= len(texts) <= MAX_OPTIONS:
        raise DataError(f"{where}: field 'choices' must hold {MIN_OPTIONS} to {MAX_OPTIONS} options, got {len(texts)}")
    for n, (t, lab) in enumerate(zip(texts, labels)):
        if not isinstance(t, str) or not t.strip():
            raise DataError(f"{where}: choice {n}: field 'text' must be non-empty text, got {shorten(t)}")
        if not isinstance(lab, (str, int)) or isinstance(lab, bool) or not str(lab).strip():
            raise DataError(f"{where}: choice {n}: field 'label' must be a letter or digit, got {shorten(lab)}")
    names = [str(lab).strip() for lab in labels]
    if len(set(names)) != len(names):
        raise DataError(f"{where}: the choice labels repeat one another: {names}")
    if not isinstance(key, (str, int)) or isinstance(key, bool) or str(key).strip() not in names:
        raise DataError(f"{where}: field 'answerKey' is {shorten(key)}, which names no choice "
                        f"(choice labels: {', '.join(names)})")
    context = "Question: " + stem + "\nAnswer:"
    return make_item(id_, [context] * len(texts), [" " + t for t in texts], names.index(str(key).strip()), where)


def _item(row: dict, at: At) -> dict:
    where = str(at)
    question = row.get("question")
    if not isinstance(question, dict):
        raise DataError(f"{where}: field 'question' must be an object with 'stem' and 'choices', "
                        f"got {shorten(question)}")
    stem = text(question, "stem", where, "question.stem")
    choices = question.get("choices")
    if not isinstance(choices, list) or not all(isinstance(c, dict) for c in choices):
        raise DataError(f"{where}: field 'question.choices' must be a list of objects with 'text' and 'label', "
                        f"got {shorten(choices)}")
    id_ = row.get("id")
    id_ = str(id_) if id_ not in (None, "") else f"arc-{at.index}"
    return _build(id_, stem, [c.get("text") for c in choices], [c.get("label") for c in choices],
                  row.get("answerKey"), where)


def _parse_hub(rows: Iterable[dict]) -> list[dict]:
    items = []
    for n, row in enumerate(rows):
        where = f"hub row {n}"
        stem = text(row, "question", where)
        choices = row.get("choices")
        if not (isinstance(choices, dict) and isinstance(choices.get("text"), list)
                and isinstance(choices.get("label"), list) and len(choices["text"]) == len(choices["label"])):
            raise DataError(f"{where}: field 'choices' must be {{'text': [...], 'label': [...]}} of equal lengths, "
                            f"got {shorten(choices)}")
        id_ = row.get("id")
        id_ = str(id_) if id_ not in (None, "") else f"arc-{n}"
        items.append(_build(id_, stem, choices["text"], choices["label"], row.get("answerKey"), where))
    return items


CITATION = ("Clark, Cowhey, Etzioni, Khot, Sabharwal, Schoenick, Tafjord (2018). Think you have Solved Question "
            "Answering? Try ARC, the AI2 Reasoning Challenge. arXiv:1803.05457")

for _name, _title, _config in (("arc_easy", "ARC-Easy", "ARC-Easy"), ("arc_challenge", "ARC-Challenge",
                                                                        "ARC-Challenge")):
    register(SetSpec(
        name=_name, title=_title, licence="CC BY-SA 4.0", citation=CITATION, folder=_name,
        text_fields=("contexts", "choices"), parse_hub=_parse_hub, item=_item,
        files=Files((f"{_config}-Test.jsonl",), f"expected {_config}-Test.jsonl ({_title} test split) there"),
        hub_id=f"allenai/ai2_arc:{_config}:test"))
