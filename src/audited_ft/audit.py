"""Audit stage (``run_audits``): every enabled audit on the cleaned splits; a blocking failure stops training.

A failure is blocking unless ``accepted_risks`` names the audit, with who accepted it, when and why; the acceptance is
recorded in the manifest and shown in the report.
"""

from __future__ import annotations

import logging
import time

from audited_ft.audits import AUDITS, AuditContext
from audited_ft.config import Config
from audited_ft.data import fingerprint
from audited_ft.prepare import load_splits
from audited_ft.runfolder import RunFolder, write_json, write_jsonl

log = logging.getLogger(__name__)


def run_audits(cfg: Config, rf: RunFolder) -> dict:
    """Run the enabled audits, write ``audits/<name>.json`` and ``audits/summary.json``; return the summary."""
    splits = load_splits(rf)
    accepted = {r.audit: r.model_dump() for r in cfg.accepted_risks}
    summary: dict = {"passed": True, "blocking": [], "warnings": [], "accepted": [], "audits": {}}
    for name in cfg.enabled("audit"):
        audit = AUDITS.get(name)(cfg.options("audit", name))
        started = time.time()
        outcome = audit.run(AuditContext(splits=splits, run_dir=rf.path, data_dir=cfg.data_dir(), seed=cfg.run.seed))
        result = {"name": name, "description": (type(audit).__doc__ or "").strip(), **outcome.result}
        result.setdefault("seconds", round(time.time() - started, 2))
        write_json(rf / f"audits/{name}.json", result)
        status = result.get("status", "pass")
        summary["audits"][name] = status
        if outcome.splits is not None:
            # The audit changed the data (redaction): training uses the changed rows from here on.
            splits = outcome.splits
            for split, rows in splits.items():
                write_jsonl(rf / f"data/{split}.jsonl", rows)
        if status == "fail" and result.get("blocking", True):
            if name in accepted:
                summary["accepted"].append(accepted[name])
            else:
                summary["blocking"].append(name)
        elif status == "warn":
            summary["warnings"].append(name)
        log.info("audit %s: %s", name, status)
    summary["passed"] = not summary["blocking"]
    write_json(rf / "audits/summary.json", summary)
    rf.update_manifest(accepted_risks=summary["accepted"],
                       datasets={s: {**rf.manifest().get("datasets", {}).get(s, {}), "rows": len(r),
                                     "sha256_after_audits": fingerprint(r)} for s, r in splits.items()})
    rf.record_artefacts("audits", "data")
    return summary
