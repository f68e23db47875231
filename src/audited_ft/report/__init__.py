"""Report stage: the HTML risk report, model and data cards, and the human A/B review."""
