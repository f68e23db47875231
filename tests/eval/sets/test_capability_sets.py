"""Capability sets (HellaSwag, PIQA, ARC-Easy, ARC-Challenge, WinoGrande) and TruthfulQA: the embedded files, the
loaders on the public copies (skipped without them), bad records, and hub rows (a stand-in ``datasets`` module).

No public item text appears here: the real-data tests recompute what they check from the shared files at run time.
"""

from __future__ import annotations

import gzip
import json
import re
import types
from pathlib import Path

import pytest

from audited_ft.errors import DataError
from audited_ft.eval.sets import EMBEDDED_LICENCE, SETS, load_probe_set
from audited_ft.eval.sets.arc import check_items
from audited_ft.eval.sets.hellaswag import preprocess
from audited_ft.eval.sets.truthfulqa import check_items as check_truthfulqa
from tests.conftest import data_dir, write_jsonl

CAPABILITY = ("hellaswag", "piqa", "arc_easy", "arc_challenge", "winogrande")
ALL = CAPABILITY + ("truthfulqa",)
COUNTS = {"hellaswag": 10042, "piqa": 1838, "arc_easy": 2376, "arc_challenge": 1172, "winogrande": 1267,
          "truthfulqa": 817}
QUESTION = ("piqa", "arc_easy", "arc_challenge")  # contexts "Question: ...\nAnswer:"


def public(name: str) -> Path:
    """The shared public copy of set ``name``; skips the test when it is absent."""
    folder = data_dir() / SETS.get(name).folder
    if not folder.is_dir():
        pytest.skip(f"public copy of {name} not found at {folder} (set AFT_DATA_DIR)")
    return folder


def load_public(name: str, **kw):
    return load_probe_set(name, "{data_dir}/" + SETS.get(name).folder, data_dir(), **kw)


_TAG = re.compile(r"\[.*?\]")


# ---------------------------------------------------------------------------------------------- embedded sets
@pytest.mark.parametrize("name", CAPABILITY)
def test_embedded_capability_set_follows_the_schema(name):
    ps = load_probe_set(name, "embedded", None)
    items = ps.items
    assert len(items) == ps.total == 12 and ps.source == "embedded" and ps.licence == EMBEDDED_LICENCE
    check_items(items, "embedded")
    assert [it["id"] for it in items] == [f"emb-{name}-{i:02d}" for i in range(1, 13)]
    for it in items:
        assert set(it) == {"id", "contexts", "choices", "label"}
        assert len(it["contexts"]) == len(it["choices"]) and 2 <= len(it["choices"]) <= 5
        assert 0 <= it["label"] < len(it["choices"])
        assert all(c.startswith(" ") and not c.startswith("  ") for c in it["choices"])
        assert all(c == c.rstrip() and not c.startswith(" ") for c in it["contexts"])
        if name in QUESTION:
            assert all(c.startswith("Question: ") and c.endswith("\nAnswer:") for c in it["contexts"])
        if name == "winogrande":
            assert it["contexts"][0] != it["contexts"][1] and it["choices"][0] == it["choices"][1]
        else:
            assert len(set(it["contexts"])) == 1 and len(set(it["choices"])) == len(it["choices"])
        if name == "hellaswag":
            assert len(it["choices"]) == 4 and not any(_TAG.search(t) for t in it["contexts"] + it["choices"])
    golds = [it["label"] for it in items]
    assert len(set(golds)) > 1, "the gold option must not always sit at one position"
    assert any(g != len(it["choices"]) - 1 for g, it in zip(golds, items)), "gold not always last"
    assert ps.texts() and len(ps.texts()) == sum(2 * len(it["choices"]) for it in items)


def test_embedded_arc_sets_have_three_to_five_choices():
    sizes = {len(it["choices"]) for name in ("arc_easy", "arc_challenge")
             for it in load_probe_set(name, "embedded", None).items}
    assert sizes == {3, 4, 5}


