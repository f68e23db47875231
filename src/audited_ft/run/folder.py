"""The run folder: the only channel between stages.

Layout (see docs/run_folder.md): ``manifest.json``, ``config.resolved.yaml``, ``data/``, ``audits/``, ``train/``,
``eval/``, ``gates.json``, ``report.html``. Every file is written atomically (temporary file + rename) so a crash never
leaves a half-written artefact that looks complete; the manifest records per-stage status so a crash shows where it
stopped.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import hashlib
import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable, Iterator

from audited_ft.errors import RunFolderError

STAGES = ("data", "audit", "train", "eval", "gate", "report")


def utcnow() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# Write failures a person can fix (free space, permissions), reported as such rather than as a crash.
_DISK_ERRORS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
                errno.EACCES: "permission denied", errno.EPERM: "permission denied",
                errno.EROFS: "the file system is read-only"}


def disk_error_message(path: Path | str | None, exc: OSError, atomic: bool = True) -> str | None:
    """The one-line message for a write that failed for want of space or permission, or None for other errors."""
    why = _DISK_ERRORS.get(exc.errno)
    if why is None:
        return None
    fix = "free space" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "fix the permissions"
    return (f"{path or 'a file'}: cannot write it — {why} ({exc.strerror or exc}). "
            + ("Nothing half-written was left in its place; " if atomic else "") + f"{fix} and re-run")


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def check_name(value: str, what: str) -> str:
    """``value`` if it is a name (letters, digits, '_', '.', '-'; starts with a letter or digit; no '..'; at most
    128 characters), else a RunFolderError naming ``what`` and the value, shown inert. A name the tool turns into a
    path is never a path: no separator, no parent, no absolute path, no control character."""
    if isinstance(value, str) and _NAME.fullmatch(value) and ".." not in value:
        return value
    shown = ascii(value)[:80]
    raise RunFolderError(f"{what} {shown}: not a name — use letters, digits, '_', '.' or '-' (starting with a letter "
                         "or digit, no '..', at most 128 characters); it names a folder inside the output folder")


def contained(root: Path, name: str, what: str) -> Path:
    """``root / name``, checked to resolve inside ``root`` (a symlink in its place could lead elsewhere)."""
    path = root / name
    real_root, real = os.path.realpath(root), os.path.realpath(path)
    if os.path.commonpath([real_root, real]) != real_root or real == real_root:
        raise RunFolderError(f"{what} {ascii(name)[:80]}: {path} resolves to {real}, outside {root}")
    return path


def inside(root: Path, rel: str) -> Path:
    """``root / rel`` for a path the tool names inside a run folder (``audits/pii.json``): relative, no '..' part,
    no NUL. A RunFolderError otherwise, so a name that reached a path by mistake cannot lead out of the folder."""
    rel = os.fspath(rel)
    if not rel or Path(rel).is_absolute() or ".." in Path(rel).parts or "\0" in rel:
        raise RunFolderError(f"{ascii(rel)[:80]}: not a path inside the run folder {root}")
    return root / rel


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        msg = disk_error_message(path, exc)
        if msg is None:
            raise
        raise RunFolderError(msg) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        msg = disk_error_message(path, exc) if isinstance(exc, OSError) else None
        if msg is None:
            raise
        raise RunFolderError(msg) from None


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, ensure_ascii=False, default=str) + "\n")


def write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows))


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunFolderError(f"{path}: not found — has the stage that writes it run?") from None
    except json.JSONDecodeError as exc:
        raise RunFolderError(f"{path}: not valid JSON ({exc})") from None


def read_jsonl(path: Path) -> list[dict]:
    rows = []
    try:
        with open(path, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as exc:
                        raise RunFolderError(f"{path}, line {n}: not valid JSON ({exc.msg})") from None
    except FileNotFoundError:
        raise RunFolderError(f"{path}: not found — has the stage that writes it run?") from None
    return rows


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class RunFolder:
    """A run folder on disk, with its manifest."""

    def __init__(self, path: Path | str):
        self.path = Path(path)

    # paths ---------------------------------------------------------------------------------------------
    def __truediv__(self, rel: str) -> Path:
        return inside(self.path, rel)

    @property
    def manifest_path(self) -> Path:
        return self.path / "manifest.json"

    @property
    def config_path(self) -> Path:
        return self.path / "config.resolved.yaml"

    # manifest ------------------------------------------------------------------------------------------
    @classmethod
    def create(cls, out_root: Path, run_id: str) -> "RunFolder":
        from audited_ft.config import path_problem

        problem = path_problem(Path(out_root), "folder")
        if problem:
            raise RunFolderError(f"--out {out_root}: {problem}; the output folder holds one folder per run")
        path = contained(Path(out_root), check_name(run_id, "--run-id"), "--run-id")
        try:
            path.mkdir(parents=True, exist_ok=False)
        except FileExistsError:
            raise RunFolderError(f"{path}: a run folder with this id already exists; choose another --out or run name") from None
        rf = cls(path)
        rf.write_manifest({"run_id": run_id, "created": utcnow(), "status": "running",
                           "stages": {s: {"status": "pending"} for s in STAGES}, "artefacts": {}})
        return rf

    @classmethod
    def open(cls, path: Path | str) -> "RunFolder":
        from audited_ft.config import path_problem

        rf = cls(path)
        for where, want in ((rf.path, "folder"), (rf.manifest_path, "file")):
            problem = path_problem(where, want)
            if problem:
                raise RunFolderError(f"{where}: {problem} — not a run folder")
        if not rf.manifest_path.is_file():
            raise RunFolderError(f"{rf.path}: not a run folder (no manifest.json)")
        return rf

    def manifest(self) -> dict:
        return read_json(self.manifest_path)

    def write_manifest(self, manifest: dict) -> None:
        write_json(self.manifest_path, manifest)

    def update_manifest(self, **fields: Any) -> dict:
        m = self.manifest()
        for key, value in fields.items():
            if isinstance(value, dict) and isinstance(m.get(key), dict):
                m[key].update(value)
            else:
                m[key] = value
        self.write_manifest(m)
        return m

    def record_artefacts(self, *rel_paths: str) -> None:
        """Hash files (or every file under folders) into the manifest's ``artefacts`` table."""
        table = {}
        for rel in rel_paths:
            p = inside(self.path, rel)
            files = [p] if p.is_file() else sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else []
            for f in files:
                table[str(f.relative_to(self.path))] = sha256_file(f)
        self.update_manifest(artefacts=table)

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[dict]:
        """Mark a stage running, then passed / failed (a gate) / error, with timing. Yields a dict for extra fields."""
        assert name in STAGES, name
        extra: dict = {}
        started = time.time()
        import logging

        log = logging.getLogger("audited_ft.run")
        log.info("%s: started", name)
        # The report stage only describes the run: it leaves the run's overall status (passed/failed) alone.
        overall = {} if name == "report" else {"status": "running"}
        self.update_manifest(**overall, stages={name: {"status": "running", "started": utcnow()}})
        try:
            yield extra
        except BaseException as exc:
            from audited_ft.errors import GateFailed

            status = "failed" if isinstance(exc, GateFailed) else "error"
            msg = str(exc) if isinstance(exc, Exception) else type(exc).__name__
            try:
                self.update_manifest(status=status, failed_stage=name,
                                     stages={name: {"status": status, "started": utcnow(), "finished": utcnow(),
                                                    "seconds": round(time.time() - started, 2), "error": msg[:2000],
                                                    **extra}})
            except (OSError, RunFolderError):
                # The manifest cannot be written either (a full disk): it still says "running" for this stage, which
                # is where the run stopped. The stage's own error is the one to report.
                pass
            raise
        m = self.manifest()
        if name != "report":
            m["status"] = "in_progress"  # the pipeline (or the gate command) sets the final passed/failed
        m["stages"][name] = {**m["stages"].get(name, {}), "status": "done", "finished": utcnow(),
                             "seconds": round(time.time() - started, 2), **extra}
        self.write_manifest(m)
        figures = ", ".join(f"{k} {v}" for k, v in extra.items() if isinstance(v, (int, float, str)) and
                            not isinstance(v, bool) and k not in ("started", "finished"))[:200]
        log.info("%s: done in %.1f s%s", name, time.time() - started, f" ({figures})" if figures else "")

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run folder for one process: a second run, resume or stage command on the same folder fails at
        once with the holder's pid instead of interleaving writes. An advisory ``flock`` on ``.lock``, released by
        the kernel when the holder exits in any way (``kill -9`` included), so a crashed run can be resumed."""
        import fcntl

        from audited_ft import distributed

        if not distributed.is_main():  # accelerate launch: the main process of the group holds the folder
            yield
            return
        path = self.path / ".lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
                raise RunFolderError(f"{self.path}: in use by another audited-ft process (pid {holder}); wait for it "
                                     f"to finish, or stop it and resume with: audited-ft run --resume {self.path}") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
            from audited_ft.run.console import log_to

            with log_to(self.path):  # every record of the command, libraries' included, in run.log
                yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def require(self, rel: str, stage: str) -> Path:
        p = inside(self.path, rel)
        if not p.exists():
            raise RunFolderError(f"{p}: missing — run the '{stage}' stage first (audited-ft {stage} {self.path})")
        return p
