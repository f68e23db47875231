"""Section 7, Compute resources: hardware, the training stage's throughput settings, how evaluation ran (precision,
decoding, the dequantisation check), wall time per stage, and energy / CO2e (``report.footprint``)."""

from __future__ import annotations

from audited_ft.errors import ConfigError
from audited_ft.report.footprint import MEASURED_KEY, estimate_footprint, settings_from
from audited_ft.report.format import fmt_num
from audited_ft.report.rows import flatten
from audited_ft.report.sections.quantisation import quantisation_view
from audited_ft.run.view import RunView

SECTION = "Compute resources"


def compute_section(run: RunView, train_summary: dict | None, gaps: list, all_metrics: dict | None = None) -> dict:
    footprint = compute_view(run)
    gaps.extend((SECTION, what, why) for what, why in footprint.get("gaps") or [])
    ev = run.manifest.get("eval") if isinstance(run.manifest.get("eval"), dict) else {}
    quant = quantisation_view(all_metrics, ev.get("reference"))
    if quant is not None and not quant["loaded"]:
        gaps.append((SECTION, "what the 4-bit quantisation changed",
                     f"eval.reference: full_precision was asked for but not run: {quant.get('reason') or 'not recorded'}"))
    return {"hardware": flatten(run.manifest.get("hardware") or {}), "train": train_summary, "quantisation": quant,
            "evaluation": evaluation_rows(run.manifest.get("eval")),
            "footprint": footprint, "why_train": run.why_absent("train/summary.json", "train"),
            "sources": run.sources("manifest.json", "train/summary.json")}


def evaluation_rows(ev) -> list[tuple[str, str]]:
    """How the probes ran (manifest ``eval``): precision, decoding and the dequantisation check, in words."""
    if not isinstance(ev, dict) or not ev:
        return []
    rows = [("precision", ev.get("precision")), ("decoding", ev.get("decoding"))]
    check = ev.get("dequantize_check") if isinstance(ev.get("dequantize_check"), dict) else None
    if check and check.get("reason"):  # not attempted: the dequantised weights did not fit the memory budget
        rows.append(("dequantisation", f"not done: {check['reason']}"))
    elif check:
        rows.append(("dequantisation check", (
            f"{'passed' if check.get('passed') else 'failed'}: max |Δ next-token logit| "
            f"{fmt_num(check.get('max_abs_logit_diff'))} against the 4-bit base on {check.get('prompts')} prompts, "
            f"allowed {fmt_num(check.get('bound'))} ({fmt_num(check.get('tolerance'), 2)} × the largest |logit|); "
            f"top-1 agreement {fmt_num(check.get('top1_agreement'), 2)}")))
    return rows


def compute_view(run: RunView) -> dict:
    """The energy/CO2e block, read from the run folder only (absent files tolerated and said so).

    Keys: ``footprint`` (:func:`estimate_footprint` or None), ``why`` (when None), ``problems`` (unreadable files),
    ``gaps`` ((what, why) pairs for the Summary's list of what was not measured), ``sources`` (evidence links).
    """
    manifest, summary = run.load("manifest.json"), run.load("train/summary.json")
    problems = [run.unreadable[rel] for rel in ("manifest.json", "train/summary.json") if rel in run.unreadable]
    config = run.load("config.resolved.yaml")
    if "config.resolved.yaml" in run.unreadable:
        problems.append(f"{run.path / 'config.resolved.yaml'}: not readable YAML; default compute settings used")
    section = config.get("compute") if isinstance(config, dict) else None
    if section is not None and not isinstance(section, dict):
        raise ConfigError(f"{run.path / 'config.resolved.yaml'}: compute: expected a mapping of settings, got "
                          f"{section!r}")
    try:
        settings = settings_from(section or {})
    except ConfigError as exc:
        raise ConfigError(f"{run.path / 'config.resolved.yaml'}: {exc}") from None
    sources = run.sources("manifest.json", "train/summary.json", "config.resolved.yaml")
    if not isinstance(manifest, dict):
        why = "manifest.json is absent or unreadable: no stage wall times to estimate energy from"
        return {"footprint": None, "why": why, "problems": problems, "gaps": [("energy and CO2e", why)],
                "sources": sources}
    fp = estimate_footprint(manifest, summary, settings)
    gaps = []
    if not fp["measured"]:
        reason = ((summary or {}).get(MEASURED_KEY) or {}).get("reason") or "no power meter ran"
        gaps.append(("measured energy", f"energy is an estimate (TDP × wall time), not a measurement: {reason}"))
    if fp["total"]["not_estimated"]:
        gaps.append(("energy of some stages", "not estimated for: " + ", ".join(fp["total"]["not_estimated"])))
    return {"footprint": fp, "why": None, "problems": problems, "gaps": gaps, "sources": sources}
