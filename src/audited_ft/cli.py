"""``audited-ft``: the command line. The only place that turns errors into exit codes.

Exit codes: 0 passed · 1 a gate or audit failed · 2 usage, config or data error · 3 internal error (a bug: please report).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import Callable, List, Optional

import typer

from audited_ft.errors import AuditedFTError, ConfigError, DataError, GateFailed
from audited_ft.textsafe import TerminalSafeFilter, for_terminal

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Audited QLoRA fine-tuning: data audits gate training; probes compare base and adapter; "
                       "an HTML risk report tells a reviewer whether the adapter ships.")

ConfigArg = typer.Argument(..., help="YAML config file.", show_default=False)
RunDirArg = typer.Argument(..., help="An existing run folder.", show_default=False)
SetOpt = typer.Option(None, "--set", help="Override a config key: --set train.epochs=2 (repeatable).")
AcceptOpt = typer.Option(None, "--accept-risk", help="Proceed past a failed audit: AUDIT:REASON (repeatable; "
                                                     "recorded in the manifest and report). Needs --accepted-by.")
ByOpt = typer.Option(None, "--accepted-by", help="Who accepts the risks named by --accept-risk.")


@app.callback()
def _options(verbose: bool = typer.Option(False, "-v", "--verbose", help="Show libraries' progress bars, logs and "
                                          "warnings too (the run folder's run.log has them either way).")) -> None:
    from audited_ft.run import console

    console.VERBOSE[0] = verbose


def _setup_logging(verbose: bool) -> None:
    from rich.logging import RichHandler

    from audited_ft.run.console import OursOnly, quiet_libraries

    os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
    # A terminal gets rich's columns; piped output (CI, a file) plain lines, never wrapped
    terminal = _safe(RichHandler(show_path=False, markup=False, rich_tracebacks=False) if sys.stdout.isatty()
                     else _PlainHandler())
    terminal.addFilter(OursOnly())  # libraries' records go to run.log only, unless -v
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s", datefmt="%H:%M:%S",
                        handlers=[terminal])
    for noisy in ("httpx", "urllib3", "presidio-analyzer", "filelock", "datasets", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    quiet_libraries()


class _PlainHandler(logging.StreamHandler):
    """One plain line per record on stdout (where rich's handler writes too), looked up at each write so a test's
    captured stdout receives it."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", "%H:%M:%S"))

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler sets it in __init__; the current stdout is always used
        pass


def _safe(handler: logging.Handler) -> logging.Handler:
    """The log handler with control characters in messages shown as visible escapes (log lines quote data values)."""
    handler.addFilter(TerminalSafeFilter())
    return handler


