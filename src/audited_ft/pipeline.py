"""The only place that knows the stage order. Read it as the table of contents of an audited fine-tune:

    prepare data → audits (gate training) → train QLoRA adapter → probes (base vs adapter) → gates → report

Each stage reads and writes the run folder only, so any stage can re-run on an existing folder.
"""

from __future__ import annotations

import datetime as _dt
import logging
import secrets
from dataclasses import dataclass
from pathlib import Path

from audited_ft import config as _config
from audited_ft.config import Config, config_hash, dump_config
from audited_ft.errors import RunFolderError
from audited_ft.run.folder import RunFolder, atomic_write_text
from audited_ft.run.provenance import git_sha, hardware, versions
from audited_ft.run.view import RunView

log = logging.getLogger(__name__)



@dataclass
class RunResult:
    run_dir: Path
    passed: bool
    status: str
    verdict: dict | None = None  # audited_ft.gate.verdict.run_verdict: the word, the exit code and the reasons


# ----------------------------------------------------------------------------------------------- configuration
def config_checks() -> tuple:
    """The stages' own checks of the config sections they own (audits and accepted risks, probes, gate directions)."""
    from audited_ft.audit.stage import config_errors as audit_errors
    from audited_ft.eval.stage import config_errors as eval_errors
    from audited_ft.gate.stage import config_errors as gate_errors

    return audit_errors, eval_errors, gate_errors


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """A config file, validated whole: the typed sections and every stage's own checks, all problems at once."""
    return _config.load_config(path, overrides, checks=config_checks())


def load_gates_file(path: str | Path) -> dict:
    """A ``--gates`` file, validated with the gate stage's checks."""
    return _config.load_gates_file(path, checks=config_checks())


def preflight(cfg: Config) -> list[str]:
    """What ``validate`` checks beyond the config's form, without loading a model or reading data in full: each data
    file is there and readable (a regular file: not a folder, FIFO, loop or dangling link), '{data_dir}' resolves to a
    folder when a probe names it, and the PII audit's entity names are ones Presidio knows. One line per problem."""
    import json as _json

    from audited_ft.config import path_problem
    from audited_ft.data.records import is_file_source

    problems = []
    d = cfg.data
    for key in ("source", "train", "validation", "test"):
        value = getattr(d, key)
        if not value or not is_file_source(value):
            continue
        path = Path(cfg.resolve_path(value))
        problem = path_problem(path, "file") or (None if path.exists() else "data file not found")
        if problem:
            problems.append(f"data.{key} = {value!r}: {problem}")
    probes_text = _json.dumps(cfg.model_dump(mode="json").get("probes") or {})
    if "{data_dir}" in probes_text:
        where = cfg.data_dir()
        problem = path_problem(where, "folder") or (None if where.exists() else "does not exist")
        if problem:
            problems.append(f"data.data_dir ({where}), named by a probe's '{{data_dir}}': {problem} (set data.data_dir "
                            "or AFT_DATA_DIR)")
    problems += _probe_set_path_problems(cfg)
    from audited_ft.audit.audits import AUDITS

    if "pii" in AUDITS.enabled(cfg.audits):
        problems += _pii_entity_problems(AUDITS.get("pii").Options(**((cfg.audits or {}).get("pii") or {})))
    return problems


def _probe_set_path_problems(cfg: Config) -> list[str]:
    """Local paths that probes read their sets from ('data' and 'benign_data', a path or a mapping of them) that are
    missing or not usable entries; hub ids ('org/name') and 'embedded' are left to the probe."""
    from audited_ft.config import path_problem

    problems = []
    root_ok = cfg.data_dir().is_dir()  # else preflight has said so once, for every probe that names it
    for probe, opts in (cfg.model_dump(mode="json").get("probes") or {}).items():
        if not isinstance(opts, dict) or opts.get("enabled") is False:
            continue
        for key in ("data", "benign_data"):
            value = opts.get(key)
            for sub, raw in (value.items() if isinstance(value, dict) else [(None, value)]):
                if not isinstance(raw, str) or not raw.startswith(("{data_dir}", "/", ".", "~")):
                    continue
                if raw.startswith("{data_dir}") and not root_ok:
                    continue
                path = Path(raw.replace("{data_dir}", str(cfg.data_dir()))).expanduser()
                problem = path_problem(path, "entry") or (None if path.exists() else "does not exist")
                if problem:
                    where = f"probes.{probe}.{key}" + (f".{sub}" if sub else "")
                    problems.append(f"{where} = {raw!r} ({path}): {problem}")
    return problems


