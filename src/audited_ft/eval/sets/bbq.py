"""BBQ, the Bias Benchmark for QA (Parrish et al. 2022): three-way multiple choice about two people and "unknown".

Item schema::

    {"id": str, "category": str, "context_condition": "ambig" | "disambig", "question_polarity": "neg" | "nonneg",
     "context": str, "question": str, "answers": [str, str, str], "label": int,
     "unknown": int, "target": int | null}

``answers`` are the three options in the published order; ``label`` is the index of the correct one; ``unknown`` the
index of the "cannot be determined" option (the correct answer of every ambiguous context); ``target`` the index of the
person who belongs to the group the question's stereotype is about (the *bias target*), ``null`` where it cannot be
resolved. In a ``neg`` question, answering ``target`` is the stereotype-consistent (biased) answer; in a ``nonneg``
question, answering the other person is.

Local format: the official per-category JSON-lines files (``Age.jsonl`` ...) with the fields ``example_id``,
``category``, ``context_condition``, ``question_polarity``, ``context``, ``question``, ``ans0``-``ans2``, ``label``,
``answer_info`` and ``additional_metadata.stereotyped_groups``; a folder holding them, a folder whose ``data/`` holds
them, or one file. The target is the answer whose ``answer_info`` group label or word names one of the item's
``stereotyped_groups`` (the official release keeps the resolved index in a separate ``additional_metadata.csv``); the
unknown option is the one whose ``answer_info`` label is ``unknown``. Hub rows with the same fields parse the same way;
without ``answer_info`` the unknown option is found by its wording and the target stays unresolved.
"""

from __future__ import annotations

import json
import re
from typing import Iterable

from audited_ft.errors import DataError
from audited_ft.eval.sets import At, Files, SetSpec, register

REQUIRED = ("category", "context_condition", "question_polarity", "context", "question", "ans0", "ans1", "ans2",
            "label")
CONDITIONS = ("ambig", "disambig")
POLARITIES = ("neg", "nonneg")
# Wordings of the unknown option in BBQ's vocabulary, for rows that come without answer_info.
_UNKNOWN_WORDS = ("unknown", "cannot be determined", "can't be determined", "not answerable", "not known",
                  "not enough info", "not enough information", "cannot answer", "can't answer", "undetermined")


def check_item(item: dict, where: str) -> None:
    """DataError naming ``where`` and the field when an item does not follow the schema above."""
    for f in ("category", "context_condition", "question_polarity", "context", "question", "answers", "label",
              "unknown"):
        if item.get(f) in (None, ""):
            raise DataError(f"{where}: field {f!r} is missing or empty")
    if item["context_condition"] not in CONDITIONS:
        raise DataError(f"{where}: field 'context_condition' must be one of {CONDITIONS}, "
                        f"got {item['context_condition']!r}")
    if item["question_polarity"] not in POLARITIES:
        raise DataError(f"{where}: field 'question_polarity' must be one of {POLARITIES}, "
                        f"got {item['question_polarity']!r}")
    answers = item["answers"]
    if not (isinstance(answers, list) and len(answers) == 3 and all(isinstance(a, str) and a.strip() for a in answers)):
        raise DataError(f"{where}: field 'answers' must be a list of three non-empty texts, got {answers!r}")
    for f in ("label", "unknown", "target"):
        value = item.get(f)
        if f == "target" and value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 2:
            raise DataError(f"{where}: field {f!r} must be an answer index 0, 1 or 2, got {value!r}")
    if item.get("target") == item["unknown"]:
        raise DataError(f"{where}: field 'target' points at the unknown answer ({item['unknown']})")
    if item["context_condition"] == "ambig" and item["label"] != item["unknown"]:
        raise DataError(f"{where}: field 'label' is {item['label']}, but in an ambiguous context the correct answer "
                        f"is the unknown one ({item['unknown']})")


def check_items(items: list[dict], source: str) -> None:
    for n, item in enumerate(items, 1):
        check_item(item, f"{source}: item {n} (id {item.get('id')!r})")


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(text).lower())


def _from_row(row: dict, where: str, fallback_id: str) -> dict:
    """One official BBQ row → an item of the schema above."""
    for f in REQUIRED:
        if row.get(f) in (None, ""):
            raise DataError(f"{where}: field {f!r} is missing or empty")
    answers = [str(row[f"ans{i}"]).strip() for i in range(3)]
    try:
        label = int(row["label"])
    except (TypeError, ValueError):
        raise DataError(f"{where}: field 'label' must be 0, 1 or 2, got {row['label']!r}") from None
    info = row.get("answer_info")
    if isinstance(info, str):  # some hub exports store the dict as JSON text
        try:
            info = json.loads(info)
        except json.JSONDecodeError:
            info = None
    unknown, target = _unknown_and_target(info, row.get("additional_metadata"), answers, where)
    category = str(row["category"]).strip()
    item = {"id": f"bbq-{category}-{row.get('example_id', fallback_id)}", "category": category,
            "context_condition": row["context_condition"], "question_polarity": row["question_polarity"],
            "context": str(row["context"]).strip(), "question": str(row["question"]).strip(), "answers": answers,
            "label": label, "unknown": unknown, "target": target}
    check_item(item, where)
    return item


def _unknown_and_target(info, metadata, answers: list[str], where: str) -> tuple[int, int | None]:
    if isinstance(info, dict) and all(isinstance(info.get(f"ans{i}"), (list, tuple)) for i in range(3)):
        labels = [info[f"ans{i}"] for i in range(3)]
        unknown = [i for i, lab in enumerate(labels) if len(lab) > 1 and _norm(lab[1]) == "unknown"]
        if len(unknown) != 1:
            raise DataError(f"{where}: field 'answer_info' marks {len(unknown)} answers as 'unknown' (expected one)")
        groups = (metadata or {}).get("stereotyped_groups") if isinstance(metadata, dict) else None
        wanted = {_norm(g) for g in groups or []}
        hits = [i for i, lab in enumerate(labels) if i != unknown[0] and wanted
                and any(_norm(part) in wanted for part in lab)]
        return unknown[0], hits[0] if len(hits) == 1 else None
    unknown = [i for i, a in enumerate(answers) if _norm(a) in {_norm(w) for w in _UNKNOWN_WORDS}]
    if len(unknown) != 1:
        raise DataError(f"{where}: field 'answer_info' is missing and no single answer reads as 'unknown' "
                        f"({answers!r})")
    return unknown[0], None


def _item(row: dict, at: At) -> dict:
    return _from_row(row, str(at), f"{at.file.stem}-{at.line}")


def _parse_hub(rows: Iterable[dict]) -> list[dict]:
    return [_from_row(dict(row), f"hub row {n}", str(n)) for n, row in enumerate(rows)]


register(SetSpec(
    name="bbq", title="BBQ (Bias Benchmark for QA)", licence="CC BY 4.0",
    citation="Parrish, Chen, Nangia, Padmakumar, Phang, Thompson, Htut, Bowman (2022). BBQ: A Hand-Built Bias "
             "Benchmark for Question Answering. Findings of ACL 2022",
    folder="bbq", text_fields=("context",), parse_hub=_parse_hub, item=_item,
    files=Files(("*.jsonl",), "no BBQ *.jsonl files there (expected e.g. Age.jsonl, or a data/ folder of them)",
                subfolders=("data",)),
    hub_id="Elfsong/BBQ:age+disability_status+gender_identity+nationality+physical_appearance+race_ethnicity"
           "+race_x_gender+race_x_ses+religion+ses+sexual_orientation",
    stratify="category"))
