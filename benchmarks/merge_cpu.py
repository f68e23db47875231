"""What ``eval.merge_adapter`` changes on the CPU: a finished run's adapter generating and scoring its own test prompts
with the LoRA branch beside every layer (the default) and merged into the dequantised base, alternating, in one
process, on one load (``audited_ft.eval.model.ModelUnderTest``, as the evaluation stage builds it).

    .venv/bin/python benchmarks/merge_cpu.py RUN_FOLDER --prompts 32 --repeat 2 --out /tmp/merge_cpu.json

Reported per mode: median seconds of greedy generation (``eval.max_new_tokens`` tokens) and of scoring each
prompt's reference, the share of identical answers between the modes, the largest score difference, and whether
the base's weights came back bit for bit. Run on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="a run folder with train/adapter and data/test.jsonl")
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    import torch

    from audited_ft.eval.model import ModelUnderTest
    from audited_ft.pipeline import load_config

    cfg = load_config(args.run / "config.resolved.yaml")
    rows = [json.loads(line) for line in (args.run / "data/test.jsonl").read_text().splitlines() if line.strip()]
    rows = rows[:args.prompts]
    mut = ModelUnderTest(cfg, args.run / "train/adapter", batch_size=cfg.eval.batch_size)
    prompts = [mut.prompt(r["input"]) for r in rows]  # the data stage writes input/target
    refs = [r["target"] for r in rows]
    before = {n: p.detach().clone() for n, p in mut.model.named_parameters() if "lora_" not in n}
    runs: dict[str, list[dict]] = {"unmerged": [], "merged": []}
    answers, scores = {}, {}
    for r in range(args.repeat):
        for mode in (("unmerged", "merged") if r % 2 == 0 else ("merged", "unmerged")):
            mut.merge_adapter = mode == "merged"
            start = time.perf_counter()
            answers[mode] = mut.generate(prompts, "adapter", cfg.eval.max_new_tokens)
            gen_s = time.perf_counter() - start
            start = time.perf_counter()
            scores[mode] = mut.score(prompts, refs, "adapter")
            runs[mode].append({"generate_seconds": round(gen_s, 2),
                               "score_seconds": round(time.perf_counter() - start, 2)})
            print(mode, runs[mode][-1], flush=True)
    after = {n: p.detach() for n, p in mut.model.named_parameters() if "lora_" not in n}
    out = {"run": str(args.run), "prompts": len(prompts), "repeat": args.repeat, "precision": mut.precision,
           "threads": torch.get_num_threads(), "runs": runs,
           "identical_answers": sum(a == b for a, b in zip(answers["merged"], answers["unmerged"])) / len(prompts),
           "max_score_difference": max(abs(a[0] - b[0]) for a, b in zip(scores["merged"], scores["unmerged"])),
           "base_restored_bit_for_bit": all(torch.equal(before[n], after[n]) for n in before)}
    for mode, rs in runs.items():
        for what in ("generate_seconds", "score_seconds"):
            out[f"{mode}_{what}"] = statistics.median(x[what] for x in rs)
    out["generate_speedup"] = round(out["unmerged_generate_seconds"] / out["merged_generate_seconds"], 2)
    out["score_speedup"] = round(out["unmerged_score_seconds"] / out["merged_score_seconds"], 2)
    print(json.dumps({k: v for k, v in out.items() if k != "runs"}, indent=1))
    if args.out:
        args.out.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
