"""Evaluation probes, base vs adapter. Each module here registers one probe; see ``_base.Probe``."""

from audited_ft.probes._base import PROBES, Probe, ProbeContext, ProbeOutcome

__all__ = ["PROBES", "Probe", "ProbeContext", "ProbeOutcome"]
