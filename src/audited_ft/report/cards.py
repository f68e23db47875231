"""Model card and data card: markdown files rendered from the run folder alone, beside the HTML report.

``write_cards(run_dir)`` writes ``train/adapter/model_card.md`` (Hugging Face model-card format: YAML front matter with
``base_model``, ``license``, ``datasets``, ``library_name``, ``tags``, ``pipeline_tag``, then markdown sections)
when the run has an adapter, and ``data/data_card.md`` when it has ``data/stats.json``. No model is loaded. What a
card cannot find is written down as "not measured in this run" with the reason, never skipped and never a crash.

Safety of the markdown: data- and model-derived text is untrusted. Jinja's HTML autoescape does not fit markdown, so the
environment has a markdown equivalent: ``finalize`` passes every ``{{ }}`` through :func:`md_escape` (``|``, ``<``,
``>``, ``&``, backslash, backticks and the link/emphasis characters escaped; newlines and control characters
neutralised; long text clipped) unless the value is :class:`~markupsafe.Markup` built here (the YAML front matter, a
Python literal in the code sample). The front matter is written by ``yaml.safe_dump`` from values reduced to safe
identifiers. The PII section reads counts and policies from the audit's summary, never its findings.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from markupsafe import Markup

from audited_ft.errors import AuditedFTError
from audited_ft.models import EMBEDDED
from audited_ft.report.card_data import data_context, dict_of, get, list_of, one_line, split_sources
from audited_ft.report.format import ci_label, fmt_num, neutralise, template_dir
from audited_ft.run.folder import atomic_write_text
from audited_ft.run.keys import SIDES, MetricKey
from audited_ft.run.view import RunView

MODEL_TEMPLATE = "model_card.md.j2"
DATA_TEMPLATE = "data_card.md.j2"
INLINE_CHARS = 400  # displayed length of one untrusted string before the ellipsis
HEADLINE_ROWS = 6  # most metrics shown per probe in the model card's results table
# Licence ids the Hugging Face Hub accepts in model-card metadata (a subset: the common ones). Anything else is "other".
_HF_LICENCES = frozenset((
    "apache-2.0", "mit", "afl-3.0", "artistic-2.0", "bsl-1.0", "bsd", "bsd-2-clause", "bsd-3-clause",
    "bsd-3-clause-clear", "cc0-1.0", "cc-by-2.0", "cc-by-3.0", "cc-by-4.0", "cc-by-sa-3.0", "cc-by-sa-4.0",
    "cc-by-nc-2.0", "cc-by-nc-3.0", "cc-by-nc-4.0", "cc-by-nc-sa-4.0", "cc-by-nc-nd-4.0", "cc-by-nd-4.0", "gpl-2.0",
    "gpl-3.0", "lgpl-2.1", "lgpl-3.0", "agpl-3.0", "mpl-2.0", "epl-2.0", "openrail", "openrail++",
    "bigscience-openrail-m", "creativeml-openrail-m", "bigscience-bloom-rail-1.0", "llama2", "llama3", "llama3.1",
    "llama3.2", "llama3.3", "gemma", "unlicense", "wtfpl", "odc-by", "pddl", "other", "unknown"))
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
_WS = re.compile(r"\s+")
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}", re.ASCII)
_DATA_SUFFIXES = (".gz", ".bz2", ".zst", ".jsonl", ".json", ".csv", ".tsv", ".parquet", ".arrow", ".txt")


# markdown safety --------------------------------------------------------------------------------------------------
def md_escape(value: Any, limit: int = INLINE_CHARS) -> Markup:
    """Untrusted text as one line of inert markdown: safe in a table cell or inline, shown as written.

    Control and bidi characters are written out visibly, whitespace (newlines included) collapses to one space, text
    longer than ``limit`` is clipped with an ellipsis, markdown's active characters (``| \\ ` * _ [ ] ~``) are
    backslash-escaped and ``& < >`` become entities, so no link, image, HTML tag or table column can be planted.
    """
    if value is None:
        return Markup("—")
    text = _WS.sub(" ", neutralise(value))
    if len(text) > limit:
        text = text[:limit].rstrip() + "…"
    text = _MD_SPECIAL.sub(r"\\\1", text)
    return Markup(text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))


def code_str(value: Any) -> Markup:
    """A Python string literal for a fenced code block: ASCII only, no backtick or angle bracket, one line, at most
    ``INLINE_CHARS`` characters of the value (a longer one is clipped with an ellipsis)."""
    text = _WS.sub(" ", str(value)).strip()
    text = text if len(text) <= INLINE_CHARS else text[:INLINE_CHARS] + "…"
    literal = json.dumps(text, ensure_ascii=True)
    return Markup(literal.replace("`", "\\u0060").replace("<", "\\u003c").replace(">", "\\u003e"))


def _finalize(value: Any) -> Any:
    # Every {{ }} in a card template: our own Markup passes; numbers are formatted; everything else is escaped.
    if isinstance(value, Markup):
        return value
    if value is None or isinstance(value, (bool, int, float)):
        return md_escape(fmt_num(value))
    return md_escape(value)


def _words(value: Any) -> Any:
    """A list as "a, b, c" (anything else unchanged), before escaping."""
    return ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else value


def _slug(text: Any, limit: int = 64) -> str:
    """A metadata-safe identifier: letters, digits, ``. _ -`` only."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-.")[:limit] or "unnamed"