def test_embedded_truthfulqa_follows_the_schema():
    ps = load_probe_set("truthfulqa", "embedded", None)
    items = ps.items
    assert len(items) == 12 and ps.text_fields == ("question",) and ps.texts() == [it["question"] for it in items]
    check_truthfulqa(items, "embedded")
    assert [it["id"] for it in items] == [f"emb-truthfulqa-{i:02d}" for i in range(1, 13)]
    for it in items:
        assert set(it) == {"id", "question", "mc1", "mc2"}
        assert sum(it["mc1"]["labels"]) == 1 and 0 < sum(it["mc2"]["labels"]) < len(it["mc2"]["labels"])
        best = it["mc1"]["choices"][it["mc1"]["labels"].index(1)]
        false1 = {c for c, lab in zip(it["mc1"]["choices"], it["mc1"]["labels"]) if lab == 0}
        mc2 = dict(zip(it["mc2"]["choices"], it["mc2"]["labels"]))
        assert mc2.get(best) == 1 and all(mc2.get(c) == 0 for c in false1)  # MC2 holds MC1's answers, same truth
    assert len({it["mc1"]["labels"].index(1) for it in items}) == 4  # the true answer moves around in MC1
    assert len({it["mc2"]["labels"].index(1) for it in items}) > 1


# ---------------------------------------------------------------------------------------------- public copies
@pytest.mark.realdata
@pytest.mark.parametrize("name", ALL)
def test_public_copy_loads_every_item(name):
    public(name)
    ps = load_public(name)
    assert ps.total == len(ps.items) == COUNTS[name]
    assert ps.licence == SETS.get(name).licence and ps.source.endswith(SETS.get(name).folder)
    assert len({it["id"] for it in ps.items}) == COUNTS[name]
    if name == "truthfulqa":
        check_truthfulqa(ps.items, ps.source)
    else:
        check_items(ps.items, ps.source)
        assert len({it["label"] for it in ps.items}) >= 2


@pytest.mark.realdata
@pytest.mark.parametrize("name", CAPABILITY)
def test_public_first_item_is_formatted_as_lm_eval_does(name):
    public(name)
    first = load_public(name).items[0]
    assert len(first["contexts"]) == len(first["choices"])
    assert all(c.startswith(" ") and c.strip() for c in first["choices"])
    if name in QUESTION:
        assert len(set(first["contexts"])) == 1
        assert first["contexts"][0].startswith("Question: ") and first["contexts"][0].endswith("\nAnswer:")
    if name == "hellaswag":
        assert len(first["choices"]) == 4 and len(set(first["contexts"])) == 1
        assert ": " in first["contexts"][0] and "[" not in "".join(first["contexts"] + first["choices"])
    if name == "winogrande":
        assert first["contexts"][0] != first["contexts"][1] and first["choices"][0] == first["choices"][1]
        assert "_" not in "".join(first["contexts"] + first["choices"])


@pytest.mark.realdata
def test_public_hellaswag_has_no_bracket_tags_left():
    folder = public("hellaswag")
    items = load_public("hellaswag").items
    assert not [it["id"] for it in items if any(_TAG.search(t) for t in it["contexts"] + it["choices"])]
    assert not [it["id"] for it in items if any("  " in t for t in it["contexts"] + it["choices"])]
    with gzip.open(folder / "hellaswag_val.jsonl.gz", "rt", encoding="utf-8") as fh:
        raw = [json.loads(line) for line in fh]
    assert [it["label"] for it in items] == [r["label"] for r in raw]
    assert [it["id"] for it in items] == [f"hellaswag-{r['idx']}" for r in raw]


@pytest.mark.realdata
@pytest.mark.parametrize("name, file, numeric", [("arc_easy", "ARC-Easy-Test.jsonl", 97),
                                                 ("arc_challenge", "ARC-Challenge-Test.jsonl", 22)])
def test_public_arc_gold_is_the_choice_whose_label_is_the_answer_key(name, file, numeric):
    raw = [json.loads(line) for line in (public(name) / file).read_text(encoding="utf-8").splitlines() if line.strip()]
    items = load_public(name).items
    assert len(items) == len(raw)
    digit_rows = 0
    for i, (row, it) in enumerate(zip(raw, items)):
        choices = row["question"]["choices"]
        gold = [c["text"] for c in choices if c["label"] == row["answerKey"]]
        assert len(gold) == 1, i
        assert it["choices"][it["label"]] == " " + gold[0], i
        assert it["choices"] == [" " + c["text"] for c in choices], i
        assert it["id"] == (row["id"] if row["id"] else f"arc-{i}")
        if row["answerKey"].isdigit():
            digit_rows += 1
            assert it["label"] == [c["label"] for c in choices].index(row["answerKey"])
    assert digit_rows == numeric
    assert {len(it["choices"]) for it in items} == {3, 4, 5}


