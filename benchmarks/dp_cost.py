"""What DP-SGD costs in training time: the same recipe trained with and without ``train.privacy``, in one process, one
after the other, on the same rows (the training stage's own code: ``audited_ft.train.stage._train``).

    .venv/bin/python benchmarks/dp_cost.py --config configs/dp_smollm2.yaml --steps 6 --repeat 2 --out /tmp/dp_cost.json

Each mode trains ``--steps`` optimizer steps of the config's logical batch (``batch_size × grad_accum`` rows; DP's
Poisson batches hold that many rows on average) ``--repeat`` times, alternating the order; reported: seconds per
step (median), training tokens per second, and the ratio DP / non-private. Time excludes model loading (the summary's
``seconds`` covers the training loop only). Run on a quiet machine: other work on the cores changes both sides.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=str(ROOT / "configs/dp_smollm2.yaml"))
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    from audited_ft.pipeline import stage_data, start_run
    from audited_ft.run.folder import write_json
    from audited_ft.train.stage import _train

    tmp = Path(tempfile.mkdtemp(prefix="dp_cost_"))
    cfg, rf = start_run(args.config, [f"train.max_steps={args.steps}", "train.privacy.reference=false",
                                      "train.eval_every_steps=100000"],
                        out=str(tmp), run_id="cost")
    stage_data(cfg, rf)
    write_json(rf / "audits/summary.json", {"passed": True, "blocking": []})  # the audits are not timed here
    plain = cfg.model_copy(update={"train": cfg.train.model_copy(update={"privacy": None, "packing": "off"})})
    runs: dict[str, list[dict]] = {"nonprivate": [], "dp": []}
    for r in range(args.repeat):
        order = ("nonprivate", "dp") if r % 2 == 0 else ("dp", "nonprivate")
        for mode in order:
            s = _train(plain if mode == "nonprivate" else cfg, rf, f"train/{mode}{r}", resume=False)
            runs[mode].append({"seconds": s["seconds"], "steps": s["steps"], "train_tokens": s["train_tokens"],
                               "tokens_per_second": s["tokens_per_second"], "peak_memory_mb": s["peak_memory_mb"]})
            print(mode, runs[mode][-1], flush=True)
    out = {"config": args.config, "steps": args.steps, "repeat": args.repeat,
           "expected_batch_rows": cfg.train.batch_size * cfg.train.grad_accum, "runs": runs}
    for mode, rows in runs.items():
        out[f"{mode}_seconds_per_step"] = statistics.median(x["seconds"] / x["steps"] for x in rows)
        out[f"{mode}_tokens_per_second"] = statistics.median(x["tokens_per_second"] for x in rows)
    out["time_ratio_dp_over_nonprivate"] = out["dp_seconds_per_step"] / out["nonprivate_seconds_per_step"]
    print(json.dumps({k: v for k, v in out.items() if k != "runs"}, indent=1))
    if args.out:
        args.out.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
