"""The grammar of the numbers a run writes, and what each number means.

A key of ``eval/metrics.json`` is ``<stem>[.<variant>][.<side>][.<stat>]``:

* ``stem`` names the metric, probe prefix first (``rouge.rougeL``, ``bias.bbq.age.bias_score_ambig``);
* ``variant`` names a further adapter evaluated on the same base (``eval --adapter NAME=DIR``); the run's own adapter
  has none;
* ``side`` is ``base``, ``adapter`` or ``delta`` (adapter − base, over the same items), or ``n`` (the item count);
  a key without a side is a plain number (``overfitting.final_gap``, ``eval.confidence``);
* ``stat`` is ``ci_low`` or ``ci_high`` (the ends of the confidence interval of that side), and for a difference also
  ``p_value`` (the test of no difference), ``q_value`` (the same adjusted for the multiple groups of a probe,
  Benjamini–Hochberg) and ``mde`` (the minimum detectable effect at this n).

:class:`MetricKey` is the one place that splits and builds keys. Whether a variant name is a variant or part of the
stem cannot be told from the text alone (``rouge.rougeL.other.delta``), so :meth:`MetricKey.parse` takes the run's
variant names.

:class:`MetricSpec` is how a probe *declares* its metrics (``Probe.metrics``): unit, range and which direction is harm,
the way lm-evaluation-harness tasks declare ``higher_is_better``. Gates and the report read the direction from there.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from dataclasses import dataclass
from typing import Iterable, Literal, Optional

SIDES = ("base", "adapter", "delta")
COUNT = "n"
BOUNDS = ("ci_low", "ci_high")
STATS = (*BOUNDS, "p_value", "q_value", "mde")
Direction = Literal["higher_is_worse", "higher_is_better", "neutral"]
DIRECTIONS = ("higher_is_worse", "higher_is_better", "neutral")


@dataclass(frozen=True)
class MetricKey:
    """One key of ``eval/metrics.json``, split into its parts (see the module docstring)."""

    stem: str
    side: Optional[str] = None
    stat: Optional[str] = None
    variant: Optional[str] = None

    @classmethod
    def parse(cls, key: str, variants: Iterable[str] = ()) -> "MetricKey":
        """Split ``key``; a part is read as a variant only when it is one of ``variants`` (the run's extra adapters)."""
        parts = str(key).split(".")
        stat = side = variant = None
        if len(parts) > 1 and parts[-1] in STATS:
            stat = parts.pop()
        if len(parts) > 1 and (parts[-1] in SIDES or (parts[-1] == COUNT and stat is None)):
            side = parts.pop()
        if side is not None and len(parts) > 1 and parts[-1] in set(variants):
            variant = parts.pop()
        return cls(".".join(parts), side, stat, variant)

    def __str__(self) -> str:
        return ".".join(p for p in (self.stem, self.variant, self.side, self.stat) if p)

    def to(self, **changes) -> "MetricKey":
        """The same key with some parts changed: ``key.to(side="delta", stat="ci_low")``."""
        return dataclasses.replace(self, **changes)

    @property
    def paired(self) -> bool:
        """A base / adapter / delta number (or its count), as opposed to a plain one."""
        return self.side is not None


def variant_stem(stem: str, variant: str) -> str:
    """The stem a probe writes for ``variant``: ``stem`` for the run's own adapter, ``stem.<variant>`` otherwise."""
    return stem if variant == "adapter" else f"{stem}.{variant}"


@dataclass(frozen=True)
class MetricSpec:
    """A probe's declaration of one metric (or a family of them, by pattern).

    ``pattern`` is matched (``fnmatch``; ``*`` spans dots) against the stem below the probe's prefix: for the probe
    ``bias.crows_pairs``, ``"*stereotype_rate"`` matches ``stereotype_rate`` and ``gender.stereotype_rate``. The first
    matching spec of a probe wins, so specific patterns come first. ``direction`` says which way is harm:
    ``higher_is_worse`` (toxicity), ``higher_is_better`` (task quality, refusals of harmful requests) or ``neutral``
    (a level that is not good or bad by itself, e.g. a count or a control). ``group`` names the family of a group-level
    metric (one per bias type, per category...): the differences of a family are tested together, their p-values
    adjusted for multiplicity (Benjamini–Hochberg), and only findings that survive are named.
    """

    pattern: str
    unit: str
    direction: Direction
    range: tuple[Optional[float], Optional[float]] = (None, None)
    description: str = ""
    group: Optional[str] = None  # the family of group-level metrics it belongs to ("bias type"): adjusted together
    at_limit: str = ""  # what a base at the harmful end of the range means, in words ("base never refuses")

    def __post_init__(self):
        if self.direction not in DIRECTIONS:
            raise ValueError(f"metric {self.pattern!r}: direction must be one of {DIRECTIONS}, got {self.direction!r}")

    def matches(self, relative_stem: str) -> bool:
        return fnmatch.fnmatchcase(relative_stem, self.pattern)


def find_spec(specs: Iterable[MetricSpec], relative_stem: str) -> Optional[MetricSpec]:
    """The first spec matching ``relative_stem`` (the stem below the probe's prefix), or None."""
    return next((s for s in specs if s.matches(relative_stem)), None)


def better_way(direction: Optional[str]) -> Optional[str]:
    """``"higher"`` / ``"lower"`` for a declared direction; None for neutral or undeclared."""
    return {"higher_is_better": "higher", "higher_is_worse": "lower"}.get(direction or "")


def bound_direction(minimum: Optional[float], maximum: Optional[float]) -> Optional[str]:
    """Which way a gate's bound says is better: only ``min`` → higher, only ``max`` → lower, a band → None."""
    if (minimum is None) == (maximum is None):
        return None
    return "higher" if minimum is not None else "lower"
