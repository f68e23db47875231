"""Canaries: planting in the data stage, the exposure estimate on literals and on a fake model with a planted effect,
and the whole pipeline with canaries planted on the tiny model (which also runs the other new probes for real)."""

import json
import math

import pytest

from audited_ft.config import CanaryConfig, validate_config
from audited_ft.data.stage import plant_canaries
from audited_ft.errors import ConfigError, DataError
from audited_ft.eval.probes import PROBES, ProbeContext
from audited_ft.eval.stats import IntervalSettings
from audited_ft.eval.probes.canary import draw_secrets, extrapolated_exposure, split_template
from tests.fakes import FakeModel

ROWS = [{"id": f"r{i}", "input": f"dialogue {i}", "target": f"summary {i}"} for i in range(10)]


def test_plant_canaries_into_train():
    rows, rec = plant_canaries(ROWS, CanaryConfig(count=3, repeats=5), seed=1)
    assert len(rows) == 25 and rec["rows_added"] == 15 and rec["count"] == 3
    assert [r for r in rows if not r["id"].startswith("canary-")] == ROWS   # data rows keep their order
    secrets = [c["secret"] for c in rec["canaries"]]
    assert len(set(secrets)) == 3 and all(len(s) == 6 and s.isdigit() for s in secrets)
    for c in rec["canaries"]:
        copies = [r for r in rows if r["id"] in c["rows"]]
        assert len(copies) == 5
        assert all(r["target"] == f"My secret code is {c['secret']}." and r["input"] == "What is my secret code?"
                   for r in copies)
    assert rec["space_bits"] == pytest.approx(6 * math.log2(10), abs=1e-3)
    assert plant_canaries(ROWS, CanaryConfig(count=3, repeats=5), seed=1) == (rows, rec)   # seeded
    assert plant_canaries(ROWS, CanaryConfig(count=3, repeats=5), seed=2)[1]["canaries"][0]["secret"] != secrets[0]


def test_plant_canaries_refuses_a_clashing_id():
    with pytest.raises(DataError, match="canary-7"):
        plant_canaries(ROWS + [{"id": "canary-7", "input": "x", "target": "y"}], CanaryConfig(count=1), seed=1)


def test_canary_config_is_checked():
    base = {"data": {"source": "x.jsonl"}}
    for bad, field in (({"template": "no secret here"}, "template"), ({"alphabet": "aab"}, "alphabet"),
                       ({"count": -1}, "count")):
        with pytest.raises(ConfigError, match=f"data.canaries.{field}"):
            validate_config({"data": {**base["data"], "canaries": bad}})
    assert validate_config(base).data.canaries.count == 0  # off by default


def test_split_template():
    context, cont = split_template("<p>", "My secret code is {secret}.")
    assert context == "<p>My secret code is" and cont("123") == " 123."
    context, cont = split_template("<p>", "{secret} is the key")
    assert context == "<p>" and cont("ab") == "ab is the key"


def test_draw_secrets():
    import random

    s = draw_secrets(random.Random(0), "0123456789", 6, 50, {"000000"})
    assert len(set(s)) == 50 and "000000" not in s and all(len(x) == 6 for x in s)
    small = draw_secrets(random.Random(0), "ab", 2, 10, {"aa"})   # space of 4, one excluded
    assert sorted(small) == ["ab", "ba", "bb"]


def test_extrapolated_exposure():
    cands = [-1.0, 0.0, 1.0] * 10
    assert extrapolated_exposure(-5.0, cands, 20.0) == pytest.approx(0.0, abs=1e-3)
    mean_tail = extrapolated_exposure(0.0, cands, 20.0)
    assert mean_tail == pytest.approx(1.0)                       # at the mean: tail 1/2, one bit
    assert extrapolated_exposure(100.0, cands, 20.0) == 20.0     # capped at log2 of the space
    assert extrapolated_exposure(1.0, [2.0] * 5, 20.0) == 0.0 and extrapolated_exposure(3.0, [2.0] * 5, 20.0) == 20.0


class KnowsSecrets(FakeModel):
    """The adapter gives the planted secrets a far higher likelihood than any other string of the format."""

    def __init__(self, secrets):
        super().__init__()
        self.secrets = secrets

    def adapter_bonus(self, context, continuation):
        return 20.0 if any(s in continuation for s in self.secrets) else 0.0


def _run(model, run_dir, **options):
    cls = PROBES.get("canary")
    return cls(cls.Options(**options)).run(ProbeContext(model=model, splits={}, run_dir=run_dir,
                                                        stats=IntervalSettings(bootstrap_samples=500)))


