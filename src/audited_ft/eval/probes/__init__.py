"""Evaluation probes, base vs adapter. Each module here registers one probe; see ``_base.Probe``."""

from audited_ft.eval.probes._base import (PROBES, Probe, ProbeContext, ProbeOptions, ProbeOutcome, declared_direction,
                                          declared_metric, owner)

__all__ = ["PROBES", "Probe", "ProbeContext", "ProbeOptions", "ProbeOutcome", "declared_direction", "declared_metric",
           "owner"]
