"""Rows of group-level findings (one per bias type, harm category, group...): base, adapter and delta with their
intervals, the family-adjusted test, and one plain sentence naming what moved beyond its interval and survived the
Benjamini–Hochberg adjustment. Shared by the discrimination and misalignment sections.

Group names are key parts the probes wrote (``[a-z0-9_-]`` by construction, but the file may have been edited), so they
are treated as untrusted text: control characters made visible and clipped here, escaped by the template. Numbers that
are not numbers become "—" and are listed in ``problems`` (file, key and value) instead of failing the whole report.
"""

from __future__ import annotations

import math
import re
from typing import Any

from audited_ft.run.keys import MetricKey
from audited_ft.textsafe import escape_controls

METRICS_FILE = "eval/metrics.json"
GROUP_CHARS = 60
MAX_LISTED = 4  # moves named in a sentence; the rest are counted


def number(metrics: dict, key: str, problems: list[str]) -> float | None:
    """A finite float from ``metrics[key]``, or ``None`` (absent, or unusable and recorded in ``problems``)."""
    value = metrics.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        problems.append(f"{METRICS_FILE}: {key} = {repr(value)[:60]} is not a finite number; shown as —")
        return None
    return float(value)


def group_row(metrics: dict, stem: str, group: str, phrases: tuple[str, str], problems: list[str]) -> dict:
    """One group's base, adapter and delta with CIs; ``direction`` is +1/−1 when the delta CI excludes 0 (and, for a
    metric of a family, the adjusted q-value is below α), else 0. ``phrases``: what the adapter does when its value
    is higher / lower, with ``{g}`` for the group."""
    n = number(metrics, f"{stem}.n", problems)
    # Control characters made visible before the chart sees the name: matplotlib would write them into the SVG as is.
    row: dict[str, Any] = {"group": escape_controls(group)[:GROUP_CHARS], "key": stem,
                           "n": int(n) if n is not None and n.is_integer() else n}
    for side in ("base", "adapter", "delta"):
        row[side] = number(metrics, f"{stem}.{side}", problems)
        row[f"{side}_lo"] = number(metrics, f"{stem}.{side}.ci_low", problems)
        row[f"{side}_hi"] = number(metrics, f"{stem}.{side}.ci_high", problems)
    lo, hi = row["delta_lo"], row["delta_hi"]
    row["p"] = number(metrics, f"{stem}.delta.p_value", problems)
    row["q"] = number(metrics, f"{stem}.delta.q_value", problems)
    row["direction"] = 1 if lo is not None and lo > 0 else -1 if hi is not None and hi < 0 else 0
    alpha = 1 - (metrics.get("eval.confidence") or 0.95)
    if row["q"] is not None and row["q"] >= alpha:  # a group-level move that does not survive the adjustment
        row["not_significant_after_adjustment"] = bool(row["direction"])
        row["direction"] = 0
    up, down = phrases
    row["phrase"] = (up if row["direction"] > 0 else down).format(g=row["group"])
    return row


def stems(metrics: dict, pattern: str) -> list[tuple[str, tuple[str, ...]]]:
    """(stem, captured parts) for every ``<stem>.base`` key whose stem matches ``pattern`` in full, sorted by stem."""
    rx = re.compile(pattern)
    found = {k.stem for k in (MetricKey.parse(key) for key in metrics if isinstance(key, str))
             if k.side == "base" and k.stat is None}
    return [(s, m.groups()) for s in sorted(found) if (m := rx.fullmatch(s))]


def by_delta(rows: list[dict]) -> list[dict]:
    """Largest |delta| first; rows without a delta last; ties by group name."""
    return sorted(rows, key=lambda r: (r["delta"] is None, -abs(r["delta"] or 0.0), r["group"]))


def sentence(label: str, rows: list[dict], ci_label: str) -> str:
    """One plain sentence: what moved beyond its CI (largest first), or that nothing did."""
    moved = by_delta([r for r in rows if r["direction"]])
    dropped = [r for r in rows if r.get("not_significant_after_adjustment")]
    adjusted = (f" {len(dropped)} group-level move(s) beyond the raw interval did not survive the Benjamini–Hochberg "
                f"adjustment for the groups tested together and are not named." if dropped else "")
    if not moved:
        sizes = [r["n"] for r in rows if isinstance(r["n"], (int, float))]
        within = f" (groups of {min(sizes):g}–{max(sizes):g} items, so small changes cannot show)" if sizes else ""
        if dropped:
            return f"{label}: nothing moved beyond chance{within}.{adjusted}"
        return f"{label}: nothing moved beyond its {ci_label}; every delta's interval includes 0{within}."
    def fmt(value: float | None, spec: str = ".3f") -> str:  # one CI bound may be missing
        return "—" if value is None else format(value, spec)

    def tested(r: dict) -> str:
        if r.get("q") is None:
            return ""
        return f", p = {fmt(r.get('p'))}, adjusted q = {fmt(r['q'])}"

    parts = [f"{r['phrase']}: {fmt(r['delta'], '+.3f')} [{fmt(r['delta_lo'])}, {fmt(r['delta_hi'])}]{tested(r)}"
             for r in moved[:MAX_LISTED]]
    more = f"; and {len(moved) - MAX_LISTED} more (see the tables)" if len(moved) > MAX_LISTED else ""
    return f"{label}, beyond the {ci_label}: the adapter {'; '.join(parts)}{more}.{adjusted}"
