"""The report of the committed sample run, rendered by today's code, has the same text and structure as the report the
code rendered before the packages-by-stage move (``tests/fixtures/sample_run_report.outline.txt`` and the cards beside it, made
with commit a27f627). A deliberate change to the report updates the outline in the same commit, with the reason. One
line was changed by hand since: the compute section names the module holding ``GPU_STAGES``, which the move renamed
(``audited_ft.footprint`` → ``audited_ft.report.footprint``). Since, the outline was re-made for the three-valued
verdict (issue 18): the inline stylesheet gained the INCONCLUSIVE styles; and the Dataset section lists the new content
audit, absent from this older run (a gap in the Summary, a not-measured block, an evidence link). Then for issue
21: the privacy section gained membership inference, PII extraction and PII-in-outputs blocks, which this older run
shows as "not measured" (27 added lines, none removed). Then for issue 21's DP-SGD part: the privacy section gained
"A formal guarantee" (for this run, trained without DP: "No formal privacy guarantee") and the residual-risk
paragraph its guarantee sentence (16 added lines, none removed). Then for issue 22: the Overfitting section gained
the general-capability panel and Misalignment the truthfulness panel, both "not measured" for this run, and the
Summary's list of gaps their two rows (47 added lines, none removed). Then for issue 22's gain/cost table: the
Summary opens with "What the fine-tune gained and what it cost", one row per headline metric this run measured
(243 added lines, none removed). Then for issue 24's model-card metadata: the model card's front matter is built with
huggingface_hub's ModelCardData (its key order: ``license`` moved below ``library_name``) and gained
``co2_eq_emissions`` and a ``model-index`` of the run's results (157 added lines, 1 removed: the moved key); the
report's outline did not change. Then for issue 24's evidence browser: the report links ``evidence.html`` below the
run line and from the discrimination and misalignment sections, per probe with its item count (27 added lines, none
removed). Then for issue 24's print check: the inline stylesheet's print rules changed (tables fit A4's width, long
tables and verdict boxes break between rows, the gate table's column shares), one line changed.

The outline keeps every element with its attributes and every text node; it drops inline styles and the inside of
charts (matplotlib's SVG carries random ids), and replaces hashes and timestamps, which change on every render; it
drops the dependencies section's note that a package's installed version differs from the run's, which depends on
what a fresh install resolves that day (the sample run used accelerate 1.15.0; a fresh clone on 2026-12-02 got
1.16.0 and the golden test failed on that note alone).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from tests.paths import REPO

FIXTURES = REPO / "tests" / "fixtures"

_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
_NORMALISE = (
    (re.compile(r"\b[0-9a-f]{64}\b"), "<sha256>"),
    (re.compile(r"\b[0-9a-f]{16}\b"), "<hash16>"),
    (re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[+-]\d{2}:\d{2}|Z)?"), "<time>"),
    # the licence of an installed package is read from today's environment (dependencies section): whether the note
    # "licence read from the installed version X; the run used Y" appears at all depends on what today's install
    # resolved (a fresh clone got accelerate 1.16.0 where the sample run used 1.15.0), so the note is dropped
    (re.compile(r"^[ \t]*licence read from the installed version \S+; the run used \S+[ \t]*\n", re.M), ""),
    (re.compile(r"licence read from the installed version \S+; the run used \S+"), ""),
)


class _Outline(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.depth = 0
        self.svg = 0

    def handle_starttag(self, tag, attrs):
        if self.svg:
            if tag == "svg":
                self.svg += 1
            return
        shown = " ".join(f"{k}={v!r}" for k, v in sorted(attrs) if k not in ("style",))
        self.lines.append("  " * self.depth + f"<{tag}{' ' + shown if shown else ''}>")
        if tag == "svg":
            self.svg = 1
            self.lines.append("  " * (self.depth + 1) + "[svg drawing]")
            return
        if tag not in _VOID:
            self.depth += 1

    def handle_endtag(self, tag):
        if self.svg:
            if tag == "svg":
                self.svg -= 1
            return
        if tag not in _VOID:
            self.depth = max(0, self.depth - 1)

    def handle_data(self, data):
        if self.svg:
            return
        text = " ".join(data.split())
        if text:
            self.lines.append("  " * self.depth + text)


def outline(html: str) -> str:
    parser = _Outline()
    parser.feed(html)
    return normalise("\n".join(parser.lines) + "\n")


def normalise(text: str) -> str:
    for rx, repl in _NORMALISE:
        text = rx.sub(repl, text)
    return text


def _changed(want: str, got: str, what: str) -> None:
    if got != want:
        import difflib

        diff = "".join(list(difflib.unified_diff(want.splitlines(True), got.splitlines(True), "before", "now"))[:80])
        raise AssertionError(f"the {what} changed:\n{diff}")


def test_sample_run_renders_the_same_report_and_cards_as_before_the_move(tmp_path):
    """Through the report stage as ``audited-ft report RUN`` runs it (the config's sample count, the cards too)."""
    import shutil

    from audited_ft.pipeline import open_run, stage_report
    from tests.paths import SAMPLE_RUN

    run = tmp_path / "sample_run"
    shutil.copytree(SAMPLE_RUN, run)
    cfg, rf = open_run(run)
    got = outline(stage_report(cfg, rf).read_text(encoding="utf-8"))
    _changed((FIXTURES / "sample_run_report.outline.txt").read_text(encoding="utf-8"), got, "report's text or structure")
    for card in ("train/adapter/model_card.md", "data/data_card.md"):
        want = normalise((FIXTURES / f"sample_run_{card.rsplit('/', 1)[1]}").read_text(encoding="utf-8"))
        _changed(want, normalise((run / card).read_text(encoding="utf-8")), card)


def test_outline_sees_text_and_structure_but_not_chart_internals():
    a = outline('<p class="x">Hello <b>world</b></p><svg id="r1"><path d="M0"/></svg><p>sha 0123456789abcdef</p>')
    b = outline('<p class="x">Hello <b>world</b></p><svg id="r1"><path d="M9"/></svg><p>sha fedcba9876543210</p>')
    assert a == b
    assert outline('<p class="x">Hello</p>') != outline('<p class="y">Hello</p>')
    assert outline("<p>Hello</p>") != outline("<p>Hello!</p>")
