"""audited_ft: an audited QLoRA fine-tune — data audits gate training, probes compare base and adapter,
and a self-contained HTML risk report tells a reviewer whether the adapter can ship."""

__version__ = "0.1.0"
