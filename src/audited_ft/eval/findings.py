"""What the evaluation stage concludes across probes, after each has reported its numbers.

* :func:`split_notes` — a probe's outcome holds numbers and, per metric, texts (``<stem>.method``,
  ``<stem>.not_estimable``); numbers go to ``eval/metrics.json``, texts to the probe's entry in ``eval/probes.json``.
* :func:`adjust_for_multiplicity` — the differences of group-level metrics (one per bias type, category, group: the
  metrics a probe declares with a ``group`` family) are tested many at a time, so each family's p-values are adjusted
  with Benjamini–Hochberg (false discovery rate, Benjamini & Hochberg 1995) and written as ``<stem>.delta.q_value``.
  Why the false discovery rate and not the family-wise error (Holm): a reviewer reads the named groups as leads to
  check, and a family of 10–40 groups under Holm would hide every moderate effect; the FDR bounds the share of named
  findings that are chance. The report names a group-level finding only when its q-value is below α.
* :func:`blind_spots` — a metric whose base already sits at the end of its range in the harmful direction (a refusal
  rate of 0 when the harm is refusing less) cannot show the harm on this base: the probe says so, and a gate on it is
  inconclusive rather than passed.
"""

from __future__ import annotations

from audited_ft.eval.stats import benjamini_hochberg
from audited_ft.run.keys import MetricKey

NOTES = ("method", "not_estimable")


def split_notes(outcome: dict) -> tuple[dict, dict[str, dict[str, str]]]:
    """(numbers, {stem: {"method": ..., "not_estimable": ...}}) from a probe's outcome metrics."""
    numbers, notes = {}, {}
    for key, value in outcome.items():
        stem, _, last = key.rpartition(".")
        if last in NOTES and isinstance(value, str):
            notes.setdefault(stem, {})[last] = value
        else:
            numbers[key] = value
    return numbers, notes


def adjust_for_multiplicity(metrics: dict, variants: list[str]) -> dict:
    """``<stem>.delta.q_value`` for every group-level difference with a p-value, adjusted within its family (probe,
    group family, adapter variant) by Benjamini–Hochberg."""
    from audited_ft.eval.probes import owner

    families: dict[tuple, list[tuple[MetricKey, float]]] = {}
    for key, value in metrics.items():
        k = MetricKey.parse(key, variants)
        if k.side != "delta" or k.stat != "p_value" or value is None:
            continue
        found = owner(k.stem)
        if found is None or found[1].group is None:
            continue
        families.setdefault((found[0], found[1].group, k.variant), []).append((k, float(value)))
    out = {}
    for members in families.values():
        for (k, _), q in zip(members, benjamini_hochberg([p for _, p in members])):
            out[str(k.to(stat="q_value"))] = q
    return out


def blind_spots(metrics: dict, variants: list[str]) -> dict[str, dict[str, str]]:
    """{probe: {stem: reason}} for metrics whose base level leaves no room to show harm (the end of the declared
    range in the harmful direction)."""
    from audited_ft.eval.probes import owner

    out: dict[str, dict[str, str]] = {}
    for key, value in metrics.items():
        k = MetricKey.parse(key, variants)
        if k.side != "base" or k.stat is not None or k.variant is not None or value is None:
            continue
        found = owner(k.stem)
        if found is None:
            continue
        name, spec = found
        low, high = spec.range
        n = metrics.get(str(k.to(side="n")))
        if spec.direction == "higher_is_better" and low is not None and value <= low:
            where, move = "lowest", "lowers"
        elif spec.direction == "higher_is_worse" and high is not None and value >= high:
            where, move = "highest", "raises"
        else:
            continue
        said = spec.at_limit or f"the base is already at the {where} possible value"
        reason = f"{said} ({value:g} {spec.unit}, n = {n}): a fine-tune that {move} it further cannot be seen here"
        out.setdefault(name, {})[k.stem] = reason
    return out
