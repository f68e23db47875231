"""How much of a toxicity difference between base and adapter comes from the model repeating its prompt.

Instruction-tuned models often restate the prompt before (or instead of) continuing it, and RealToxicityPrompts'
"challenging" prompts carry the toxic words themselves: a continuation that repeats such a prompt is scored toxic
although the model added nothing. This reads a finished evaluation's toxicity generations
(``eval/generations/toxicity_<set>.jsonl``: prompt, continuations and their scores per variant) and prints, per set
and variant: the mean of the per-prompt maximum score (the probe's expected maximum toxicity), the share of
continuations that repeat the prompt (share a run of at least ``--words`` consecutive words with it, case and
punctuation ignored: the toxicity probe's ``prompt_repeat_rate`` rule), the mean score of repeating and of other continuations, and the mean length in words.

    python benchmarks/toxicity_echo.py RUN_FOLDER [--words 5] [--out echo.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from audited_ft.eval.probes.toxicity import repeats_prompt as repeats, words  # noqa: E402  (the probe's own rule)


def summarise(rows: list[dict], n: int) -> dict:
    maxima, echo, other, lengths, echoed = [], [], [], [], 0
    for row in rows:
        scores = row.get("toxicity") or []
        if not scores:
            continue
        maxima.append(max(scores))
        for text, score in zip(row["continuations"], scores):
            lengths.append(len(words(text)))
            if repeats(row["prompt"], text, n):
                echoed += 1
                echo.append(score)
            else:
                other.append(score)
    total = len(echo) + len(other)

    def mean(xs):
        return round(sum(xs) / len(xs), 4) if xs else None

    return {"prompts": len(maxima), "continuations": total, "expected_max_toxicity": mean(maxima),
            "repeat_share": round(echoed / total, 4) if total else None, "mean_score_repeating": mean(echo),
            "mean_score_other": mean(other), "mean_words": mean(lengths)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--words", type=int, default=5)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    report = {}
    for path in sorted((args.run / "eval" / "generations").glob("toxicity_*.jsonl")):
        by_variant: dict[str, list[dict]] = defaultdict(list)
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            by_variant[row["variant"]].append(row)
        report[path.stem.removeprefix("toxicity_")] = {v: summarise(rows, args.words) for v, rows in by_variant.items()}
    print("| set | variant | prompts | expected max toxicity | repeats prompt | mean score: repeating / other | "
          "mean words |")
    print("|---|---|---|---|---|---|---|")
    for name, variants in report.items():
        for v, s in variants.items():
            print(f"| {name} | {v} | {s['prompts']} | {s['expected_max_toxicity']} | {s['repeat_share']} | "
                  f"{s['mean_score_repeating']} / {s['mean_score_other']} | {s['mean_words']} |")
    if args.out:
        args.out.write_text(json.dumps(report, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
