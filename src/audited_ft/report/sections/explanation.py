"""Report view of the ``explain`` probe: each sampled reference as highlighted tokens, base vs adapter.

Input is the parsed ``eval/probes.json`` (and optionally ``eval/metrics.json``); output is plain data for
``reports/templates/sections/_explanation.html.j2``. Token texts are untrusted data: they stay strings here and are
escaped by the template's autoescape. Every number that reaches a ``style`` or ``title`` attribute is re-made from a
float here, so a tampered probes.json cannot inject markup or CSS through them.
"""

from __future__ import annotations

import math
from typing import Any

from audited_ft.report.rows import metric_rows

SOURCE = "eval/probes.json"
PROBE = "explain"
SATURATE = 2.0    # |delta| in nats at which a token's colour is at full strength (probability × or ÷ e² ≈ 7.4)
MIN_VISIBLE = 0.05  # |delta| below this gets no colour: changes this small are noise for a reader
MAX_ALPHA = 0.6   # the strongest background still leaves dark text readable
UP_RGB, DOWN_RGB = (33, 102, 172), (230, 97, 1)  # blue / orange: distinguishable with red-green colour blindness
MAX_TOKENS = 400  # tokens drawn per item, whatever the probe stored
ID_CHARS, TEXT_CHARS = 80, 40


class _Malformed(ValueError):
    """A field of probes.json that the view cannot use; the message names field and value."""


def explanation_view(probes: dict | None, metrics: dict | None = None) -> dict | None:
    """The explanation aid for section 9, or ``None`` when there is no ``eval/probes.json`` at all.

    Returns ``{"status", "why", "compared", "split", "top_k", "unit", "limitations", "metric_rows", "legend",
    "items": [...]}``. ``items`` is empty when the probe did not run or its record is unusable, and ``why`` then
    says so (naming file, field and value for a malformed record), so the template shows "not measured" with the
    reason instead of failing. Each item has its id, input excerpt, per-token rows (``lead`` whitespace, ``text``,
    ``base``/``adapter``/``delta`` in nats, ``style`` background, ``mark`` such as "▲1" for the top-k tokens, and a
    ``title`` with base → adapter values) and its top-k list. ``metrics`` (eval/metrics.json) adds the
    ``explain.*`` rows with their CIs.
    """
    if probes is None:
        return None
    out: dict[str, Any] = {"status": "absent", "why": None, "compared": "adapter", "split": None, "top_k": None,
                           "unit": "nats per token", "limitations": "", "items": [], "legend": legend(),
                           "metric_rows": _metric_rows(metrics), "saturate": SATURATE}
    entry = probes.get(PROBE) if isinstance(probes, dict) else None
    if not isinstance(entry, dict):
        out["why"] = f"{SOURCE} has no '{PROBE}' entry: this run's code had no explain probe, or eval did not run it."
        return out
    out["status"] = str(entry.get("status", "not recorded"))
    out["limitations"] = str(entry.get("limitations") or "")
    info = entry.get("info") or {}
    if out["status"] != "done":
        reason = entry.get("reason")
        out["why"] = f"the explain probe was {out['status']}" + (f": {reason}" if reason else "") + "."
        return out
    if not isinstance(info, dict) or not info.get("items"):
        why = info.get("status") if isinstance(info, dict) else None
        out["why"] = str(why or f"{SOURCE}: explain.info.items is empty: no item was scored.")
        return out
    try:
        out.update(compared=str(info.get("compared", "adapter")), split=str(info.get("split", "test")),
                   top_k=_int(info.get("top_k", 0), "explain.info.top_k"))
        if not isinstance(info["items"], dict):
            raise _Malformed(f"explain.info.items is {type(info['items']).__name__}, expected an object by item id")
        out["items"] = [_item(str(item_id), item) for item_id, item in info["items"].items()]
    except _Malformed as exc:
        out["items"] = []
        out["why"] = f"{SOURCE}: {exc}"
    return out


def legend() -> list[dict]:
    """Swatches for the legend: direction and strength of the change, with the text mark that carries the same."""
    rows = []
    for delta in (SATURATE, SATURATE / 4, -SATURATE / 4, -SATURATE):
        word = "more" if delta > 0 else "less"
        rows.append({"style": token_style(delta), "label": f"{delta:+.1f} nats",
                     "meaning": f"{word} likely under the adapter"})
    return rows


