"""The one reader of a run folder. The report, the cards, the review, the gates and every section view read through it.

A :class:`RunView` reads each file once and keeps it; it never writes. An optional file that is absent or unreadable
reads as ``None`` and the view remembers *why* (:meth:`RunView.why_absent` says it in words, from the manifest's record
of the stage that writes the file), because a silent gap reads as a pass. A file a command cannot do without is read
with :meth:`RunView.require`, which raises :class:`RunFolderError` naming the stage to run. Layout: docs/run_folder.md.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any, Optional

from audited_ft.errors import RunFolderError
from audited_ft.run.folder import inside, read_json, read_jsonl
from audited_ft.textsafe import clip

MANIFEST = "manifest.json"
CONFIG = "config.resolved.yaml"
_MISSING = object()


class RunView:
    """A run folder, read-only. ``purpose`` ends the error message when ``path`` is not a run folder ("so there is
    nothing to report"). ``manifest_required=False`` reads a folder being built (a probe reading ``train/log.jsonl``
    in a test folder): the manifest then reads as empty."""

    def __init__(self, path: Path | str, purpose: str = "so there is nothing to read",
                 manifest_required: bool = True):
        self.path = Path(path)
        self.unreadable: dict[str, str] = {}  # files that could not be parsed, with the reason
        self.misshapen: dict[str, str] = {}  # files that parsed but hold the wrong kind of value (see mapping())
        self.config_problem: Optional[str] = None  # why config.resolved.yaml is not a valid Config (see config)
        self._files: dict[str, Any] = {}
        manifest = self.load(MANIFEST)
        if manifest is None and manifest_required:
            why = self.unreadable.get(MANIFEST) or f"{self.path / MANIFEST}: not found — {self.path} is not a run folder"
            raise RunFolderError(f"{why}, {purpose}")
        if manifest is not None and not isinstance(manifest, dict):
            raise RunFolderError(f"{self.path / MANIFEST}: expected a JSON object, found {type(manifest).__name__}")
        self.manifest: dict = manifest or {}

    # files ---------------------------------------------------------------------------------------------------------
    def exists(self, rel: str) -> bool:
        return inside(self.path, rel).exists()

    def load(self, rel: str) -> Any:
        """The parsed file (``.json``, ``.jsonl``, ``.yaml``; other files as text), or ``None`` when it is absent or
        unreadable (the reason is kept in ``unreadable``)."""
        cached = self._files.get(rel, _MISSING)
        if cached is not _MISSING:
            return cached
        value = self._parse(rel)
        self._files[rel] = value
        return value

    def _parse(self, rel: str) -> Any:
        path = inside(self.path, rel)
        if not path.is_file():
            return None
        if rel.endswith((".json", ".jsonl")):
            try:
                return read_jsonl(path) if rel.endswith(".jsonl") else read_json(path)
            except RunFolderError as exc:
                self.unreadable[rel] = str(exc)
                return None
        import yaml

        try:
            text = path.read_text(encoding="utf-8")
            return yaml.safe_load(text) if rel.endswith((".yaml", ".yml")) else text
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            self.unreadable[rel] = f"{path}: {type(exc).__name__}: {exc}"
            return None

    def text(self, rel: str) -> Optional[str]:
        """The file as text (undecodable bytes replaced), or ``None`` when absent: for showing a file as it is."""
        path = inside(self.path, rel)
        return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else None

    def mapping(self, rel: str) -> Optional[dict]:
        """:meth:`load`, kept only when the file holds a mapping (else ``None``, and the shape is the reason)."""
        value = self.load(rel)
        if value is None or isinstance(value, dict):
            return value
        self.misshapen[rel] = f"{inside(self.path, rel)}: expected a mapping, found {type(value).__name__}"
        return None

    def require(self, rel: str, stage: str) -> Any:
        """The parsed file; :class:`RunFolderError` naming the stage to run when it is absent or unreadable."""
        value = self.load(rel)
        if value is None:
            if rel in self.unreadable:
                raise RunFolderError(self.unreadable[rel])
            raise RunFolderError(f"{inside(self.path, rel)}: missing — run the '{stage}' stage first "
                                 f"(audited-ft {stage} {self.path})")
        return value

    def why_absent(self, rel: str, stage: str) -> str:
        """Why ``rel`` has nothing to show, in words, from the manifest's record of ``stage``."""
        if rel in self.unreadable or rel in self.misshapen:
            return f"{rel} could not be read: {self.unreadable.get(rel) or self.misshapen[rel]}"
        st = self.stages.get(stage) or {}
        error = f": {clip(st['error'], 300)}" if st.get("error") else ""
        return f"{rel} is absent (stage '{stage}' is {st.get('status', 'not recorded in the manifest')}{error})"

    def sources(self, *rels: str) -> list[dict]:
        """Artefact references for a section: path, whether it exists, sha256 from the manifest."""
        return [{"path": r, "exists": self.exists(r), "sha256": self.hashes.get(r)} for r in rels]

    # the manifest ------------------------------------------------------------------------------------------------
    @property
    def run_id(self) -> str:
        return str(self.manifest.get("run_id") or self.path.name)

    @property
    def stages(self) -> dict:
        stages = self.manifest.get("stages")
        return stages if isinstance(stages, dict) else {}

    @property
    def hashes(self) -> dict:
        artefacts = self.manifest.get("artefacts")
        return artefacts if isinstance(artefacts, dict) else {}

    @property
    def extra_adapters(self) -> dict[str, str]:
        """Further adapters evaluated on this run's base (name → folder), in ``eval.variants`` order."""
        ev = self.manifest.get("eval")
        ev = ev if isinstance(ev, dict) else {}
        folders = ev.get("extra_adapters") if isinstance(ev.get("extra_adapters"), dict) else {}
        variants = [str(v) for v in ev.get("variants") or [] if isinstance(v, str)]
        names = [v for v in variants if v in folders] + [str(n) for n in folders if n not in variants]
        return {n: str(folders[n]) for n in names if n not in ("base", "adapter")}

    @property
    def reference_variants(self) -> list[str]:
        """Variants that are another base, not an adapter: ``full_precision`` when eval.reference loaded it."""
        ev = self.manifest.get("eval")
        ref = ev.get("reference") if isinstance(ev, dict) else None
        return ["full_precision"] if isinstance(ref, dict) and ref.get("loaded") else []

    # the run's files, each read once --------------------------------------------------------------------------------
    @cached_property
    def raw_config(self) -> dict:
        """``config.resolved.yaml`` as written ({} when absent or unreadable): for readers that must cope with a
        config written by an older version."""
        return self.mapping(CONFIG) or {}

    @cached_property
    def config(self):
        """``config.resolved.yaml`` as the typed :class:`~audited_ft.config.Config`, or ``None`` when it is absent or
        does not validate (the reason is in ``config_problem``)."""
        from audited_ft.config import validate_config
        from audited_ft.errors import ConfigError

        if self.mapping(CONFIG) is None:
            return None
        try:
            return validate_config(dict(self.raw_config), source=str(self.path / CONFIG), base_dir=self.path)
        except ConfigError as exc:
            self.config_problem = str(exc)
            return None

    @property
    def metrics(self) -> Optional[dict]:
        return self.mapping("eval/metrics.json")

    @property
    def probes(self) -> Optional[dict]:
        return self.mapping("eval/probes.json")

    @property
    def gates(self) -> Optional[dict]:
        return self.mapping("gates.json")

    @property
    def train_summary(self) -> Optional[dict]:
        return self.mapping("train/summary.json")

    @property
    def stats(self) -> Optional[dict]:
        return self.mapping("data/stats.json")

    @property
    def audit_summary(self) -> Optional[dict]:
        return self.mapping("audits/summary.json")

    @cached_property
    def interval_notes(self) -> dict[str, dict]:
        """Per metric stem, what the evaluation stage recorded about its intervals (``method``, ``not_estimable``)
        and, where the probe cannot see harm on this base, ``blind`` — from every probe in eval/probes.json."""
        out: dict[str, dict] = {}
        for entry in (self.probes or {}).values():
            if not isinstance(entry, dict):
                continue
            for stem, note in (entry.get("intervals") or {}).items():
                if isinstance(note, dict):
                    out.setdefault(str(stem), {}).update(note)
            for stem, why in (entry.get("blind") or {}).items():
                out.setdefault(str(stem), {})["blind"] = why
        return out

    @cached_property
    def audits(self) -> dict[str, dict]:
        """Each audit's result (``audits/<name>.json``, not the summary) by the name it records."""
        out = {}
        folder = self.path / "audits"
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            if path.name != "summary.json":
                result = self.load(f"audits/{path.name}")
                if isinstance(result, dict):
                    out[str(result.get("name") or path.stem)] = result
        return out


TIMINGS = ".timings.json"  # beside the run folders: the stage times of the last full run of each config on a machine


def read_timings(out_root: Path) -> dict:
    """``out_root/.timings.json`` (config and machine → stage → seconds), or {} when absent or unreadable: the
    run-time estimate is a courtesy, never a reason to stop."""
    path = Path(out_root) / TIMINGS
    try:
        table = read_json(path) if path.is_file() else {}
    except (OSError, ValueError, RunFolderError):
        return {}
    return table if isinstance(table, dict) else {}