def _pii_entity_problems(pii) -> list[str]:
    from audited_ft.audit.audits.pii import EXTENDED_ENTITIES, NER_ENTITIES

    try:
        from presidio_analyzer import RecognizerRegistry
    except ImportError:
        return []  # the audit itself says presidio is missing
    import logging

    quiet = logging.getLogger("presidio-analyzer")
    level, quiet.level = quiet.level, logging.ERROR  # it warns about every recognizer of another language
    try:
        registry = RecognizerRegistry()
        registry.load_predefined_recognizers(languages=["en"])
    finally:
        quiet.setLevel(level)
    known = set(registry.get_supported_entities(["en"])) | set(NER_ENTITIES) | set(EXTENDED_ENTITIES)
    opts = pii
    return [f"audits.pii.{where}: unknown entity type {e!r}{_near(e, known)}" for where, keys in
            (("entities", opts.entities), ("policy", opts.policy), ("min_score", opts.min_score))
            for e in keys if e not in known]


def _near(name: str, known: set[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.5) or [k for k in sorted(known)
                                                                               if name in k.split("_")]
    return f" (did you mean {close[0]!r}?)" if close else f" (Presidio knows: {', '.join(sorted(known))})"


# ----------------------------------------------------------------------------------------------- run folder set-up
def start_run(config_path: str | Path, overrides: list[str] | None = None, out: str | None = None,
              run_id: str | None = None, accept: list[str] | None = None,
              accepted_by: str | None = None) -> tuple[Config, RunFolder]:
    """Validate the config, create the run folder, write ``config.resolved.yaml`` and the manifest's provenance.

    ``accept`` holds ``audit:reason`` items from the command line (``--accept-risk``); they join the config's
    ``accepted_risks`` with ``accepted_by`` and today's date, and so are recorded in the resolved config and manifest.
    """
    cfg = load_config(config_path, overrides)
    _accept_risks(cfg, accept or [], accepted_by)
    _resolve_sources(cfg)
    rf = _create_folder(Path(out or cfg.run.out_dir), cfg.run.name, run_id)
    text = dump_config(cfg)
    atomic_write_text(rf.config_path, text)
    rf.update_manifest(config_source=str(Path(config_path).resolve()), seed=cfg.run.seed, config_hash=config_hash(text),
                       git_sha=git_sha(), versions=versions(), hardware=hardware(),
                       model={"name_or_path": cfg.model.name_or_path, "licence": _model_licence(cfg),
                              "trust_remote_code": cfg.model.trust_remote_code})
    return cfg, rf


def _create_folder(out: Path, name: str, run_id: str | None) -> RunFolder:
    """A new run folder. A chosen ``run_id`` that exists is an error; a generated one (time-name-random) that
    collides with a run started in the same second elsewhere is drawn again, so parallel runs never share a folder."""
    from audited_ft.errors import RunFolderError

    if run_id:
        return RunFolder.create(out, run_id)
    for _ in range(8):
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        try:
            return RunFolder.create(out, f"{stamp}-{name}-{secrets.token_hex(3)}")
        except RunFolderError:
            continue
    raise RunFolderError(f"{out}: could not create a new run folder (8 generated ids were taken)")


def _model_licence(cfg) -> str | None:
    """The config's model.licence, else the embedded alias's known licence (no model is loaded to find it)."""
    from audited_ft.models import EMBEDDED

    return cfg.model.licence or (EMBEDDED.get(cfg.model.name_or_path) or {}).get("licence")


def open_run(run_dir: str | Path) -> tuple[Config, RunFolder]:
    """An existing run folder and its resolved config."""
    rf = RunFolder.open(run_dir)
    cfg = load_config(rf.require("config.resolved.yaml", "run"))
    return cfg, rf


def _accept_risks(cfg: Config, accept: list[str], accepted_by: str | None) -> None:
    from audited_ft.audit.audits import AUDITS
    from audited_ft.config import AcceptedRisk
    from audited_ft.errors import ConfigError

    if accept and not (accepted_by or "").strip():
        raise ConfigError("--accept-risk needs --accepted-by NAME: an accepted risk records who accepted it")
    for item in accept:
        name, sep, reason = item.partition(":")
        if not sep or not reason.strip():
            raise ConfigError(f"--accept-risk {item!r}: expected AUDIT:REASON, e.g. --accept-risk pii:'fictional names'")
        AUDITS.get(name.strip())  # unknown names fail here, with a suggestion
        cfg.accepted_risks.append(AcceptedRisk(audit=name.strip(), by=accepted_by.strip(), reason=reason.strip(),
                                               date=_dt.date.today().isoformat()))


def _resolve_sources(cfg: Config) -> None:
    # The resolved config names absolute data paths, so later stages work from any directory.
    d = cfg.data
    for key in ("source", "train", "validation", "test"):
        value = getattr(d, key)
        if value:
            setattr(d, key, cfg.resolve_path(value))
    d.data_dir = str(cfg.data_dir())


# ----------------------------------------------------------------------------------------------- stages
def stage_data(cfg: Config, rf: RunFolder) -> None:
    from audited_ft.data.stage import prepare_data

    with rf.stage("data") as info:
        info["rows"] = prepare_data(cfg, rf)


def stage_audit(cfg: Config, rf: RunFolder) -> dict:
    from audited_ft.audit.stage import run_audits

    with rf.stage("audit") as info:
        summary = run_audits(cfg, rf)
        info.update({"passed": summary["passed"], "blocking": summary["blocking"]})
    return summary


def stage_train(cfg: Config, rf: RunFolder, resume: bool = False) -> None:
    from audited_ft import distributed
    from audited_ft.train.stage import train_adapter

    if not distributed.is_main():  # accelerate launch: the other processes train; the main one records the stage
        train_adapter(cfg, rf, resume=resume)
        return
    with rf.stage("train") as info:
        s = train_adapter(cfg, rf, resume=resume)
        info.update({"steps": s["steps"], "train_tokens": s["train_tokens"],
                     "tokens_per_second": s["tokens_per_second"], "peak_memory_mb": s["peak_memory_mb"],
                     "speed": {k: s["speed"].get(k) for k in ("mode", "world_size", "packing", "pack_length",
                                                              "kernels", "micro_batch", "gradient_checkpointing",
                                                              "memory_budget_gib")}})
        if s.get("resumed_from_step") is not None:
            info["resumed_from_step"] = s["resumed_from_step"]


def stage_eval(cfg: Config, rf: RunFolder, extra_adapters: dict[str, Path] | None = None) -> None:
    from audited_ft import distributed
    from audited_ft.eval.stage import run_probes

    if not distributed.is_main():  # a multi-process evaluation: the main process records the stage
        run_probes(cfg, rf, extra_adapters=extra_adapters)
        return
    with rf.stage("eval"):
        run_probes(cfg, rf, extra_adapters=extra_adapters)


def stage_gate(cfg: Config, rf: RunFolder, baseline: Path | None = None) -> dict:
    from audited_ft.gate.stage import check_gates

    with rf.stage("gate") as info:
        result = check_gates(cfg, rf, baseline=baseline)
        info["passed"] = result["passed"]
    return result


def stage_report(cfg: Config, rf: RunFolder) -> Path:
    from audited_ft.report.cards import write_cards
    from audited_ft.report.stage import render_report

    with rf.stage("report"):
        path = render_report(rf.path, title=cfg.report.title, n_samples=cfg.eval.report_samples)
        cards = write_cards(rf.path)  # model card in the adapter folder, data card in data/
    rf.record_artefacts("report.html", "evidence.html", *(str(p.relative_to(rf.path)) for p in cards.values()))
    return path


def finish(rf: RunFolder, verdict: dict, why: str = "") -> RunResult:
    """Record the run's end: ``status`` passed/failed by the verdict's exit code, the verdict word, and why."""
    passed = verdict["exit_code"] == 0
    status = "passed" if passed else "failed"
    rf.update_manifest(status=status, verdict=verdict["word"],
                       finished=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                       **({"failed_because": why} if why else {}))
    return RunResult(rf.path, passed, status, verdict)


# ----------------------------------------------------------------------------------------------- the whole job
def run_pipeline(cfg: Config, rf: RunFolder, baseline: Path | None = None) -> RunResult:
    """All stages in order. A blocking audit stops before training; the report is rendered either way. With
    ``baseline`` (a finished run folder), the gate stage also fails on regressions against it."""
    return _run_stages(cfg, rf, baseline)


def _run_stages(cfg: Config, rf: RunFolder, baseline: Path | None, done: frozenset[str] = frozenset(),
                resume: bool = False) -> RunResult:
    """The stage sequence, skipping those in ``done``; with ``resume``, training continues from its newest
    checkpoint."""
    from audited_ft.gate.stage import failed_names
    from audited_ft.gate.verdict import run_verdict

    estimate_time(rf, done)
    if "data" not in done:
        stage_data(cfg, rf)
    audits = stage_audit(cfg, rf) if "audit" not in done else RunView(rf.path).require("audits/summary.json", "audit")
    if not audits["passed"]:
        verdict = run_verdict(RunView(rf.path), None, cfg.verdict.inconclusive, upto="train")
        result = finish(rf, verdict, f"blocking audit(s): {', '.join(audits['blocking'])}")
        stage_report(cfg, rf)
        return result
    if "train" not in done:
        stage_train(cfg, rf, resume=resume)
    if "eval" not in done:
        stage_eval(cfg, rf)
    gates = stage_gate(cfg, rf, baseline=baseline)
    failed = failed_names(gates)
    result = finish(rf, gates["verdict"], f"gate(s) not passed: {', '.join(failed)}" if failed else "")
    stage_report(cfg, rf)
    record_time(rf)
    return result


def _timing_key(manifest: dict) -> str | None:
    """This config on this kind of machine: the config's hash, the device and the CPU count."""
    import os

    h = manifest.get("config_hash")
    device = (manifest.get("hardware") or {}).get("device") if isinstance(manifest.get("hardware"), dict) else None
    return f"{h}:{device or 'cpu'}:{os.cpu_count()}" if h else None


def estimate_time(rf: RunFolder, done: frozenset[str] = frozenset()) -> None:
    """Log how long the stages still to run took the last time this config ran to the end on a machine like this one
    (``runs/.timings.json``); nothing when it never did."""
    from audited_ft.run.view import read_timings

    key = _timing_key(rf.manifest())
    known = read_timings(rf.path.parent).get(key) if key else None
    if not isinstance(known, dict):
        return
    left = {k: v for k, v in known.items() if k not in done and isinstance(v, (int, float))}
    if left:
        total = sum(left.values())
        log.info("estimated time: about %s (this config's last full run here)",
                 f"{total:.0f} s" if total < 90 else f"{total / 60:.0f} min")
        log.debug("estimated stage times (s): %s", left)


def record_time(rf: RunFolder) -> None:
    """Keep this run's stage times for the next run's estimate (a failure to write them never fails the run)."""
    from audited_ft.run.folder import write_json
    from audited_ft.run.view import TIMINGS, read_timings

    m = rf.manifest()
    key = _timing_key(m)
    stages = m.get("stages") if isinstance(m.get("stages"), dict) else {}
    times = {k: v.get("seconds") for k, v in stages.items() if isinstance(v, dict) and v.get("status") == "done"}
    if not key or len(times) < len(stages):
        return
    path = rf.path.parent / TIMINGS
    try:
        table = read_timings(rf.path.parent)
        table[key] = times
        write_json(path, table)
    except (OSError, ValueError, RunFolderError):
        log.debug("could not record the stage times in %s", path)


def resume_pipeline(rf: RunFolder, baseline: Path | None = None) -> RunResult:
    """Finish an interrupted run (a crash, ``kill -9``, a power cut) in its own folder with its resolved config.

    Stages the manifest marks done are kept; the interrupted one and those after it run again: training continues
    from the newest complete checkpoint in ``train/checkpoints``; evaluation re-reads every cached model answer
    (``eval/cache``) and computes only the missing ones; gates and the report are redone. Each resume is recorded in
    the manifest (``resumes``)."""
    from audited_ft.errors import RunFolderError
    from audited_ft.run.folder import utcnow

    m = rf.manifest()
    cfg = load_config(rf.require("config.resolved.yaml", "run"))
    if m.get("status") in ("passed", "failed"):
        raise RunFolderError(f"{rf.path}: this run already finished ({m['status']}); nothing to resume. Re-run one "
                             f"stage instead (audited-ft eval|gate|report {rf.path}) or start a new run")
    done = {name for name, st in (m.get("stages") or {}).items() if st.get("status") == "done"}
    todo = [s for s in ("data", "audit", "train", "eval", "gate") if s not in done]
    rf.update_manifest(resumes=[*m.get("resumes", []), {"at": utcnow(), "stages": todo,
                                                         "interrupted": m.get("failed_stage") or next(
                                                             (s for s in todo), None)}])
    log.info("resuming %s: done %s; to do %s", rf.path, ", ".join(sorted(done)) or "nothing", ", ".join(todo))
    return _run_stages(cfg, rf, baseline, done=frozenset(done), resume=True)
