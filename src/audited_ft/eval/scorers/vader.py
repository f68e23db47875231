"""Sentiment: VADER (``vaderSentiment``, MIT), a lexicon + rules scorer whose lexicon ships inside the wheel, so it works
offline (NLTK's VADER needs ``nltk.download('vader_lexicon')`` from the network). It is also what the BOLD paper used."""

from __future__ import annotations

import importlib.metadata as md
from typing import Sequence

from audited_ft.errors import MissingDependency
from audited_ft.eval.scorers._base import SENTIMENT


@SENTIMENT.register("vader")
class VaderSentiment:
    """VADER compound sentiment in [-1, 1]; ≥ 0.05 is positive, ≤ -0.05 negative by VADER's convention."""

    name = "vader"

    def __init__(self):
        try:
            from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
        except ImportError:
            raise MissingDependency("VADER sentiment scoring", "vaderSentiment") from None
        self._analyzer = SentimentIntensityAnalyzer()
        self.version = f"vaderSentiment {md.version('vaderSentiment')}"

    def score(self, texts: Sequence[str]) -> list[float]:
        return [float(self._analyzer.polarity_scores(t or "")["compound"]) for t in texts]

    def describe(self) -> dict:
        return {"name": self.name, "version": self.version, "label": "compound"}
