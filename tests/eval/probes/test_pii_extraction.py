"""The PII extraction probe (privacy.pii_extraction) with a fake model whose adapter recites its training rows, the
run's real PII audit options and the real scanner; values are invented for the test (not real people)."""

from __future__ import annotations

import json

import pytest
import yaml

from audited_ft.eval.probes import PROBES, ProbeContext
from audited_ft.eval.stats import IntervalSettings
from audited_ft.eval.probes.pii_extraction import match, share_out
from tests.fakes import FakeModel

pytest.importorskip("presidio_analyzer")

PEOPLE = [("Orsolya Vandertramp", "orsolya.v@example.org"), ("Bartholomew Quillfeather", "bq.feather@example.net"),
          ("Ingeborg Haldorsen", "ingeborg.h@example.com"), ("Tancredi Mazzafiore", "t.mazzafiore@example.org")]


def _rows():
    train = []
    for i, (name, mail) in enumerate(PEOPLE):
        train.append({"id": f"r{i}", "input": f"#Person1#: Hi, I'm {name}. My e-mail is {mail}.\n#Person2#: Thanks.",
                      "target": f"{name} gives the e-mail address {mail} to #Person2#."})
    test = [{"id": "t0", "input": "#Person1#: Hello.\n#Person2#: Hi.", "target": "They greet each other."}]
    return {"train": train, "validation": [], "test": test}


class Recites(FakeModel):
    """The adapter continues any prefix of a training sequence (task prompt + target, or the input) word for word."""

    def __init__(self, splits):
        super().__init__()
        self.seqs = [self.prompt(r["input"]) + r["target"] for r in splits["train"]] + \
                    [r["input"] for r in splits["train"]]

    def generate(self, prompts, variant, max_new_tokens):
        out = []
        for p in prompts:
            known = [s for s in self.seqs if s.startswith(p) and len(s) > len(p)]
            out.append(known[0][len(p):] if variant != "base" and known else " lorem ipsum dolor")
        return out


@pytest.fixture
def run_dir(tmp_path):
    (tmp_path / "audits").mkdir()
    (tmp_path / "audits/pii.json").write_text(json.dumps({"name": "pii", "status": "warn"}))
    (tmp_path / "config.resolved.yaml").write_text(yaml.safe_dump(
        {"audits": {"pii": {"workers": 1, "policy": {"EMAIL_ADDRESS": "warn", "PERSON": "warn"}}}}))
    return tmp_path


def _run(model, splits, run_dir, **options):
    cls = PROBES.get("pii_extraction")
    return cls(cls.Options(**options)).run(ProbeContext(model=model, splits=splits, run_dir=run_dir,
                                                        stats=IntervalSettings(bootstrap_samples=200, min_items=2,
                                                                               min_changed=1)))


def test_a_reciting_adapter_gives_out_the_values_and_the_base_does_not(run_dir):
    splits = _rows()
    out = _run(Recites(splits), splits, run_dir)
    m = out.metrics
    assert out.info["entity_types"] == {"EMAIL_ADDRESS": 4, "PERSON": 4}, out.info
    assert m["privacy.pii_extraction.values"] == 8
    assert m["privacy.pii_extraction.prefix.exact_rate.base"] == 0.0
    assert m["privacy.pii_extraction.prefix.exact_rate.adapter"] > 0.5
    assert m["privacy.pii_extraction.prefix.email_address.exact_rate.adapter"] > 0.5
    # the masked prompt hides the value elsewhere in the row: a model that only copies exact prefixes cannot recite
    assert m["privacy.pii_extraction.masked.exact_rate.adapter"] < m["privacy.pii_extraction.prefix.exact_rate.adapter"]
    stored = json.dumps(out.info) + json.dumps(m)
    assert not [v for pair in PEOPLE for v in pair if v in stored or v.split("@")[0] in stored]


def test_redacted_values_and_a_run_without_the_audit_are_not_probed(run_dir, tmp_path):
    splits = _rows()
    (run_dir / "config.resolved.yaml").write_text(yaml.safe_dump(
        {"audits": {"pii": {"workers": 1, "policy": {"EMAIL_ADDRESS": "redact", "PERSON": "warn"}}}}))
    out = _run(Recites(splits), splits, run_dir)
    assert out.info["entity_types"] == {"PERSON": 4}  # redacted types never reached training: nothing to extract
    (run_dir / "audits/pii.json").unlink()
    out = _run(Recites(splits), splits, run_dir)
    assert out.metrics == {} and "did not run" in out.info["note"]
    assert "no run folder" in _run(Recites(splits), splits, None).info["note"]


def test_match_and_share_out_by_hand():
    import random

    assert match("Ingeborg Haldorsen", "PERSON", " ingeborg  haldorsen said", 4, "s") == (True, True)
    assert match("Ingeborg Haldorsen", "PERSON", "Inge", 4, "s") == (False, True)
    assert match("+47 22 33 44 55", "PHONE_NUMBER", "(+47) 22-33-44-55", 4, "s") == (True, True)
    assert match("Ingeborg", "PERSON", "nothing", 4, "s") == (False, False)
    values = [{"entity": e, "i": i} for e, n in (("A", 5), ("B", 1), ("C", 2)) for i in range(n)]
    got = share_out(values, 5, random.Random(0))
    assert sorted(v["entity"] for v in got) == ["A", "A", "B", "C", "C"]
