"""The report's "Adapters compared" panel: further adapters evaluated on the same base (``eval --adapter NAME=DIR``).

``eval/metrics.json`` then holds, beside the run's own ``<metric>.{base,adapter,delta}`` keys, one set per extra adapter
with its name before the last part (``rouge.rougeL.other.delta.ci_low``); the manifest names the adapters
(``eval.extra_adapters``: name → folder, ``eval.variants``: their order). :func:`adapters_view` gives one row per metric
measured on the run's adapter and on at least one extra adapter — gated metrics first (in gate order), then the rest
grouped by probe — with every adapter's value and its delta against the base with the delta's interval, marked where
that interval excludes 0. The marker says better/worse where a release gate says which way is better (only ``min``:
higher; only ``max``: lower), else only up/down.

It also checks this run's gates on each extra adapter's keys (the gate's ``<stem>.<side>`` read as
``<stem>.<name>.<side>``) with :func:`audited_ft.gates.evaluate_gate`, so the panel compares exactly as the gate stage
does. Gates on audit numbers or on keys no adapter has (``overfitting.final_gap``) measure this run's data or
training, not an adapter: they are named as not applicable rather than counted as passed.

Adapter names and folders come from the run folder and are untrusted: the template escapes them.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from audited_ft.config import Gate
from audited_ft.gates import _key as gate_key
from audited_ft.gates import evaluate_gate

OWN = "adapter"  # the run's own adapter keeps the plain keys
OWN_LABEL = "adapter (this run)"
SIDES = ("base", "adapter", "delta")
# Key namespaces whose second part is the probe (bias.bbq, privacy.canary, safety.refusal); elsewhere the first part is.
_NAMESPACES = ("bias", "privacy", "safety")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)


def _split_gate_metric(metric: str) -> tuple[str, str, str] | None:
    """``rouge.rougeL.delta.ci_low`` → (``rouge.rougeL``, ``delta``, ``.ci_low``); ``None`` for a key that is not one
    side of a base-vs-adapter metric (audit numbers, ``overfitting.final_gap``)."""
    if metric.startswith("audits."):
        return None
    stem, ci = metric, ""
    for suffix in (".ci_low", ".ci_high"):
        if stem.endswith(suffix):
            stem, ci = stem[: -len(suffix)], suffix
    head, _, side = stem.rpartition(".")
    return (head, side, ci) if head and side in SIDES else None


def run_gates(gates_json: dict | None, config_path: Path) -> tuple[list[Gate], str | None]:
    """This run's gates and where they were read: ``gates.json`` (the gates the verdict used, including a
    ``gate --gates FILE``), else ``config.resolved.yaml``'s ``gates:``. Entries that are not a valid gate are left out."""
    import pydantic

    raw, source = None, None
    if isinstance(gates_json, dict) and isinstance(gates_json.get("results"), list):
        raw = [{**{k: r.get(k) for k in ("metric", "min", "max", "reason")},
                "statistic": r.get("statistic") or r.get("on") or "point"}
               for r in gates_json["results"] if isinstance(r, dict)]
        source = "gates.json"
    elif Path(config_path).is_file():
        import yaml

        try:
            config = yaml.safe_load(Path(config_path).read_text(encoding="utf-8")) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            config = {}
        raw = config.get("gates") if isinstance(config, dict) else None
        source = "config.resolved.yaml" if isinstance(raw, list) else None
    gates = []
    for entry in raw or []:
        try:
            gates.append(Gate(**entry))
        except (TypeError, pydantic.ValidationError):
            continue
    return gates, source


def _extra_names(manifest: dict) -> dict[str, str]:
    """Extra adapters (name → folder) as the manifest records them, in ``eval.variants`` order."""
    ev = manifest.get("eval") if isinstance(manifest, dict) else None
    ev = ev if isinstance(ev, dict) else {}
    folders = ev.get("extra_adapters") if isinstance(ev.get("extra_adapters"), dict) else {}
    variants = [str(v) for v in ev.get("variants") or [] if isinstance(v, str)]
    names = [v for v in variants if v in folders] + [str(n) for n in folders if n not in variants]
    return {n: str(folders[n]) for n in names if n not in ("base", OWN)}


def _directions(gates: list[Gate]) -> tuple[list[str], dict[str, str | None]]:
    """Gated metric stems in gate order, and which way is better for each ("higher", "lower" or None)."""
    order, seen = [], {}
    for g in gates:
        parts = _split_gate_metric(g.metric)
        if parts is None:
            continue
        stem = parts[0]
        way = None if (g.min is None) == (g.max is None) else "higher" if g.min is not None else "lower"
        if stem not in seen:
            order.append(stem)
            seen[stem] = way
        elif seen[stem] != way:  # two gates disagree (or one is a band): no single better direction
            seen[stem] = None
    return order, seen


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


