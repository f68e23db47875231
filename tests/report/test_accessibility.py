"""Accessibility and print of the report and the evidence page (issue 24, item 4), checked in headless Chromium.

- Contrast: every text the pages show (all collapsed blocks opened) meets WCAG 2.2 AA (SC 1.4.3: 4.5:1, 3:1 for large
  text), computed in the page from the colours the browser resolved, over the background actually behind the text.
- Charts: base and adapter differ by hatch, marker and line style, not colour alone; every line and edge colour keeps
  3:1 against white (SC 1.4.11, non-text contrast); base and adapter fills stay apart in greyscale and under simulated
  protanopia, deuteranopia and tritanopia (Machado, Oliveira and Fernandes 2009, severity 1).
- Keyboard: the report's collapsed blocks are reached with Tab and opened with Enter (the evidence page's keyboard
  use is tested in test_evidence.py).
- Print: Chromium's own ``--print-to-pdf`` writes an A4 PDF; under print media no element is wider than A4's
  printable width (a wider table makes Chromium shrink every page to fit it), the navigation is hidden and every
  collapsed block is shown.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from audited_ft.report import charts
from tests.paths import SAMPLE_RUN
from tests.report import chromium

# WCAG 2.x relative luminance and contrast ratio, in the page: the text's colour over the backgrounds behind it
# (semi-transparent layers composited down to the page's white).
CONTRAST_JS = r"""(() => {
  document.querySelectorAll("details").forEach(d => { d.open = true; });
  const parse = c => { const m = c.match(/rgba?\(([^)]+)\)/); if (!m) return null;
    const p = m[1].split(/[ ,\/]+/).filter(Boolean).map(parseFloat);
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1}; };
  const lin = v => { v /= 255; return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  const lum = c => 0.2126 * lin(c.r) + 0.7152 * lin(c.g) + 0.0722 * lin(c.b);
  const over = (top, under) => ({r: top.r * top.a + under.r * (1 - top.a), g: top.g * top.a + under.g * (1 - top.a),
                                 b: top.b * top.a + under.b * (1 - top.a), a: 1});
  const background = el => { const layers = [];
    for (let e = el; e; e = e.parentElement) { const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; } }
    return layers.reverse().reduce((acc, c) => over(c, acc), {r: 255, g: 255, b: 255, a: 1}); };
  const bad = [], seen = new Set(); let checked = 0;
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode, el = node.parentElement;
    if (!node.textContent.trim() || seen.has(el) || el.closest("svg")) continue;
    seen.add(el);
    const st = getComputedStyle(el), box = el.getBoundingClientRect();
    if (st.visibility === "hidden" || (!box.width && !box.height)) continue;
    const bg = background(el), fg = over(parse(st.color), bg);
    const a = lum(fg), b = lum(bg), ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const px = parseFloat(st.fontSize), large = px >= 24 || (parseInt(st.fontWeight) >= 700 && px >= 18.66);
    checked++;
    if (ratio < (large ? 3 : 4.5)) bad.push(`${el.tagName}.${el.className} "${node.textContent.trim().slice(0, 30)}" `
                                            + `${ratio.toFixed(2)}:1 (${st.color} on rgb(${bg.r},${bg.g},${bg.b}))`);
  }
  return {checked, bad};
})()"""

A4_PRINTABLE_PX = 703  # 210 mm − 2 × 12 mm (the print stylesheet's @page margins) at 96 px per inch


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> Path:
    """The committed sample run's report and evidence page, rendered by today's code."""
    from audited_ft.pipeline import open_run, stage_report

    run = tmp_path_factory.mktemp("a11y") / "sample_run"
    shutil.copytree(SAMPLE_RUN, run)
    cfg, rf = open_run(run)
    stage_report(cfg, rf)
    assert (run / "report.html").is_file() and (run / "evidence.html").is_file()
    return run


def _browser(tmp_path: Path) -> chromium.Browser:
    why = chromium.available()
    if why:
        pytest.skip(why)
    return chromium.Browser(tmp_path)


def test_every_text_meets_wcag_aa_contrast(pages: Path, tmp_path: Path) -> None:
    with _browser(tmp_path) as b:
        for page in ("report.html", "evidence.html"):
            b.navigate((pages / page).as_uri())
            found = b.evaluate(CONTRAST_JS)
            assert found["checked"] > 100, (page, found["checked"])  # the walk saw the page's text
            assert found["bad"] == [], (page, found["bad"][:10])
        # the check can fail: the same walk over a paragraph in the light grey (#999) a muted style might drift to
        b.evaluate('document.body.insertAdjacentHTML("beforeend", \'<p style="color:#999">faint text</p>\')')
        bad = b.evaluate(CONTRAST_JS)["bad"]
        assert len(bad) == 1 and "faint text" in bad[0] and "2.85:1" in bad[0]


def _luminance(hex_colour: str) -> float:
    r, g, b = (int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5))
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def _contrast(a: float, b: float) -> float:
    return (max(a, b) + 0.05) / (min(a, b) + 0.05)


# Machado, Oliveira and Fernandes (2009), "A physiologically-based model for simulation of color vision deficiency",
# IEEE TVCG 15(6): the severity-1 matrices, applied to linear RGB.
CVD = {
    "protanopia": ((0.152286, 1.052583, -0.204868), (0.114503, 0.786281, 0.099216), (-0.003882, -0.048116, 1.051998)),
    "deuteranopia": ((0.367322, 0.860646, -0.227968), (0.280085, 0.672501, 0.047413), (-0.011820, 0.042940, 0.968881)),
    "tritanopia": ((1.255528, -0.076749, -0.178779), (-0.078411, 0.930809, 0.147602), (0.004733, 0.691367, 0.303900)),
}


def _simulated_luminance(hex_colour: str, matrix) -> float:
    rgb = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    seen = [min(1.0, max(0.0, sum(m * c for m, c in zip(row, lin)))) for row in matrix]
    return 0.2126 * seen[0] + 0.7152 * seen[1] + 0.0722 * seen[2]


def test_charts_are_readable_without_colour_in_greyscale_and_for_colour_blind_readers() -> None:
    base, adapter = charts.BASE, charts.ADAPTER
    for cue in ("hatch", "marker", "ls"):  # what tells the two apart without colour
        assert base[cue] != adapter[cue], cue
    styles = [ls for ls, _ in charts.SPLIT_LINES]
    assert len(set(styles)) == len(styles)  # the split lines differ by dash pattern too
    white = 1.0
    for colour in [base["edgecolor"], adapter["edgecolor"], *(c for _, c in charts.SPLIT_LINES)]:
        assert _contrast(_luminance(colour), white) >= 3.0, colour  # WCAG SC 1.4.11 against the page
    # the two fills differ in lightness (greyscale print), and still do for each colour-vision deficiency
    assert _contrast(_luminance(base["facecolor"]), _luminance(adapter["facecolor"])) >= 1.2
    for name, matrix in CVD.items():
        fills = _simulated_luminance(base["facecolor"], matrix), _simulated_luminance(adapter["facecolor"], matrix)
        assert _contrast(*fills) >= 1.15, name
    # the rendered chart really carries two hatch patterns and a legend naming both sides
    svg = str(charts.metric_bars([{"name": "rougeL", "base": 0.2, "base_lo": 0.18, "base_hi": 0.22, "adapter": 0.36,
                                   "adapter_lo": 0.34, "adapter_hi": 0.38}], "ROUGE F-measure", "a11y"))
    assert len(set(re.findall(r'<pattern id="([^"]+)"', svg))) >= 2
    assert "base" in svg and "adapter" in svg and 'role="img"' in svg and "aria-label=" in svg


def test_report_blocks_open_from_the_keyboard(pages: Path, tmp_path: Path) -> None:
    with _browser(tmp_path) as b:
        b.navigate((pages / "report.html").as_uri())
        for _ in range(200):  # Tab through links until the first collapsed block's summary has the focus
            b.press("Tab")
            if b.evaluate("document.activeElement.tagName") == "SUMMARY":
                break
        else:
            pytest.fail("no <summary> reached with Tab in 200 presses")
        assert b.evaluate("document.activeElement.parentElement.open") is False
        b.press("Enter")
        assert b.evaluate("document.activeElement.parentElement.open") is True
        # the focus is visible: the browser draws an outline on the focused summary
        assert b.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"


def test_print_gives_a4_pages_that_fit_with_every_block_shown(pages: Path, tmp_path: Path) -> None:
    why = chromium.available()
    if why:
        pytest.skip(why)
    pdf = tmp_path / "report.pdf"
    done = subprocess.run([str(chromium.CHROMIUM), *chromium.FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                           "--no-pdf-header-footer", f"--print-to-pdf={pdf}", (pages / "report.html").as_uri()],
                          capture_output=True, timeout=120)
    assert done.returncode == 0 and pdf.read_bytes()[:5] == b"%PDF-", done.stderr[-2000:]
    body = pdf.read_bytes()
    sizes = set(re.findall(rb"/MediaBox\s*\[\s*0 0 ([\d.]+) ([\d.]+)\s*\]", body))
    assert sizes and all(abs(float(w) - 595.9) < 2 and abs(float(h) - 842.9) < 2 for w, h in sizes), sizes  # A4 in pt
    assert len(re.findall(rb"/Type\s*/Page\b(?!s)", body)) >= 5
    with _browser(tmp_path) as b:
        b.send("Emulation.setDeviceMetricsOverride", {"width": A4_PRINTABLE_PX, "height": 1000,
                                                       "deviceScaleFactor": 1, "mobile": False})
        b.send("Emulation.setEmulatedMedia", {"media": "print"})
        b.navigate((pages / "report.html").as_uri())
        found = b.evaluate("""(() => {
          const W = document.documentElement.clientWidth;
          const wide = [...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > W + 4 && !e.closest('svg'))
            .map(e => e.tagName + '.' + e.className + ': ' + e.textContent.trim().slice(0, 40));
          const hidden = [...document.querySelectorAll('details:not([open])')].filter(d =>
            d.getBoundingClientRect().height <= d.querySelector('summary').getBoundingClientRect().height + 2).length;
          return {W, scroll: document.documentElement.scrollWidth, wide: wide.slice(0, 8), hidden,
                  closed: document.querySelectorAll('details:not([open])').length,
                  nav: getComputedStyle(document.querySelector('nav')).display};
        })()""")
        assert found["W"] == A4_PRINTABLE_PX
        assert found["scroll"] <= A4_PRINTABLE_PX and found["wide"] == [], found
        assert found["closed"] > 0 and found["hidden"] == 0, found  # collapsed on screen, shown on paper
        assert found["nav"] == "none"
        b.send("Emulation.setEmulatedMedia", {"media": "screen"})  # the control: on screen they are collapsed
        assert b.evaluate("[...document.querySelectorAll('details:not([open])')].filter(d => d.getBoundingClientRect()"
                          ".height <= d.querySelector('summary').getBoundingClientRect().height + 2).length") > 0