def hf_licence_id(licence: str | None) -> str:
    """The Hugging Face metadata id of a licence text: "Apache-2.0 (SmolLM2)" → "apache-2.0", unlisted → "other"."""
    if not licence or not str(licence).strip():
        return "unknown"
    text = str(licence).strip().lower()
    head = re.split(r"[(,;]", text)[0].strip()
    for candidate in (re.split(r"\s", head)[0], re.sub(r"\s+", "-", head), text):
        if candidate in _HF_LICENCES:
            return candidate
    return "other"


def dataset_id(source: Any) -> str:
    """A ``datasets:`` entry for a data source: its hub id (``org/name``, split suffix dropped) or a file's name."""
    text = str(source).strip()
    head = text.split(":", 1)[0]
    if _HUB_ID.fullmatch(head) and not head.lower().endswith(_DATA_SUFFIXES):
        return head
    name = re.split(r"[\\/]", text.rstrip("/\\"))[-1]
    while name.lower().endswith(_DATA_SUFFIXES):
        name = name[: name.rfind(".")]
    return _slug(name)


# model card -------------------------------------------------------------------------------------------------------
def _base_model(run: RunView) -> dict:
    name = get(run.manifest, "model", "name_or_path") or get(run.raw_config, "model", "name_or_path")
    spec = EMBEDDED.get(name) if isinstance(name, str) else None
    licence, source = None, None
    for value, where in ((get(run.manifest, "model", "licence"), "manifest.json, model.licence"),
                         (get(run.raw_config, "model", "licence"), "config.resolved.yaml, model.licence"),
                         ((spec or {}).get("licence"), f"audited_ft.models.EMBEDDED, alias {name}")):
        if isinstance(value, str) and value.strip():
            licence, source = value.strip(), where
            break
    hub_id = (spec or {}).get("hub_id") or (name if isinstance(name, str) and _HUB_ID.fullmatch(name) else None)
    return {"name": name, "hub_id": hub_id, "load_id": hub_id or name or "BASE_MODEL_ID",
            "revision": get(run.raw_config, "model", "revision"), "embedded": spec is not None,
            "distribution": (spec or {}).get("distribution"), "licence": licence, "licence_source": source,
            "licence_id": hf_licence_id(licence)}


def _front_matter(base: dict, datasets: list[str], qlora: bool, results: list[dict] | None = None,
                  co2: dict | None = None, model_name: str | None = None) -> Markup:
    """The card's YAML front matter through huggingface_hub's ``ModelCardData``: the Hub's keys, a ``model-index`` of
    this run's results (the adapter's value of each metric of the results table; the Hub renders it as the
    evaluation results) and ``co2_eq_emissions`` (grams, the training stage's estimate) where the run has them."""
    import math

    from huggingface_hub import EvalResult, ModelCardData

    meta: dict[str, Any] = {"base_model": base["hub_id"] or _slug(base["name"] or "unknown", 96),
                            "license": base["licence_id"]}
    if base["licence_id"] == "other":
        meta["license_name"] = _slug(base["licence"]).lower()
    evals = []
    for row in results or []:
        value = row.get("adapter")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            continue
        probe = _slug(row.get("probe") or "run")  # names from the run folder: metadata-safe identifiers only
        metric = _slug(row["metric"], 96)
        evals.append(EvalResult(
            task_type="text-generation", task_name=f"audited_ft {probe} probe",
            dataset_type=f"audited-ft/{probe}", dataset_name=f"{probe} (audited_ft run data)",
            metric_type=metric, metric_name=f"{metric} (adapter)",
            metric_value=round(float(value), 4)))
    card = ModelCardData(**meta, datasets=datasets or None, library_name="peft", pipeline_tag="text-generation",
                         tags=["audited-ft", *(["qlora"] if qlora else []), "lora", "peft", "sft",
                               *([f"base_model:adapter:{base['hub_id']}"] if base["hub_id"] else [])],
                         model_name=_slug(model_name, 96) if evals and model_name else None,
                         eval_results=evals or None,
                         **({"co2_eq_emissions": co2} if co2 else {}))
    return Markup(card.to_yaml() + "\n")


