"""The refusal detector (``audited_ft.eval.probes.refusal.detect_refusal``) against human labels: XSTest v2's 2,250
completions of five models, each labelled by two annotators (full compliance / full refusal / partial refusal;
Röttger et al. 2024). A refusal is a full or partial refusal.

    .venv/bin/python benchmarks/refusal_detector.py --data ../shared/data/xstest/completions [--write-figures]

The patterns were revised looking only at three models' completions (gpt4, llama2orig, mistralguard: "dev"); the
other two (llama2new, mistralinstruct: "held-out") were scored only after, so their figures are the fair ones.
Precision and recall with Wilson 95% intervals; Cohen's κ (detector vs the humans' final label) with a percentile
bootstrap interval (2,000 resamples of completions). ``--write-figures`` writes
``src/audited_ft/eval/probes/refusal_quality.json``, which the refusal probe shows as its detector's measured quality.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gzip
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

DEV = ("gpt4", "llama2orig", "mistralguard")
HELD_OUT = ("llama2new", "mistralinstruct")


def load(folder: Path) -> dict[str, list[tuple[bool, str]]]:
    out = {}
    for model in DEV + HELD_OUT:
        path = folder / f"xstest_v2_completions_{model}.csv.gz"
        with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
            out[model] = [(r["final_label"].strip().startswith(("2", "3")), r["completion"] or "")
                          for r in csv.DictReader(fh)]
    return out


def kappa(human: np.ndarray, det: np.ndarray) -> float:
    """Cohen's κ of two binary ratings (Cohen 1960): (observed − chance agreement) / (1 − chance agreement)."""
    po = float(np.mean(human == det))
    pe = float(np.mean(human) * np.mean(det) + (1 - np.mean(human)) * (1 - np.mean(det)))
    return (po - pe) / (1 - pe) if pe < 1 else float("nan")


def figures(pairs: list[tuple[bool, str]], seed: int = 0) -> dict:
    from audited_ft.eval.probes.refusal import detect_refusal
    from audited_ft.eval.stats import wilson_interval

    human = np.array([h for h, _ in pairs])
    det = np.array([detect_refusal(text) is not None for _, text in pairs])
    tp, fp, fn = int(np.sum(human & det)), int(np.sum(~human & det)), int(np.sum(human & ~det))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(pairs), size=(2000, len(pairs)))
    draws = np.array([kappa(human[i], det[i]) for i in idx])
    k = kappa(human, det)
    return {"completions": len(pairs), "human_refusals": int(human.sum()),
            "precision": [round(tp / max(1, tp + fp), 3), *map(lambda v: round(v, 3), wilson_interval(tp, tp + fp))],
            "recall": [round(tp / max(1, tp + fn), 3), *map(lambda v: round(v, 3), wilson_interval(tp, tp + fn))],
            "kappa": [round(k, 3), round(float(np.quantile(draws, 0.025)), 3),
                      round(float(np.quantile(draws, 0.975)), 3)]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/xstest/completions")
    ap.add_argument("--write-figures", action="store_true")
    args = ap.parse_args()
    data = load(args.data)
    result = {"benchmark": "XSTest v2 completions (Röttger et al. 2024), 5 models × 450 prompts, human final labels",
              "refusal": "full or partial refusal", "date": dt.date.today().isoformat(),
              "dev": figures([p for m in DEV for p in data[m]]),
              "held_out": figures([p for m in HELD_OUT for p in data[m]]),
              "per_model": {m: figures(data[m]) for m in DEV + HELD_OUT}}
    print(json.dumps(result, indent=1))
    if args.write_figures:
        path = ROOT / "src/audited_ft/eval/probes/refusal_quality.json"
        path.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        print(f"written: {path}")


if __name__ == "__main__":
    main()
