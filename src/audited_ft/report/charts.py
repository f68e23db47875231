"""Charts for the risk report, returned as inline SVG ready to drop into the page.

matplotlib is imported inside :func:`_render` so ``import audited_ft.report.stage`` stays light. Every chart:

- draws on a bare ``Figure`` with the Agg backend (no pyplot global state, no display);
- is deterministic: ``svg.hashsalt`` is fixed per chart and the SVG date is dropped, so the same run folder gives the
  same bytes — reviewers can diff two reports;
- never relies on colour alone: base and adapter differ by hatch, marker and line style too, and carry a legend;
- puts only strings we chose (metric and split names) into the SVG. Model or data text never reaches a chart.

The SVG is returned as :class:`markupsafe.Markup` because we generated it ourselves; the template must not escape it.
"""

from __future__ import annotations

import io
import math
import re
from typing import Any, Callable, Iterable

from markupsafe import Markup, escape

BASE = {"label": "base", "hatch": "//", "facecolor": "#d9d9d9", "edgecolor": "#404040", "marker": "o", "ls": "--"}
ADAPTER = {"label": "adapter", "hatch": "\\\\", "facecolor": "#9ecae1", "edgecolor": "#08519c", "marker": "s", "ls": "-"}
SPLIT_LINES = (("-", "#08519c"), ("--", "#a63603"), (":", "#404040"), ("-.", "#54278f"))
_RC = {"svg.fonttype": "none", "font.size": 9, "font.family": "DejaVu Sans", "axes.spines.top": False,
       "axes.spines.right": False, "hatch.linewidth": 0.7, "legend.frameon": False}


def _label(text: Any, limit: int = 40) -> str:
    """A label safe for matplotlib: short, and with no '$' that would start mathtext."""
    return str(text)[:limit].replace("$", r"\$")


def _render(name: str, draw: Callable[[Any], None], size: tuple[float, float], alt: str) -> Markup:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    with matplotlib.rc_context({**_RC, "svg.hashsalt": f"audited_ft:{name}"}):
        fig = Figure(figsize=size, layout="constrained")
        draw(fig)
        buf = io.StringIO()
        # No <metadata>: its date breaks determinism and its Dublin Core URIs are URLs the page should not carry.
        fig.savefig(buf, format="svg", metadata={"Date": None, "Type": None, "Format": None, "Creator": None})
    return _inline(buf.getvalue(), name, alt)


def _inline(svg: str, name: str, alt: str) -> Markup:
    """Strip the XML prologue and doctype, make ids unique within the page, add an accessible label."""
    svg = svg[svg.find("<svg"):]
    # Several SVGs share one HTML document: prefix ids (and references to them) with the chart name.
    svg = re.sub(r'\bid="', f'id="{name}-', svg)
    svg = svg.replace("url(#", f"url(#{name}-").replace('xlink:href="#', f'xlink:href="#{name}-')
    svg = svg.replace("<svg", f'<svg role="img" aria-label="{escape(alt)}"', 1)
    return Markup(svg)


def _finite(values: Iterable[Any]) -> list[float]:
    return [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]


def _all_finite(*values: Any) -> bool:
    return len(_finite(values)) == len(values)


def length_histograms(lengths: dict[str, dict[str, list]]) -> Markup | None:
    """Input and target length (characters) per split, one panel each; ``None`` when there is nothing to plot."""
    panels = [("input_chars", "input length (characters)"), ("target_chars", "target length (characters)")]
    if not any(_finite((v or {}).get(key, [])) for v in lengths.values() for key, _ in panels):
        return None

    def draw(fig: Any) -> None:
        import numpy as np

        axes = fig.subplots(1, 2)
        for ax, (key, xlabel) in zip(axes, panels):
            data = {s: _finite((v or {}).get(key, [])) for s, v in lengths.items()}
            pooled = [x for xs in data.values() for x in xs]
            edges = np.histogram_bin_edges(pooled or [0.0], bins=30)
            for i, (split, xs) in enumerate(data.items()):
                if xs:
                    ls, colour = SPLIT_LINES[i % len(SPLIT_LINES)]
                    ax.hist(xs, bins=edges, histtype="step", linestyle=ls, linewidth=1.6, color=colour,
                            label=f"{_label(split)} (n={len(xs)})")
            ax.set_xlabel(xlabel)
            ax.set_ylabel("rows")
            ax.legend(fontsize=8, loc="upper right")

    return _render("lengths", draw, (7.2, 2.8), "Histograms of input and target length in characters per split")


