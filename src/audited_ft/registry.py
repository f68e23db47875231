"""One small name → item registry (the lm-evaluation-harness pattern) for audits, probes, evaluation sets and scorers.

Built-ins register through the same decorator an extension would use: ``@PROBES.register("rouge")`` on a class, or
``SETS.add("bbq", spec)`` for an instance. Each registry discovers its built-ins by importing every module of one
package (modules whose name starts with ``_`` hold shared code, not items), plus, for audits and probes, the ``*.py``
files of the checkout's extension folder (``audits/``, ``probes/``) and of ``$AFT_<FOLDER>_PATH``. Registry modules
must stay light to import: heavy libraries (torch, presidio) are imported inside ``run``, so ``audited-ft ls`` and
``validate`` are instant.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
import sys
from pathlib import Path
from typing import Any, Generic, TypeVar

from audited_ft.errors import ConfigError, did_you_mean

T = TypeVar("T")


def describe(cls: type) -> dict[str, str]:
    """A registered class's docstring as the report shows it: ``description`` (what it measures) and ``limitations``
    (the paragraph starting "Blind spots:", which every audit and probe docstring carries)."""
    import inspect

    doc = inspect.cleandoc(cls.__doc__ or "")
    head, sep, tail = doc.partition("Blind spots:")
    return {"description": head.strip(), "limitations": tail.strip() if sep else ""}


class Registry(Generic[T]):
    """Names to items (classes, or instances such as evaluation-set specs). ``kind`` ("audit", "probe", "evaluation
    set", "toxicity scorer") appears in error messages."""

    def __init__(self, kind: str, package: str, folder: str | None = None, default_enabled: bool = False):
        self.kind = kind
        self._package = package
        self._folder = folder  # project folder of extension files (e.g. "audits"), see extension_dirs(); None: none
        self.default_enabled = default_enabled  # every registered item runs unless its config section disables it
        self._items: dict[str, T] = {}
        self._discovered = False

    def register(self, name: str):
        """Class decorator: registers the class under ``name`` and sets its ``name`` attribute."""
        def deco(cls):
            self.add(name, cls)
            cls.name = name
            return cls

        return deco

    def add(self, name: str, item: T) -> T:
        """Register ``item`` under ``name``; a second, different item under one name is an error."""
        if name in self._items and self._items[name] is not item:
            raise ValueError(f"{self.kind} '{name}' is registered twice")
        self._items[name] = item
        return item

    def remove(self, name: str) -> None:
        """Forget ``name`` (tests that register a stand-in, extensions that replace a built-in)."""
        self._items.pop(name, None)

    def __contains__(self, name: object) -> bool:
        self._discover()
        return name in self._items

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
        if self._folder is None:
            return []
        dirs = [Path(__file__).resolve().parents[2] / self._folder]
        dirs += [Path(p) for p in os.environ.get(f"AFT_{self._folder.upper()}_PATH", "").split(os.pathsep) if p]
        return [d for d in dirs if d.is_dir()]

    def names(self) -> list[str]:
        self._discover()
        return sorted(self._items)

    def get(self, name: str) -> T:
        self._discover()
        if name not in self._items:
            raise ConfigError(
                f"unknown {self.kind} '{name}'.{did_you_mean(name, self.names())} "
                f"Registered {self.kind}s: {', '.join(self.names())}"
            )
        return self._items[name]

    def items(self) -> dict[str, T]:
        """Every registered item by name (sorted)."""
        self._discover()
        return dict(sorted(self._items.items()))

    def describe(self) -> list[tuple[str, str]]:
        """(name, first line of the docstring) for each registered item."""
        out = []
        for name in self.names():
            doc = (self._items[name].__doc__ or "").strip().splitlines()
            out.append((name, doc[0] if doc else ""))
        return out


    # the registry's config section (``audits:``, ``probes:``): name -> options mapping ------------------------------
    def enabled(self, section: dict) -> list[str]:
        """The items a config section turns on: every registered one unless ``enabled: false`` when
        ``default_enabled``, else the ones the section names (unless ``enabled: false``), in its order."""
        if self.default_enabled:
            return [n for n in self.names() if (section.get(n) or {}).get("enabled", True)]
        return [n for n, opts in section.items() if (opts or {}).get("enabled", True)]

    def options(self, section: dict, name: str):
        """The validated ``Options`` of item ``name`` from its config section."""
        return self.get(name).Options(**(section.get(name) or {}))

    def section_errors(self, section: Any, where: str) -> list[str]:
        """Every problem of a config section (``where``: "audits", "probes"), as config-error lines: unknown names
        with a suggestion, options that are not a mapping, and each invalid option with its value."""
        from pydantic import ValidationError

        if not isinstance(section, dict):
            return []  # the Config model reports a section of the wrong type
        errors = []
        for name, opts in section.items():
            if name not in self.names():
                errors.append(f"{where}.{name}: unknown {self.kind} '{name}'.{did_you_mean(str(name), self.names())} "
                              f"Registered: {', '.join(self.names()) or 'none'}")
                continue
            if not isinstance(opts, (dict, type(None))):
                errors.append(f"{where}.{name}: expected a mapping of options (got {short(opts)})")
                continue
            try:
                self.get(name).Options.model_validate(opts or {})
            except ValidationError as exc:
                errors += [f"{where}.{name}.{'.'.join(str(p) for p in e['loc'])}: {e['msg']} (got "
                           f"{short(e.get('input'))})" for e in exc.errors()]
        return errors


def short(value: Any, n: int = 200) -> str:
    """repr of a value, cut: an error about a whole section must not print the whole section."""
    text = repr(value)
    return text if len(text) <= n else text[:n] + "…"


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
