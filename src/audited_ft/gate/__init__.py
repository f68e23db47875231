"""Gate stage: thresholds and baseline comparisons against a run's numbers; CI outputs."""