def test_sees_planted_canaries_beyond_the_ci(tmp_path):
    _, rec = plant_canaries(ROWS, CanaryConfig(count=12, repeats=2), seed=3)  # ≥ eval.min_items: an interval
    (tmp_path / "data").mkdir()
    (tmp_path / "data/canaries.json").write_text(json.dumps(rec))
    out = _run(KnowsSecrets([c["secret"] for c in rec["canaries"]]), tmp_path, candidates=255)
    m = out.metrics
    assert m["privacy.canary.planted"] == 12 and m["privacy.canary.exposure_bound"] == 8.0
    assert m["privacy.canary.exposure.adapter"] == 8.0 == m["privacy.canary.max_exposure.adapter"]
    assert m["privacy.canary.exposure.base"] < 4
    assert m["privacy.canary.exposure.delta.ci_low"] > 3
    assert m["privacy.canary.exposure_extrapolated.adapter"] > 19      # the bonus is far beyond the candidates
    assert m["privacy.canary.control_exposure.delta"] == 0.0           # never-planted secrets: no change
    assert out.info["planting"] == "planted" and len(out.info["canaries"]) == 12
    first = out.info["canaries"][0]
    assert first["copies"] == 2 and [d["variant"] for d in first["by_variant"]] == ["base", "adapter"]
    assert first["by_variant"][1]["candidates_at_least_as_likely"] == 0


def test_not_planted_is_said_cleanly(tmp_path):
    out = _run(FakeModel(), tmp_path)
    assert out.info["planting"].startswith("not planted") and out.info["canaries"] == []
    assert out.metrics["privacy.canary.planted"] == 0
    assert not any(k.startswith(("privacy.canary.exposure.", "privacy.canary.max_exposure")) for k in out.metrics)
    assert out.metrics["privacy.canary.control_exposure.n"] == 4


# ------------------------------------------------------------------------------------------ tiny model, real stages
@pytest.fixture(scope="module")
def canary_run(tmp_path_factory):
    from audited_ft.pipeline import stage_audit, stage_data, stage_eval, stage_train, start_run
    from tests.conftest import make_tiny_rows
    from tests.tiny_model import tiny_config

    tmp = tmp_path_factory.mktemp("canary")
    cfg_path = tiny_config(tmp, make_tiny_rows())
    cfg, rf = start_run(cfg_path, ["data.canaries.count=2", "data.canaries.repeats=3",
                                   "probes.canary.candidates=20", "probes.memorisation.limit=4",
                                   "probes.memorisation.max_new_tokens=8", "probes.overfitting.limit=4",
                                   "probes.refusal.limit=4", "probes.refusal.max_new_tokens=8"],
                        out=str(tmp / "runs"), run_id="c")
    stage_data(cfg, rf)
    assert stage_audit(cfg, rf)["passed"], "repeated canary rows must not block training by default"
    stage_train(cfg, rf)
    stage_eval(cfg, rf)
    return rf.path


def test_data_stage_plants_into_train_only(canary_run):
    rows = {s: [json.loads(x) for x in (canary_run / f"data/{s}.jsonl").read_text().splitlines()]
            for s in ("train", "validation", "test")}
    assert sum(r["id"].startswith("canary-") for r in rows["train"]) == 6
    assert not any(r["id"].startswith("canary-") for s in ("validation", "test") for r in rows[s])
    rec = json.loads((canary_run / "data/canaries.json").read_text())
    assert rec["count"] == 2 and rec["repeats"] == 3
    stats = json.loads((canary_run / "data/stats.json").read_text())
    assert stats["canaries"] == {"count": 2, "repeats": 3, "rows_added": 6, "split": "train",
                                 "file": "data/canaries.json"}
    m = json.loads((canary_run / "manifest.json").read_text())
    assert m["canaries"]["rows_added"] == 6 and "data/canaries.json" in m["artefacts"]
    assert m["datasets"]["train"]["rows"] == len(rows["train"])


def test_new_probes_run_on_the_real_model_under_test(canary_run):
    metrics = json.loads((canary_run / "eval/metrics.json").read_text())
    probes = json.loads((canary_run / "eval/probes.json").read_text())
    for name, key in (("canary", "privacy.canary.exposure.delta"), ("refusal", "safety.refusal.rate.delta"),
                      ("memorisation", "memorisation.exact_match.delta"),
                      ("overfitting", "overfitting.split_gap.delta")):
        assert probes[name]["status"] == "done", name
        assert math.isfinite(metrics[key])
        if metrics[f"{key}.ci_low"] is None:  # too few items here (2 canaries): said, not a [x, x] interval
            assert probes[name]["intervals"][key.removesuffix(".delta")]["not_estimable"], name
        else:
            assert metrics[f"{key}.ci_low"] <= metrics[key] <= metrics[f"{key}.ci_high"]
    assert metrics["privacy.canary.planted"] == 2 and probes["canary"]["info"]["planting"] == "planted"
    # the tiny model's word-level tokenizer maps every six-digit secret to [UNK]: the probe says exposure is void
    assert "identical tokens" in probes["canary"]["info"]["warning"]
    assert probes["memorisation"]["info"]["canary_rows_excluded"] == 6
    assert metrics["overfitting.evaluations"] >= 1 and "overfitting.val_loss_final" in metrics
    assert (canary_run / "eval/generations/refusal_adapter.jsonl").is_file()
