"""The probe contract.

A probe measures one risk on the base model and on the adapter, over the same items, and returns flat metric keys
(``<probe>.<metric>.{base,adapter,delta}`` with confidence intervals, see ``audited_ft.stats.paired_metric``) plus
optional generations to store. Its class docstring's first line is its one-line description; the rest says what it
measures and what it cannot see, and is shown in the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict

from audited_ft.registry import Registry


class ProbeOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True


class Generator(Protocol):
    """What a probe may ask of the model under test (``audited_ft.generation.ModelUnderTest`` in runs, a fake one in
    contract tests). ``variant`` is "base" or the name of an adapter variant ("adapter" by default)."""

    variants: tuple[str, ...]

    def prompt(self, text: str) -> str:
        """The fine-tuning task's prompt for an input (prompt template + chat template), as in training."""

    def chat(self, text: str, system: str | None = None) -> str:
        """A plain user turn through the chat template, without the task's prompt template."""

    def generate(self, prompts: list[str], variant: str, max_new_tokens: int) -> list[str]:
        """Greedy continuations, one per prompt, in order."""

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
    return prefix if variant == "adapter" else f"{prefix}.{variant}"


@dataclass
class ProbeContext:
    model: Generator
    splits: dict[str, list[dict]]
    run_dir: Path | None = None
    data_dir: Path | None = None
    max_new_tokens: int = 64
    bootstrap_samples: int = 1000
    confidence: float = 0.95
    seed: int = 0


@dataclass
class ProbeOutcome:
    metrics: dict[str, float]
    generations: dict[str, list[dict]] = field(default_factory=dict)  # file stem → rows
    info: dict[str, Any] = field(default_factory=dict)


class Probe:
    """Base class; subclasses register with ``@PROBES.register("name")``.

    ``metric_prefix`` starts every metric key the probe writes (default: its name), e.g. ``bias.crows_pairs`` gives
    ``bias.crows_pairs.stereotype_rate.adapter``. ``data_sets(options)`` names the evaluation sets the probe will read
    as ``{set name: data option}``, so the leakage audit can check training data against them before training.
    """

    name: ClassVar[str]
    metric_prefix: ClassVar[str] = ""
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


PROBES: Registry[Probe] = Registry("probe", "audited_ft.probes", "probes")
