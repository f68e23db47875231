import shutil
from pathlib import Path

import pytest

from audited_ft.audits import AuditContext
from audited_ft.errors import ConfigError
from audited_ft.registry import Registry

REPO = Path(__file__).resolve().parents[1]


def test_unknown_name_suggests():
    from audited_ft.audits import AUDITS

    with pytest.raises(ConfigError, match="Did you mean 'leakage'"):
        AUDITS.get("leakge")


def test_extension_folder_registers_through_the_same_hook(tmp_path, monkeypatch):
    # The shipped template, activated by copying it without the underscore into a folder on $AFT_AUDITS_PATH.
    shutil.copy(REPO / "audits/_template.py", tmp_path / "target_share.py")
    monkeypatch.setenv("AFT_AUDITS_PATH", str(tmp_path))
    from audited_ft.audits import _base

    fresh = Registry("audit", "audited_ft.audits", "audits")
    monkeypatch.setattr(_base, "AUDITS", fresh)
    import audited_ft.audits as pkg

    monkeypatch.setattr(pkg, "AUDITS", fresh)
    assert "target_share_template" in fresh.names()
    cls = fresh.get("target_share_template")
    rows = [{"id": str(i), "input": "x", "target": "same"} for i in range(5)]
    out = cls(cls.Options()).run(AuditContext(splits={"train": rows}))
    assert out.result["status"] == "fail" and out.result["summary"]["top_target_share"] == 1.0


def test_broken_extension_is_named(tmp_path, monkeypatch):
    (tmp_path / "broken.py").write_text("raise RuntimeError('boom')\n")
    monkeypatch.setenv("AFT_AUDITS_PATH", str(tmp_path))
    with pytest.raises(ConfigError, match=r"broken.py: importing this extension failed: RuntimeError: boom"):
        Registry("audit", "audited_ft.audits", "audits").names()
