"""Leakage audit scaling: time per row on 10k–100k synthetic rows (the issue's target: roughly flat time per row, and
100k rows under 60 s on 2 cores).

Rows are random dialogues (~120 words) and summaries (~20 words) over a 5,000-word vocabulary, split 80/10/10, with
planted leaks whose count is known: exact copies train→test, near-duplicates (a few words changed) train→validation,
and probe texts (2,000 per run) of which some are copied into training rows. The script checks that every planted leak
is found and prints seconds, rows/s and µs/row for each size.

    PYTHONPATH=src python benchmarks/leakage_scale.py --sizes 10000 20000 40000 100000 --out benchmarks/out/leakage_scale.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import time
from pathlib import Path

from audited_ft.audit.audits import AUDITS, AuditContext

VOCAB = [f"w{i}" for i in range(5000)]


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(VOCAB) for _ in range(n))


def make(n_rows: int, seed: int = 0, leaks: int = 50) -> tuple[dict, dict, dict]:
    rng = random.Random(seed)
    rows = [{"id": f"r{i}", "input": sentence(rng, rng.randint(80, 160)), "target": sentence(rng, rng.randint(12, 30))}
            for i in range(n_rows)]
    n_test = n_val = n_rows // 10
    splits = {"test": rows[:n_test], "validation": rows[n_test:n_test + n_val], "train": rows[n_test + n_val:]}
    train = splits["train"]
    for k in range(leaks):  # exact copies of train inputs in test
        splits["test"][k] = dict(splits["test"][k], input=train[k]["input"])
    for k in range(leaks):  # near-duplicates: 1 word of 80-160 changed (true Jaccard >= 0.88)
        words = train[leaks + k]["input"].split()
        for j in rng.sample(range(len(words)), 1):
            words[j] = "changed"
        splits["validation"][k] = dict(splits["validation"][k], input=" ".join(words))
    probes = {"bench": [sentence(rng, rng.randint(15, 40)) for _ in range(2000)]}
    for k in range(leaks):  # probe texts pasted into training inputs
        t = train[2 * leaks + k]
        t["input"] = t["input"] + " " + probes["bench"][k]
    return splits, probes, {"exact": leaks, "near": leaks, "contaminated": leaks}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 20_000, 40_000, 100_000])
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    audit_cls = AUDITS.get("leakage")
    results = []
    for n in args.sizes:
        splits, probes, planted = make(n)
        audit = audit_cls(audit_cls.Options(max_findings=50))
        start = time.perf_counter()
        result = audit.run(AuditContext(splits=splits, probe_texts=probes)).result
        seconds = time.perf_counter() - start
        s = result["summary"]
        found = {"exact": s["exact_cross_split"]["validation~test"]["input"] * 0
                 + s["exact_cross_split"]["train~test"]["input"],
                 "near": s["near_duplicate_cross_split"]["train~validation"]["input"],
                 "contaminated": s["contamination"]["sets"]["bench"]["contaminated"]}
        row = {"rows": n, "seconds": round(seconds, 2), "rows_per_s": round(n / seconds),
               "us_per_row": round(1e6 * seconds / n, 1), "planted": planted, "found": found,
               "all_found": all(found[k] >= planted[k] for k in planted)}
        results.append(row)
        print(f"{n:>7} rows  {seconds:7.2f} s  {row['rows_per_s']:>7} rows/s  {row['us_per_row']:>7} µs/row  "
              f"planted {planted} found {found}", flush=True)
    info = {"python": platform.python_version(), "cpus": len(os.sched_getaffinity(0)), "machine": platform.machine(),
            "results": results}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(info, indent=1))


if __name__ == "__main__":
    main()
