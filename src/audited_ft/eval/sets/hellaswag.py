"""HellaSwag (Zellers et al. 2019): pick the most plausible continuation of a short description of an activity.

Item schema (shared by the capability sets, see ``_choice``; ``check_items`` here checks it): ``{"id": str, "contexts":
[str] * 4, "choices": [str] * 4, "label": int}``. Formatted as lm-evaluation-harness's zero-shot ``hellaswag`` task:
every option shares the context ``preprocess(activity_label + ": " + ctx)``; the choices are ``" " +
preprocess(ending)``; ``label`` is the index of the gold ending. ``preprocess`` strips the text, turns ``" [title]"``
into ``". "``, removes every ``[...]`` tag (WikiHow artefacts such as ``[header]`` and ``[step]``) and collapses double
spaces. lm-eval reports ``acc_norm``.

Local format: ``hellaswag_val.jsonl.gz`` (or ``.jsonl``) with the fields ``idx`` (0-based position), ``query``
(``activity_label + ": " + ctx``), ``endings`` (4 texts) and ``label`` (0-3). The shared copy is already preprocessed
(so ``preprocess`` changes little) and its ``query`` holds the original ``ctx`` (``ctx_a + " " + ctx_b``), where lm-eval
builds ``ctx_a + " " + ctx_b.capitalize()``: the two differ only in the letter case of ``ctx_b`` (``capitalize``
upper-cases its first letter and lower-cases the rest), and ``ctx_a``/``ctx_b`` are not in the copy, so lm-eval's exact
text cannot be rebuilt from it. Records of the original release (``activity_label``, ``ctx_a``, ``ctx_b``, ``endings``,
``label``; no ``query``) are read too and built as the hub rows are. The id is ``hellaswag-<idx>`` (or the record's
0-based position).
Hub format (``Rowan/hellaswag:validation``): ``activity_label``, ``ctx_a``, ``ctx_b``, ``endings``, ``label`` (a digit
string); the query is ``activity_label + ": " + ctx_a + " " + ctx_b.capitalize()`` (lm-eval's ``doc_to_text``), then
as above; the id is ``hellaswag-<row position>``.
"""

from __future__ import annotations

import re
from typing import Iterable

from audited_ft.eval.sets import At, Files, SetSpec, register
from audited_ft.eval.sets._choice import check_items, index, make_item, text, texts

ENDINGS = 4


def preprocess(value: str) -> str:
    """lm-evaluation-harness's HellaSwag ``preprocess``."""
    value = value.strip()
    value = value.replace(" [title]", ". ")
    value = re.sub(r"\[.*?\]", "", value)
    value = value.replace("  ", " ")
    return value


def _query(row: dict, where: str) -> str:
    if "query" in row:
        return text(row, "query", where)
    ctx_b = row.get("ctx_b")
    if not isinstance(ctx_b, str):
        text(row, "ctx_b", where)  # raises: missing or not text (an empty ctx_b is allowed)
    return text(row, "activity_label", where) + ": " + text(row, "ctx_a", where) + " " + ctx_b.capitalize()


def _from_row(row: dict, where: str, id_: str) -> dict:
    context = preprocess(_query(row, where))
    endings = texts(row, "endings", where, ENDINGS)
    label = index(row.get("label"), ENDINGS, "label", where)
    return make_item(f"hellaswag-{id_}", [context] * ENDINGS, [" " + preprocess(e) for e in endings], label, where)


def _item(row: dict, at: At) -> dict:
    idx = row.get("idx")
    return _from_row(row, str(at), str(idx if isinstance(idx, int) and not isinstance(idx, bool) else at.index))


def _parse_hub(rows: Iterable[dict]) -> list[dict]:
    return [_from_row(dict(row), f"hub row {n}", str(n)) for n, row in enumerate(rows)]


register(SetSpec(
    name="hellaswag", title="HellaSwag", licence="MIT",
    citation="Zellers, Holtzman, Bisk, Farhadi, Choi (2019). HellaSwag: Can a Machine Really Finish Your Sentence? "
             "ACL 2019",
    folder="hellaswag", text_fields=("contexts", "choices"), parse_hub=_parse_hub, item=_item,
    files=Files(("hellaswag_val.jsonl.gz", "hellaswag_val.jsonl"),
                "expected hellaswag_val.jsonl.gz or hellaswag_val.jsonl (HellaSwag validation) there"),
    hub_id="Rowan/hellaswag:validation"))
