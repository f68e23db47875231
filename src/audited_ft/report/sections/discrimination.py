"""The view behind the report's "Algorithmic discrimination" section: bias probes per group, base vs adapter.

For each bias probe with results in ``eval/metrics.json`` — CrowS-Pairs by bias type, BBQ by category and context,
BOLD by group — :func:`discrimination_view` gives charts (base and adapter on one axis, with intervals), compact tables
sorted by how much a group moved, the overall row(s), and one plain-language sentence naming what moved beyond its
confidence interval. A probe with no keys is left out: the caller reports it as not measured.

Group names are the key parts the probes wrote (``[a-z0-9_-]`` by construction, but the file may have been edited),
so they are treated as untrusted text: clipped here, escaped by the template, and passed through ``charts._label``.
Only the single ``adapter`` variant is shown. Numbers that are not numbers become "—" and are listed in ``problems``
(file, key and value) instead of failing the whole report.
"""

from __future__ import annotations

from typing import Any

from audited_ft.errors import DataError
from audited_ft.report import charts
from audited_ft.report.format import ci_label
from audited_ft.report.groups import by_delta, group_row, sentence, stems
from audited_ft.report.rows import metric_rows
from audited_ft.run.view import RunView

SECTION = "Algorithmic discrimination"
METRICS_FILE = "eval/metrics.json"
PROBES_FILE = "eval/probes.json"

# Categories of the published data sets, so that a category absent from this run is listed rather than silent.
CROWS_TYPES = ("age", "disability", "gender", "nationality", "physical-appearance", "race-color", "religion",
               "sexual-orientation", "socioeconomic")
BBQ_CATEGORIES = ("age", "disability_status", "gender_identity", "nationality", "physical_appearance",
                  "race_ethnicity", "race_x_gender", "race_x_ses", "religion", "ses", "sexual_orientation")
BOLD_DOMAINS = ("gender", "political_ideology", "profession", "race", "religious_ideology")

# metric name -> (phrase when the adapter's value is higher, phrase when lower); "{g}" is the group.
PHRASES = {
    "stereotype_rate": ("prefers the stereotyped sentence more often for {g}",
                        "prefers the stereotyped sentence less often for {g}"),
    "loglik_margin": ("gives the stereotyped sentence a larger log-likelihood margin, over all pairs",
                      "gives the stereotyped sentence a smaller log-likelihood margin, over all pairs"),
    "accuracy_ambig": ("answers ambiguous questions correctly (\"unknown\") more often for {g}",
                       "answers ambiguous questions correctly (\"unknown\") less often for {g}"),
    "accuracy_disambig": ("answers disambiguated questions correctly more often for {g}",
                          "answers disambiguated questions correctly less often for {g}"),
    "bias_score_ambig": ("leans more towards the stereotype in ambiguous contexts for {g}",
                         "leans less towards the stereotype in ambiguous contexts for {g}"),
    "bias_score_disambig": ("leans more towards the stereotype in disambiguated contexts for {g}",
                            "leans less towards the stereotype in disambiguated contexts for {g}"),
    "toxicity": ("writes more toxic continuations about {g}", "writes less toxic continuations about {g}"),
    "sentiment": ("writes more positively about {g}", "writes more negatively about {g}"),
    "gap.toxicity": ("widens the toxicity gap between groups in {g}", "narrows the toxicity gap between groups in {g}"),
    "gap.sentiment": ("widens the sentiment gap between groups in {g}",
                      "narrows the sentiment gap between groups in {g}"),
}
BBQ_PANELS = (
    ("accuracy_ambig", "Accuracy, ambiguous contexts (\"unknown\" is correct)", "accuracy (fraction correct)",
     1 / 3, "chance (1 of 3 options)"),
    ("accuracy_disambig", "Accuracy, disambiguated contexts", "accuracy (fraction correct)",
     1 / 3, "chance (1 of 3 options)"),
    ("bias_score_ambig", "Bias score, ambiguous contexts", "bias score (−1 against, +1 with the stereotype)",
     0.0, "no direction (0)"),
    ("bias_score_disambig", "Bias score, disambiguated contexts", "bias score (−1 against, +1 with the stereotype)",
     0.0, "no direction (0)"),
)
BOLD_MEASURES = (("toxicity", "Toxicity of continuations per group", "toxicity (classifier score, 0–1)", None, None),
                 ("sentiment", "Sentiment of continuations per group", "sentiment (VADER compound, −1 to +1)",
                  0.0, "neutral (0)"))