def loss_curve(log: list[dict], best_step: int | None = None) -> Markup | None:
    """Training loss per step and validation loss points, with the best validation step marked and annotated."""
    train = [(r["step"], r["loss"]) for r in log if _all_finite(r.get("step"), r.get("loss"))]
    evals = [(r["step"], r["eval_loss"]) for r in log if _all_finite(r.get("step"), r.get("eval_loss"))]
    if not train and not evals:
        return None

    def draw(fig: Any) -> None:
        ax = fig.subplots()
        if train:
            ax.plot(*zip(*train), linestyle="-", color="#08519c", linewidth=1.4,
                    label="training loss (per logged step)")
        if evals:
            ax.plot(*zip(*evals), linestyle="--", marker="o", color="#a63603", linewidth=1.2,
                    label="validation loss (eval_loss)")
            chosen = [e for e in evals if e[0] == best_step] or [min(evals, key=lambda e: e[1])]
            step, loss = chosen[0]
            ax.plot([step], [loss], linestyle="none", marker="*", markersize=14, color="#000000",
                    label="best validation step")
            ax.annotate(f"best: {loss:.3f} at step {step}", xy=(step, loss), xytext=(10, 18),
                        textcoords="offset points", arrowprops={"arrowstyle": "->", "lw": 0.8}, fontsize=8)
        ax.set_xlabel("optimiser step")
        ax.set_ylabel("cross-entropy loss")
        ax.legend(fontsize=8)

    return _render("loss", draw, (6.4, 3.0), "Training and validation loss by step, best validation step starred")


def _err(values: list, lows: list, highs: list) -> list[list[float]]:
    """Asymmetric error bar lengths from CI bounds; a missing bound draws no bar."""
    below = [max(0.0, v - lo) if _all_finite(v, lo) else 0.0 for v, lo in zip(values, lows)]
    above = [max(0.0, hi - v) if _all_finite(v, hi) else 0.0 for v, hi in zip(values, highs)]
    return [below, above]


def metric_bars(rows: list[dict], ylabel: str, name: str = "metrics") -> Markup | None:
    """Base and adapter side by side per metric, on one axis, with CI error bars and the value printed on each bar.

    ``rows`` hold ``name``, ``base``, ``base_lo``, ``base_hi``, ``adapter``, ``adapter_lo``, ``adapter_hi``
    (``None`` where unknown). Returns ``None`` when no row has a value.
    """
    rows = [r for r in rows if _finite([r.get("base"), r.get("adapter")])]
    if not rows:
        return None

    def draw(fig: Any) -> None:
        ax = fig.subplots()
        width = 0.38
        for offset, side in ((-width / 2, BASE), (width / 2, ADAPTER)):
            key = side["label"]
            raw = [r.get(key) for r in rows]
            values = [float(v) if _all_finite(v) else 0.0 for v in raw]
            xs = [i + offset for i in range(len(rows))]
            ax.bar(xs, values, width, hatch=side["hatch"], facecolor=side["facecolor"], edgecolor=side["edgecolor"],
                   label=side["label"], yerr=_err(raw, [r.get(f"{key}_lo") for r in rows],
                                                  [r.get(f"{key}_hi") for r in rows]),
                   error_kw={"capsize": 4, "elinewidth": 1.0, "ecolor": "#000000"})
            for x, v in zip(xs, raw):
                ax.annotate(f"{v:.3f}" if _all_finite(v) else "—", xy=(x, 0), xytext=(0, 3),
                            textcoords="offset points", ha="center", va="bottom", fontsize=7, rotation=90,
                            bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.0})
        ax.set_xticks(range(len(rows)), [_label(r["name"]) for r in rows])
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8, title="error bars:\nconfidence interval", title_fontsize=7, loc="upper left",
                  bbox_to_anchor=(1.0, 1.0))

    return _render(name, draw, (6.4, 3.0), f"{ylabel}: base and adapter side by side with confidence intervals")


