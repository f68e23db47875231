"""Evaluation stage (``run_probes``): every enabled probe on base and adapter; metrics and generations to ``eval/``."""

from __future__ import annotations

import logging
import time

from audited_ft.config import Config
from audited_ft.probes import PROBES, ProbeContext
from audited_ft.registry import describe
from audited_ft.runfolder import RunFolder, write_json, write_jsonl

log = logging.getLogger(__name__)


def run_probes(cfg: Config, rf: RunFolder, model=None) -> dict[str, float]:
    """Run the enabled probes; write ``eval/metrics.json``, ``eval/probes.json`` and ``eval/generations/*.jsonl``.

    ``model`` lets tests hand in a fake generator; by default the run's base + adapter are loaded once.
    """
    from audited_ft.prepare import load_splits

    adapter_dir = rf.require("train/adapter/adapter_config.json", "train").parent
    splits = load_splits(rf)
    if model is None:
        from audited_ft.generation import CachedModel, ModelUnderTest, adapter_hash

        model = CachedModel(ModelUnderTest(cfg, adapter_dir, batch_size=cfg.eval.batch_size), rf / "eval/cache",
                            identity={"model": cfg.model.name_or_path, "revision": cfg.model.revision,
                                      "template": cfg.data.prompt_template, "system": cfg.model.system_prompt,
                                      "quantization": cfg.quantization.model_dump(),
                                      "dequantize_base": cfg.eval.dequantize_base},
                            adapter_hashes={"adapter": adapter_hash(adapter_dir)})
    ctx = ProbeContext(model=model, splits=splits, run_dir=rf.path, data_dir=cfg.data_dir(),
                       max_new_tokens=cfg.eval.max_new_tokens, bootstrap_samples=cfg.eval.bootstrap_samples,
                       confidence=cfg.eval.confidence, seed=cfg.run.seed)
    metrics: dict[str, float] = {"eval.confidence": cfg.eval.confidence,
                                 "eval.bootstrap_samples": cfg.eval.bootstrap_samples}
    probes_info: dict[str, dict] = {}
    for name in sorted(PROBES.names()):
        cls = PROBES.get(name)
        doc = describe(cls)
        if name not in cfg.enabled("probe"):
            probes_info[name] = {**doc, "status": "skipped", "reason": "not enabled in config"}
            continue
        started = time.time()
        outcome = cls(_limited(cfg.options("probe", name), cfg.eval.limit)).run(ctx)
        metrics.update(outcome.metrics)
        for stem, rows in outcome.generations.items():
            write_jsonl(rf / f"eval/generations/{stem}.jsonl", rows)
        probes_info[name] = {**doc, "status": "done", "seconds": round(time.time() - started, 2),
                             "info": outcome.info}
        log.info("probe %s done in %.1fs", name, time.time() - started)
    write_json(rf / "eval/metrics.json", dict(sorted(metrics.items())))
    write_json(rf / "eval/probes.json", probes_info)
    rf.update_manifest(eval={"precision": getattr(model, "precision", "unknown"),
                             "decoding": f"greedy, max_new_tokens={cfg.eval.max_new_tokens}",
                             "cache": {"hits": getattr(model, "hits", 0), "misses": getattr(model, "misses", 0)}})
    rf.record_artefacts("eval")
    return metrics


def _limited(options, limit: int | None):
    """The probe's options with its item cap lowered to ``eval.limit`` (fields ``limit``, ``max_items`` or ``n``)."""
    if limit is None:
        return options
    changes = {}
    for field in ("limit", "max_items", "n"):
        if field in type(options).model_fields:
            current = getattr(options, field)
            changes[field] = limit if current is None else min(current, limit)
    return options.model_copy(update=changes) if changes else options
