import shutil
from pathlib import Path

import pytest

from audited_ft.audit.audits import AuditContext
from audited_ft.errors import ConfigError
from audited_ft.registry import Registry

REPO = Path(__file__).resolve().parents[1]


def test_unknown_name_suggests():
    from audited_ft.audit.audits import AUDITS

    with pytest.raises(ConfigError, match="Did you mean 'leakage'"):
        AUDITS.get("leakge")


def test_extension_folder_registers_through_the_same_hook(tmp_path, monkeypatch):
    # The shipped template, activated by copying it without the underscore into a folder on $AFT_AUDITS_PATH.
    shutil.copy(REPO / "audits/_template.py", tmp_path / "target_share.py")
    monkeypatch.setenv("AFT_AUDITS_PATH", str(tmp_path))
    from audited_ft.audit.audits import _base

    fresh = Registry("audit", "audited_ft.audit.audits", "audits")
    monkeypatch.setattr(_base, "AUDITS", fresh)
    import audited_ft.audit.audits as pkg

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
        Registry("audit", "audited_ft.audit.audits", "audits").names()


def test_one_registry_class_serves_audits_probes_sets_and_scorers():
    from audited_ft.audit.audits import AUDITS
    from audited_ft.eval.probes import PROBES
    from audited_ft.eval.scorers import SCORERS, SENTIMENT
    from audited_ft.eval.sets import SETS

    for registry, some in ((AUDITS, "pii"), (PROBES, "rouge"), (SETS, "crows_pairs"), (SCORERS, "jigsaw-bilstm"),
                           (SENTIMENT, "vader")):
        assert isinstance(registry, Registry) and some in registry and some in registry.names()
    with pytest.raises(ConfigError, match="unknown evaluation set 'crows_pair'. Did you mean 'crows_pairs'"):
        SETS.get("crows_pair")
    with pytest.raises(ConfigError, match="unknown toxicity scorer 'jigsaw_bilstm'. Did you mean 'jigsaw-bilstm'"):
        SCORERS.get("jigsaw_bilstm")


def test_a_registry_validates_its_own_config_section():
    from audited_ft.audit.audits import AUDITS
    from audited_ft.eval.probes import PROBES

    assert AUDITS.enabled({"pii": {"enabled": False}}) == ["content", "leakage", "profile"]  # every audit unless disabled
    assert PROBES.enabled({"rouge": {}, "bbq": {"enabled": False}, "bold": None}) == ["rouge", "bold"]  # named only
    assert PROBES.options({"bbq": {"limit": 3}}, "bbq").limit == 3
    errors = PROBES.section_errors({"rogue": {}, "bbq": [1], "bold": {"limit": 0}}, "probes")
    assert errors[0].startswith("probes.rogue: unknown probe 'rogue'. Did you mean 'rouge'?")
    assert errors[1] == "probes.bbq: expected a mapping of options (got [1])"
    assert errors[2].startswith("probes.bold.limit: Input should be greater than or equal to 1 (got 0)")
    assert PROBES.section_errors("not a mapping", "probes") == []  # the Config model reports that one
