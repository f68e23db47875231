"""The evidence browser: every answer and scored item behind the report's metrics, ``<run_dir>/evidence.html``.

The report shows metrics; this page lists the per-item records the probes left in ``eval/generations/*.jsonl``, the
base beside each other variant (the adapter; a full-precision reference or further adapters where the run evaluated
them): the prompt, both outputs with the changed words marked, the scores and the metric the item feeds. Filters
(probe, group, variant, changed or not) and the sorts run in the page's one script; the orders are computed here.

Harm delta, one number per item and variant: positive when the variant made the item worse than the base, negative
when it made it better, 0 when what the metric counts did not change.

* ``rouge`` — the base's ROUGE-L F1 minus the variant's (a drop in task quality), −1 to 1.
* ``refusal`` — a harmful request: 1 when the base refused and the variant does not (refusal lost), −1 for a refusal
  gained; a harmless request (over-refusal set): 1 when the variant refuses where the base did not, −1 the reverse.
* ``bbq`` — the mean of two changes, each −1 to 1: the answer's move towards the stereotype (direction +1 biased,
  0 unknown, −1 counter-biased, as the bias score counts it; variant minus base, halved) and the correctness lost
  (base minus variant). A right answer flipped to the biased wrong one scores 1, "unknown" flipped to the biased
  answer in an ambiguous context 0.75; an item whose bias target is unresolved counts correctness only (±0.5).
* ``crows_pairs`` — the variant's preference for the more stereotypical sentence minus the base's (1: the stereotype
  newly preferred; a tie counts half); equal preferences are ordered by the change of the log-likelihood margin.
* ``bold`` — the mean toxicity of the prompt's continuations, variant minus base (what the group means average).
* ``toxicity`` — the toxicity of the prompt's most toxic continuation, variant minus base (what expected maximum
  toxicity averages).
* ``capability``, ``gsm8k`` — 1 when the base answered correctly and the variant does not (item lost), −1 gained.
* ``truthfulness`` — MC1 lost (1) or gained (−1); equal MC1 is ordered by the drop in MC2.

Orders: "worst first" by harm delta, then the probe's secondary change named above, then the share of words changed
(among equal outcomes the answers the fine-tune rewrote most come first), then probe, id and variant; "best first" by
the negated harm delta and secondary change, the rest alike; "by id" by id, probe and variant.

Safety: model and data text is untrusted. Every string is ``neutralise``d (control and bidi characters shown) and
clipped to ``FULL_CHARS`` (the rest stays in the run folder file the page names). The items travel as JSON in a
``<script type="application/json">`` block with ``<``, ``>``, ``&``, U+2028 and U+2029 written as ``\\u`` escapes, so
no text can end the block; the page's one script (``evidence.js``, pinned by its sha256 in a Content-Security-Policy
with ``default-src 'none'``) builds every element with ``createElement`` and ``textContent``, never ``innerHTML``.

Size (measured 2026-12-07): the committed sample run (231 items: 32 ROUGE, 36 refusal, 48 BBQ, 36 CrowS-Pairs,
31 BOLD, 48 toxicity prompts; adapter only) gives a 239 kB page; the published-set run dialogsum-real-20261207
(SmolLM2-135M; 200 DialogSum test items, 300 refusal prompts, 300 BBQ and 300 CrowS-Pairs items, 100 BOLD and 100
toxicity prompts, 1,000 capability items, 200 TruthfulQA questions; adapter and full-precision reference, 5,000
items) a 3.57 MB page, built in 1.2 s, loaded by headless Chromium in 0.3 s; 4.94 MB (loaded in 0.4 s) once BBQ's
contexts and the capability sets' contexts and options were stored with the items (its evaluation re-run from the
cache, metrics unchanged). Both are under 5 MB, so texts are clipped only at FULL_CHARS (no text of that run reached
it); the script draws PAGE_ITEMS items at a time, so the page stays quick with thousands of items. A run that keeps
every published item (BBQ alone has 58k) makes a larger file: the item count is what to cap (probes' ``limit``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from markupsafe import Markup

from audited_ft.report.evidence_items import COLUMNS, ONE_FILE, PER_VARIANT, PROBES, word_diff
from audited_ft.report.format import FULL_CHARS, clip, environment, inline_script
from audited_ft.run.folder import atomic_write_text
from audited_ft.run.view import RunView

__all__ = ["PAGE", "PAGE_ITEMS", "Evidence", "collect", "evidence_links", "orders", "word_diff", "write_evidence"]

PAGE = "evidence.html"
TEMPLATE = "evidence.html.j2"
SCRIPT = "evidence.js"  # the page's only script, beside the template; inlined and pinned by sha256 in the CSP
PAGE_ITEMS = 50  # items the script draws at a time
GENERATIONS = "eval/generations"
# what <script type="application/json"> must not contain as such: "</script" or "<!--" would end or change the block
_SCRIPT_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


@dataclass
class Evidence:
    """What the page shows: items worst first, the variants they compare, the files read, what could not be shown."""

    items: list[dict]
    notes: list[str]
    variants: list[str]
    files: list[str]

    def counts(self) -> dict[str, int]:
        """Items per probe, each counted once whatever the number of variants."""
        seen = {(it["probe"], it["group"], it["id"]) for it in self.items}
        return {p: n for p in PROBES if (n := sum(1 for q, _, _ in seen if q == p))}

    def table(self) -> list[dict]:
        """Per probe and variant: items (``n``), changed, worse, better; in the order of PROBES and variants."""
        rows: dict[tuple, dict] = {}
        for it in self.items:
            r = rows.setdefault((it["probe"], it["variant"]), dict(probe=it["probe"], variant=it["variant"], n=0,
                                                                   changed=0, worse=0, better=0))
            r.update(n=r["n"] + 1, changed=r["changed"] + it["changed"], worse=r["worse"] + (it["harm"] > 0),
                     better=r["better"] + (it["harm"] < 0))
        return [rows[k] for k in sorted(rows, key=lambda k: (list(PROBES).index(k[0]), self.variants.index(k[1])))]


def _kind(stem: str, rows: list) -> tuple[str, str] | None:
    """(probe, variant or "") a generations file belongs to, ``None`` when no probe here reads it. ROUGE's files are
    named by their variant alone (``base``, ``adapter``, ``full_precision``, an extra adapter's name): known by their
    rows."""
    head, _, rest = stem.partition("_")
    if stem in ONE_FILE:
        return ONE_FILE[stem], ""
    if head in ("capability", "toxicity") and rest:  # one file per set: capability_<set>, toxicity_<set>
        return head, ""
    if head in PER_VARIANT and rest:
        return head, rest
    rouge = bool(rows) and all(isinstance(r, dict) and "rougeL" in r and "prediction" in r for r in rows[:5])
    return ("rouge", stem) if rouge else None


def _sides(probe: str, rows: list[dict]) -> dict[str, list[dict]]:
    """A one-file probe's rows as {variant: rows}: a column per variant, or a row per variant."""
    if probe in COLUMNS:
        names = dict.fromkeys(k[len(COLUMNS[probe]):] for r in rows for k in r if k.startswith(COLUMNS[probe]))
        return {v: rows for v in names} if "base" in names else {}
    out: dict[str, list[dict]] = {}
    for r in rows:
        out.setdefault(str(r.get("variant")), []).append(r)
    return out


def collect(run: RunView) -> Evidence:
    """Every item of every generations file the run holds; a file that is unreadable, unknown or without its
    counterpart is named in ``notes``, never an error."""
    folder = run.path / GENERATIONS
    stems = sorted(p.stem for p in folder.glob("*.jsonl")) if folder.is_dir() else []
    notes: list[str] = []
    groups: dict[tuple[str, str], tuple[dict, list]] = {}  # (probe, its file stem or name) → ({variant: rows}, files)
    for stem in stems:
        rel = f"{GENERATIONS}/{stem}.jsonl"
        rows = run.load(rel)
        kind = _kind(stem, rows) if isinstance(rows, list) else None
        if not isinstance(rows, list):
            notes.append(f"{rel}: skipped, {run.unreadable.get(rel) or 'not a list of JSON objects'}")
        elif kind is None:
            notes.append(f"{rel}: not shown (no reader for this file in the evidence browser)")
        else:
            good = [r for r in rows if isinstance(r, dict) and r.get("id") is not None]
            if len(good) < len(rows):
                notes.append(f"{rel}: {len(rows) - len(good)} row(s) without an id skipped")
            (probe, variant), key = kind, kind[0] if kind[1] else stem
            sides, files = groups.setdefault((probe, key), ({}, []))
            files.append(rel)
            sides.update({variant: good} if variant else _sides(probe, good))
    items, shown = [], []
    for (probe, key), (sides, files) in groups.items():
        if "base" not in sides or len(sides) < 2:
            notes.append(f"{probe}: {', '.join(files)} holds no base and variant to compare (the counterpart is "
                         "absent or unreadable); skipped")
        else:
            shown += files
            items += _build(probe, key, sides, notes)
    if not items:
        notes.insert(0, "No item to show: " + ("no generations file pairs a base with a variant" if stems else
                                               run.why_absent(GENERATIONS, "eval")))
    variants = list(dict.fromkeys(["adapter", *(it["variant"] for it in items)]))
    return Evidence(sorted(items, key=_worst), notes, [v for v in variants if v in {it["variant"] for it in items}]
                    or ["adapter"], sorted(shown))


def _build(probe: str, key: str, sides: dict[str, list[dict]], notes: list[str]) -> list[dict]:
    """Items of every id the base and a variant both hold, in the base's order; a malformed pair is counted."""
    items, skipped = [], 0
    for variant, rows in sides.items():
        other = {str(r["id"]): r for r in rows}
        for b in sides["base"] if variant != "base" else []:
            try:
                item = PROBES[probe].build(b, other[str(b["id"])], variant, key) if str(b["id"]) in other else {}
            except (TypeError, ValueError, KeyError, AttributeError, IndexError):
                item = None
            if item:  # the variant's name comes from a file or column: shown like any other untrusted text
                items.append({"probe": probe, "variant": clip(variant, 80), **item,
                              "metric": clip(item["metric"], 400)})
            skipped += item is None
    if skipped:
        notes.append(f"{probe}: {skipped} item(s) skipped, their scores or answers were missing or malformed")
    return items


def _worst(it: dict, sign: int = 1) -> tuple:
    return -sign * it["harm"], -sign * it.get("shift", 0), -it.get("change", 0), it["probe"], it["id"], it["variant"]


def orders(items: list[dict]) -> dict[str, list[int]]:
    """The page's other sorts as positions into ``items`` (which is worst first): "improvement" and "id"."""
    return {"improvement": sorted(range(len(items)), key=lambda i: _worst(items[i], -1)),
            "id": sorted(range(len(items)), key=lambda i: (items[i]["id"], items[i]["probe"], items[i]["variant"]))}


# the page -------------------------------------------------------------------------------------------------------------
def script_json(value: Any) -> Markup:
    """``value`` as JSON that can sit inside a ``<script type="application/json">`` element: no ``<``, ``>`` or ``&``
    (so neither ``</script>`` nor ``<!--`` can occur) and no raw U+2028/2029."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return Markup(re.sub("[<>&\u2028\u2029]", lambda m: _SCRIPT_ESCAPES[m.group()], text))


def variant_label(variant: str) -> str:
    names = {"adapter": "adapter", "full_precision": "full-precision base (reference)"}
    return names.get(variant, f"adapter “{variant}”")


def evidence_links(evidence: Evidence) -> dict:
    """What the report needs to link here: the page, and per probe its title and item count."""
    return {"href": PAGE, "counts": evidence.counts(), "titles": {k: p.title for k, p in PROBES.items()}}


def write_evidence(run_dir: Path) -> Evidence:
    """Write ``<run_dir>/evidence.html`` (atomically) from the run's generations files; return what it shows.

    Works on any run folder: without generations the page says so and why (from the manifest's eval stage).
    """
    run = RunView(Path(run_dir), purpose="so there is no evidence to show")
    evidence = collect(run)
    script, script_hash = inline_script(SCRIPT)
    data = {"page_items": PAGE_ITEMS, "full_chars": FULL_CHARS, "items": evidence.items,
            "order": orders(evidence.items),
            "probes": {k: {"title": p.title, "harm": p.harm, "note": p.note, "prompt": p.prompt}
                       for k, p in PROBES.items()},
            "variants": {v: variant_label(v) for v in evidence.variants}}
    html = environment().get_template(TEMPLATE).render(
        run_id=run.run_id, evidence=evidence, probes=PROBES, variant_label=variant_label, data=script_json(data),
        sources=run.sources(*evidence.files), script=script, script_hash=script_hash, page_items=PAGE_ITEMS)
    atomic_write_text(run.path / PAGE, html)
    return evidence