_CAPTION = ("base (grey, hatch rising to the right, upper bar) and adapter (blue, hatch falling to the right, lower bar) per group; "
            "whiskers are the {ci}; the dotted line is the reference.")


# reading --------------------------------------------------------------------------------------------------------------
def _row(metrics: dict, stem: str, group: str, phrase: str, problems: list[str]) -> dict:
    """One group's row (:func:`audited_ft.report.groups.group_row`) with the phrases of bias metric ``phrase``."""
    return group_row(metrics, stem, group, PHRASES[phrase], problems)


# building -------------------------------------------------------------------------------------------------------------
def _panel(title: str, rows: list[dict], headline: list[dict], chart: dict | None, ci_label: str) -> dict | None:
    """A table (and chart) of one measure; ``chart`` holds group_bars' arguments, the overall row charted on top."""
    if not rows and not headline:
        return None
    svg = None
    if chart is not None:
        overall = headline[:1] if chart.pop("with_overall") else []
        svg = charts.group_bars(overall + sorted(rows, key=lambda r: r["group"]), **chart)
    return {"title": title, "chart": svg, "caption": f"{title}: " + _CAPTION.format(ci=ci_label),
            "headline": headline, "rows": by_delta(rows)}


def _crows(m: dict, problems: list[str], ci: str) -> list[dict]:
    p = "bias\\.crows_pairs\\."
    types = [_row(m, s, g[0], "stereotype_rate", problems) for s, g in stems(m, p + r"([^.]+)\.stereotype_rate")]
    head = [_row(m, s, label, s.rsplit(".", 1)[1], problems)
            for s, label in (("bias.crows_pairs.stereotype_rate", "all pairs"),
                             ("bias.crows_pairs.loglik_margin", "all pairs: log-likelihood margin (nats)"))
            if f"{s}.base" in m]
    directions = [_row(m, s, f"{g[0]} pairs", "stereotype_rate", problems)
                  for s, g in stems(m, p + r"by_direction\.([^.]+)\.stereotype_rate")]
    chart = {"xlabel": "stereotype rate (fraction of pairs)", "name": "bias-crows-types", "reference": 0.5,
             "reference_label": "no preference (0.5)", "with_overall": True}
    return [_panel("Stereotype rate by bias type", types, head, chart, ci),
            _panel("Stereotype rate by direction of the pair", directions, [], None, ci)]


def _bbq(m: dict, problems: list[str], ci: str) -> list[dict]:
    panels = []
    for metric, title, xlabel, ref, ref_label in BBQ_PANELS:
        rows = [_row(m, s, g[0], metric, problems) for s, g in stems(m, rf"bias\.bbq\.([^.]+)\.{metric}")]
        head = [_row(m, f"bias.bbq.{metric}", "all categories", metric, problems)] if f"bias.bbq.{metric}.base" in m \
            else []
        chart = {"xlabel": xlabel, "name": f"bias-bbq-{metric.replace('_', '-')}", "reference": ref,
                 "reference_label": ref_label, "with_overall": True}
        panels.append(_panel(title, rows, head, chart, ci))
    return panels


def _bold(m: dict, problems: list[str], ci: str) -> list[dict]:
    panels = []
    for measure, title, xlabel, ref, ref_label in BOLD_MEASURES:
        rows = [_row(m, s, f"{d} / {g}", measure, problems)
                for s, (d, g) in stems(m, rf"bias\.bold\.([^.]+)\.([^.]+)\.{measure}") if g != "max_group_gap"]
        head = [_row(m, f"bias.bold.max_group_gap.{measure}", "largest gap, any domain", f"gap.{measure}", problems)]
        head = head if f"bias.bold.max_group_gap.{measure}.base" in m else []
        head += [_row(m, s, f"gap within {d[0]}", f"gap.{measure}", problems)
                 for s, d in stems(m, rf"bias\.bold\.([^.]+)\.max_group_gap\.{measure}")]
        chart = {"xlabel": xlabel, "name": f"bias-bold-{measure}", "reference": ref, "reference_label": ref_label,
                 "with_overall": False}  # the headline is a gap, not a group value: it has its own scale
        panels.append(_panel(title, rows, head, chart, ci))
    return panels


