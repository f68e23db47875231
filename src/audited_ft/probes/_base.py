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
    """What a probe may ask of the model under test (real model in runs, a fake one in contract tests)."""

    variants: tuple[str, ...]

    def generate(self, prompts: list[str], variant: str, max_new_tokens: int) -> list[str]: ...

    def prompt(self, text: str) -> str: ...


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
    name: ClassVar[str]
    Options: ClassVar[type[ProbeOptions]] = ProbeOptions

    def __init__(self, options: ProbeOptions):
        self.options = options

    def run(self, ctx: ProbeContext) -> ProbeOutcome:  # pragma: no cover - abstract
        raise NotImplementedError


PROBES: Registry[Probe] = Registry("probe", "audited_ft.probes", "probes")