@pytest.mark.realdata
def test_public_winogrande_contexts_differ_and_continuations_agree():
    items = load_public("winogrande").items
    assert all(it["contexts"][0] != it["contexts"][1] and it["choices"][0] == it["choices"][1] for it in items)
    assert {it["label"] for it in items} == {0, 1}


@pytest.mark.realdata
def test_public_truthfulqa_keeps_the_file_order_and_mc_rules():
    raw = json.loads((public("truthfulqa") / "mc_task.json").read_text(encoding="utf-8"))
    items = load_public("truthfulqa").items
    for i, (row, it) in enumerate(zip(raw, items)):
        assert it["id"] == f"truthfulqa-{i}"
        assert it["mc1"]["choices"] == list(row["mc1_targets"]) and it["mc2"]["choices"] == list(row["mc2_targets"])
        assert it["mc1"]["labels"] == list(row["mc1_targets"].values())
    assert all(it["mc1"]["labels"][0] == 1 for it in items)  # the file lists the true answer first (see the loader)


@pytest.mark.realdata
def test_public_piqa_pair_without_the_joined_file_gives_the_same_items(tmp_path):
    folder = public("piqa")
    for f in ("valid.jsonl", "valid-labels.lst"):
        (tmp_path / f).symlink_to(folder / f)
    pair = load_probe_set("piqa", str(tmp_path), None).items
    assert pair == load_public("piqa").items


@pytest.mark.realdata
@pytest.mark.parametrize("name", ALL)
def test_public_limit_gives_a_seeded_subsample(name):
    public(name)
    ps = load_public(name, limit=50, seed=1)
    assert len(ps.items) == 50 and ps.total == COUNTS[name]
    assert [it["id"] for it in load_public(name, limit=50, seed=1).items] == [it["id"] for it in ps.items]
    assert any("seeded subsample of 50" in n for n in ps.notes)


