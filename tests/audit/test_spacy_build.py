"""The spaCy parser rebuild that `make setup` runs on Python < 3.12 (audited_ft.audit.spacy_build)."""

import importlib.util
import json
import sys

import pytest

from audited_ft.audit import spacy_build


def test_skipped_on_request(monkeypatch, capsys):
    monkeypatch.setenv("AFT_SPACY_REBUILD", "0")
    assert spacy_build.main([]) == 0
    assert "skipped" in capsys.readouterr().out


def test_failure_leaves_spacy_alone_and_does_not_fail_setup(monkeypatch, capsys):
    def boom(**_):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(spacy_build, "rebuild", boom)
    monkeypatch.delenv("AFT_SPACY_REBUILD", raising=False)
    assert spacy_build.main([]) == 0
    err = capsys.readouterr().err
    assert "no compiler here" in err and "left as installed" in err


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="spaCy's wheels for Python >= 3.12 need no rebuild")
@pytest.mark.skipif(importlib.util.find_spec("Cython") is None, reason="Cython not installed: make setup skipped it")
def test_setup_rebuilt_the_parser_modules():
    """make setup ran the rebuild: the stamp names the installed spaCy, and every module's extension is newer."""
    root = spacy_build.spacy_dir()
    stamp = json.loads((root / spacy_build.STAMP).read_text())
    assert stamp["modules"] == list(spacy_build.MODULES)
    assert spacy_build.status().startswith(f"spaCy {stamp['spacy']} parser modules rebuilt")
    suffix = spacy_build._ext_suffix()
    for module in spacy_build.MODULES:
        assert (root / f"{module}{suffix}").stat().st_mtime >= (root / f"{module}.pyx").stat().st_mtime
