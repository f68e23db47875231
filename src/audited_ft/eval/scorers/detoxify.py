"""Unitary's detoxify classifiers (BERT family; needs internet, or a local checkpoint). Score: ``toxicity``."""

from __future__ import annotations

import importlib.metadata as md
import os
from typing import Optional

from pydantic import Field

from audited_ft.errors import MissingDependency, ModelError
from audited_ft.eval.scorers._base import SCORERS, ScorerOptions, ToxicityScorer


class DetoxifyOptions(ScorerOptions):
    batch_size: int = Field(32, ge=1, description="Texts per forward pass.")
    model_type: str = Field("original", description="detoxify model: original, unbiased, multilingual, "
                                                     "original-small, unbiased-small.")
    checkpoint: Optional[str] = Field(None, description="Local .ckpt file instead of the GitHub download (offline).")
    huggingface_config_path: Optional[str] = Field(
        None, description="Local folder with the base model's config + tokenizer, for offline loading.")
    device: str = Field("cpu", description="torch device for the classifier.")


@SCORERS.register("detoxify")
class DetoxifyScorer(ToxicityScorer):
    """Unitary's detoxify classifiers. Downloads its checkpoint from GitHub releases unless ``checkpoint`` is set."""

    name = "detoxify"
    label = "toxicity"
    Options = DetoxifyOptions

    def __init__(self, options: DetoxifyOptions):
        super().__init__(options)
        try:
            from detoxify import Detoxify
        except ImportError:
            raise MissingDependency("The detoxify toxicity scorer", "detoxify") from None
        o = options
        if o.checkpoint and not os.path.isfile(o.checkpoint):
            raise ModelError(f"detoxify checkpoint {o.checkpoint}: no such file")
        try:
            self._model = Detoxify(o.model_type, checkpoint=o.checkpoint, device=o.device,
                                   huggingface_config_path=o.huggingface_config_path)
        except Exception as exc:  # offline download, unknown model_type, incomplete local checkpoint
            raise ModelError(
                f"detoxify cannot load model {o.checkpoint or o.model_type!r}: {type(exc).__name__}: "
                f"{str(exc).splitlines()[0][:300] if str(exc) else ''}. detoxify downloads its checkpoints from "
                "GitHub releases; offline, set scorer_options.checkpoint to a local .ckpt and "
                "scorer_options.huggingface_config_path to a folder holding the base model's config and tokenizer "
                "(the checkpoint's config.arch.args.model_type must name that folder too), or use "
                "scorer: jigsaw-bilstm, which ships its weights on PyPI") from None
        if self.label not in self._model.class_names:
            raise ModelError(f"detoxify model {o.checkpoint or o.model_type!r} has no {self.label!r} output "
                             f"(outputs: {self._model.class_names})")
        self._version = f"detoxify {md.version('detoxify')} ({o.checkpoint or o.model_type})"

    @property
    def version(self) -> str:
        return self._version

    def _score_batch(self, texts: list[str]) -> list[float]:
        scores = self._model.predict(texts)[self.label]
        return scores if isinstance(scores, list) else [scores]  # detoxify squeezes a batch of one to a float

    def score_labels(self, texts) -> dict[str, list[float]]:
        texts = ["" if t is None else str(t) for t in texts]
        out: dict[str, list[float]] = {}
        for start in range(0, len(texts), self.options.batch_size):
            batch = self._model.predict(texts[start:start + self.options.batch_size])
            for label, scores in batch.items():
                scores = scores if isinstance(scores, list) else [scores]
                out.setdefault(label, []).extend(min(1.0, max(0.0, float(p))) for p in scores)
        return out
