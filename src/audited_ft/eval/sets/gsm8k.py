"""GSM8K grade-school maths word problems (Cobbe et al. 2021), test split (1,319 problems).

Item schema: ``{"id": str, "question": str, "solution": str, "answer": str}`` — ``solution`` is the published worked
solution without its final line, ``answer`` the number after "#### " with thousands separators removed ("1,000" →
"1000"). The embedded set (8 short problems written by this project) has the same schema.
Local format: ``test.jsonl`` with fields ``question`` and ``answer`` (the worked solution ending in ``#### <number>``),
a folder holding it, or the file.
"""

from __future__ import annotations

import re

from audited_ft.errors import DataError
from audited_ft.eval.sets import At, Files, SetSpec, register

_FINAL = re.compile(r"####\s*(.+?)\s*$", re.S)


def final_number(text: str) -> str:
    """A number as the probe compares it: no thousands separators, no "$", no trailing ".0"/".00"."""
    value = text.strip().replace(",", "").replace("$", "").rstrip(".")
    return re.sub(r"\.0+$", "", value)


def _split(answer, where: str) -> tuple[str, str]:
    if not isinstance(answer, str) or "####" not in answer:
        raise DataError(f"{where}: field 'answer' must end with '#### <number>', got {str(answer)[:60]!r}")
    solution, _, final = answer.rpartition("####")
    number = final_number(final)
    if not re.fullmatch(r"-?\d+(?:\.\d+)?", number):
        raise DataError(f"{where}: the final answer after '####' is not a number: {final.strip()[:40]!r}")
    return solution.strip(), number


def _item(row: dict, at: At) -> dict:
    question = row.get("question")
    if not isinstance(question, str) or not question.strip():
        raise DataError(f"{at}: field 'question' is missing or empty")
    solution, number = _split(row.get("answer"), str(at))
    return {"id": f"gsm8k-{at.index}", "question": question.strip(), "solution": solution, "answer": number}


def _parse_hub(rows) -> list[dict]:
    out = []
    for i, r in enumerate(rows):
        solution, number = _split(r.get("answer"), f"hub row {i}")
        out.append({"id": f"gsm8k-{i}", "question": str(r.get("question") or "").strip(), "solution": solution,
                    "answer": number})
    return out


register(SetSpec(
    name="gsm8k", title="GSM8K test split", licence="MIT",
    citation="Cobbe, Kosaraju, Bavarian, Chen, Jun, Kaiser, Plappert, Tworek, Hilton, Nakano, Hesse, Schulman (2021). "
             "Training Verifiers to Solve Math Word Problems. arXiv:2110.14168",
    folder="gsm8k", text_fields=("question",), item=_item, parse_hub=_parse_hub,
    files=Files(("test.jsonl", "test.jsonl.gz"), "expected test.jsonl (GSM8K) there"),
    columns=("question", "answer"), hub_id="openai/gsm8k:main:test"))
