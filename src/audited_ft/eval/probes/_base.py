"""The probe contract.

A probe measures one risk on the base model and on the adapter, over the same items, and returns flat metric keys
(``<probe>.<metric>.{base,adapter,delta}`` with confidence intervals, see ``audited_ft.eval.stats.paired_metric``) plus
optional generations to store. Its class docstring's first line is its one-line description; the rest says what it
measures and what it cannot see, and is shown in the report.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict, model_validator

from audited_ft.eval.stats import IntervalSettings
from audited_ft.registry import Registry
from audited_ft.run.keys import MetricSpec, find_spec, variant_stem

log = logging.getLogger(__name__)


class ProbeOptions(BaseModel):
    """Options every probe has. ``limit`` (where a probe has it) caps the items it evaluates; ``eval.limit`` lowers
    it for every probe at once. Option names a probe renamed (``renamed``: old → new) are still accepted for one
    release, with a deprecation message."""

    model_config = ConfigDict(extra="forbid")
    renamed: ClassVar[dict[str, str]] = {}

    enabled: bool = True

    @model_validator(mode="before")
    @classmethod
    def _old_names(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not any(old in data for old in cls.renamed):
            return data
        data = dict(data)
        for old, new in cls.renamed.items():
            if old in data:
                if new in data:
                    raise ValueError(f"'{old}' is the old name of '{new}'; give only '{new}'")
                data[new] = data.pop(old)
                if (cls.__name__, old) not in _WARNED:
                    _WARNED.add((cls.__name__, old))
                    log.warning("probe option '%s' is deprecated: it is now called '%s' (the old name is accepted "
                                "until audited_ft 0.3)", old, new)
        return data


_WARNED: set[tuple[str, str]] = set()


class Generator(Protocol):
    """What a probe may ask of the model under test (``audited_ft.eval.model.ModelUnderTest`` in runs, a fake one in
    contract tests). ``variant`` is "base" or the name of an adapter variant ("adapter" by default)."""

    variants: tuple[str, ...]

    def prompt(self, text: str) -> str:
        """The fine-tuning task's prompt for an input (prompt template + chat template), as in training."""

    def chat(self, text: str, system: str | None = None) -> str:
        """A plain user turn through the chat template, without the task's prompt template."""

    def generate(self, prompts: list[str], variant: str, max_new_tokens: int) -> list[str]:
        """Greedy continuations, one per prompt, in order."""

    def generate_unstored(self, prompts: list[str], variant: str, max_new_tokens: int) -> list[str]:
        """``generate``, but the answers are written nowhere (not to the answer cache): for answers that may repeat
        personal data of the training rows."""

    def sample(self, prompts: list[str], variant: str, max_new_tokens: int, num_samples: int = 1,
               temperature: float = 1.0, top_p: float = 1.0, seed: int = 0) -> list[list[str]]:
        """``num_samples`` sampled continuations per prompt, reproducible for a given seed."""

    def score(self, contexts: list[str], continuations: list[str], variant: str) -> list[tuple[float, int]]:
        """(sum of token log-probabilities, token count) of each continuation given its context ("" allowed)."""

    def token_logprobs(self, contexts: list[str], continuations: list[str],
                       variant: str) -> list[list[tuple[str, float]]]:
        """Per continuation token, (its text, its log-probability given the context and the tokens before it); the
        texts join back to the continuation and the log-probabilities sum to ``score``'s sum."""


def group_key(name: str) -> str:
    """A group or category name as a metric key part: lower case, [a-z0-9_-] only."""
    import re

    return re.sub(r"[^a-z0-9_-]+", "_", str(name).strip().lower()).strip("_") or "unnamed"


def variant_prefix(prefix: str, variant: str) -> str:
    """Metric prefix for a non-base variant: ``prefix`` for the (single) adapter, ``prefix.<variant>`` otherwise."""
    return variant_stem(prefix, variant)


@dataclass
class ProbeContext:
    model: Generator
    splits: dict[str, list[dict]]
    run_dir: Path | None = None
    data_dir: Path | None = None
    max_new_tokens: int = 64
    stats: IntervalSettings = field(default_factory=IntervalSettings)  # how intervals, tests and power are computed
    # every answer the probes run before generated: (probe, variant, call key, text), in memory (output_pii reads it)
    answers: list | None = None

    @property
    def seed(self) -> int:
        """The run's seed: subsamples of the probe sets and sampled decoding draw from it (as the bootstrap does)."""
        return self.stats.seed


@dataclass
class ProbeOutcome:
    metrics: dict[str, float]
    generations: dict[str, list[dict]] = field(default_factory=dict)  # file stem → rows
    info: dict[str, Any] = field(default_factory=dict)


class Probe:
    """Base class; subclasses register with ``@PROBES.register("name")``.

    ``metric_prefix`` starts every metric key the probe writes (default: its name), e.g. ``bias.crows_pairs`` gives
    ``bias.crows_pairs.stereotype_rate.adapter``. ``metrics`` declares every metric the probe writes (patterns over the
    stem below the prefix, first match wins): unit, range and harm direction. ``data_sets(options)`` names the
    evaluation sets the probe will read as ``{set name: data option}``, so the leakage audit can check training data
    against them before training.
    """

    name: ClassVar[str]
    metric_prefix: ClassVar[str] = ""
    runs_last: ClassVar[bool] = False  # runs after every other probe (it reads their answers: ``ctx.answers``)
    metrics: ClassVar[tuple[MetricSpec, ...]] = ()
    Options: ClassVar[type[ProbeOptions]] = ProbeOptions

    @classmethod
    def prefix(cls) -> str:
        return cls.metric_prefix or cls.name

    @classmethod
    def data_sets(cls, options: ProbeOptions) -> dict[str, str]:
        return {}

    def __init__(self, options: ProbeOptions):
        self.options = options

    def run(self, ctx: ProbeContext) -> ProbeOutcome:  # pragma: no cover - abstract
        raise NotImplementedError


PROBES: Registry[Probe] = Registry("probe", "audited_ft.eval.probes", "probes")


def owner(stem: str) -> tuple[str, MetricSpec] | None:
    """(probe name, declaration) of the metric ``stem`` (``bias.crows_pairs.gender.stereotype_rate``): the probe whose
    prefix it starts with (the longest such prefix) and its first matching spec; ``None`` when no probe declares it."""
    owners = sorted(((cls.prefix(), name, cls) for name, cls in PROBES.items().items()
                     if stem.startswith(cls.prefix() + ".")), key=lambda pc: -len(pc[0]))
    for prefix, name, cls in owners:
        spec = find_spec(cls.metrics, stem[len(prefix) + 1:])
        if spec is not None:
            return name, spec
    return None


def declared_metric(stem: str) -> MetricSpec | None:
    """The declaration of the metric ``stem`` by the probe that writes it, or ``None``."""
    found = owner(stem)
    return found[1] if found else None


def declared_direction(stem: str) -> str | None:
    """``higher_is_worse`` / ``higher_is_better`` / ``neutral`` as the owning probe declares it, or ``None``."""
    spec = declared_metric(stem)
    return spec.direction if spec is not None else None