def _co2(run: RunView) -> dict | None:
    """The Hub's ``co2_eq_emissions`` block from the Compute section's estimate of the training stage (grams of
    CO2e, as the Hub expects), or None where the run has no estimate."""
    from audited_ft.errors import AuditedFTError
    from audited_ft.report.sections.compute import compute_view

    try:
        fp = compute_view(run).get("footprint")
    except AuditedFTError:
        return None
    train = next((r for r in (fp or {}).get("stages", []) if r.get("stage") == "train"), None)
    if not train or train.get("co2e_kg") is None:
        return None
    hardware = dict_of(run.manifest.get("hardware"))
    grid = next((a for a in fp["assumptions"] if str(a.get("name", "")).startswith("grid intensity")), {})
    return {"emissions": round(train["co2e_kg"] * 1000, 3),
            "source": f"audited_ft estimate of the training stage: {train['method']}, grid {grid.get('value')} "
                      "g CO2e/kWh (the report's Compute resources section gives every assumption)",
            "training_type": "fine-tuning",
            "hardware_used": _slug(hardware.get("gpu_name") or hardware.get("cpu") or hardware.get("device") or
                                   "not recorded", 96)}


def _metric_row(metrics: dict, stem: str, probe: str | None = None) -> dict:
    key = MetricKey(stem)
    return {"metric": stem, "probe": probe, "n": metrics.get(str(key.to(side="n"))),
            **{side: metrics.get(str(key.to(side=side))) for side in SIDES},
            "lo": metrics.get(str(key.to(side="delta", stat="ci_low"))),
            "hi": metrics.get(str(key.to(side="delta", stat="ci_high"))), "gates": []}


def headline_stems(metrics: dict, probe: str, limit: int = HEADLINE_ROWS) -> list[str]:
    """A probe's headline metrics: the least nested ``<m>.base`` stems naming the probe (aggregates, not groups)."""
    stems = sorted({k.stem for k in map(MetricKey.parse, metrics)
                    if k.side == "base" and k.stat is None and probe in k.stem.split(".")})
    if not stems:
        return []
    depth = min(s.count(".") for s in stems)
    return [s for s in stems if s.count(".") == depth][:limit]


def _gate_text(g: dict) -> str:
    stat = g.get("statistic", g.get("on")) or "point"
    bound = " and ".join(f"{sym} {fmt_num(g.get(k))}" for k, sym in (("min", "≥"), ("max", "≤"))
                         if g.get(k) is not None)
    verdict = {True: "PASS", False: "FAIL"}.get(g.get("passed"), "not evaluated")
    return f"{g.get('metric')} ({stat}) {bound}: {verdict}, value {fmt_num(g.get('value'))}"


def _results(run: RunView, metrics: dict | None, gates: dict | None, probes: dict | None) -> dict:
    """Rows of the results table: every gated metric first, then each probe's headline metrics."""
    rows: dict[str, dict] = {}
    gate_list = [g for g in list_of(get(gates, "results")) if isinstance(g, dict)]
    for g in gate_list:
        stem = MetricKey.parse(str(g.get("metric", ""))).stem  # rouge.rougeL.delta.ci_low -> rouge.rougeL
        owner = next((p for p in (probes or {}) if p in stem.split(".")), "—")
        rows.setdefault(stem, _metric_row(metrics or {}, stem, owner))["gates"].append(_gate_text(g))
    for name, info in sorted((probes or {}).items()):
        if isinstance(info, dict) and info.get("status") == "done" and metrics:
            for stem in headline_stems(metrics, name):
                rows.setdefault(stem, _metric_row(metrics, stem, name))
    label = ci_label((metrics or {}).get("eval.confidence", 0.95))
    return {"rows": list(rows.values()), "ci_label": label, "metrics_present": metrics is not None,
            "why": run.why_absent("eval/metrics.json", "eval")}


