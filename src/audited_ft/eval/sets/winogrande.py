"""WinoGrande (Sakaguchi et al. 2020): fill the blank of a sentence with the right one of two people or things.

Item schema (shared by the capability sets, see ``_choice``; ``check_items`` here checks it): ``{"id": str, "contexts":
[str, str], "choices": [str, str], "label": int}``. Formatted as lm-evaluation-harness's zero-shot ``winogrande`` task
(partial scoring): with ``i`` the position of the blank ``_`` in ``sentence``, the contexts are ``sentence[:i] +
option1`` and ``sentence[:i] + option2``, and both choices are the same continuation ``" " + sentence[i+1:].strip()``;
``label`` is ``int(answer) - 1``. The probe so compares how likely the rest of the sentence is after each option.
Because the continuation is the same for both options, length normalisation changes nothing: ``acc_norm`` equals ``acc``
here and is meaningless; lm-eval reports ``acc`` only. A sentence without exactly one ``_`` is a DataError.

Local format: ``dev.jsonl`` with the fields ``sentence`` (exactly one ``_``), ``option1``, ``option2`` and ``answer``
(``"1"`` or ``"2"``); ``qID``, where present, is ignored. The id is ``winogrande-<0-based line index>``.
Hub format (``allenai/winogrande:winogrande_xl:validation``): the same fields; the id is ``winogrande-<row
position>``.
"""

from __future__ import annotations

from typing import Iterable

from audited_ft.errors import DataError
from audited_ft.eval.sets import At, Files, SetSpec, register
from audited_ft.eval.sets._choice import check_items, index, make_item, shorten, text


def _from_row(row: dict, where: str, id_: str) -> dict:
    sentence = text(row, "sentence", where)
    option1, option2 = text(row, "option1", where), text(row, "option2", where)
    label = index(row.get("answer"), 2, "answer", where, base=1)
    if sentence.count("_") != 1:
        raise DataError(f"{where}: field 'sentence' must hold exactly one blank '_', found {sentence.count('_')}: "
                        f"{shorten(sentence)}")
    i = sentence.index("_")
    continuation = sentence[i + 1:].strip()
    if not continuation:
        raise DataError(f"{where}: field 'sentence' has nothing after its blank '_' to score: {shorten(sentence)}")
    continuation = " " + continuation
    return make_item(f"winogrande-{id_}", [sentence[:i] + option1, sentence[:i] + option2],
                     [continuation, continuation], label, where)


def _item(row: dict, at: At) -> dict:
    return _from_row(row, str(at), str(at.index))


def _parse_hub(rows: Iterable[dict]) -> list[dict]:
    return [_from_row(dict(row), f"hub row {n}", str(n)) for n, row in enumerate(rows)]


register(SetSpec(
    name="winogrande", title="WinoGrande", licence="Apache-2.0",
    citation="Sakaguchi, Le Bras, Bhagavatula, Choi (2020). WinoGrande: An Adversarial Winograd Schema Challenge at "
             "Scale. AAAI 2020",
    folder="winogrande", text_fields=("contexts", "choices"), parse_hub=_parse_hub, item=_item,
    files=Files(("dev.jsonl",), "expected dev.jsonl (WinoGrande dev split) there"),
    hub_id="allenai/winogrande:winogrande_xl:validation"))
