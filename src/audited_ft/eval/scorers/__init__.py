"""Text scorers for the toxicity and group-bias probes: toxicity in [0, 1] behind one interface, plus VADER sentiment.

Toxicity backends, one module each (``get_scorer(name, **options)``; a loaded scorer is kept for the rest of the process):

* ``jigsaw-bilstm`` (default, offline) — the Jigsaw Toxic Comment BiLSTM whose weights and tokenizer ship in the PyPI
  wheel ``toxic-comment-classifier==0.3.0`` (8 MB, MIT). Its own module imports ``tensorflow.keras``; we rebuild the
  same architecture in Keras 3 (torch backend), load its weight file and tokenizer with keras, then run the weights
  in an equivalent torch module (same outputs, several times faster on CPU). No tensorflow. Score: the probability
  of its ``toxic`` label (its other labels: severe_toxic, obscene, threat, insult, identity_hate).
* ``detoxify`` (needs internet, or a local checkpoint) — Unitary's BERT-family classifiers; score: ``toxicity``.

Sentiment: VADER (``vaderSentiment``, MIT), a lexicon + rules scorer whose lexicon ships inside the wheel, so it works
offline (NLTK's VADER needs ``nltk.download('vader_lexicon')`` from the network). It is also what the BOLD paper used.
"""

from audited_ft.eval.scorers._base import (
                                           SCORERS,
                                           SENTIMENT,
                                           ScorerOptions,
                                           ToxicityScorer,
                                           get_scorer,
                                           get_sentiment_scorer,
)

__all__ = ["SCORERS", "SENTIMENT", "ScorerOptions", "ToxicityScorer", "get_scorer", "get_sentiment_scorer"]
