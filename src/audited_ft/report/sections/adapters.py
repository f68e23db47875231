"""The report's "Adapters compared" panel: further adapters evaluated on the same base (``eval --adapter NAME=DIR``).

``eval/metrics.json`` then holds, beside the run's own ``<metric>.{base,adapter,delta}`` keys, one set per extra adapter
with its name before the side (``rouge.rougeL.other.delta.ci_low``, see ``run.keys``); the manifest names the adapters
(``eval.extra_adapters``: name → folder, ``eval.variants``: their order). :func:`adapters_view` gives one row per metric
measured on the run's adapter and on at least one extra adapter — gated metrics first (in gate order), then the rest
grouped by probe — with every adapter's value and its delta against the base with the delta's interval, marked where
that interval excludes 0. The marker says better/worse by the direction the probe declares for the metric
(``Probe.metrics``); for a metric no probe declares, by the direction a release gate implies (only ``min``: higher;
only ``max``: lower); else only up/down.

It also checks this run's gates on each extra adapter's keys (the gate's ``<stem>.<side>`` read as
``<stem>.<name>.<side>``) with :func:`audited_ft.gate.stage.evaluate_gate`, so the panel compares exactly as the gate
stage does. Gates on audit numbers or on keys no adapter has (``overfitting.final_gap``) measure this run's data or
training, not an adapter: they are named as not applicable rather than counted as passed.

Adapter names and folders come from the run folder and are untrusted: the template escapes them.
"""

from __future__ import annotations

import math
from typing import Any

from audited_ft.config import Gate
from audited_ft.eval.probes import declared_direction
from audited_ft.gate.decide import decide, gate_key
from audited_ft.run.keys import SIDES, MetricKey, better_way, bound_direction
from audited_ft.run.view import RunView

OWN = "adapter"  # the run's own adapter keeps the plain keys
OWN_LABEL = "adapter (this run)"
# Key namespaces whose second part is the probe (bias.bbq, privacy.canary, safety.refusal); elsewhere the first part is.
_NAMESPACES = ("bias", "privacy", "safety")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


def _side_key(metric: str) -> MetricKey | None:
    """The key of one side of a base-vs-adapter metric (``rouge.rougeL.delta.ci_low``), or ``None`` for a key that is
    not one (audit numbers, ``overfitting.final_gap``)."""
    if metric.startswith("audits."):
        return None
    key = MetricKey.parse(metric)
    return key if key.side in SIDES else None


def run_gates(run: RunView) -> tuple[list[Gate], str | None]:
    """This run's gates and where they were read: ``gates.json`` (the gates the verdict used, including a
    ``gate --gates FILE``), else ``config.resolved.yaml``'s ``gates:``. Entries that are not a valid gate are left out."""
    import pydantic

    raw, source = None, None
    gates_json = run.load("gates.json")
    if isinstance(gates_json, dict) and isinstance(gates_json.get("results"), list):
        raw = [{**{k: r.get(k) for k in ("metric", "min", "max", "reason")},
                "statistic": r.get("statistic") or r.get("on") or "point"}
               for r in gates_json["results"] if isinstance(r, dict)]
        source = "gates.json"
    elif run.exists("config.resolved.yaml"):
        config = run.load("config.resolved.yaml")
        raw = config.get("gates") if isinstance(config, dict) else None
        source = "config.resolved.yaml" if isinstance(raw, list) else None
    gates = []
    for entry in raw or []:
        try:
            gates.append(Gate(**entry))
        except (TypeError, pydantic.ValidationError):
            continue
    return gates, source


def _directions(gates: list[Gate]) -> tuple[list[str], dict[str, str | None]]:
    """Gated metric stems in gate order, and which way is better for each ("higher", "lower" or None): the direction
    the probe declares, else the one the gates' bounds imply (gates that disagree, or a band: None)."""
    order, implied = [], {}
    for g in gates:
        key = _side_key(g.metric)
        if key is None:
            continue
        way = bound_direction(g.min, g.max)
        if key.stem not in implied:
            order.append(key.stem)
            implied[key.stem] = way
        elif implied[key.stem] != way:  # two gates disagree (or one is a band): no single better direction
            implied[key.stem] = None
    return order, implied


def _way(stem: str, implied: dict[str, str | None]) -> str | None:
    declared = declared_direction(stem)
    return better_way(declared) if declared is not None else implied.get(stem)


def probe_group(stem: str) -> str:
    """The probe a metric key belongs to, by its prefix: ``bias.bbq``, ``rouge``, ``toxicity``."""
    parts = stem.split(".")
    return ".".join(parts[:2]) if parts[0] in _NAMESPACES and len(parts) > 2 else parts[0]


def _marker(lo: Any, hi: Any, way: str | None) -> dict | None:
    """Where the delta's interval excludes 0: the direction and, given a better way, better/worse."""
    if not (_number(lo) and _number(hi)) or lo <= 0 <= hi:
        return None
    up = lo > 0
    word = None if way is None else "better" if up == (way == "higher") else "worse"
    return {"arrow": "▲" if up else "▼", "direction": "up" if up else "down", "word": word}


def _key(stem: str, name: str, side: str, stat: str | None = None) -> str:
    return str(MetricKey(stem, side, stat, None if name == OWN else name))