def _probe_notes(probes: dict | None) -> tuple[list[dict], list[str]]:
    """(limitations per probe that ran, lines for probes that did not)."""
    notes, skipped = [], []
    for name, p in sorted((probes or {}).items()):
        if not isinstance(p, dict):
            continue
        if p.get("status") != "done":
            skipped.append(f"probe '{name}': {p.get('status', 'no status')} — {p.get('reason') or 'no reason given'}")
            continue
        limits = p.get("limitations")
        if not limits and isinstance(p.get("description"), str) and "Blind spots:" in p["description"]:
            limits = p["description"].partition("Blind spots:")[2]
        notes.append({"name": name, "limitations": limits or None})
    return notes, skipped


def _audit_status(summary: dict | None) -> dict | None:
    """audits/summary.json as the card shows it: overall verdict, status per audit, blocking and warning names."""
    if summary is None:
        return None
    return {"passed": summary.get("passed"), "statuses": sorted(dict_of(summary.get("audits")).items()),
            "blocking": [str(n) for n in list_of(summary.get("blocking"))],
            "warnings": [str(n) for n in list_of(summary.get("warnings"))]}


def _pairs(obj: Any, keys: dict[str, str]) -> list[tuple[str, Any]]:
    """(label, value) for each wanted key of a mapping, floats unrounded (``:g``); a missing key gives ``None``."""
    def plain(v: Any) -> Any:
        return f"{v:g}" if isinstance(v, float) else v

    return [(label, plain(get(obj, *key.split(".")))) for key, label in keys.items()]


_TRAIN_KEYS = {"steps": "optimizer steps", "epochs": "epochs", "train_tokens": "training tokens",
               "seconds": "wall time of training (s)", "tokens_per_second": "throughput (tokens/s)",
               "final_train_loss": "final training loss", "final_eval_loss": "final validation loss",
               "best_eval_loss": "best validation loss", "best_step": "best step", "stopped_early": "stopped early",
               "trainable_params": "trainable parameters", "total_params": "total parameters",
               "peak_memory_mb": "peak memory (MB)", "device": "device", "compute_dtype": "compute dtype"}
_HPARAM_KEYS = {"learning_rate": "learning rate", "lr_scheduler": "scheduler", "warmup_ratio": "warm-up ratio",
                "weight_decay": "weight decay", "batch_size": "batch size", "grad_accum": "gradient accumulation",
                "epochs": "epochs (configured)", "max_steps": "max steps", "max_length": "max sequence length",
                "optimizer": "optimizer"}


def _privacy_line(p: dict) -> str | None:
    """The DP guarantee of a run trained with train.privacy, in one line; None for ordinary training."""
    eps, delta = p.get("epsilon_spent"), p.get("delta")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (eps, delta)):
        return None
    def g(key):
        v = p.get(key)
        return f"{v:.4g}" if isinstance(v, float) else one_line(v) if v is not None else "not recorded"

    return (f"trained with DP-SGD ({one_line(p.get('library') or 'Opacus')}): ({eps:.2f}, {delta:.1g})-differentially "
            f"private per training row by the {str(p.get('accountant') or '?').upper()} accountant (noise multiplier "
            f"{g('noise_multiplier')}, clipping norm {g('max_grad_norm')}, sampling rate {g('sample_rate')}, "
            f"{g('steps')} steps). Not covered: "
            f"{'; '.join(one_line(x) for x in p.get('not_covered') or [] if isinstance(x, str)) or 'not recorded'}")