def _guard(fn: Callable[[], int | None], multi_process: bool = False) -> None:
    """Run a command body; map our errors to exit codes with a clean message, never a traceback. Only the training
    and evaluation stages may run in several processes (``accelerate launch``); any other command started that way is
    refused."""
    from audited_ft.run.console import verbose

    _setup_logging(verbose())
    try:
        from audited_ft import distributed

        if distributed.is_distributed() and not multi_process:
            raise ConfigError(f"this command runs in one process, but it was started as one of "
                              f"{distributed.world_size()} (accelerate launch / torchrun). Only training and evaluation run "
                              "on several GPUs: audited-ft audit CONFIG, then accelerate launch -m audited_ft train "
                              "RUN_DIR (and/or accelerate launch -m audited_ft eval RUN_DIR), then audited-ft run "
                              "--resume RUN_DIR (README: Multi-GPU training)")
        code = fn() or 0
        if multi_process:
            distributed.end_group(finished=True)
    except GateFailed as exc:
        typer.echo(f"FAILED: {for_terminal(exc)}", err=True)
        raise typer.Exit(1) from None
    except AuditedFTError as exc:
        typer.echo(f"error: {for_terminal(exc)}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(130) from None
    except Exception as exc:  # a bug: say so plainly; AFT_DEBUG=1 shows the traceback
        if isinstance(exc, OSError):  # a full disk or a permission is the user's to fix (exit 2), not a bug
            from audited_ft.run.folder import disk_error_message

            msg = disk_error_message(exc.filename, exc, atomic=False)
            if msg is not None:
                typer.echo(f"error: {for_terminal(msg)}", err=True)
                raise typer.Exit(2) from None
        if os.environ.get("AFT_DEBUG") == "1":
            raise
        typer.echo(f"internal error ({type(exc).__name__}): {for_terminal(exc)}\n"
                   "Re-run with AFT_DEBUG=1 for the traceback.", err=True)
        raise typer.Exit(3) from None
    finally:
        if multi_process:  # after an error the group is still up: leave it, without waiting for the others
            from audited_ft import distributed

            with contextlib.suppress(Exception):  # the command's own outcome (its message and exit code) stands
                distributed.end_group(finished=False)
    raise typer.Exit(code)


GatesOpt = typer.Option(None, "--gates", help="A YAML file of gates (a list, or 'gates:' and 'regression:') used "
                        "instead of the config's.")
InconclusiveOpt = typer.Option(None, "--inconclusive", help="How an undecided risk gate counts: 'fail' (exit 1; the "
                                "default) or 'warn' (exit 0, the verdict still says INCONCLUSIVE). Overrides "
                                "verdict.inconclusive.")


def _policy(value: str) -> str:
    if value not in ("fail", "warn"):
        raise ConfigError(f"--inconclusive {value!r}: expected 'fail' or 'warn'")
    return value


BaselineOpt = typer.Option(None, "--baseline", help="A finished run folder to compare with: a gated metric (or one "
                           "under regression.metrics) that got worse beyond its tolerance fails the gate stage.")


def _gates_overrides(gates: Optional[Path]) -> list[str]:
    """A gates file as --set overrides, so the resolved config (and so the report) records the gates used."""
    import json

    from audited_ft.pipeline import load_gates_file

    if gates is None:
        return []
    raw = load_gates_file(gates)
    return [f"{section}={json.dumps(raw[section])}" for section in ("gates", "regression") if section in raw]


def _print_outcome(result) -> int:
    """The closing summary: each gate with its verdict word, the run folder, the report as a file URL, the run's
    verdict — the word the report and gates.md show — and its exit code."""
    import json

    gates_file = result.run_dir / "gates.json"
    try:
        gates = json.loads(gates_file.read_text(encoding="utf-8")).get("results", []) if gates_file.is_file() else []
    except (OSError, ValueError, AttributeError):
        gates = []
    if gates:  # one line per verdict word, naming its gates
        by_word: dict[str, list[str]] = {}
        for g in gates:
            if isinstance(g, dict):
                by_word.setdefault(str(g.get("verdict", "?")).upper(), []).append(for_terminal(g.get("metric", "?")))
        typer.echo("gates:")
        for word in sorted(by_word, key=lambda w: ("FAIL", "INCONCLUSIVE", "PASS").index(w)
                           if w in ("FAIL", "INCONCLUSIVE", "PASS") else 3):
            typer.echo(f"  {word:<13} {len(by_word[word]):>2}: {', '.join(by_word[word])}")
    typer.echo(f"run folder: {result.run_dir}  (full log: run.log)")
    if (result.run_dir / "report.html").exists():
        typer.echo(f"report:     {(result.run_dir / 'report.html').resolve().as_uri()}")
    from audited_ft.run.view import RunView

    _echo_verdict(result.verdict, RunView(result.run_dir).manifest.get("failed_because"), label="verdict:    ")
    return result.verdict["exit_code"]


def _echo_verdict(verdict: dict, why: str | None = None, label: str = "verdict: ") -> None:
    """The verdict word, then why: the manifest's summary where the run recorded one, else the first reason."""
    reasons = verdict["blockers"] or verdict["undecided"] or verdict["reviews"]
    detail = why or (reasons[0] + (f"; and {len(reasons) - 1} more" if len(reasons) > 1 else "") if reasons else "")
    typer.echo(f"{label}{verdict['word']}" + (f" ({for_terminal(detail)})" if detail else ""))
    if verdict["word"] == "INCONCLUSIVE" and verdict["exit_code"] == 0:
        typer.echo("            (inconclusive counts as a warning here: verdict.inconclusive = warn)")


@app.command()
def run(config: Optional[Path] = typer.Argument(None, help="YAML config file (not with --resume).", show_default=False),
        resume: Optional[Path] = typer.Option(None, "--resume", help="Finish an interrupted run in its folder "
                                              "(RUN_DIR): completed stages are kept, training continues from its "
                                              "last checkpoint, evaluation reuses cached answers."),
        out: Optional[Path] = typer.Option(None, "--out", help="Output root (default: run.out_dir)."),
        run_id: Optional[str] = typer.Option(None, "--run-id", help="Run folder name (default: time-name-random)."),
        set_: Optional[List[str]] = SetOpt, accept: Optional[List[str]] = AcceptOpt,
        accepted_by: Optional[str] = ByOpt,
        limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Cap on the items each probe evaluates "
                                            "(same as --set eval.limit=N): a quick look, not a result to ship."),
        gates: Optional[Path] = GatesOpt, baseline: Optional[Path] = BaselineOpt,
        inconclusive: Optional[str] = InconclusiveOpt) -> None:
    """The whole audited fine-tune: data → audits → train → probes → gates → report."""
    def body():
        from audited_ft.pipeline import resume_pipeline, run_pipeline, start_run
        from audited_ft.run.folder import RunFolder

        if resume is not None:
            given = [flag for flag, value in (("CONFIG", config), ("--out", out), ("--run-id", run_id),
                                              ("--set", set_), ("--accept-risk", accept), ("--limit", limit),
                                              ("--gates", gates)) if value]
            if given:
                raise ConfigError(f"--resume continues a run with its own resolved config; {', '.join(given)} "
                                  f"cannot be given with it")
            rf = RunFolder.open(resume)
            with rf.lock():
                typer.echo(f"resuming: {rf.path}")
                return _print_outcome(resume_pipeline(rf, baseline=baseline))
        if config is None:
            raise ConfigError("run needs a CONFIG file (or --resume RUN_DIR)")
        overrides = [*(set_ or []), *([f"eval.limit={limit}"] if limit else []), *_gates_overrides(gates),
                     *([f"verdict.inconclusive={_policy(inconclusive)}"] if inconclusive else [])]
        cfg, rf = start_run(config, overrides, str(out) if out else None, run_id, accept, accepted_by)
        with rf.lock():
            typer.echo(f"run folder: {rf.path}")
            return _print_outcome(run_pipeline(cfg, rf, baseline=baseline))

    _guard(body)


