"""A small name → class registry for audits and probes (the lm-evaluation-harness pattern).

Built-ins register through the same decorator an extension would use. Registry modules must stay light to import:
heavy libraries (torch, presidio) are imported inside ``run``, so ``audited-ft ls`` and ``validate`` are instant.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import os
import pkgutil
import sys
from pathlib import Path
from typing import Generic, TypeVar

from audited_ft.errors import ConfigError

T = TypeVar("T")


def did_you_mean(name: str, choices: list[str]) -> str:
    """A hint for an unknown name, or an empty string when nothing is close."""
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""


def describe(cls: type) -> dict[str, str]:
    """A registered class's docstring as the report shows it: ``description`` (what it measures) and ``limitations``
    (the paragraph starting "Blind spots:", which every audit and probe docstring carries)."""
    import inspect

    doc = inspect.cleandoc(cls.__doc__ or "")
    head, sep, tail = doc.partition("Blind spots:")
    return {"description": head.strip(), "limitations": tail.strip() if sep else ""}


class Registry(Generic[T]):
    """Names to classes. ``kind`` ("audit", "probe") appears in error messages."""

    def __init__(self, kind: str, package: str, folder: str):
        self.kind = kind
        self._package = package
        self._folder = folder  # project folder of extension files (e.g. "audits"), see extension_dirs()
        self._items: dict[str, type[T]] = {}
        self._discovered = False

    def register(self, name: str):
        def deco(cls: type[T]) -> type[T]:
            if name in self._items and self._items[name] is not cls:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            cls.name = name  # type: ignore[attr-defined]
            self._items[name] = cls
            return cls

        return deco

    def _discover(self) -> None:
        # Built-ins are the modules of one package; importing each registers it.
        if self._discovered:
            return
        self._discovered = True
        pkg = importlib.import_module(self._package)
        for info in pkgutil.iter_modules(pkg.__path__):
            if not info.name.startswith("_"):
                importlib.import_module(f"{self._package}.{info.name}")
        for folder in self.extension_dirs():
            for path in sorted(folder.glob("*.py")):
                if not path.name.startswith("_"):
                    _import_file(path, f"audited_ft_ext_{self._folder}_{path.stem}")

    def extension_dirs(self) -> list[Path]:
        """Folders whose ``*.py`` files register extra items through the same decorator as the built-ins:
        the checkout's top-level folder (``audits/``, ``probes/``) and any in ``$AFT_<FOLDER>_PATH`` (os.pathsep list)."""
        dirs = [Path(__file__).resolve().parents[2] / self._folder]
        dirs += [Path(p) for p in os.environ.get(f"AFT_{self._folder.upper()}_PATH", "").split(os.pathsep) if p]
        return [d for d in dirs if d.is_dir()]

    def names(self) -> list[str]:
        self._discover()
        return sorted(self._items)

    def get(self, name: str) -> type[T]:
        self._discover()
        if name not in self._items:
            raise ConfigError(
                f"unknown {self.kind} '{name}'.{did_you_mean(name, self.names())} "
                f"Registered {self.kind}s: {', '.join(self.names())}"
            )
        return self._items[name]

    def describe(self) -> list[tuple[str, str]]:
        """(name, first line of the docstring) for each registered item."""
        out = []
        for name in self.names():
            doc = (self._items[name].__doc__ or "").strip().splitlines()
            out.append((name, doc[0] if doc else ""))
        return out


def _import_file(path: Path, module_name: str) -> None:
    if module_name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"{path}: cannot import this extension file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # an extension's own bug: name the file
        del sys.modules[module_name]
        raise ConfigError(f"{path}: importing this extension failed: {type(exc).__name__}: {exc}") from None