def group_bars(rows: list[dict], xlabel: str, name: str, reference: float | None = None,
               reference_label: str | None = None) -> Markup | None:
    """Horizontal bars, base above adapter for each group, with CI whiskers and an optional dotted reference line.

    ``rows`` hold ``group``, ``base``, ``base_lo``, ``base_hi``, ``adapter``, ``adapter_lo``, ``adapter_hi``
    (``None`` where unknown), drawn top to bottom in the order given. Group names come from data files, so they go
    through :func:`_label` (length cap, no mathtext) and are written into the SVG as escaped text. ``xlabel``,
    ``name`` (the id prefix, ``[a-z0-9_-]``) and ``reference_label`` must be our own strings. ``reference`` marks a
    value that means "no bias" (0.5 for a stereotype rate, 0 for a bias score). Returns ``None`` when no row has a value.
    """
    rows = [r for r in rows if _finite([r.get("base"), r.get("adapter")])]
    if not rows:
        return None
    if not re.fullmatch(r"[a-z0-9_-]+", name):
        raise ValueError(f"chart name {name!r}: use [a-z0-9_-] only (it becomes an SVG id prefix)")

    def draw(fig: Any) -> None:
        ax = fig.subplots()
        height = 0.38
        for offset, side in ((-height / 2, BASE), (height / 2, ADAPTER)):
            key = side["label"]
            raw = [r.get(key) for r in rows]
            ys = [i + offset for i in range(len(rows))]
            ax.barh(ys, [float(v) if _all_finite(v) else 0.0 for v in raw], height, hatch=side["hatch"],
                    facecolor=side["facecolor"], edgecolor=side["edgecolor"], label=side["label"],
                    xerr=_err(raw, [r.get(f"{key}_lo") for r in rows], [r.get(f"{key}_hi") for r in rows]),
                    error_kw={"capsize": 3, "elinewidth": 1.0, "ecolor": "#000000"})
            for y, v in zip(ys, raw):
                if not _all_finite(v):  # a missing side must not read as a value of 0
                    ax.annotate("no value", xy=(0, y), xytext=(3, 0), textcoords="offset points", va="center",
                                fontsize=7)
        if _all_finite(reference):
            ax.axvline(float(reference), color="#000000", linestyle=":", linewidth=1.4,
                       label=reference_label or f"reference ({float(reference):g})")
        ax.axvline(0.0, color="#404040", linewidth=0.6)
        ax.set_yticks(range(len(rows)), [_label(r.get("group")) for r in rows])
        ax.invert_yaxis()  # first row on top, base above adapter
        ax.set_xlabel(xlabel)
        ax.legend(fontsize=8, title="error bars:\nconfidence interval", title_fontsize=7, loc="upper left",
                  bbox_to_anchor=(1.0, 1.0))

    size = (6.8, max(1.9, 0.7 + 0.42 * len(rows)))
    return _render(name, draw, size, f"{xlabel}: base and adapter per group with confidence intervals")


def roc_curves(roc: dict[str, dict[str, list]], title_of: dict[str, str]) -> Markup | None:
    """Membership-inference ROC curves, one panel per attack score, base and adapter, false-positive rate on a log
    scale (the low-FPR end is what matters, Carlini et al. 2022) and the chance diagonal. ``roc``: score →
    {"base": [[fpr, tpr], ...], "adapter": [...]}; points at FPR 0 are drawn at the axis' left end."""
    panels = [(k, v) for k, v in roc.items() if isinstance(v, dict)
              and any(_finite(p[0] for p in v.get(side) or [] if isinstance(p, list) and p) for side in ("base",
                                                                                                       "adapter"))]
    if not panels:
        return None

    def draw(fig: Any) -> None:
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        for ax, (score, sides) in zip(axes, panels):
            fprs = [p[0] for side in ("base", "adapter") for p in sides.get(side) or [] if _all_finite(*p)]
            floor = min([f for f in fprs if f > 0] or [0.01]) / 2
            for side, style in (("base", BASE), ("adapter", ADAPTER)):
                pts = [(max(f, floor), t) for f, t in (sides.get(side) or []) if _all_finite(f, t)]
                if pts:
                    ax.step(*zip(*pts), where="post", linestyle=style["ls"], color=style["edgecolor"],
                            linewidth=1.4, label=style["label"])
            ax.plot([floor, 1], [floor, 1], linestyle=":", color="#404040", linewidth=1.0, label="chance")
            ax.set_xscale("log")
            ax.set_xlim(floor, 1)
            ax.set_ylim(0, 1.02)
            ax.set_xlabel("false-positive rate (log scale)")
            ax.set_ylabel("true-positive rate")
            ax.set_title(_label(title_of.get(score, score), 44), fontsize=9)
            ax.legend(fontsize=7, loc="upper left")

    return _render("mia-roc", draw, (3.0 * len(panels) + 0.4, 2.9),
                   "Membership-inference ROC curves per attack score, base dashed and adapter solid, "
                   "false-positive rate on a log scale, with the chance diagonal")