def _cell(metrics: dict, stem: str, name: str, way: str | None) -> dict | None:
    prefix = stem if name == OWN else f"{stem}.{name}"
    if f"{prefix}.adapter" not in metrics:
        return None
    lo, hi = metrics.get(f"{prefix}.delta.ci_low"), metrics.get(f"{prefix}.delta.ci_high")
    return {"value": metrics.get(f"{prefix}.adapter"), "delta": metrics.get(f"{prefix}.delta"), "lo": lo, "hi": hi,
            "marker": _marker(lo, hi, way)}


def _verdict(name: str, gates: list[Gate], metrics: dict) -> dict:
    """Whether adapter ``name`` would pass this run's gates, read on its own keys, as one sentence."""
    failed, passed, missing, other = [], 0, [], []
    for g in gates:
        parts = _split_gate_metric(g.metric)
        if parts is None:
            other.append(gate_key(g))
            continue
        moved = g.model_copy(update={"metric": f"{parts[0]}.{name}.{parts[1]}{parts[2]}"})
        if not _number(metrics.get(gate_key(moved))):
            missing.append(gate_key(moved))
            continue
        result = evaluate_gate(moved, metrics)
        if result["passed"]:
            passed += 1
        else:
            failed.append(result["message"])
    checked = passed + len(failed)
    status = "fail" if failed else "unknown" if missing or not checked else "pass"
    if not gates:
        sentence = f"{name}: this run has no release gate, so there is nothing for it to pass."
    elif failed:
        sentence = (f"{name} would fail {len(failed)} of the {checked} gate(s) of this run checked on its keys: "
                    + "; ".join(failed) + ".")
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
    return {"name": name, "status": status, "sentence": sentence, "failed": failed, "missing": missing,
            "not_applicable": other}


def adapters_view(metrics: dict | None, manifest: dict, gates: list[Gate], gate_source: str | None = None
                  ) -> dict | None:
    """The "Adapters compared" panel, or ``None`` when the run evaluated no extra adapter (nothing is shown).

    Rows: every metric stem with ``<stem>.adapter`` and ``<stem>.<name>.adapter`` for at least one extra adapter;
    gated stems first in gate order, then groups by probe (alphabetical, keys sorted within). Each row has the base
    value and one cell per adapter (the run's first): value, delta, its interval and the marker.
    """
    extras = _extra_names(manifest)
    if not extras:
        return None
    metrics = metrics if isinstance(metrics, dict) else {}
    stems = {k[: -len(".adapter")] for k in metrics if k.endswith(".adapter")}
    # rouge.rougeL.other is the extra adapter's copy of rouge.rougeL, not a metric of its own
    copies = {s for s in stems for n in extras if s.endswith(f".{n}") and s[: -len(n) - 1] in stems}
    shown = {s for s in stems - copies if any(f"{s}.{n}.adapter" in metrics for n in extras)}
    gated, ways = _directions(gates)
    first = [s for s in gated if s in shown]
    rest = sorted(shown - set(first), key=lambda s: (probe_group(s), s))
    names = [OWN, *(n for n in extras if any(f"{s}.{n}.adapter" in metrics for s in shown))]
    groups: list[dict] = []
    for stem in first + rest:
        label = "gated metrics" if stem in first else probe_group(stem)
        if not groups or groups[-1]["label"] != label:
            groups.append({"label": label, "gated": stem in first, "rows": []})
        way = ways.get(stem)
        base = metrics.get(f"{stem}.base")
        groups[-1]["rows"].append({"key": stem, "way": way, "base": base, "n": metrics.get(f"{stem}.n"),
                                   "cells": [_cell(metrics, stem, n, way) for n in names]})
    adapters = [{"name": n, "label": OWN_LABEL if n == OWN else n,
                 "folder": "train/adapter" if n == OWN else extras[n], "own": n == OWN} for n in names]
    return {"adapters": adapters, "groups": groups, "n_rows": sum(len(g["rows"]) for g in groups),
            "verdicts": [{**_verdict(n, gates, metrics), "folder": extras[n]} for n in names if n != OWN],
            "missing": [{"name": n, "folder": f} for n, f in extras.items() if n not in names],
            "n_gates": len(gates), "gate_source": gate_source}
