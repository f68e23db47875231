"""The report stage: render a run folder into one self-contained HTML risk report, ``<run_dir>/report.html``.

The report reads only the run folder (schema: docs/run_folder.md), so it can be re-rendered on any existing run. What it
cannot find is not skipped: each section says "not measured in this run" and why (the stage's status from the manifest),
and the Summary lists every gap, because a silent gap reads as a pass.

The run folder is read through one :class:`~audited_ft.run.view.RunView`; each section's view is a module of
``report/sections`` (one per section of the report, plus the panels they share), and this module only puts them together.

Beside the report the stage writes ``evidence.html`` (``report.evidence``): every generated answer and scored item behind
the metrics, base and adapter side by side, worst change first. The report links it near the top and from each section
whose probes left items.

Safety of the page: model and data text is untrusted (``report.format``). A Content-Security-Policy forbids every network
fetch and every script but one (the hash-pinned print helper that opens ``<details>`` before printing). The page has no
external URL.
"""

from __future__ import annotations

from pathlib import Path

from markupsafe import Markup

from audited_ft.report.evidence import evidence_links, write_evidence
from audited_ft.report.format import TEMPLATE, ci_label, csp_hash, environment
from audited_ft.report.review import review_view
from audited_ft.report.sections.adapters import adapters_view, run_gates
from audited_ft.report.sections.compute import compute_section
from audited_ft.report.sections.dataset import dataset_view
from audited_ft.report.sections.dependencies import proprietary_view
from audited_ft.report.sections.discrimination import discrimination_section
from audited_ft.report.sections.misalignment import misalignment_view
from audited_ft.report.sections.overfitting import overfitting_view
from audited_ft.report.sections.summary import gain_cost_rows, gate_rows
from audited_ft.report.sections.transparency import transparency_view
from audited_ft.gate.verdict import run_verdict
from audited_ft.run.folder import STAGES, atomic_write_text
from audited_ft.run.keys import MetricKey
from audited_ft.run.view import RunView

N_SAMPLES = 8
SECTIONS = ("Summary", "Dataset", "Algorithmic discrimination", "Overfitting", "Protection of data privacy",
            "Misalignment", "Compute resources", "Dependence on proprietary technologies",
            "Transparency and explanation", "References")
_PRINT_SCRIPT = ('addEventListener("beforeprint",function(){'
                 'document.querySelectorAll("details").forEach(function(d){d.open=true})});')


def without_extra_adapters(metrics: dict | None, variants: list[str]) -> dict | None:
    """The metrics without the keys of further adapters evaluated on the same base (``<metric>.NAME.<side>``, whose
    ``<metric>.base`` exists): the per-probe tables would otherwise list them as metrics of this run's adapter."""
    if not metrics or not variants:
        return metrics

    def extra(key: str) -> bool:
        k = MetricKey.parse(key, variants)
        return k.variant is not None and str(MetricKey(k.stem, "base")) in metrics

    return {k: v for k, v in metrics.items() if not extra(k)}


def _section_of(stem: str) -> str:
    """The report section a metric belongs to, by its namespace."""
    head = stem.split(".", 1)[0]
    return {"bias": "Algorithmic discrimination", "memorisation": "Overfitting", "overfitting": "Overfitting",
            "privacy": "Protection of data privacy"}.get(head, "Misalignment")


def build_context(run_dir: Path, title: str | None = None, n_samples: int = N_SAMPLES) -> dict:
    """Everything the template needs, read from ``run_dir``. Raises :class:`RunFolderError` without a manifest."""
    run = RunView(Path(run_dir), purpose="so there is nothing to report")
    m, gaps = run.manifest, []
    all_metrics, gates = run.load("eval/metrics.json"), run.load("gates.json")
    # the sections describe this run's adapter; the "Adapters compared" panel the rest
    metrics = without_extra_adapters(all_metrics, [*run.extra_adapters, *run.reference_variants])
    train_summary, audits = run.load("train/summary.json"), run.audits
    accepted_risks = m.get("accepted_risks") or (run.load("audits/summary.json") or {}).get("accepted") or []
    accepted = {str(r.get("audit")) for r in accepted_risks}
    sections = {"dataset": dataset_view(run, audits, accepted, gaps),
                "discrimination": discrimination_section(run, metrics, gaps),
                "overfitting": overfitting_view(run, metrics, gaps, all_metrics),
                "misalignment": misalignment_view(run, metrics, n_samples, gaps),
                "compute": compute_section(run, train_summary, gaps, all_metrics),
                "dependencies": proprietary_view(run, gaps),
                "transparency": transparency_view(run, audits, gaps)}
    for stem, note in sorted(run.interval_notes.items()):  # a probe that cannot see harm on this base says so
        if note.get("blind"):
            gaps.append((_section_of(stem), stem, f"blind on this base: {note['blind']}"))
    if gates is None:
        gaps.insert(0, ("Summary", "release gates", run.why_absent("gates.json", "gate")))
    human_review = review_view(run)
    if human_review is None:
        gaps.append(("Summary", "human evaluation (A/B review)", "no human review is recorded in the run folder "
                     "(audited-ft review RUN_DIR exports a blinded sheet; --import folds the ratings in)"))
    gaps.sort(key=lambda g: SECTIONS.index(g[0]))  # stable: keeps each section's own order
    stage_names = list(STAGES) + [s for s in run.stages if s not in STAGES]
    confidence = (metrics or {}).get("eval.confidence", 0.95)
    adapters = adapters_view(all_metrics, run.extra_adapters, *run_gates(run), notes=run.interval_notes)
    return {"title": title or f"Risk report — {m.get('run_id', run.path.name)}", "m": m, **sections,
            "verdict": (gates or {}).get("verdict") or run_verdict(run, gates),
            "gates": gates, "gate_rows": gate_rows(gates, metrics),
            "gain_cost": gain_cost_rows(all_metrics, run.interval_notes), "why_gates": run.why_absent("gates.json", "gate"),
            "accepted_risks": accepted_risks, "gaps": gaps, "sections": SECTIONS, "human_review": human_review,
            "metrics_present": metrics is not None,
            "adapters": adapters,
            "stages": [(s, run.stages.get(s) or {}) for s in stage_names],
            "ci_label": ci_label(confidence),
            "data_sources": ((run.load("data/stats.json") or {}).get("sources")) or {},
            "summary_sources": run.sources("manifest.json", "gates.json", "audits/summary.json"),
            "print_script": Markup(_PRINT_SCRIPT), "script_hash": csp_hash(_PRINT_SCRIPT)}


def render_report(run_dir: Path, title: str | None = None, *, n_samples: int = N_SAMPLES) -> Path:
    """Render ``<run_dir>/report.html`` (written atomically) from ``reports/templates/report.html.j2``, and the evidence
    browser ``evidence.html`` beside it; return the report's path.

    Works on a partial run: sections whose inputs are absent say "not measured in this run" and why. Raises
    :class:`RunFolderError` when ``run_dir`` has no manifest.json, :class:`AuditedFTError` when templates are missing.
    """
    run_dir = Path(run_dir)
    context = build_context(run_dir, title, n_samples)
    context["evidence"] = evidence_links(write_evidence(run_dir))
    html = environment().get_template(TEMPLATE).render(**context)
    out = run_dir / "report.html"
    atomic_write_text(out, html)
    return out
