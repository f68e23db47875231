"""Audit stage: data audits that gate training (registered audits in ``audits/``)."""
