"""Training stage: the QLoRA recipe, its speed settings, and GPU power sampling."""
