"""The base model's capability and truthfulness figures through the harness's own scorer, for the cross-check against
published figures (benchmarks/RESULTS.md, issue 22).

    AFT_DATA_DIR=../shared/data .venv/bin/python benchmarks/capability_reference.py --adapter RUN/train/adapter \\
        --limit 300 --precision nf4 --out /tmp/cap_nf4.json

Scores the *base* only (the adapter folder is needed to build the harness's model object; its answers are not used),
with the capability probe's formats and rules (``audited_ft.eval.probes.capability``: lm-evaluation-harness's
zero-shot formats, ``acc`` and per-character ``acc_norm``) and the truthfulness probe's (zero-shot "Q: … A:", MC1 and
MC2). ``--precision nf4`` is the 4-bit base the probes use (dequantised as the evaluation stage does); ``fp32`` the
unquantised model, as published figures are measured. Each set a seeded subsample of ``--limit`` items (the probe's
own subsampling); Wilson 95% intervals.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--adapter", required=True, type=Path, help="any adapter folder trained on the model")
    ap.add_argument("--config", default=str(ROOT / "configs/default.yaml"))
    ap.add_argument("--limit", type=int, default=300)
    ap.add_argument("--precision", choices=("nf4", "fp32"), default="nf4")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    import numpy as np

    from audited_ft.config import load_config
    from audited_ft.eval.model import ModelUnderTest
    from audited_ft.eval.probes.capability import SETS, choice_scores, correct
    from audited_ft.eval.probes.truthfulness import mc1, mc2, mc_scores, shuffled
    from audited_ft.eval.sets import load_probe_set
    from audited_ft.eval.stats import wilson_interval

    overrides = ["train.device=cpu"] + (["quantization.load_in_4bit=false"] if args.precision == "fp32" else [])
    cfg = load_config(args.config, overrides)
    data_dir = cfg.data_dir()
    model = ModelUnderTest(cfg, args.adapter, batch_size=cfg.eval.batch_size)
    results: dict = {"precision": model.precision, "limit": args.limit, "sets": {}}
    for name, (title, reported) in SETS.items():
        items = load_probe_set(name, f"{{data_dir}}/{name}", data_dir, args.limit, args.seed).items
        started = time.time()
        scores = choice_scores(model, items, "base")
        labels = [int(it["label"]) for it in items]
        row = {"n": len(items), "seconds": round(time.time() - started, 1), "reported": reported}
        for metric, which in (("acc", 0), ("acc_norm", 1)):
            hits = correct(scores, labels, which)
            lo, hi = wilson_interval(sum(hits), len(hits))
            row[metric] = [round(float(np.mean(hits)), 4), round(lo, 4), round(hi, 4)]
        results["sets"][name] = row
        print(f"{title:14s} n={row['n']:4d}  acc {row['acc']}  acc_norm {row['acc_norm']}  {row['seconds']}s",
              flush=True)
    raw = load_probe_set("truthfulqa", "{data_dir}/truthfulqa", data_dir, args.limit, args.seed).items
    items = []
    for i, it in enumerate(raw):
        shown = dict(it)
        for key in ("mc1", "mc2"):
            c, lab = shuffled(list(it[key]["choices"]), list(it[key]["labels"]), args.seed, i)
            shown[key] = {"choices": c, "labels": lab}
        items.append(shown)
    started = time.time()
    one = [mc1(ll, it["mc1"]["labels"]) for ll, it in zip(mc_scores(model, items, "base", "mc1"), items)]
    two = [mc2(ll, it["mc2"]["labels"]) for ll, it in zip(mc_scores(model, items, "base", "mc2"), items)]
    lo, hi = wilson_interval(sum(one), len(one))
    results["truthfulqa"] = {"n": len(items), "mc1": [round(float(np.mean(one)), 4), round(lo, 4), round(hi, 4)],
                             "mc2": round(float(np.mean(two)), 4), "seconds": round(time.time() - started, 1)}
    print("TruthfulQA", results["truthfulqa"], flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
