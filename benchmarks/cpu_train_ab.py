"""Two settings of the training stage against each other on the CPU: the default config's training stage (the same
rows, the same process) run with config overrides A and with B, alternating, ``--repeat`` times each.

    .venv/bin/python benchmarks/cpu_train_ab.py --a train.compile=off --b train.compile=layers --out /tmp/ab.json

Reported per side: the training loop's seconds and tokens per second (the stage's own ``train/summary.json``, model
loading excluded; a compiled side's compilation falls inside its loop, as it does in a run), the final training and
validation losses, and the ratio of A's seconds to B's. Run on a quiet machine: other work on the cores changes both.
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
    ap.add_argument("--config", default=str(ROOT / "configs/default.yaml"))
    ap.add_argument("--a", action="append", default=[], metavar="KEY=VALUE", help="side A's overrides")
    ap.add_argument("--b", action="append", default=[], metavar="KEY=VALUE", help="side B's overrides")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    from audited_ft.pipeline import load_config, stage_data, start_run
    from audited_ft.run.folder import write_json
    from audited_ft.train.stage import _train

    tmp = Path(tempfile.mkdtemp(prefix="cpu_train_ab_"))
    cfg, rf = start_run(args.config, ["train.device=cpu"], out=str(tmp), run_id="ab")
    stage_data(cfg, rf)
    write_json(rf / "audits/summary.json", {"passed": True, "blocking": []})  # the audits are not timed here
    sides = {side: load_config(args.config, ["train.device=cpu", *over])
             for side, over in (("a", args.a), ("b", args.b))}
    runs: dict[str, list[dict]] = {"a": [], "b": []}
    for r in range(args.repeat):
        for side in ("a", "b") if r % 2 == 0 else ("b", "a"):
            s = _train(sides[side], rf, f"train/{side}{r}", resume=False)
            runs[side].append({k: s[k] for k in ("seconds", "steps", "train_tokens", "tokens_per_second",
                                                 "final_train_loss", "final_eval_loss", "peak_memory_mb")}
                              | {"speed": s["speed"]})
            print(side, {k: v for k, v in runs[side][-1].items() if k != "speed"}, flush=True)
    out = {"config": args.config, "a": args.a, "b": args.b, "repeat": args.repeat, "runs": runs}
    for side in ("a", "b"):
        out[f"{side}_seconds"] = statistics.median(x["seconds"] for x in runs[side])
        out[f"{side}_tokens_per_second"] = statistics.median(x["tokens_per_second"] for x in runs[side])
    out["a_over_b_seconds"] = round(out["a_seconds"] / out["b_seconds"], 2)
    print(json.dumps({k: v for k, v in out.items() if k != "runs"}, indent=1))
    if args.out:
        args.out.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