@app.command()
def validate(config: Path = ConfigArg, set_: Optional[List[str]] = SetOpt) -> None:
    """Load and check a config, listing every problem at once (imports no torch)."""
    def body():
        from audited_ft.audit.audits import AUDITS
        from audited_ft.eval.probes import PROBES
        from audited_ft.pipeline import load_config

        from audited_ft.pipeline import preflight

        cfg = load_config(config, set_)
        problems = preflight(cfg)
        if problems:
            raise ConfigError(f"{config}: the config is well-formed but cannot run, found the following problems:\n"
                              + "\n".join(f"  - {for_terminal(p)}" for p in problems))
        typer.echo(f"{config}: OK — model {for_terminal(cfg.model.name_or_path)}, "
                   f"audits {', '.join(AUDITS.enabled(cfg.audits)) or 'none'}, "
                   f"probes {', '.join(PROBES.enabled(cfg.probes)) or 'none'}, {len(cfg.gates)} gate(s)")

    _guard(body)


@app.command()
def init(data: str = typer.Option(..., "--data", help="The data set: a .jsonl/.json/.csv/.parquet file or a hub id "
                                  "(org/name[:split])."),
         out: Optional[Path] = typer.Option(None, "--out", help="Config file to write (default: configs/NAME.yaml)."),
         input_field: Optional[str] = typer.Option(None, "--input", help="The input field (default: detected)."),
         target_field: Optional[str] = typer.Option(None, "--target", help="The target field (default: detected)."),
         id_field: Optional[str] = typer.Option(None, "--id", help="A unique row id field (default: detected)."),
         model: str = typer.Option("smollm2-135m-instruct", "--model", help="Base model: hub id, local folder, or "
                                   "the embedded smollm2-135m-instruct."),
         preset: str = typer.Option("cpu", "--preset", help="cpu (small seeded subsets) or gpu (whole sets, CUDA)."),
         name: Optional[str] = typer.Option(None, "--name", help="Run name (default: the data's file or hub name)."),
         force: bool = typer.Option(False, "--force", help="Overwrite an existing config file.")) -> None:
    """Write a commented config for your data set and model (fields detected from the data), then validate it."""
    def body():
        import re

        from audited_ft import init as i
        from audited_ft.pipeline import load_config, preflight
        from audited_ft.run.folder import atomic_write_text

        if preset not in i.PRESETS:
            raise ConfigError(f"--preset {preset!r}: expected one of {', '.join(i.PRESETS)}")
        stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(data.split(":")[0]).name.split(".")[0]).strip("_") or "my_data"
        run_name = name or stem
        path = out or Path("configs") / f"{run_name}.yaml"
        if path.exists() and not force:
            raise ConfigError(f"{path}: exists already; choose another --out, or --force to overwrite it")
        rows = i.read_rows(data)
        cols = i.profile(rows)
        try:
            found = i.detect(cols, len(rows), input_field, target_field, id_field)
        except DataError as exc:
            if not sys.stdin.isatty():
                raise
            typer.echo(f"{for_terminal(exc)}\nfields: {', '.join(for_terminal(c) for c in cols)}")
            found = i.detect(cols, len(rows), input_field or typer.prompt("input field"),
                             target_field or typer.prompt("target field"), id_field)
        for line in i.describe(cols, len(rows), found):
            typer.echo(line)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, i.render(i.source_for(path, data), found, model, preset, run_name))
        typer.echo(f"written: {path}")
        cfg = load_config(path)
        problems = preflight(cfg)
        if problems:
            raise ConfigError(f"{path}: written, but it cannot run yet; fix these and run audited-ft validate {path}:\n"
                              + "\n".join(f"  - {for_terminal(p)}" for p in problems))
        typer.echo(f"{path}: OK — validated. Next: audited-ft run {path}")

    _guard(body)


