"""The base model's capability and truthfulness figures through the harness's own scorer, for the cross-check against
published figures (benchmarks/RESULTS.md, issue 22).

    AFT_DATA_DIR=../shared/data .venv/bin/python benchmarks/capability_reference.py --limit 0 --precision nf4 \\
        --precision fp32 --out /tmp/cap.json

Scores the *base* only (the harness's model object needs an adapter: without ``--adapter`` a throwaway LoRA adapter
with random weights is made for it; only the base's answers are used, with every adapter disabled),
with the capability probe's formats and rules (``audited_ft.eval.probes.capability``: lm-evaluation-harness's
zero-shot formats, ``acc`` and per-character ``acc_norm``) and the truthfulness probe's (zero-shot "Q: … A:", MC1 and
MC2). ``--precision nf4`` is the 4-bit base the probes use (dequantised as the evaluation stage does); ``fp32`` the
unquantised model in float32, as published figures are measured; give ``--precision`` twice for both in one call.
Each set a seeded subsample of ``--limit`` items (the probe's own subsampling; 0: the whole set); Wilson 95%
intervals. ``--device auto`` uses CUDA where present (the dequantised NF4 base then computes in bfloat16).
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
    ap.add_argument("--adapter", type=Path, help="an adapter folder trained on the model (default: a throwaway one)")
    ap.add_argument("--config", default=str(ROOT / "configs/default.yaml"))
    ap.add_argument("--limit", type=int, default=300, help="items per set (0: every item)")
    ap.add_argument("--precision", choices=("nf4", "fp32"), action="append")
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    out = {}
    for precision in args.precision or ["nf4"]:
        out[precision] = score_base(args, precision)
    if args.out:
        args.out.write_text(json.dumps(out, indent=1))


def throwaway_adapter(cfg, folder: Path) -> Path:
    """A LoRA adapter with random weights on the config's model (the model object needs one; its answers are unused)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from audited_ft.models import resolve_model

    base = AutoModelForCausalLM.from_pretrained(resolve_model(cfg.model.name_or_path).path)
    lora = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(base, lora).save_pretrained(folder)
    return folder


def score_base(args, precision: str) -> dict:
    import tempfile

    import numpy as np

    from audited_ft.config import load_config
    from audited_ft.eval.model import ModelUnderTest
    from audited_ft.eval.probes.capability import SETS, choice_scores, correct
    from audited_ft.eval.probes.truthfulness import mc1, mc2, mc_scores, shuffled
    from audited_ft.eval.sets import load_probe_set
    from audited_ft.eval.stats import wilson_interval

    overrides = [f"train.device={args.device}"]
    if precision == "fp32":
        overrides += ["quantization.load_in_4bit=false", "quantization.compute_dtype=float32"]
    cfg = load_config(args.config, overrides)
    data_dir = cfg.data_dir()
    adapter = args.adapter or throwaway_adapter(cfg, Path(tempfile.mkdtemp()) / "adapter")
    model = ModelUnderTest(cfg, adapter, batch_size=cfg.eval.batch_size)
    limit = args.limit or None
    results: dict = {"precision": model.precision, "device": model.device, "limit": limit, "sets": {}}
    print(f"== {precision}: {model.precision} on {model.device}", flush=True)
    for name, (title, reported) in SETS.items():
        items = load_probe_set(name, f"{{data_dir}}/{name}", data_dir, limit, args.seed).items
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
    raw = load_probe_set("truthfulqa", "{data_dir}/truthfulqa", data_dir, limit, args.seed).items
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
    return results


if __name__ == "__main__":
    main()
