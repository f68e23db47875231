"""Data audits that gate training. Each module here registers one audit; see ``_base.Audit``."""

from audited_ft.audit.audits._base import AUDITS, Audit, AuditContext, AuditOptions, AuditOutcome

__all__ = ["AUDITS", "Audit", "AuditContext", "AuditOptions", "AuditOutcome"]
