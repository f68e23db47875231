"""Audit stage (``run_audits``): every enabled audit on the cleaned splits; a blocking failure stops training.

A failure is blocking unless ``accepted_risks`` names the audit, with who accepted it, when and why; the acceptance is
recorded in the manifest and shown in the report.
"""

from __future__ import annotations

import logging
import time

from audited_ft.audit.audits import AUDITS, AuditContext
from audited_ft.config import Config
from audited_ft.data.records import fingerprint
from audited_ft.data.stage import load_splits
from audited_ft.errors import did_you_mean
from audited_ft.registry import describe
from audited_ft.run.folder import RunFolder, write_json, write_jsonl

log = logging.getLogger(__name__)


def probe_texts(cfg: Config) -> tuple[dict[str, list[str]], dict[str, dict]]:
    """The texts of every evaluation set an enabled probe will read, for the contamination check.

    Sets are loaded whole (not cut to a probe's ``limit``), so raising a limit later cannot bring in unchecked items.
    The task's own held-out splits are not among them: the leakage audit compares the splits itself. Returns the
    texts per set and where each set came from.
    """
    from audited_ft.eval.probes import PROBES
    from audited_ft.eval.sets import load_probe_set

    texts: dict[str, list[str]] = {}
    sources: dict[str, dict] = {}
    for name in PROBES.enabled(cfg.probes):
        options = PROBES.options(cfg.probes, name)
        for set_name, data in PROBES.get(name).data_sets(options).items():
            if set_name in texts:
                continue
            ps = load_probe_set(set_name, data, cfg.data_dir())
            texts[set_name] = ps.texts()
            sources[set_name] = {"source": ps.source, "items": len(ps.items), "probe": name}
    return texts, sources


def run_audits(cfg: Config, rf: RunFolder) -> dict:
    """Run the enabled audits, write ``audits/<name>.json`` and ``audits/summary.json``; return the summary."""
    splits = load_splits(rf)
    probes, probe_sources = probe_texts(cfg) if "leakage" in AUDITS.enabled(cfg.audits) else ({}, {})
    accepted = {r.audit: r.model_dump() for r in cfg.accepted_risks}
    summary: dict = {"passed": True, "blocking": [], "warnings": [], "accepted": [], "audits": {}}
    for name in AUDITS.enabled(cfg.audits):
        audit = AUDITS.get(name)(AUDITS.options(cfg.audits, name))
        started = time.time()
        outcome = audit.run(AuditContext(splits=splits, run_dir=rf.path, data_dir=cfg.data_dir(), seed=cfg.run.seed,
                                         probe_texts=probes, config=cfg))
        result = {"name": name, **describe(type(audit)), **outcome.result}
        if name == "leakage" and isinstance(result.get("summary", {}).get("contamination"), dict):
            for set_name, info in result["summary"]["contamination"].get("sets", {}).items():
                info.update({k: v for k, v in probe_sources.get(set_name, {}).items() if k != "items"})
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
        log.debug("audit %s: %s", name, status)  # each audit logs its own line with its figures
    summary["passed"] = not summary["blocking"]
    write_json(rf / "audits/summary.json", summary)
    rf.update_manifest(accepted_risks=summary["accepted"],
                       datasets={s: {**rf.manifest().get("datasets", {}).get(s, {}), "rows": len(r),
                                     "sha256_after_audits": fingerprint(r)} for s, r in splits.items()})
    rf.record_artefacts("audits", "data")
    return summary


def config_errors(raw: dict) -> list[str]:
    """The audit stage's part of config validation: the ``audits:`` section (names and options), and the audits
    that ``accepted_risks`` names."""
    errors = AUDITS.section_errors(raw.get("audits") or {}, "audits")
    risks = raw.get("accepted_risks")
    for i, risk in enumerate(risks if isinstance(risks, list) else []):  # not a list: the Config model reports it
        name = risk.get("audit") if isinstance(risk, dict) else None
        if isinstance(name, str) and name not in AUDITS.names():
            errors.append(f"accepted_risks.{i}.audit: unknown audit '{name}'.{did_you_mean(name, AUDITS.names())}")
    return errors
