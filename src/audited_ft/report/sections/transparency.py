"""Section 9, Transparency and explanation: what each probe and audit measures and cannot see (from their docstrings),
the explanation aid (``explanation.explanation_view``), the resolved config and the artefact hashes."""

from __future__ import annotations

from audited_ft.report.sections.explanation import explanation_view
from audited_ft.run.view import RunView

SECTION = "Transparency and explanation"


def transparency_view(run: RunView, audits: dict[str, dict], gaps: list) -> dict:
    probes = run.load("eval/probes.json")
    if probes is None:
        gaps.append((SECTION, "probe descriptions", run.why_absent("eval/probes.json", "eval")))
    for name, p in (probes or {}).items():
        if isinstance(p, dict) and p.get("status") != "done":
            gaps.append((SECTION, f"probe '{name}'", f"{p.get('status', 'no status')}: {p.get('reason') or 'no reason given'}"))
    return {"probes": probes or {}, "why_probes": run.why_absent("eval/probes.json", "eval"), "audits": audits,
            "explanation": explanation_view(probes, run.load("eval/metrics.json")),
            "config": run.text("config.resolved.yaml"),
            "artefacts": sorted(run.hashes.items()),
            "sources": run.sources("eval/probes.json", "config.resolved.yaml", "manifest.json",
                                   *(f"audits/{n}.json" for n in audits))}
