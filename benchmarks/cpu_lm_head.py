"""What scoring only the labelled positions in TRL's LM head buys on the CPU: the default config's training stage run
with TRL's own choice off Triton (every position projected through the vocabulary) and with the harness's
(``audited_ft.train.speed.score_labelled_positions_only``), in one process, alternating, on the same rows.

    .venv/bin/python benchmarks/cpu_lm_head.py --repeat 1 --out /tmp/cpu_lm_head.json

Reported per mode: the training loop's seconds and tokens per second (the stage's own ``train/summary.json``, model
loading excluded), the final training and validation losses (they should agree: the same tiles, over fewer rows),
and the ratio. Run on a quiet machine: other work on the cores changes both sides.
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
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    import trl.trainer.utils as trl_utils
    from trl.kernels import chunked_logprob

    from audited_ft.pipeline import stage_data, start_run
    from audited_ft.run.folder import write_json
    from audited_ft.train import speed
    from audited_ft.train.stage import _train

    switch = speed.score_labelled_positions_only
    tmp = Path(tempfile.mkdtemp(prefix="cpu_lm_head_"))
    cfg, rf = start_run(args.config, ["train.device=cpu"], out=str(tmp), run_id="lm_head")
    stage_data(cfg, rf)
    write_json(rf / "audits/summary.json", {"passed": True, "blocking": []})  # the audits are not timed here
    runs: dict[str, list[dict]] = {"every_position": [], "labelled_only": []}
    for r in range(args.repeat):
        for mode in (("every_position", "labelled_only") if r % 2 == 0 else ("labelled_only", "every_position")):
            if mode == "every_position":  # TRL's binding back, and the harness's switch off for this run
                trl_utils._use_triton = chunked_logprob._use_triton
                speed.score_labelled_positions_only = lambda: False
            else:
                speed.score_labelled_positions_only = switch
            s = _train(cfg, rf, f"train/{mode}{r}", resume=False)
            runs[mode].append({k: s[k] for k in ("seconds", "steps", "train_tokens", "tokens_per_second",
                                                 "final_train_loss", "final_eval_loss", "peak_memory_mb")}
                              | {"lm_head": s["speed"].get("lm_head")})
            print(mode, runs[mode][-1], flush=True)
    out = {"config": args.config, "repeat": args.repeat, "runs": runs}
    for mode, rows in runs.items():
        out[f"{mode}_seconds"] = statistics.median(x["seconds"] for x in rows)
        out[f"{mode}_tokens_per_second"] = statistics.median(x["tokens_per_second"] for x in rows)
    out["speedup"] = round(out["every_position_seconds"] / out["labelled_only_seconds"], 2)
    print(json.dumps({k: v for k, v in out.items() if k != "runs"}, indent=1))
    if args.out:
        args.out.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