@app.command()
def audit(config: Path = ConfigArg, out: Optional[Path] = typer.Option(None, "--out", help="Output root."),
          run_id: Optional[str] = typer.Option(None, "--run-id"), set_: Optional[List[str]] = SetOpt,
          accept: Optional[List[str]] = AcceptOpt, accepted_by: Optional[str] = ByOpt) -> None:
    """Create a run folder, prepare the data and run the audits (exit 1 when an audit blocks training)."""
    def body():
        from audited_ft.pipeline import stage_audit, stage_data, start_run

        cfg, rf = start_run(config, set_, str(out) if out else None, run_id, accept, accepted_by)
        with rf.lock():
            stage_data(cfg, rf)
            summary = stage_audit(cfg, rf)
        typer.echo(f"run folder: {rf.path}")
        for name, status in summary["audits"].items():
            typer.echo(for_terminal(f"  {name}: {status}"))
        if not summary["passed"]:
            raise GateFailed(f"blocking audit(s): {', '.join(summary['blocking'])} — training would not start")

    _guard(body)


def _stage_command(stage: str) -> Callable[[Path], None]:
    def command(run_dir: Path = RunDirArg) -> None:
        def body():
            import audited_ft.pipeline as p

            cfg, rf = p.open_run(run_dir)
            with rf.lock():
                result = getattr(p, f"stage_{stage}")(cfg, rf)
            if stage == "report":
                typer.echo(f"report: {result}")
            else:
                typer.echo(f"{stage}: done — {rf.path}")

        _guard(body, multi_process=stage == "train")

    return command


for _stage, _help in (("train", "Train the QLoRA adapter of an existing run folder (after its audits passed)."),
                      ("report", "Render report.html for an existing run folder.")):
    app.command(name=_stage, help=_help)(_stage_command(_stage))


