"""The scorer contract: a toxicity classifier scores texts in [0, 1] behind one interface, registered by name in
``SCORERS`` (one module of this package per scorer); the sentiment scorer in ``SENTIMENT``. A loaded scorer is kept for
the rest of the process (``get_scorer``, ``get_sentiment_scorer``).
"""

from __future__ import annotations

import logging
import threading
from typing import ClassVar, Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from audited_ft.errors import ConfigError, MissingDependency
from audited_ft.registry import Registry

log = logging.getLogger(__name__)

def missing(what: str, package: str, command: str) -> MissingDependency:
    # MissingDependency's stock message says `pip install <package>`; these packages need a different command.
    err = MissingDependency(what, package)
    err.args = (f"{what} needs the Python package '{package}', which is not installed: {command}",)
    return err


class ScorerOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    batch_size: int = Field(256, ge=1, description="Texts per forward pass.")


class ToxicityScorer:
    """A toxicity classifier: ``score(texts)`` gives one probability in [0, 1] per text, in order."""

    name: ClassVar[str]
    label: ClassVar[str]          # which output of the classifier is the score
    Options: ClassVar[type[ScorerOptions]] = ScorerOptions

    def __init__(self, options: ScorerOptions):
        self.options = options

    @property
    def version(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def score(self, texts: Sequence[str]) -> list[float]:
        texts = ["" if t is None else str(t) for t in texts]
        out: list[float] = []
        for start in range(0, len(texts), self.options.batch_size):
            batch = texts[start:start + self.options.batch_size]
            out += [min(1.0, max(0.0, float(p))) for p in self._score_batch(batch)]
        return out

    def _score_batch(self, texts: list[str]) -> list[float]:  # pragma: no cover - abstract
        raise NotImplementedError

    def score_labels(self, texts: Sequence[str]) -> dict[str, list[float]]:
        """Every output of the classifier per text, by label (``{label: [probability, ...]}``); a scorer with one
        output gives just its ``label``. The content audit reads insult, threat and identity attack from here."""
        return {self.label: self.score(texts)}

    def describe(self) -> dict:
        """Name, version and label, for eval/probes.json and the report."""
        return {"name": self.name, "version": self.version, "label": self.label}


SCORERS: Registry[type[ToxicityScorer]] = Registry("toxicity scorer", "audited_ft.eval.scorers")
SENTIMENT: Registry[type] = Registry("sentiment scorer", "audited_ft.eval.scorers")
_CACHE: dict[object, object] = {}
_LOCK = threading.Lock()


def get_scorer(name: str, **options) -> ToxicityScorer:
    """The toxicity scorer ``name`` with ``options`` (validated; unknown names and options are ConfigErrors).

    Loaded once per process and name/options, then reused.
    """
    cls = SCORERS.get(name)  # an unknown name is a ConfigError with a suggestion
    try:
        opts = cls.Options(**options)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"toxicity scorer {name!r}: bad options: {problems}") from None
    key = (name, tuple(sorted(opts.model_dump().items())))
    with _LOCK:
        if key not in _CACHE:
            log.debug("loading toxicity scorer %s", name)
            _CACHE[key] = cls(opts)
        return _CACHE[key]  # type: ignore[return-value]


def get_sentiment_scorer():
    """The VADER scorer, loaded once per process."""
    with _LOCK:
        if "vader" not in _CACHE:
            _CACHE["vader"] = SENTIMENT.get("vader")()
        return _CACHE["vader"]  # type: ignore[return-value]
