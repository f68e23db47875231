"""Evaluation stage (``run_probes``): every enabled probe on base and adapter; metrics and generations to ``eval/``."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from audited_ft.config import Config
from audited_ft.eval.findings import adjust_for_multiplicity, blind_spots, split_notes
from audited_ft.eval.probes import PROBES, ProbeContext
from audited_ft.eval.stats import IntervalSettings
from audited_ft.registry import describe
from audited_ft.run.folder import RunFolder, write_json, write_jsonl

log = logging.getLogger(__name__)
# variant names an extra adapter cannot take: the two sides, PEFT's default adapter, the full-precision reference
RESERVED = ("base", "adapter", "default", "full_precision")


def run_probes(cfg: Config, rf: RunFolder, model=None, extra_adapters: dict[str, Path] | None = None) -> dict[str, float]:
    """Run the enabled probes; write ``eval/metrics.json``, ``eval/probes.json`` and ``eval/generations/*.jsonl``.

    ``model`` lets tests hand in a fake generator; by default the run's base + adapter are loaded once, plus
    ``extra_adapters`` (name → adapter folder) on the same base: each is compared with the base under its own keys
    (``<metric>.<name>.{base,adapter,delta}``), the run's adapter keeps the plain keys.
    """
    from audited_ft import distributed
    from audited_ft.data.stage import load_splits

    # Several processes (accelerate launch / torchrun): each runs every probe, the model calls are shared out
    # (audited_ft.distributed), and the main process alone writes the run folder.
    main = distributed.is_main()
    if model is None:
        from audited_ft.models import pick_device

        distributed.start_group(pick_device(cfg.train.device))
    else:
        distributed.start_group("cpu")
    distributed.BATCHES[0] = 0
    adapter_dir = rf.require("train/adapter/adapter_config.json", "train").parent
    splits = load_splits(rf)
    extra_adapters = {**run_extra_adapters(rf), **(extra_adapters or {})}
    if model is None:
        from audited_ft.eval.model import FULL_PRECISION, CachedModel, ModelUnderTest, adapter_hash

        extra = check_extra_adapters(extra_adapters)
        under_test = ModelUnderTest(cfg, adapter_dir, batch_size=cfg.eval.batch_size, extra_adapters=extra,
                                    reference=cfg.eval.reference)
        # False too when the dequantisation check refused the dequantised base: its answers are another model's
        dequantized = cfg.eval.dequantize_base and (under_test.dequantize_check or {}).get("passed", True)
        model = CachedModel(under_test, rf / "eval/cache",
                            identity={"model": cfg.model.name_or_path, "revision": cfg.model.revision,
                                      "template": cfg.data.prompt_template, "system": cfg.model.system_prompt,
                                      "quantization": cfg.quantization.model_dump(),
                                      "dequantize_base": dequantized},
                            adapter_hashes={"adapter": adapter_hash(adapter_dir),
                                            **{n: adapter_hash(p) for n, p in extra.items()},
                                            FULL_PRECISION: f"unquantised {under_test.reference.get('dtype')}"})
    from audited_ft.eval.probes.output_pii import AnswerRecorder

    model = AnswerRecorder(model)  # every answer, in memory, for the output PII probe
    ctx = ProbeContext(model=model, splits=splits, run_dir=rf.path, data_dir=cfg.data_dir(),
                       max_new_tokens=cfg.eval.max_new_tokens, answers=model.answers,
                       stats=IntervalSettings(confidence=cfg.eval.confidence, seed=cfg.run.seed,
                                              bootstrap_samples=cfg.eval.bootstrap_samples,
                                              min_items=cfg.eval.min_items, min_changed=cfg.eval.min_changed,
                                              power=cfg.eval.power))
    metrics: dict[str, float] = {"eval.confidence": cfg.eval.confidence,
                                 "eval.bootstrap_samples": cfg.eval.bootstrap_samples}
    probes_info: dict[str, dict] = {}
    for name in sorted(PROBES.names(), key=lambda n: (PROBES.get(n).runs_last, n)):
        cls = PROBES.get(name)
        model.probe = name
        doc = describe(cls)
        if name not in PROBES.enabled(cfg.probes):
            probes_info[name] = {**doc, "status": "skipped", "reason": "not enabled in config"}
            continue
        started, hits, misses = time.time(), getattr(model, "hits", 0), getattr(model, "misses", 0)
        outcome = cls(_limited(PROBES.options(cfg.probes, name), cfg.eval.limit)).run(ctx)
        numbers, notes = split_notes(outcome.metrics)
        metrics.update(numbers)
        for stem, rows in outcome.generations.items():
            if main:
                write_jsonl(rf / f"eval/generations/{stem}.jsonl", rows)
        blind = outcome.info.pop("blind", None) if isinstance(outcome.info, dict) else None
        # the model calls answered from the cache: a probe with hits did not pay for them, so its seconds are no rate
        probes_info[name] = {**doc, "status": "done", "seconds": round(time.time() - started, 2),
                             "cache": {"hits": getattr(model, "hits", 0) - hits,
                                       "misses": getattr(model, "misses", 0) - misses},
                             "info": outcome.info, "intervals": notes}
        if blind:  # the probe's own blind spots (e.g. a base at chance), beside the range-based ones below
            probes_info[name]["blind"] = dict(blind)
        log.info("probe %s done in %.1fs", name, time.time() - started)
    variants = [v for v in getattr(model, "variants", ()) if v not in ("base", "adapter")]
    metrics.update(adjust_for_multiplicity(metrics, variants))
    for name, blind in blind_spots(metrics, variants).items():
        probes_info[name]["blind"] = {**probes_info[name].get("blind", {}), **blind}
    if main:
        write_json(rf / "eval/metrics.json", dict(sorted(metrics.items())))
        write_json(rf / "eval/probes.json", probes_info)
    _check_live(model)  # its fresh scoring calls are shared out too: every process makes them
    shares = distributed.gather_items({distributed.rank(): distributed.BATCHES[0]})
    if not main:
        return metrics
    rf.update_manifest(eval={"precision": getattr(model, "precision", "unknown"),
                             "dequantize_check": getattr(model, "dequantize_check", None),
                             "decoding": f"greedy, max_new_tokens={cfg.eval.max_new_tokens}",
                             "variants": list(getattr(model, "variants", ())),
                             "reference": getattr(model, "reference", None),
                             "extra_adapters": {n: str(p) for n, p in (extra_adapters or {}).items()},
                             "peak_memory_mb": _peak_memory_mb(),
                             "processes": distributed.world_size(),
                             "batches_per_process": [shares[r] for r in sorted(shares)],
                             "cache": {"hits": getattr(model, "hits", 0), "misses": getattr(model, "misses", 0)}})
    rf.record_artefacts("eval")
    return metrics


def _check_live(model) -> None:
    """Fail the stage when an adapter's every answer equals the base's (the results stay in eval/ for a look): an
    adapter that was silently not applied — a known failure of harnesses that load adapters by name — would otherwise
    be reported as a fine-tune that changed nothing."""
    from audited_ft.errors import AdapterNotLive

    for variant, seen in (model.liveness() if hasattr(model, "liveness") else {}).items():
        if variant == "full_precision":  # another model, not an adapter: nothing to be live
            continue
        if seen["compared"] and not seen["differed"] and not model.scores_differ(variant):
            raise AdapterNotLive(f"the {variant}'s answers and scores equal the base's on every one of the "
                                 f"{seen['compared']} model call(s) made on both, and its log-likelihood of a fixed "
                                 "text equals the base's to the last bit: it was not applied. The metrics are in "
                                 "eval/, but no verdict is given on an adapter that is not live")


def _limited(options, limit: int | None):
    """The probe's options with its item cap (``limit``) lowered to ``eval.limit``."""
    if limit is None or "limit" not in type(options).model_fields:
        return options
    current = options.limit
    return options.model_copy(update={"limit": limit if current is None else min(current, limit)})


def run_extra_adapters(rf: RunFolder) -> dict[str, Path]:
    """Adapters the run trained besides its own: the non-private reference of a DP run (train.privacy.reference),
    evaluated as variant ``nonprivate`` so the report can set privacy against utility."""
    folder = rf.path / "train/nonprivate/adapter"
    return {"nonprivate": folder} if (folder / "adapter_config.json").is_file() else {}


def check_extra_adapters(extra: dict[str, Path] | None, run_adapter: Path | None = None) -> dict[str, Path]:
    """Further adapters to evaluate (name → folder): names usable as metric key parts, folders holding an adapter
    with safetensors weights and, given the run's own adapter, trained on the same base model. Checked before the
    run folder is touched, so a wrong argument leaves the run's manifest as it was."""
    import re

    from audited_ft.errors import ConfigError

    out = {}
    for name, path in (extra or {}).items():
        if not re.fullmatch(r"[a-z][a-z0-9_-]{0,39}", name) or name in RESERVED:
            raise ConfigError(f"--adapter {name}=...: an adapter name is lower-case letters, digits, '_' or '-' "
                              f"(starting with a letter), and not {', '.join(repr(r) for r in RESERVED)}")
        from audited_ft.config import path_problem

        problem = path_problem(Path(path), "folder") or path_problem(Path(path) / "adapter_config.json", "file")
        if problem:
            raise ConfigError(f"--adapter {name}={path}: {problem}")
        if not (Path(path) / "adapter_config.json").is_file():
            raise ConfigError(f"--adapter {name}={path}: no adapter_config.json there — not a PEFT adapter folder "
                              "(a run folder's adapter is RUN/train/adapter)")
        out[name] = Path(path)
    if out:
        from audited_ft.eval.model import check_adapter_weights, check_same_base

        for folder in out.values():
            check_adapter_weights(folder)
        if run_adapter is not None and Path(run_adapter).is_dir():
            check_same_base(Path(run_adapter), out)
    return out


def _peak_memory_mb() -> dict:
    """Peak memory of this process (and of the GPU, when one was used): base + every adapter loaded once."""
    import resource
    import sys

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (2**20 if sys.platform == "darwin" else 2**10)
    out = {"process_rss": round(rss, 1)}
    try:
        import torch

        if torch.cuda.is_available() and torch.cuda.is_initialized():
            out["cuda_allocated"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    except ImportError:
        pass
    return out


def config_errors(raw: dict) -> list[str]:
    """The evaluation stage's part of config validation: the ``probes:`` section (names and options)."""
    return PROBES.section_errors(raw.get("probes") or {}, "probes")
