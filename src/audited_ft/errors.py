"""One exception family. Library code raises these; only the CLI turns them into exit codes.

Exit codes: 0 passed, 1 a gate or audit failed (:class:`GateFailed`), 2 usage/config/data error (everything else here).
"""

from __future__ import annotations

import difflib


class AuditedFTError(Exception):
    """Base of every error this package raises on purpose. The message is shown to the user as is."""

    exit_code = 2


class ConfigError(AuditedFTError):
    """The configuration is not well-formed; the message lists every problem found."""


class DataError(AuditedFTError):
    """A data file, field or value cannot be used; the message names file, field and value."""


class ModelError(AuditedFTError):
    """The base model or an adapter cannot be located or loaded."""


class MissingDependency(AuditedFTError):
    """An optional dependency is not installed; the message names the pip package."""

    def __init__(self, what: str, package: str):
        super().__init__(f"{what} needs the Python package '{package}', which is not installed: pip install {package}")
        self.package = package


class RunFolderError(AuditedFTError):
    """A run folder is missing a stage's outputs, or is held by another process."""


class GateFailed(AuditedFTError):
    """A gate or a blocking audit failed. Not a crash: the run folder holds the full results."""

    exit_code = 1


class AdapterNotLive(GateFailed):
    """The adapter under evaluation changes nothing: its LoRA weights are zero, or every answer equals the base's."""


def did_you_mean(name: str, choices: list[str]) -> str:
    """A hint for an unknown name (" Did you mean 'x'?"), or an empty string when nothing is close."""
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""