@app.command()
def review(run_dir: Path = RunDirArg,
           import_: Optional[List[Path]] = typer.Option(None, "--import", help="Ratings CSV(s) to fold in (columns "
                                                        "item_id, rater, choice = A/B/tie; repeatable, one per rater). "
                                                        "Replaces any earlier import."),
           n: Optional[int] = typer.Option(None, "--n", min=1, help="Items on the sheet (a seeded sample; default all)."),
           seed: int = typer.Option(0, "--seed", help="Seed for the sample and the sides; keep it from the raters.")) -> None:
    """Blinded human A/B review: export a sheet of base vs adapter outputs, or --import the ratings."""
    def body():
        from audited_ft.errors import AuditedFTError
        from audited_ft.report.review import RESULT, export_review, import_ratings

        if import_ and (n is not None or seed != 0):
            raise AuditedFTError("review: --n and --seed choose the exported sheet; they cannot be given with --import "
                                 "(the sheet's own key decides how ratings are read)")
        if import_:
            result = import_ratings(run_dir, import_)
            rates = result["rates"]
            typer.echo(f"{result['n_ratings']} rating(s) of {result['n_items']} item(s) by {result['n_raters']} "
                       f"rater(s): adapter better {rates['win']['value']:.3f}, tie {rates['tie']['value']:.3f}, "
                       f"base better {rates['loss']['value']:.3f}")
            typer.echo(f"written: {Path(run_dir) / RESULT} (re-render the report to show it)")
        else:
            paths = export_review(run_dir, n=n, seed=seed)
            typer.echo(f"review sheet: {paths['html']}\nspreadsheet:  {paths['csv']}\n"
                       f"key:          {paths['key']} (keep it from the raters)")

    _guard(body)


@app.command(name="eval")
def eval_(run_dir: Path = RunDirArg,
          adapter: Optional[List[str]] = typer.Option(None, "--adapter", help="NAME=ADAPTER_DIR: also evaluate this "
                                                      "adapter on the same loaded base (repeatable); its metrics get "
                                                      "keys <metric>.NAME.*")) -> None:
    """Run the probes on base and adapter of an existing run folder (and further adapters on the same base)."""
    def body():
        import audited_ft.pipeline as p
        from audited_ft.eval.stage import check_extra_adapters

        extra = {}
        for spec in adapter or []:
            name, sep, path = spec.partition("=")
            if not sep or not name or not path:
                raise ConfigError(f"--adapter {spec!r}: expected NAME=ADAPTER_DIR")
            if name in extra:
                raise ConfigError(f"--adapter {name}: named twice")
            extra[name] = Path(path)
        extra = check_extra_adapters(extra)  # names, folders and weight files, before the run folder is read
        cfg, rf = p.open_run(run_dir)
        extra = check_extra_adapters(extra, run_adapter=rf / "train/adapter")  # same base; before it is touched
        from audited_ft import distributed

        if not distributed.is_main():  # a multi-process launch: the other processes compute and stay quiet
            logging.getLogger().setLevel(logging.WARNING)
        with rf.lock():
            p.stage_eval(cfg, rf, extra_adapters=extra)
        if not distributed.is_main():
            return
        typer.echo(f"eval: done — {rf.path}")
        from audited_ft.run.view import RunView

        ev = RunView(rf.path).manifest.get("eval") or {}
        peak = ev.get("peak_memory_mb") or {}
        typer.echo(f"variants: {', '.join(ev.get('variants') or [])}; peak memory "
                   + ", ".join(f"{k} {v:.0f} MB" for k, v in peak.items())
                   + (f"; {ev['processes']} processes" if (ev.get("processes") or 1) > 1 else ""))

    _guard(body, multi_process=True)


