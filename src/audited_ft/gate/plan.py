"""How many items each risk gate needs before it can decide, from a run of the same config (``audited-ft plan``).

For a risk gate with margin m on a difference whose standard deviation per item is σ (at α = 1 − confidence and the
configured power 1 − β, z's the normal quantiles):

* PASS is reachable when the true difference is 0 once the interval's harmful end falls within m with probability
  1 − β: n ≥ ((z_{α/2} + z_β) σ / m)²;
* FAIL is reached when the true difference is 2m (twice the margin, in the harmful direction) once the whole interval
  clears 0 with probability 1 − β: n ≥ ((z_{α/2} + z_β) σ / 2m)².

σ comes from the reference run's minimum detectable effect at its own n (σ = mde · √n / (z_{α/2} + z_β)), so it
carries the run's own spread, discordance and base rate; for proportions, whose detectable effect follows McNemar's
test rather than a fixed σ, the 1/√n scaling is an approximation (said in the output). Time per item is the probe's
measured seconds in the reference run divided by its items (an estimate for this machine); a probe that answered any
of its model calls from the cache (a resumed run) has no rate, and its time shows as unknown. A probe that is blind on
the base (a refusal rate of 0) cannot be helped by more items; that is said instead of a number.
"""

from __future__ import annotations

import math
from pathlib import Path

from audited_ft.config import Config
from audited_ft.errors import RunFolderError
from audited_ft.run.keys import MetricKey
from audited_ft.run.view import RunView


def find_reference(cfg: Config, explicit: Path | None = None) -> RunView:
    """The run to plan from: ``explicit``, else the newest run under ``run.out_dir`` with this config's run name that
    finished its evaluation."""
    if explicit is not None:
        run = RunView(explicit, purpose="so there is nothing to plan from")
        run.require("eval/metrics.json", "eval")
        return run
    out = Path(cfg.run.out_dir)  # as `run` creates it: relative to the working directory
    found = sorted((p.parent.parent for p in out.glob("*/eval/metrics.json")),
                   key=lambda p: (p / "eval/metrics.json").stat().st_mtime, reverse=True)
    for folder in found:
        view = RunView(folder, manifest_required=False)
        if (view.raw_config.get("run") or {}).get("name") == cfg.run.name:
            return view
    raise RunFolderError(f"no evaluated run of '{cfg.run.name}' under {out}: run the config once (a quick look: "
                         "audited-ft run CONFIG --limit 8) or name one with --from RUN_DIR")


def plan(cfg: Config, run: RunView) -> list[dict]:
    """One row per risk gate of ``cfg``: items in the reference run, its minimum detectable effect, and the items
    needed for PASS to be reachable at no harm and for FAIL to be reached at twice the margin, with the time."""
    from scipy.stats import norm

    from audited_ft.eval.probes import owner

    metrics, notes, probes = run.metrics or {}, run.interval_notes, run.probes or {}
    z = float(norm.ppf(0.5 + cfg.eval.confidence / 2)) + float(norm.ppf(cfg.eval.power))
    rows = []
    for g in cfg.gates:
        if not g.risk:
            continue
        key = MetricKey.parse(g.metric)
        n, mde = metrics.get(str(key.to(side="n", stat=None))), metrics.get(str(key.to(stat="mde")))
        found = owner(key.stem)
        probe = found[0] if found else None
        row = {"metric": g.metric, "margin": g.margin, "probe": probe, "n": n, "mde": mde, "pass_items": None,
               "fail_items": None, "seconds_per_item": None, "note": None}
        note = notes.get(key.stem) or {}
        if note.get("blind"):
            row["note"] = f"blind on this base — more items cannot help: {note['blind']}"
        elif not n or mde is None:
            row["note"] = f"no minimum detectable effect in the reference run ({note.get('not_estimable') or 'absent'})"
        else:
            sigma = mde * math.sqrt(n) / z
            row["pass_items"] = math.ceil((z * sigma / g.margin) ** 2)
            row["fail_items"] = math.ceil((z * sigma / (2 * g.margin)) ** 2)
            info = (probes.get(probe) or {}) if probe else {}
            seconds = info.get("seconds") if not (info.get("cache") or {}).get("hits") else None  # replayed: no rate
            row["seconds_per_item"] = seconds / n if seconds else None
            row["note"] = ("decidable at this size" if mde <= g.margin else "only INCONCLUSIVE or FAIL at this size")
            if (note.get("method") or "proportion") == "proportion":
                row["note"] += " (proportion: the 1/√n scaling is approximate)"
        rows.append(row)
    return rows
