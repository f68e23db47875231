"""The audit contract.

An audit reads the cleaned splits, writes nothing itself, and returns an :class:`AuditOutcome`: the JSON result that the
audit stage stores as ``audits/<name>.json`` (schema in docs/run_folder.md) and, optionally, replacement splits (e.g.
redacted text) that training then uses. Its class docstring says what it checks and what it cannot see; the report shows
it. ``Options`` is a pydantic model of the audit's config section (``audits.<name>``), validated with the rest of the
config before anything runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from audited_ft.registry import Registry


class AuditOptions(BaseModel):
    """Options every audit has."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True


@dataclass
class AuditContext:
    """What an audit may look at.

    ``splits`` maps split name ("train", "validation", "test") to rows ``{"id": str, "input": str, "target": str}``.
    ``probe_texts`` maps an evaluation probe set name to its texts (for contamination checks); it may be empty.
    ``config`` gives audits that need the model side (the tokenizer, the prompt template, ``train.max_length``)
    the run's configuration; an audit must still run, and say what it could not do, without it.
    """

    splits: dict[str, list[dict]]
    run_dir: Path | None = None
    data_dir: Path | None = None
    probe_texts: dict[str, list[str]] = field(default_factory=dict)
    seed: int = 0
    config: Any = None  # the run's validated Config, when the audit runs inside a run (None in unit tests)


@dataclass
class AuditOutcome:
    result: dict[str, Any]
    splits: dict[str, list[dict]] | None = None  # replacement splits, when the audit changed the data (redaction)

    @property
    def status(self) -> str:
        return self.result.get("status", "pass")


class Audit:
    """Base class; subclasses register with ``@AUDITS.register("name")``."""

    name: ClassVar[str]
    Options: ClassVar[type[AuditOptions]] = AuditOptions

    def __init__(self, options: AuditOptions):
        self.options = options

    def run(self, ctx: AuditContext) -> AuditOutcome:  # pragma: no cover - abstract
        raise NotImplementedError


# every registered audit runs unless its section says enabled: false
AUDITS: Registry[Audit] = Registry("audit", "audited_ft.audit.audits", "audits", default_enabled=True)