# ---------------------------------------------------------------------------------------------- bad records
def _lines(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def _raises(name: str, path: Path, where: Path, line: int, *parts: str):
    with pytest.raises(DataError) as exc:
        load_probe_set(name, str(path), None)
    msg = str(exc.value)
    assert f"{where}: line {line}" in msg, msg
    for p in parts:
        assert p in msg, (p, msg)
    return msg


WINO_OK = {"sentence": "Ann thanked Beth because _ had helped her.", "option1": "Ann", "option2": "Beth", "answer": "2"}


@pytest.mark.parametrize("bad, parts", [
    ({**WINO_OK, "sentence": "Ann thanked Beth because she had helped her."}, ("'sentence'", "found 0")),
    ({**WINO_OK, "sentence": "Ann _ thanked Beth because _ had helped."}, ("'sentence'", "found 2")),
    ({**WINO_OK, "sentence": "Ann thanked Beth, and then _"}, ("'sentence'", "nothing after")),
    ({**WINO_OK, "answer": "3"}, ("'answer'", "'3'")),
    ({**WINO_OK, "option2": ""}, ("'option2'",)),
])
def test_winogrande_bad_record_names_file_line_and_field(tmp_path, bad, parts):
    f = _lines(tmp_path / "dev.jsonl", [WINO_OK, bad])
    _raises("winogrande", f, f, 2, *parts)


def test_winogrande_formats_like_lm_eval(tmp_path):
    f = _lines(tmp_path / "dev.jsonl", [WINO_OK])
    it = load_probe_set("winogrande", str(f), None).items[0]
    assert it == {"id": "winogrande-0", "contexts": ["Ann thanked Beth because Ann", "Ann thanked Beth because Beth"],
                  "choices": [" had helped her.", " had helped her."], "label": 1}


def _arc(key="B", labels=("A", "B", "C", "D"), id_="q1"):
    return {"id": id_, "question": {"stem": "Which one is a metal?",
                                    "choices": [{"text": t, "label": lab} for t, lab in
                                                zip(["glass", "iron", "wool", "paper", "clay"], labels)]},
            "answerKey": key}


@pytest.mark.parametrize("bad, parts", [
    (_arc(key="E"), ("'answerKey'", "'E'", "A, B, C, D")),
    (_arc(key="5", labels=("1", "2", "3", "4")), ("'answerKey'", "'5'", "1, 2, 3, 4")),
    (_arc(key="B", labels=("1", "2", "3", "4")), ("'answerKey'", "'B'")),
    (_arc(labels=("A", "B", "B", "D")), ("repeat",)),
    (_arc(key="A", labels=("A",)), ("'choices'", "2 to 5", "got 1")),
    ({"id": "q9", "question": {"choices": []}, "answerKey": "A"}, ("'question.stem'",)),
    ({"id": "q9", "question": "plain text", "answerKey": "A"}, ("'question'",)),
])
def test_arc_bad_record_names_file_line_and_field(tmp_path, bad, parts):
    f = _lines(tmp_path / "ARC-Easy-Test.jsonl", [_arc(), bad])
    _raises("arc_easy", f, f, 2, *parts)


def test_arc_matches_digit_keys_on_the_label_not_by_arithmetic(tmp_path):
    f = _lines(tmp_path / "ARC-Challenge-Test.jsonl",
               [_arc(key="3", labels=("1", "2", "3", "4")), _arc(key="C", labels=("A", "B", "C")),
                _arc(key="E", labels=("A", "B", "C", "D", "E"), id_=None)])
    items = load_probe_set("arc_challenge", str(tmp_path), None).items
    assert [it["label"] for it in items] == [2, 2, 4]
    assert [it["choices"][it["label"]] for it in items] == [" wool", " wool", " clay"]
    assert items[0]["contexts"] == ["Question: Which one is a metal?\nAnswer:"] * 4
    assert [it["id"] for it in items] == ["q1", "q1", "arc-2"]
    with pytest.raises(DataError, match="expected ARC-Easy-Test.jsonl"):
        load_probe_set("arc_easy", str(tmp_path), None)  # the folder holds the other set's file only


TQA_OK = {"question": "Is the sky green?", "mc1_targets": {"No.": 1, "Yes.": 0, "Always.": 0},
          "mc2_targets": {"No.": 1, "It is usually blue.": 1, "Yes.": 0}}


@pytest.mark.parametrize("bad, parts", [
    ({**TQA_OK, "mc1_targets": {"No.": 1, "Not green.": 1, "Yes.": 0}}, ("'mc1_targets'", "2 true")),
    ({**TQA_OK, "mc1_targets": {"No.": 0, "Yes.": 0}}, ("'mc1_targets'", "0 true")),
    ({**TQA_OK, "mc2_targets": {"No.": 1, "Blue.": 1}}, ("'mc2_targets'", "one false")),
    ({**TQA_OK, "mc2_targets": {"No.": 1, "Yes.": 2}}, ("'mc2_targets'", "0 or 1", "got 2")),
    ({**TQA_OK, "mc1_targets": ["No."]}, ("'mc1_targets'",)),
    ({**TQA_OK, "question": ""}, ("'question'",)),
])
def test_truthfulqa_bad_record_names_file_record_and_field(tmp_path, bad, parts):
    f = tmp_path / "mc_task.json"
    f.write_text(json.dumps([TQA_OK, bad]), encoding="utf-8")
    _raises("truthfulqa", tmp_path, f, 2, *parts)


def test_truthfulqa_reads_both_target_forms_in_order(tmp_path):
    hub_form = {"question": "Q?", "mc1_targets": {"choices": ["b", "a"], "labels": [0, 1]},
                "mc2_targets": {"choices": ["c", "b", "a"], "labels": [1, 0, 1]}}
    (tmp_path / "mc_task.json").write_text(json.dumps([TQA_OK, hub_form]), encoding="utf-8")
    items = load_probe_set("truthfulqa", str(tmp_path), None).items
    assert items[0] == {"id": "truthfulqa-0", "question": "Is the sky green?",
                        "mc1": {"choices": ["No.", "Yes.", "Always."], "labels": [1, 0, 0]},
                        "mc2": {"choices": ["No.", "It is usually blue.", "Yes."], "labels": [1, 1, 0]}}
    assert items[1]["mc1"] == {"choices": ["b", "a"], "labels": [0, 1]}


PIQA_OK = {"goal": "Keep a door open.", "sol1": "Wedge a doorstop under it.", "sol2": "Oil the hinges.", "label": 0}


@pytest.mark.parametrize("bad, parts", [
    ({**PIQA_OK, "label": 2}, ("'label'", "0, 1", "got 2")),
    ({**PIQA_OK, "label": "x"}, ("'label'", "'x'")),
    ({**PIQA_OK, "sol2": None}, ("'sol2'", "None")),
])
def test_piqa_bad_record_names_file_line_and_field(tmp_path, bad, parts):
    f = _lines(tmp_path / "valid_with_labels.jsonl", [PIQA_OK, bad])
    _raises("piqa", tmp_path, f, 2, *parts)


def test_piqa_formats_and_reads_the_official_pair(tmp_path):
    joined = _lines(tmp_path / "valid_with_labels.jsonl", [PIQA_OK])
    it = load_probe_set("piqa", str(joined), None).items[0]
    assert it == {"id": "piqa-0", "contexts": ["Question: Keep a door open.\nAnswer:"] * 2,
                  "choices": [" Wedge a doorstop under it.", " Oil the hinges."], "label": 0}
    pair = tmp_path / "pair"
    pair.mkdir()
    plain = {k: v for k, v in PIQA_OK.items() if k != "label"}
    data = _lines(pair / "valid.jsonl", [plain, plain])
    (pair / "valid-labels.lst").write_text("1\n0\n", encoding="utf-8")
    assert [it["label"] for it in load_probe_set("piqa", str(pair), None).items] == [1, 0]
    (pair / "valid-labels.lst").write_text("1\n2\n", encoding="utf-8")
    _raises("piqa", pair, pair / "valid-labels.lst", 2, "'label'", "'2'")
    (pair / "valid-labels.lst").write_text("1\n", encoding="utf-8")
    _raises("piqa", pair, data, 2, "only 1 labels")
    (pair / "valid-labels.lst").write_text("1\n0\n1\n", encoding="utf-8")
    with pytest.raises(DataError, match="has 3 labels but valid.jsonl has 2 records"):
        load_probe_set("piqa", str(pair), None)
    (pair / "valid-labels.lst").unlink()
    _raises("piqa", pair, data, 1, "'label'", "valid-labels.lst")


HELLA_OK = {"idx": 0, "query": "Fixing a bike: A woman turns the bike upside down. She",
            "endings": ["checks the chain.", "eats the wheel.", "paints the sky.", "sings [step] to the seat."],
            "label": 0}


@pytest.mark.parametrize("bad, parts", [
    ({**HELLA_OK, "label": 4}, ("'label'", "got 4")),
    ({**HELLA_OK, "endings": ["a", "b", "c"]}, ("'endings'", "4 non-empty")),
    ({**HELLA_OK, "query": None}, ("'query'",)),
    ({"idx": 1, "activity_label": "Fixing a bike", "ctx_a": "A woman turns the bike over.",
      "endings": HELLA_OK["endings"], "label": 1}, ("'ctx_b'",)),
])
def test_hellaswag_bad_record_names_file_line_and_field(tmp_path, bad, parts):
    f = tmp_path / "hellaswag_val.jsonl.gz"
    with gzip.open(f, "wt", encoding="utf-8") as fh:
        fh.write(json.dumps(HELLA_OK) + "\n" + json.dumps(bad) + "\n")
    _raises("hellaswag", tmp_path, f, 2, *parts)


def test_hellaswag_preprocess_and_the_original_record_format(tmp_path):
    assert preprocess("  Fold the towel [title] Hang it up [step] now.  x ") == "Fold the towel. Hang it up now. x"
    original = {"ind": 7, "activity_label": "Fixing a bike", "ctx_a": "A woman turns the bike upside down.",
                "ctx_b": "she", "endings": HELLA_OK["endings"], "label": 3}
    write_jsonl(tmp_path / "hellaswag_val.jsonl", [HELLA_OK, original])
    items = load_probe_set("hellaswag", str(tmp_path), None).items
    assert items[0]["contexts"] == [HELLA_OK["query"]] * 4 and items[0]["choices"][3] == " sings to the seat."
    assert items[1]["id"] == "hellaswag-1" and items[1]["label"] == 3
    assert items[1]["contexts"][0] == "Fixing a bike: A woman turns the bike upside down. She"


# ---------------------------------------------------------------------------------------------- hub rows
HUB_ROWS = {
    "Rowan/hellaswag": [{"activity_label": "Fixing a bike", "ctx_a": "A woman turns the bike upside down.",
                         "ctx_b": "she", "endings": HELLA_OK["endings"], "label": "2"}],
    "ybisk/piqa": [{"goal": "Keep a door open.", "sol1": "Oil the hinges.", "sol2": "Wedge a doorstop under it.",
                    "label": 1}],
    "allenai/ai2_arc": [{"id": "h1", "question": "Which one is a metal?",
                         "choices": {"text": ["glass", "iron", "wool"], "label": ["1", "2", "3"]}, "answerKey": "2"}],
    "allenai/winogrande": [WINO_OK],
    "truthfulqa/truthful_qa": [{"question": "Is the sky green?",
                                "mc1_targets": {"choices": ["Yes.", "No."], "labels": [0, 1]},
                                "mc2_targets": {"choices": ["Yes.", "No.", "It is blue."], "labels": [0, 1, 1]}}],
}
HUB_CALLS = {"hellaswag": ("Rowan/hellaswag", None, "validation"), "piqa": ("ybisk/piqa", None, "validation"),
             "arc_easy": ("allenai/ai2_arc", "ARC-Easy", "test"),
             "arc_challenge": ("allenai/ai2_arc", "ARC-Challenge", "test"),
             "winogrande": ("allenai/winogrande", "winogrande_xl", "validation"),
             "truthfulqa": ("truthfulqa/truthful_qa", "multiple_choice", "validation")}


@pytest.fixture
def fake_hub(monkeypatch):
    calls = []

    def load_dataset(path, name=None, split=None):
        calls.append((path, name, split))
        return [dict(r) for r in HUB_ROWS[path]]

    monkeypatch.setitem(__import__("sys").modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    return calls


@pytest.mark.parametrize("name", ALL)
def test_hub_id_with_config_and_hub_rows(fake_hub, name):
    hub_id = SETS.get(name).hub_id
    ps = load_probe_set(name, hub_id, None)
    assert fake_hub == [HUB_CALLS[name]] and ps.source == f"hub:{hub_id}"
    it = ps.items[0]
    if name == "truthfulqa":
        check_truthfulqa(ps.items, "hub")
        assert it["mc1"] == {"choices": ["Yes.", "No."], "labels": [0, 1]} and it["id"] == "truthfulqa-0"
        return
    check_items(ps.items, "hub")
    expected = {"hellaswag": (2, " paints the sky.", "Fixing a bike: A woman turns the bike upside down. She"),
                "piqa": (1, " Wedge a doorstop under it.", "Question: Keep a door open.\nAnswer:"),
                "arc_easy": (1, " iron", "Question: Which one is a metal?\nAnswer:"),
                "arc_challenge": (1, " iron", "Question: Which one is a metal?\nAnswer:"),
                "winogrande": (1, " had helped her.", "Ann thanked Beth because Beth")}[name]
    assert (it["label"], it["choices"][it["label"]], it["contexts"][it["label"]]) == expected


def test_hub_row_errors_name_the_row(fake_hub, monkeypatch):
    monkeypatch.setitem(HUB_ROWS, "allenai/ai2_arc", [{**HUB_ROWS["allenai/ai2_arc"][0], "answerKey": "B"}])
    with pytest.raises(DataError, match=r"hub row 0: field 'answerKey' is 'B', which names no choice"):
        load_probe_set("arc_easy", "allenai/ai2_arc:ARC-Easy:test", None)
    load_probe_set("winogrande", "allenai/winogrande:validation", None)  # org/name:split still works
    assert fake_hub[-1] == ("allenai/winogrande", None, "validation")