# probe name, title, builder, published categories and how a metric key names them
PROBES = (("crows_pairs", "CrowS-Pairs", _crows, CROWS_TYPES, r"bias\.crows_pairs\.([^.]+)\.stereotype_rate"),
          ("bbq", "BBQ", _bbq, BBQ_CATEGORIES, r"bias\.bbq\.([^.]+)\.(?:accuracy|bias_score)_(?:ambig|disambig)"),
          ("bold", "BOLD", _bold, BOLD_DOMAINS, r"bias\.bold\.([^.]+)\.[^.]+\.(?:toxicity|sentiment)"))


def _data_note(probes: dict, name: str) -> dict | None:
    """Which data the probe used, from eval/probes.json (title, source, items, notes), or ``None``."""
    info = (probes.get(name) or {}).get("info") if isinstance(probes.get(name), dict) else None
    if not isinstance(info, dict):
        return None
    data = info.get("data")
    if not isinstance(data, dict) and isinstance(info.get("sets"), dict):
        data = next((v for v in info["sets"].values() if isinstance(v, dict)), None)
    if not isinstance(data, dict):
        return None
    notes = data.get("notes")
    return {"title": data.get("title"), "source": data.get("source"), "n_items": data.get("items"),
            "notes": [str(n) for n in notes] if isinstance(notes, list) else []}


def discrimination_view(metrics: dict | None, probes: dict | None) -> dict:
    """The bias probes of a run, for ``sections/_bias_charts.html.j2``.

    ``metrics`` is ``eval/metrics.json`` and ``probes`` is ``eval/probes.json`` (either may be ``None``). Returns
    ``{"probes": [...], "absent": [names], "problems": [text], "ci_label": "95% CI"}`` where each probe present has
    ``name``, ``title``, ``sentence`` (what moved beyond its CI, or that nothing did), ``moved`` (how many rows),
    ``data`` (from probes.json, or ``None``), ``not_covered`` (published categories with no result here) and
    ``panels``: ``{title, chart (SVG Markup or None), caption, headline: [rows], rows: [rows by |delta|]}``.
    A row is ``{group, key, n, base, adapter, delta and their _lo/_hi, direction (+1/−1/0), phrase}``.
    Raises :class:`DataError` when either file does not hold a JSON object.
    """
    for value, path in ((metrics, METRICS_FILE), (probes, PROBES_FILE)):
        if value is not None and not isinstance(value, dict):
            raise DataError(f"{path}: expected a JSON object of named entries, found {type(value).__name__}")
    metrics, probes = metrics or {}, probes or {}
    problems: list[str] = []
    ci = ci_label(metrics.get("eval.confidence", 0.95))
    view: dict[str, Any] = {"probes": [], "absent": [], "problems": problems, "ci_label": ci}
    for name, title, build, published, key_rx in PROBES:
        if not any(isinstance(k, str) and k.startswith(f"bias.{name}.") for k in metrics):
            view["absent"].append(name)
            continue
        panels = [p for p in build(metrics, problems, ci) if p is not None]
        rows = [r for p in panels for r in p["headline"] + p["rows"]]
        seen = {g[0] for _, g in stems(metrics, key_rx)}
        view["probes"].append({"name": name, "title": title, "panels": panels,
                               "sentence": sentence(title, rows, ci), "moved": sum(1 for r in rows if r["direction"]),
                               "data": _data_note(probes, name),
                               "not_covered": [c for c in published if c not in seen]})
    problems[:] = list(dict.fromkeys(problems))  # a key read twice is reported once
    return view


def discrimination_section(run: RunView, metrics: dict | None, gaps: list) -> dict:
    """Section 3: every bias.* metric as a table row, and the per-group view of each bias probe."""
    rows, why = metric_rows(metrics, "bias.", notes=run.interval_notes), run.why_absent("eval/metrics.json", "eval")
    if not rows:
        gaps.append((SECTION, "bias probes", why if metrics is None else "no bias.* keys in eval/metrics.json"))
    return {"rows": rows, "why": why, "metrics_present": metrics is not None,
            "bias": discrimination_view(metrics, run.load("eval/probes.json")),
            "sources": run.sources("eval/metrics.json", "eval/probes.json")}
