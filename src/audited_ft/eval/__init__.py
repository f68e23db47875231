"""Evaluation stage: the model under test, probes, evaluation sets, scorers and statistics."""
