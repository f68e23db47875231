"""The optional GSM8K probe: answer extraction, the loader's checks, and a planted change seen beyond its interval."""

from __future__ import annotations

import pytest

from audited_ft.errors import DataError
from audited_ft.eval.probes import PROBES, ProbeContext
from audited_ft.eval.stats import IntervalSettings
from audited_ft.eval.probes.gsm8k import final_answer
from audited_ft.eval.sets import EMBEDDED_DIR, load_probe_set, read_jsonl_items
from tests.fakes import FakeModel


@pytest.mark.parametrize("text, strict, flexible", [
    (" 3 + 4 = 7 apples. #### 7\n\nQuestion: next", "7", "7"),
    (" She pays $1,250.00 in total.", None, "1250"),
    (" 12 - 5 = 7, so 7 - 2 = 5.\nQuestion: 99 more?", None, "5"),        # cut at the next question
    (" #### -3", "-3", "-3"),
    (" I do not know.", None, None),
])
def test_final_answer(text, strict, flexible):
    assert final_answer(text) == (strict, flexible)


def test_loader_names_a_bad_answer(tmp_path):
    f = tmp_path / "test.jsonl"
    f.write_text('{"question": "1+1?", "answer": "It is 2 #### 2"}\n{"question": "2+2?", "answer": "four"}\n')
    with pytest.raises(DataError, match=r"test.jsonl: line 2: field 'answer' must end with '#### <number>'"):
        load_probe_set("gsm8k", str(f), None)
    f.write_text('{"question": "1+1?", "answer": "It is 2 #### 2,000"}\n')
    assert load_probe_set("gsm8k", str(f), None).items[0]["answer"] == "2000"


class Solver(FakeModel):
    """The base answers every problem right; the adapter answers a wrong number."""

    def __init__(self, gold: dict[str, str]):
        super().__init__()
        self.gold = gold

    def generate(self, prompts, variant, max_new_tokens):
        out = []
        for p in prompts:
            answer = self.gold[p.rsplit("Question: ", 1)[1].removesuffix("\nAnswer:")]
            out.append(f" Working it out. #### {answer}\n\nQuestion: more" if variant == "base" else " #### 0")
        return out


@pytest.mark.realdata
def test_sees_a_lost_ability_beyond_the_interval():
    from tests.conftest import data_dir

    items = load_probe_set("gsm8k", "{data_dir}/gsm8k", data_dir()).items
    cls = PROBES.get("gsm8k")
    out = cls(cls.Options(data="{data_dir}/gsm8k", limit=40)).run(ProbeContext(
        model=Solver({it["question"]: it["answer"] for it in items}), splits={}, data_dir=data_dir(),
        stats=IntervalSettings(bootstrap_samples=200)))
    m = out.metrics
    assert m["capability.gsm8k.exact_match.base"] == 1.0 and m["capability.gsm8k.exact_match.adapter"] == 0.0
    assert m["capability.gsm8k.exact_match.delta.ci_high"] < 0 and m["capability.gsm8k.strict_match.n"] == 40
    assert len(out.info["shots"]) == 5 and not set(out.info["shots"]) & {g["id"] for g in out.generations["gsm8k_base"]}


def test_embedded_set_is_consistent():
    items = read_jsonl_items(EMBEDDED_DIR / "gsm8k.jsonl")
    assert len(items) == 8 and all(set(i) == {"id", "question", "solution", "answer"} for i in items)
    cls = PROBES.get("gsm8k")
    gold = {i["question"]: i["answer"] for i in items}
    out = cls(cls.Options(shots=2)).run(ProbeContext(model=Solver(gold), splits={},
                                                     stats=IntervalSettings(bootstrap_samples=100)))
    assert out.metrics["capability.gsm8k.exact_match.n"] == 6  # 8 − 2 worked examples
