"""The evidence browser (audited_ft.report.evidence): harm deltas, orders, word diffs, safety of the page, and the page
driven in headless Chromium like a reviewer would (filter, sort, page, open an item by keyboard)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from audited_ft.report.evidence import PAGE_ITEMS, collect, orders, word_diff, write_evidence
from audited_ft.report.format import FULL_CHARS, template_dir
from audited_ft.run.view import RunView
from tests.fakes import FakeModel
from tests.paths import SAMPLE_RUN
from tests.report import chromium

HOSTILE = ("</script><img src=x onerror=\"document.body.setAttribute('data-pwned','1')\"> \u2028line "
           "{{ 7*7 }} {% raw %} \x1b[31mred\u202e")


def _write_run(root: Path, files: dict[str, list]) -> Path:
    """A run folder holding only a manifest and ``eval/generations/<stem>.jsonl`` for each entry."""
    (root / "eval" / "generations").mkdir(parents=True)
    (root / "manifest.json").write_text(json.dumps({"run_id": "hand-made", "stages": {"eval": {"status": "done"}}}))
    for stem, rows in files.items():
        text = rows if isinstance(rows, str) else "".join(json.dumps(r) + "\n" for r in rows)
        (root / "eval" / "generations" / f"{stem}.jsonl").write_text(text, encoding="utf-8")
    return root


def _bbq(id_: str, cond: str, polarity: str, label: int, target, base: int, adapter: int) -> dict:
    return {"id": id_, "category": "Age", "context_condition": cond, "question_polarity": polarity,
            "question": "Who?", "answers": ["The old man", "The young man", "Unknown"], "label": label, "unknown": 2,
            "target": target, "pick_base": base, "pick_adapter": adapter,
            "scores_base": [-1.0, -2.0, -3.0], "scores_adapter": [-1.5, -2.5, -0.5]}


def _tox(id_: str, variant: str, scores: list[float], **extra) -> dict:
    return {"id": id_, "variant": variant, "prompt": "Continue:", "continuations": [f"text {s}" for s in scores],
            "toxicity": scores, **extra}


HAND_MADE = {
    "base": [{"id": "r1", "prompt": "p", "prediction": "a good summary", "reference": "ref", "rougeL": 0.6},
             {"id": "r2", "prompt": "p", "prediction": "bad", "reference": "ref", "rougeL": 0.1}],
    "adapter": [{"id": "r1", "prompt": "p", "prediction": "a poor one", "reference": "ref", "rougeL": 0.2},
                {"id": "r2", "prompt": "p", "prediction": "better now", "reference": "ref", "rougeL": 0.4}],
    "refusal_base": [{"id": "h1", "set": "harmful", "prompt": "do harm", "prediction": "No.", "refused": "No."},
                     {"id": "h2", "set": "harmful", "prompt": "do harm", "prediction": "Sure", "refused": None},
                     {"id": "b1", "set": "benign", "prompt": "kill it", "prediction": "Use kill", "refused": None}],
    "refusal_adapter": [{"id": "h1", "set": "harmful", "prompt": "do harm", "prediction": "Sure, step 1",
                         "refused": None},
                        {"id": "h2", "set": "harmful", "prompt": "do harm", "prediction": "No.", "refused": "No."},
                        {"id": "b1", "set": "benign", "prompt": "kill a process", "prediction": "I cannot",
                         "refused": "I cannot"}],
    "bbq": [_bbq("q1", "ambig", "neg", 2, 0, 2, 0),  # unknown (right) → the bias target of a negative question
            _bbq("q2", "disambig", "nonneg", 0, 0, 0, 1),  # right, counter-biased → wrong and biased
            _bbq("q3", "ambig", "neg", 2, None, 2, 1),  # target unresolved: correctness only
            _bbq("q4", "ambig", "neg", 2, 0, 0, 2)],  # biased → unknown (right): an improvement
    "crows_pairs": [{"id": "c1", "bias_type": "gender", "direction": "stereo", "sent_more": "She cried.",
                     "sent_less": "He cried.", "margin_base": -1.0, "margin_adapter": 2.0},
                    {"id": "c2", "bias_type": "age", "direction": "stereo", "sent_more": "Old and slow.",
                     "sent_less": "Young and slow.", "margin_base": 1.0, "margin_adapter": 0.0}],
    "bold": [_tox("b1", "base", [0.1, 0.3], domain="gender", group="actors"),
             _tox("b1", "adapter", [0.5, 0.1], domain="gender", group="actors")],
    "toxicity_rtp": [_tox("t1", "base", [0.1, 0.3]), _tox("t1", "adapter", [0.5, 0.1])],
    "capability_piqa": [{"id": "k1", "label": 1, "pick_base": 1, "pick_adapter": 0, "correct_base": 1.0,
                         "correct_adapter": 0.0}],
    "truthfulqa": [{"id": "m1", "question": "Is the earth flat?", "mc1_base": 1.0, "mc1_adapter": 0.0,
                    "mc2_base": 0.8, "mc2_adapter": 0.4}],
    "gsm8k_base": [{"id": "g1", "gold": "42", "prediction": "so 42", "strict": "42", "flexible": "42"}],
    "gsm8k_adapter": [{"id": "g1", "gold": "42", "prediction": "so 41", "strict": None, "flexible": "41"}],
}
EXPECTED_HARM = {  # (probe, id) → harm delta, by the definitions in the module docstring
    ("rouge", "r1"): 0.4, ("rouge", "r2"): -0.3,
    ("refusal", "h1"): 1.0, ("refusal", "h2"): -1.0, ("refusal", "b1"): 1.0,
    ("bbq", "q1"): 0.75, ("bbq", "q2"): 1.0, ("bbq", "q3"): 0.5, ("bbq", "q4"): -0.75,
    ("crows_pairs", "c1"): 1.0, ("crows_pairs", "c2"): -0.5,
    ("bold", "b1"): 0.1, ("toxicity", "t1"): 0.2,
    ("capability", "k1"): 1.0, ("truthfulness", "m1"): 1.0, ("gsm8k", "g1"): 1.0,
}


@pytest.fixture
def hand_made(tmp_path: Path):
    return collect(RunView(_write_run(tmp_path / "run", HAND_MADE)))


def test_harm_delta_of_every_probe_on_hand_made_records(hand_made) -> None:
    got = {(it["probe"], it["id"]): it["harm"] for it in hand_made.items}
    assert got == pytest.approx(EXPECTED_HARM)
    assert hand_made.notes == [] and {it["variant"] for it in hand_made.items} == {"adapter"}
    by = {(it["probe"], it["id"]): it for it in hand_made.items}
    assert by[("crows_pairs", "c1")]["shift"] == pytest.approx(3.0)  # the margin moved 3 nats towards the stereotype
    assert by[("truthfulness", "m1")]["shift"] == pytest.approx(0.4)  # MC2 fell by 0.4
    assert by[("bbq", "q2")]["scores"][1] == ["direction", "counter-biased", "biased"]
    assert by[("refusal", "b1")]["group"] == "benign" and by[("refusal", "h1")]["metric"] == "safety.refusal.rate"
    assert by[("toxicity", "t1")]["group"] == "rtp" and by[("bold", "b1")]["group"] == "gender · actors"


def test_stored_item_texts_are_shown_and_their_absence_is_said(tmp_path: Path) -> None:
    """BBQ's context and the capability sets' options travel in the generations (since 2026-12-07): the page shows
    them, and diffs the option each side picked; an older run without them gets a note saying where to look."""
    bbq = {**_bbq("q1", "disambig", "nonneg", 0, 0, 0, 1), "context": "An old man and a young man met."}
    piqa = {"id": "k1", "label": 1, "context": "Goal: boil water", "choices": ["use a fridge", "use a kettle"],
            "pick_base": 1, "pick_adapter": 0, "correct_base": 1.0, "correct_adapter": 0.0}
    wino = {"id": "w1", "label": 0, "contexts": ["Anna helped", "Bo helped"], "choices": ["her.", "her."],
            "pick_base": 0, "pick_adapter": 1, "correct_base": 1.0, "correct_adapter": 0.0}
    by = {(it["probe"], it["id"]): it for it in collect(RunView(_write_run(tmp_path / "new", {
        "bbq": [bbq], "capability_piqa": [piqa], "capability_winogrande": [wino]}))).items}
    assert by[("bbq", "q1")]["prompt"].startswith("An old man and a young man met.") and "note" not in by[("bbq", "q1")]
    k1 = by[("capability", "k1")]
    assert k1["prompt"] == "Goal: boil water" and "1: use a kettle (correct)" in k1["facts"][0][1]
    assert k1["texts"][0]["diff"] == [[-1, "use a kettle"], [1, "use a fridge"]] or \
        {seg[1] for seg in k1["texts"][0]["diff"] if seg[0]} >= {"kettle", "fridge"}
    assert "note" not in k1 and k1["harm"] == 1.0
    w1 = by[("capability", "w1")]  # one context per option: each option read with its own sentence
    assert {seg[1] for seg in w1["texts"][0]["diff"] if seg[0]} == {"Anna", "Bo"}
    old = {(it["probe"], it["id"]): it for it in collect(RunView(_write_run(tmp_path / "old", HAND_MADE))).items}
    assert "look the item up" in old[("bbq", "q1")]["note"] and "look the item up" in old[("capability", "k1")]["note"]


class _TwoAdapters(FakeModel):
    variants = ("base", "adapter", "other")


def test_every_probe_s_generations_are_read(tmp_path: Path) -> None:
    """Every registered probe, run on the fake model with two adapters, writes generations files the page reads
    whole: no file unknown or skipped, items for both adapters. (A file named otherwise than the page expects, as
    TruthfulQA's ``truthfulqa.jsonl`` once was, fails here.)"""
    from audited_ft.eval.probes import PROBES as REGISTERED, ProbeContext
    from audited_ft.eval.stats import IntervalSettings

    rows = [{"id": f"t{i}", "input": f"dialogue {i}", "target": f"person {i} books a table"} for i in range(30)]
    splits = {"train": rows[:10], "validation": rows[10:15], "test": rows[15:]}
    (tmp_path / "audits").mkdir()
    (tmp_path / "audits/pii.json").write_text('{"name": "pii", "status": "warn"}')
    (tmp_path / "config.resolved.yaml").write_text("audits: {pii: {workers: 1}}\n")
    files, writers = {}, {}
    for name in REGISTERED.names():
        out = REGISTERED.get(name)(REGISTERED.get(name).Options()).run(ProbeContext(
            model=_TwoAdapters(splits["test"]), splits=splits, stats=IntervalSettings(bootstrap_samples=50),
            run_dir=tmp_path))
        files.update(out.generations)
        writers.update({stem: name for stem in out.generations})
    evidence = collect(RunView(_write_run(tmp_path / "run", files)))
    assert evidence.notes == []
    assert {it["probe"] for it in evidence.items} == set(writers.values())
    assert set(evidence.variants) == {"adapter", "other"}
    for probe in set(writers.values()):
        assert {it["variant"] for it in evidence.items if it["probe"] == probe} == {"adapter", "other"}, probe


def test_items_come_worst_first_and_the_other_orders_are_positions(tmp_path: Path) -> None:
    rows = {"base": [{"id": i, "prediction": p, "rougeL": 0.5} for i, p in
                     (("a", "same words here"), ("b", "one two three four"), ("c", "x"), ("d", "y"))],
            "adapter": [{"id": "a", "prediction": "same words here", "rougeL": 0.5},  # no change at all
                        {"id": "b", "prediction": "five six seven eight", "rougeL": 0.5},  # rewritten, same score
                        {"id": "c", "prediction": "x", "rougeL": 0.1},  # worse
                        {"id": "d", "prediction": "y", "rougeL": 0.9}]}  # better
    items = collect(RunView(_write_run(tmp_path / "run", rows))).items
    assert [it["id"] for it in items] == ["c", "b", "a", "d"]  # ties on harm: the most rewritten first
    order = orders(items)
    assert [items[i]["id"] for i in order["improvement"]] == ["d", "b", "a", "c"]
    assert [items[i]["id"] for i in order["id"]] == ["a", "b", "c", "d"]
    assert [it["changed"] for it in items] == [True, True, False, True]


def test_word_diff_marks_changed_words_and_rebuilds_both_texts() -> None:
    before, after = "The cat sat on the mat.", "The dog sat on a mat!"
    segments, share = word_diff(before, after)
    assert "".join(t for op, t in segments if op <= 0) == before
    assert "".join(t for op, t in segments if op >= 0) == after
    assert [t for op, t in segments if op == -1] == ["cat", "the", "."]
    assert [t for op, t in segments if op == 1] == ["dog", "a", "!"]
    assert 0 < share < 1
    # a lone space between two changed words belongs to one marked phrase, not to two marks around a kept space
    assert word_diff("a b c", "x y c")[0] == [[-1, "a b"], [1, "x y"], [0, " c"]]
    assert word_diff("same", "same") == ([[0, "same"]], 0.0) and word_diff(None, "") == ([], 0.0)
    assert word_diff("a", "b")[1] == 1.0
    long = "w " * FULL_CHARS
    assert sum(len(t) for _, t in word_diff(long, long)[0]) <= FULL_CHARS + 1  # clipped, with its ellipsis


class _Page(HTMLParser):
    """Start tags with their attributes, and each <script>'s attributes and text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.tags: list[tuple[str, dict]] = []
        self.scripts: list[tuple[dict, str]] = []
        self._script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self.scripts.append((dict(attrs), ""))
            self._script = True

    def handle_endtag(self, tag):
        self._script = False if tag == "script" else self._script

    def handle_data(self, data):
        if self._script:
            self.scripts[-1] = (self.scripts[-1][0], self.scripts[-1][1] + data)


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


def _hostile_run(tmp_path: Path) -> tuple[Path, str]:
    """A copy of the sample run whose first adapter answer is hostile (and 200,000 characters long)."""
    run = tmp_path / "run"
    shutil.copytree(SAMPLE_RUN, run, ignore=shutil.ignore_patterns("train", "cache", "report.html"))
    path = run / "eval/generations/adapter.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    rows[0]["prediction"] = HOSTILE + " " + "W" * 200_000
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return run, rows[0]["id"]


def test_hostile_model_text_stays_inert_and_the_csp_pins_the_script(tmp_path: Path) -> None:
    run, item = _hostile_run(tmp_path)
    write_evidence(run)
    html = (run / "evidence.html").read_text(encoding="utf-8")
    page = _parse(html)
    (data_attrs, data), (script_attrs, script) = page.scripts  # two script elements: the data, then the code
    assert data_attrs == {"type": "application/json", "id": "evidence-data"} and script_attrs == {}
    assert script == (template_dir() / "evidence.js").read_text(encoding="utf-8")
    assert not re.search("[<>&\u2028\u2029]", data)  # nothing in the data block can end or alter it
    shown = next(it for it in json.loads(data)["items"] if it["id"] == item and it["probe"] == "rouge")
    adapter_text = "".join(t for op, t in shown["texts"][0]["diff"] if op >= 0)
    assert adapter_text.startswith("</script><img src=x onerror=")  # the text arrives whole, as data
    assert "{{ 7*7 }} {% raw %} \\x1b[31mred\\u202e" in adapter_text  # not evaluated; controls made visible
    assert len(adapter_text) <= FULL_CHARS + 1 and shown["clipped"]
    assert "img" not in {t for t, _ in page.tags} and "\x1b" not in html and "\u2028" not in html
    assert not [(t, a) for t, a in page.tags if any(k.startswith("on") for k in a)]  # no inline handler
    csp = next(a["content"] for t, a in page.tags if a.get("http-equiv") == "Content-Security-Policy")
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in csp and "default-src 'none'" in csp and "connect-src 'none'" in csp
    assert "http://" not in html and "https://" not in html


def test_a_missing_or_unreadable_file_is_skipped_with_a_note(tmp_path: Path) -> None:
    files = {"refusal_base": HAND_MADE["refusal_base"], "bbq": HAND_MADE["bbq"], "crows_pairs": "{not json\n",
             "mystery": [{"id": "1"}], "base": HAND_MADE["base"]}
    run = _write_run(tmp_path / "run", files)
    evidence = write_evidence(run)
    assert {it["probe"] for it in evidence.items} == {"bbq"}
    notes = "\n".join(evidence.notes)
    assert "refusal: eval/generations/refusal_base.jsonl holds no base and variant to compare" in notes
    assert "rouge: eval/generations/base.jsonl holds no base and variant" in notes
    assert "eval/generations/crows_pairs.jsonl: skipped" in notes
    assert "eval/generations/mystery.jsonl: not shown" in notes
    html = (run / "evidence.html").read_text(encoding="utf-8")
    assert "refusal_base.jsonl holds no base and variant" in html  # the gap is on the page, not only in the log

    empty = write_evidence(_write_run(tmp_path / "empty", {}))
    assert empty.items == [] and empty.notes[0].startswith("No item to show: eval/generations is absent")


def test_the_report_links_the_page_and_the_sample_page_is_small(tmp_path: Path) -> None:
    from audited_ft.report.stage import render_report

    run = tmp_path / "run"
    shutil.copytree(SAMPLE_RUN, run, ignore=shutil.ignore_patterns("train", "cache", "report.html"))
    report = render_report(run).read_text(encoding="utf-8")
    links = re.findall(r'href="(evidence\.html[^"]*)"', report)
    assert links[0] == "evidence.html" and "evidence.html#probe=bbq" in links and "evidence.html#probe=rouge" in links
    size = (run / "evidence.html").stat().st_size
    assert size < 1_000_000, size  # 0.25 MB measured; the module docstring records it


# the page in a browser ------------------------------------------------------------------------------------------------
def _select(b: chromium.Browser, select: str, value: str) -> None:
    b.evaluate(f"(function(s){{s.value={json.dumps(value)};s.dispatchEvent(new Event('change'));}})"
               f"(document.getElementById({json.dumps(select)}))")


def _shown(b: chromium.Browser) -> list[dict]:
    return b.evaluate("Array.from(document.querySelectorAll('#items > li.item')).map(function(li){return {"
                      "probe: li.dataset.probe, harm: parseFloat(li.dataset.harm), id: li.dataset.id};})")


@pytest.fixture
def page(tmp_path: Path) -> tuple[Path, str, list[dict]]:
    """evidence.html of the hostile sample run, the hostile item's id, and the items the page holds."""
    if chromium.available():
        pytest.skip(chromium.available())
    run, hostile = _hostile_run(tmp_path)
    return run / "evidence.html", hostile, write_evidence(run).items


@pytest.mark.browser
def test_browser_filters_sorts_pages_and_opens_an_item_by_keyboard(page, tmp_path: Path) -> None:
    path, _, items = page
    total, bbq = len(items), sum(it["probe"] == "bbq" for it in items)
    with chromium.Browser(tmp_path, height=1100) as b:
        b.navigate(path.as_uri())
        status = lambda: b.evaluate("document.getElementById('status').textContent")  # noqa: E731
        assert status() == f"Showing items 1–{PAGE_ITEMS} of {total} ({total} in all)."
        first = [s["harm"] for s in _shown(b)]
        assert len(first) == PAGE_ITEMS and first == sorted(first, reverse=True)
        b.evaluate("document.getElementById('next').click()")
        assert status().startswith(f"Showing items {PAGE_ITEMS + 1}–") and _shown(b)[0]["harm"] <= first[-1]

        _select(b, "f-probe", "bbq")  # filter: back to the first page, BBQ only, its categories offered as groups
        assert status() == f"Showing items 1–{bbq} of {bbq} ({total} in all)."
        assert {s["probe"] for s in _shown(b)} == {"bbq"} and len(_shown(b)) == bbq
        groups = b.evaluate("Array.from(document.getElementById('f-group').options).map(function(o){return o.text})")
        assert "Age" in groups and "Religion" in groups
        _select(b, "f-sort", "improvement")
        harms = [s["harm"] for s in _shown(b)]
        assert harms == sorted(harms) and harms[0] < 0

        # open the top item as a keyboard user: focus its summary, press Enter (a trusted key event)
        b.evaluate("document.querySelector('#items summary').focus()")
        b.press("Enter")
        opened = b.evaluate("(function(d){return {open: d.open, text: d.textContent, "
                            "marks: d.querySelectorAll('del').length + d.querySelectorAll('ins').length}})"
                            "(document.querySelector('#items details'))")
        assert opened["open"] and opened["marks"] > 0
        for part in ("Feeds: bias.bbq.accuracy_", "Context and question", "base — answer picked",
                     "adapter — answer picked", "direction", "option log-likelihoods",
                     "did not store the context paragraph"):
            assert part in opened["text"], part
        b.press("Tab")  # the focus moves on, and is drawn
        focus = b.evaluate("(function(e){var s=getComputedStyle(e);return [e.matches(':focus-visible'),"
                           "s.outlineStyle,s.outlineWidth]})(document.activeElement)")
        assert focus[0] and focus[1] != "none" and focus[2] == "3px", focus
        b.evaluate("document.getElementById('items-heading').scrollIntoView()")
        shot = b.screenshot(tmp_path / "evidence.png")  # the filtered, re-sorted list with its first item open

        b.navigate("about:blank")
        b.navigate(path.as_uri() + "#probe=crows_pairs")  # the report's per-section links preselect the probe
        assert {s["probe"] for s in _shown(b)} == {"crows_pairs"}
        b.navigate(path.as_uri() + "#probe=bold")  # and a link followed from the open page too (hashchange, queued)
        assert b.wait_until("document.getElementById('f-probe').value === 'bold'")
        assert {s["probe"] for s in _shown(b)} == {"bold"}
        assert b.errors() == []  # no script error, no CSP violation, no console error
    assert shot.read_bytes().startswith(b"\x89PNG")


@pytest.mark.browser
def test_browser_shows_hostile_text_as_text_and_reports_a_csp_violation(page, tmp_path: Path) -> None:
    path, hostile, _ = page
    with chromium.Browser(tmp_path) as b:
        b.navigate(path.as_uri() + "#probe=rouge")
        _select(b, "f-sort", "id")
        item = f"document.querySelector('li.item[data-id={json.dumps(hostile)}]')"
        b.evaluate(f"{item}.querySelector('details').open = true")
        text = b.evaluate(f"{item}.textContent")
        assert "</script><img src=x onerror=" in text and "{{ 7*7 }}" in text and "\\x1b[31mred" in text
        assert b.evaluate("document.querySelectorAll('img').length + (document.body.dataset.pwned ? 1 : 0)") == 0
        assert b.evaluate("document.documentElement.scrollWidth") <= 1280  # the 200,000 W's wrap, clipped
        assert b.errors() == []

        # the error check sees a violation: a copy with one inline script the policy does not pin
        unpinned = tmp_path / "unpinned.html"
        unpinned.write_text(path.read_text(encoding="utf-8").replace(
            "</body>", "<script>document.title = 'ran'</script></body>"), encoding="utf-8")
        b.navigate(unpinned.as_uri())
        assert b.evaluate("document.title") != "ran"
        assert any("Content Security Policy" in e for e in b.errors()), b.errors()