def _cell(metrics: dict, stem: str, name: str, way: str | None) -> dict | None:
    if _key(stem, name, "adapter") not in metrics:
        return None
    lo, hi = metrics.get(_key(stem, name, "delta", "ci_low")), metrics.get(_key(stem, name, "delta", "ci_high"))
    return {"value": metrics.get(_key(stem, name, "adapter")), "delta": metrics.get(_key(stem, name, "delta")),
            "lo": lo, "hi": hi, "marker": _marker(lo, hi, way)}


def _gate_check(name: str, gates: list[Gate], metrics: dict, notes: dict | None = None) -> dict:
    """Whether adapter ``name`` would pass this run's gates, read on its own keys, as one sentence. ``notes`` are the
    run's per-stem notes (``RunView.interval_notes``): a probe blind on this base is blind for every adapter of it."""
    notes = notes or {}
    failed, undecided, passed, missing, other = [], [], 0, [], []
    for g in gates:
        key = _side_key(g.metric)
        if key is None:
            other.append(gate_key(g))
            continue
        moved = g.model_copy(update={"metric": str(key.to(variant=name))})
        needed = [str(key.to(variant=name, stat=s)) for s in ("ci_low", "ci_high")] if g.risk else [gate_key(moved)]
        if not all(k in metrics for k in needed):
            missing.append(gate_key(moved))
            continue
        # the moved key's stem carries the adapter's name: its harm direction is the metric's own
        note = {"direction": declared_direction(key.stem)}
        if (notes.get(key.stem) or {}).get("blind"):
            note["blind"] = notes[key.stem]["blind"]
        result = decide(moved, metrics, {MetricKey.parse(moved.metric).stem: note})
        if result["verdict"] == "pass":
            passed += 1
        elif result["verdict"] == "fail":
            failed.append(result["message"])
        else:
            undecided.append(result["message"])
    checked = passed + len(failed) + len(undecided)
    status = "fail" if failed else "inconclusive" if undecided else "unknown" if missing or not checked else "pass"
    if not gates:
        sentence = f"{name}: this run has no release gate, so there is nothing for it to pass."
    elif failed or undecided:
        parts = []
        if failed:
            parts.append(f"would fail {len(failed)} of the {checked} gate(s) of this run checked on its keys: "
                         + "; ".join(failed))
        if undecided:
            parts.append(f"{len(undecided)} gate(s) could not be decided: " + "; ".join(undecided))
        sentence = f"{name} " + "; ".join(parts) + "."
    elif checked == len(gates):
        sentence = f"{name} would pass all {checked} of this run's gate(s), checked on its own keys."
    elif checked:
        sentence = (f"{name} would pass the {checked} of this run's {len(gates)} gates that could be checked on "
                    "its keys.")
    else:
        sentence = f"{name}: none of this run's {len(gates)} gate(s) could be checked on its keys."
    if missing:
        sentence += f" Not checked, no number under its key in eval/metrics.json: {', '.join(missing)}."
    if other:
        sentence += f" Not applicable (about this run's data or training, not an adapter): {', '.join(other)}."
    return {"name": name, "status": status, "sentence": sentence, "failed": failed, "undecided": undecided,
            "missing": missing, "not_applicable": other}


def adapters_view(metrics: dict | None, extras: dict[str, str], gates: list[Gate], gate_source: str | None = None,
                  notes: dict | None = None) -> dict | None:
    """The "Adapters compared" panel, or ``None`` when the run evaluated no extra adapter (nothing is shown).

    ``extras`` maps each further adapter's name to its folder (``RunView.extra_adapters``). Rows: every metric stem
    with ``<stem>.adapter`` and ``<stem>.<name>.adapter`` for at least one extra adapter; gated stems first in gate
    order, then groups by probe (alphabetical, keys sorted within). Each row has the base value and one cell per
    adapter (the run's first): value, delta, its interval and the marker.
    """
    if not extras:
        return None
    metrics = metrics if isinstance(metrics, dict) else {}
    keys = [MetricKey.parse(k, extras) for k in metrics]
    stems = {k.stem for k in keys if k.side == "adapter" and k.stat is None and k.variant is None}
    shown = {s for s in stems if any(_key(s, n, "adapter") in metrics for n in extras)}
    gated, implied = _directions(gates)
    first = [s for s in gated if s in shown]
    rest = sorted(shown - set(first), key=lambda s: (probe_group(s), s))
    names = [OWN, *(n for n in extras if any(_key(s, n, "adapter") in metrics for s in shown))]
    groups: list[dict] = []
    for stem in first + rest:
        label = "gated metrics" if stem in first else probe_group(stem)
        if not groups or groups[-1]["label"] != label:
            groups.append({"label": label, "gated": stem in first, "rows": []})
        way = _way(stem, implied)
        groups[-1]["rows"].append({"key": stem, "way": way, "base": metrics.get(_key(stem, OWN, "base")),
                                   "n": metrics.get(_key(stem, OWN, "n")),
                                   "cells": [_cell(metrics, stem, n, way) for n in names]})
    adapters = [{"name": n, "label": OWN_LABEL if n == OWN else n,
                 "folder": "train/adapter" if n == OWN else extras[n], "own": n == OWN} for n in names]
    return {"adapters": adapters, "groups": groups, "n_rows": sum(len(g["rows"]) for g in groups),
            "verdicts": [{**_gate_check(n, gates, metrics, notes), "folder": extras[n]} for n in names if n != OWN],
            "missing": [{"name": n, "folder": f} for n, f in extras.items() if n not in names],
            "n_gates": len(gates), "gate_source": gate_source}
