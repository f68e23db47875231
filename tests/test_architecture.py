"""The house plan, checked: no import cycle, no private name used across modules, a leaf config, one run-folder reader.

The import graph counts every import, at module level or inside a function: a cycle hidden behind a lazy import is
still two modules that cannot be understood (or moved) one without the other.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.paths import REPO

SRC = REPO / "src" / "audited_ft"


def modules(root: Path = SRC) -> dict[str, Path]:
    """Dotted module name → file, for every module of the package."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def imports(name: str, path: Path, known: dict[str, Path]) -> list[tuple[str, str | None, int]]:
    """(imported module, imported name or None, line) for every ``audited_ft`` import in the module."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(a.name, None, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([node.module] if node.module else []))
            for a in node.names:
                full = f"{base}.{a.name}"
                found.append((full, None, node.lineno) if full in known else (base, a.name, node.lineno))
    return [(m, n, line) for m, n, line in found if m == "audited_ft" or m.startswith("audited_ft.")]


def graph(known: dict[str, Path]) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        for module, _, _ in imports(name, path, known):
            while module not in known and "." in module:
                module = module.rpartition(".")[0]
            if module in known and module != name:
                edges[name].add(module)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def private_uses(known: dict[str, Path]) -> list[str]:
    """``from x import _name`` where x is another module, and a ``_module`` imported from outside its package."""
    bad = []
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for module, imported, line in imports(name, path, known):
            where = f"{path.relative_to(SRC.parent)}:{line}"
            if imported and imported.startswith("_") and module != name:
                bad.append(f"{where}: {imported} from {module}")
            parts = module.split(".")
            for i, part in enumerate(parts):
                owner = ".".join(parts[:i])
                if part.startswith("_") and not part.startswith("__") and not (
                        package == owner or package.startswith(owner + ".")):
                    bad.append(f"{where}: private module {module}")
    return bad


def test_the_package_has_no_import_cycle():
    found = cycles(graph(modules()))
    assert found == [], "import cycles (module-level or inside functions): " + "; ".join(" → ".join(c) for c in found)


def test_no_private_name_or_module_is_used_across_modules():
    assert private_uses(modules()) == []


def test_the_checks_can_fail(tmp_path):
    """The same checks on a small package with a cycle and a private import find both."""
    pkg = tmp_path / "audited_ft"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from audited_ft.b import g\n")
    (pkg / "b.py").write_text("from audited_ft.a import f\nfrom audited_ft.sub._hidden import x\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "_hidden.py").write_text("x = 1\n_y = 2\n")
    (pkg / "sub" / "c.py").write_text("from audited_ft.sub._hidden import x\nfrom audited_ft.b import _z\n")
    known = modules(pkg)
    assert cycles(graph(known)) == [["audited_ft.a", "audited_ft.b"]]
    global SRC
    saved, SRC = SRC, pkg
    try:
        found = private_uses(known)
    finally:
        SRC = saved
    assert [f.split(": ", 1)[1] for f in found] == ["private module audited_ft.sub._hidden", "_z from audited_ft.b"]


def test_config_is_a_leaf():
    """config.py knows no stage, registry or metric: the sections those own are checked by the stages themselves."""
    known = modules()
    used = {m for m, _, _ in imports("audited_ft.config", known["audited_ft.config"], known)}
    assert used <= {"audited_ft.errors"}, used


def test_run_folder_files_are_read_through_one_reader():
    """Only the run package parses run-folder files (RunView); the answer cache of the model under test reads its
    own entries with the same helper."""
    known = modules()
    readers = {name for name, path in known.items()
               for module, imported, _ in imports(name, path, known)
               if module == "audited_ft.run.folder" and imported in ("read_json", "read_jsonl")}
    assert readers <= {"audited_ft.run.view", "audited_ft.eval.model"}, readers


def test_stage_packages_follow_the_pipeline():
    """The folder tree is the pipeline: one package per stage, each with the stage's module, plus the run folder."""
    for package in ("data", "audit", "train", "eval", "gate", "report"):
        assert (SRC / package / "stage.py").is_file(), package
    assert {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").is_file()} == {
        "run", "data", "audit", "train", "eval", "gate", "report"}


def test_the_worked_probe_example_of_the_architecture_doc_runs(monkeypatch):
    """docs/architecture.md's "How to add a probe" example, run as written on the fake model."""
    import re

    from audited_ft.eval.probes import PROBES, ProbeContext
    from audited_ft.eval.stats import IntervalSettings
    from audited_ft.run.keys import MetricKey
    from tests.fakes import FakeModel

    doc = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    code = re.search(r"### a probe\n.*?```python\n(.*?)```", doc, re.S).group(1)
    try:
        exec(compile(code, "docs/architecture.md", "exec"), {"__name__": "doc_example"})
        cls = PROBES.get("length")
        rows = [{"id": str(i), "input": f"dialogue {i}", "target": f"summary number {i}"} for i in range(8)]
        out = cls(cls.Options()).run(ProbeContext(model=FakeModel(rows), splits={"test": rows},
                                                  stats=IntervalSettings(bootstrap_samples=100)))
    finally:
        PROBES.remove("length")
    assert out.metrics["length.words.base"] == 3.0  # "lorem ipsum dolor"
    assert {MetricKey.parse(k).stem for k in out.metrics if not k.endswith((".method", ".not_estimable"))} == {
        "length.words"}
    assert cls.metrics[0].direction == "neutral"