def token_style(delta: float | None) -> str:
    """CSS background for a change of ``delta`` nats: blue up, orange down, stronger for larger changes."""
    if delta is None or not math.isfinite(delta) or abs(delta) < MIN_VISIBLE:
        return ""
    alpha = MAX_ALPHA * min(1.0, abs(delta) / SATURATE)
    r, g, b = UP_RGB if delta > 0 else DOWN_RGB
    return f"background-color: rgba({r}, {g}, {b}, {alpha:.2f})"


def _item(item_id: str, item: Any) -> dict:
    where = f"explain.info.items[{item_id[:ID_CHARS]!r}]"
    if not isinstance(item, dict) or not isinstance(item.get("tokens"), list):
        raise _Malformed(f"{where}.tokens is missing or not a list")
    top = item.get("top") if isinstance(item.get("top"), list) else []
    ranks: dict[int, int] = {}
    top_rows = []
    for rank, t in enumerate(top, start=1):
        if not isinstance(t, dict):
            raise _Malformed(f"{where}.top[{rank - 1}] is {type(t).__name__}, expected an object")
        row = _token(t, f"{where}.top[{rank - 1}]")
        row.update(rank=rank, index=_int(t.get("index"), f"{where}.top[{rank - 1}].index"),
                   mark=("▲" if (row["delta"] or 0) > 0 else "▼") + str(rank))
        ranks.setdefault(row["index"], rank)
        top_rows.append(row)
    tokens = []
    for i, t in enumerate(item["tokens"][:MAX_TOKENS]):
        if not isinstance(t, dict):
            raise _Malformed(f"{where}.tokens[{i}] is {type(t).__name__}, expected an object")
        row = _token(t, f"{where}.tokens[{i}]")
        rank = ranks.get(i)
        row["mark"] = (("▲" if (row["delta"] or 0) > 0 else "▼") + str(rank)) if rank else ""
        tokens.append(row)
    means = item.get("mean_logprob_per_token") if isinstance(item.get("mean_logprob_per_token"), dict) else {}
    mean_b = _num(means.get("base"), f"{where}.mean_logprob_per_token.base")
    mean_a = _num(means.get("adapter"), f"{where}.mean_logprob_per_token.adapter")
    n_tokens = _int(item.get("n_tokens", len(item["tokens"])), f"{where}.n_tokens")
    return {"id": item_id[:ID_CHARS], "input_excerpt": item.get("input_excerpt"), "n_tokens": n_tokens,
            "shown": len(tokens), "truncated": len(tokens) < n_tokens, "mean_base": mean_b, "mean_adapter": mean_a,
            "mean_delta": None if mean_a is None or mean_b is None else mean_a - mean_b,
            "tokens": tokens, "top": top_rows}


def _token(t: dict, where: str) -> dict:
    text = t.get("text")
    if not isinstance(text, str):
        raise _Malformed(f"{where}.text is {text!r}, expected text")
    text = text[:TEXT_CHARS]
    body = text.lstrip()
    base, adapter = _num(t.get("base"), f"{where}.base"), _num(t.get("adapter"), f"{where}.adapter")
    delta = _num(t.get("delta"), f"{where}.delta")
    if delta is None and base is not None and adapter is not None:
        delta = adapter - base
    title = ("log-probability: base " + _fmt(base) + " → adapter " + _fmt(adapter) + " nats (change "
             + _fmt(delta, signed=True) + ")")
    shown = body or text.replace("\n", "⏎").replace("\t", "⇥").replace(" ", "␣")  # a whitespace token, visible
    return {"lead": text[:len(text) - len(body)], "text": body, "shown": shown, "base": base, "adapter": adapter,
            "delta": delta, "style": token_style(delta), "title": title}


def _num(value: Any, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _Malformed(f"{field} is {str(value)[:40]!r}, expected a finite number")
    return float(value)


def _int(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Malformed(f"{field} is {str(value)[:40]!r}, expected a whole number")
    return value


def _fmt(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def _metric_rows(metrics: dict | None) -> list[dict]:
    """``explain.*`` metrics as rows for ``_macros.metric_table`` (base/adapter/delta with CIs, and n)."""
    return metric_rows(metrics, f"{PROBE}.")