def _model_context(run: RunView) -> dict:
    m, cfg = run.manifest, run.raw_config
    stats, metrics, gates = run.mapping("data/stats.json"), run.mapping("eval/metrics.json"), run.mapping("gates.json")
    probes, audits = run.mapping("eval/probes.json"), run.mapping("audits/summary.json")
    train, adapter_cfg = run.mapping("train/summary.json"), run.mapping("train/adapter/adapter_config.json")
    base, sources = _base_model(run), split_sources(run, stats)
    qlora = bool(get(cfg, "quantization", "load_in_4bit"))
    notes, skipped = _probe_notes(probes)
    gaps = [run.why_absent(rel, stage) for rel, stage, obj in (
        ("eval/metrics.json", "eval", metrics), ("eval/probes.json", "eval", probes), ("gates.json", "gate", gates),
        ("audits/summary.json", "audit", audits), ("train/summary.json", "train", train),
        ("config.resolved.yaml", "data", cfg or None)) if obj is None]
    gaps += skipped + ["human evaluation (A/B review): none is recorded in the run folder"]
    if base["licence"] is None:
        gaps.append("base model licence: not recorded in the manifest or config, and not an embedded model")
    hardware, versions = dict_of(m.get("hardware")), dict_of(m.get("versions"))
    results = _results(run, metrics, gates, probes)
    return {
        "front_matter": _front_matter(base, list(dict.fromkeys(dataset_id(s) for s in sources.values())), qlora,
                                      results["rows"], _co2(run), model_name=f"{m.get('run_id', run.path.name)}"),
        "run_id": m.get("run_id", run.path.name), "base": base, "qlora": qlora,
        "sources": [(", ".join(s for s in sources if sources[s] == src), src)
                    for src in dict.fromkeys(sources.values())],
        "lora": dict_of(get(cfg, "lora")), "quant": dict_of(get(cfg, "quantization")) if qlora else None,
        "adapter_cfg": adapter_cfg, "why_adapter_cfg": run.why_absent("train/adapter/adapter_config.json", "train"),
        "task": {"prompt": one_line(get(cfg, "data", "prompt_template")), "system": get(cfg, "model", "system_prompt"),
                 "input": get(cfg, "data", "input_field"), "target": get(cfg, "data", "target_field")},
        "gates": gates, "gate_lines": [_gate_text(g) for g in list_of(get(gates, "results")) if isinstance(g, dict)],
        "why_gates": run.why_absent("gates.json", "gate"),
        "audits": _audit_status(audits), "why_audits": run.why_absent("audits/summary.json", "audit"),
        "accepted": [r for r in list_of(m.get("accepted_risks") or get(audits, "accepted")) if isinstance(r, dict)],
        "probe_notes": notes, "why_probes": run.why_absent("eval/probes.json", "eval"),
        "results": results, "gaps": gaps,
        "train": _pairs(train, _TRAIN_KEYS) if train else None, "why_train": run.why_absent("train/summary.json", "train"),
        "privacy": _privacy_line(dict_of((train or {}).get("privacy"))),
        "train_stage_seconds": get(m, "stages", "train", "seconds"),
        "hparams": _pairs(get(cfg, "train"), _HPARAM_KEYS) if dict_of(get(cfg, "train")) else None,
        "hardware": sorted(hardware.items()), "versions": [(k, versions[k]) for k in (
            "audited-ft", "torch", "transformers", "peft", "bitsandbytes", "trl") if k in versions],
        "provenance": [("run id", m.get("run_id")), ("created", m.get("created")), ("run status", m.get("status")),
                       ("config hash (sha256 of config.resolved.yaml)", m.get("config_hash")),
                       ("git sha", m.get("git_sha")), ("seed", m.get("seed")),
                       ("adapter weights sha256", run.hashes.get("train/adapter/adapter_model.safetensors")),
                       ("adapter config sha256", run.hashes.get("train/adapter/adapter_config.json"))],
        "report_exists": (run.path / "report.html").is_file()}


# rendering --------------------------------------------------------------------------------------------------------
def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(template_dir())), autoescape=False,
                             finalize=_finalize, undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(md_escape=md_escape, num=fmt_num, code_str=code_str, words=_words,
                       short=lambda v, n=300: md_escape(v, n))
    return env


def _render(env: Any, name: str, context: dict) -> str:
    import jinja2

    try:
        template = env.get_template(name)
    except jinja2.TemplateNotFound:
        raise AuditedFTError(f"card template {name} not found in {template_dir()}; reinstall audited_ft") from None
    return template.render(**context)


def write_cards(run_dir: Path) -> dict[str, Path]:
    """Write the model card and the data card of a run folder (atomically); return ``{"model_card"|"data_card": path}``.

    ``train/adapter/model_card.md`` is written when ``train/adapter/adapter_config.json`` exists, ``data/data_card.md``
    when ``data/stats.json`` exists; absent inputs become "not measured in this run" lines. Raises
    :class:`RunFolderError` when ``run_dir`` has no (readable) manifest.json.
    """
    run = RunView(Path(run_dir), purpose="so there is nothing to write a model or data card from")
    env, written = _environment(), {}
    if (run.path / "train/adapter/adapter_config.json").is_file():
        out = run.path / "train/adapter/model_card.md"
        atomic_write_text(out, _render(env, MODEL_TEMPLATE, _model_context(run)))
        written["model_card"] = out
    if (run.path / "data/stats.json").is_file():
        out = run.path / "data/data_card.md"
        atomic_write_text(out, _render(env, DATA_TEMPLATE, data_context(run)))
        written["data_card"] = out
    return written