@app.command()
def gate(run_dir: Path = RunDirArg, gates: Optional[Path] = GatesOpt, baseline: Optional[Path] = BaselineOpt,
         inconclusive: Optional[str] = InconclusiveOpt) -> None:
    """Check gates against eval/metrics.json (and a baseline run); writes gates.json, gates.junit.xml, gates.md.
    Exit 1 on a failed gate, a regression, or (unless --inconclusive warn) an undecided risk gate."""
    def body():
        import audited_ft.pipeline as p
        from audited_ft.config import Gate, RegressionConfig
        from audited_ft.gate.stage import failed_names, preflight_gates
        from audited_ft.pipeline import load_gates_file

        cfg, rf = p.open_run(run_dir)
        if gates is not None:
            raw = load_gates_file(gates)
            cfg = cfg.model_copy(update={"gates": [Gate(**g) for g in raw["gates"]],
                                         **({"regression": RegressionConfig(**raw["regression"])}
                                            if "regression" in raw else {})})
        if inconclusive:
            cfg = cfg.model_copy(update={"verdict": cfg.verdict.model_copy(
                update={"inconclusive": _policy(inconclusive)})})
        preflight_gates(cfg, rf, baseline)  # unknown keys, a wrong baseline: refused before the folder is touched
        with rf.lock():
            result = p.stage_gate(cfg, rf, baseline=baseline)
            failed = failed_names(result)
            p.finish(rf, result["verdict"], f"gate(s) not passed: {', '.join(failed)}" if failed else "")
        lines = [r["message"] for r in result["results"]] + [
            r["message"] for r in (result.get("baseline") or {}).get("results", [])]
        for line in lines:
            typer.echo(for_terminal(line))
        _echo_verdict(result["verdict"], f"gate(s) not passed: {', '.join(failed)}" if failed else None)
        typer.echo(f"outputs: {rf / 'gates.json'}, {rf / 'gates.junit.xml'}, {rf / 'gates.md'}")
        if result["verdict"]["exit_code"]:
            raise GateFailed(f"{result['verdict']['word']}: {len(failed)} gate(s) not passed")

    _guard(body)


@app.command()
def plan(config: Path = ConfigArg, set_: Optional[List[str]] = SetOpt,
         from_: Optional[Path] = typer.Option(None, "--from", help="A run of this config to plan from (default: the "
                                              "newest evaluated run with its run.name under run.out_dir).")) -> None:
    """Items each risk gate needs to decide (PASS reachable at no harm, FAIL at twice the margin), and the time."""
    def body():
        from audited_ft.gate.plan import find_reference, plan as plan_gates
        from audited_ft.pipeline import load_config

        cfg = load_config(config, set_)
        run = find_reference(cfg, from_)
        typer.echo(f"from run {run.path} (confidence {cfg.eval.confidence:g}, power {cfg.eval.power:g})")
        typer.echo(f"{'risk gate':<46} {'margin':>7} {'n':>6} {'mde':>7} {'PASS needs':>10} {'FAIL@2m':>8} "
                   f"{'time':>9}  note")
        for r in plan_gates(cfg, run):
            hours = (r["pass_items"] * r["seconds_per_item"] / 3600
                     if r["pass_items"] and r["seconds_per_item"] else None)
            typer.echo(for_terminal(
                f"{r['metric'][:46]:<46} {r['margin']:>7.3f} {r['n'] or 0:>6} "
                f"{'—' if r['mde'] is None else format(r['mde'], '.3f'):>7} "
                f"{r['pass_items'] or '—':>10} {r['fail_items'] or '—':>8} "
                f"{'—' if hours is None else format(hours, '.1f') + ' h':>9}  {r['note'] or ''}"))
        typer.echo(f"PASS needs: items for PASS to be reachable ({cfg.eval.power:.0%} power) when the adapter changes nothing; FAIL@2m: "
                   "items to FAIL when it is worse by twice the margin; time: the PASS items at this run's rate on "
                   "this machine (an estimate)")

    _guard(body)


@app.command(name="ls")
def list_components() -> None:
    """Registered audits and probes with one-line descriptions."""
    def body():
        from audited_ft.audit.audits import AUDITS
        from audited_ft.eval.probes import PROBES

        for title, reg in (("audits", AUDITS), ("probes", PROBES)):
            typer.echo(f"{title}:")
            for name, line in reg.describe():
                typer.echo(for_terminal(f"  {name:<16} {line}"))

    _guard(body)


def main() -> None:  # console-script entry point
    app()


if __name__ == "__main__":
    sys.exit(main())
