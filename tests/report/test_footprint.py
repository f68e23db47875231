"""Energy / CO2e estimate (audited_ft.report.footprint): literal figures, settings, measured power, absent inputs, the view."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from audited_ft.config import ComputeConfig
from audited_ft.errors import ConfigError
from audited_ft.report.footprint import estimate_footprint, gpu_tdp
from audited_ft.report.sections.compute import compute_view as _compute_view
from audited_ft.run.view import RunView

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "tests" / "fixtures" / "sample_run"
ONE_PERCENT = dict(rel=1e-2)


def _manifest(stages: dict, **hardware) -> dict:
    return {"stages": {n: {"status": "done", "seconds": s} for n, s in stages.items()},
            "hardware": {"cpu_count": 2, "device": "cpu", **hardware}}


def _cpu_settings(**kw) -> ComputeConfig:
    return ComputeConfig(**{"cpu_watts_per_core": 10, "pue": 1.0, "grid_gco2e_per_kwh": 400, **kw})


def test_literal_cpu_figures():
    fp = estimate_footprint(_manifest({"train": 3600}), None, _cpu_settings())
    (row,) = fp["stages"]
    assert row["hardware"] == "CPU" and row["units"] == 2 and row["watts"] == 20
    assert row["device_hours"] == pytest.approx(2.0) and row["unit_label"] == "CPU core-hours"
    assert row["energy_kwh"] == pytest.approx(0.02) and row["co2e_kg"] == pytest.approx(0.008)
    assert fp["method"] == "TDP × wall time" and fp["measured"] is False
    assert fp["total"]["energy_kwh"] == pytest.approx(0.02) and fp["total"]["complete"] is True
    names = {a["name"]: a for a in fp["assumptions"]}
    assert names["PUE"]["value"] == 1.0 and names["PUE"]["source"] == "config compute.pue"
    assert "400" in str(names["grid intensity (g CO2e / kWh)"]["value"])


@pytest.mark.parametrize("change, kwh, kg", [
    ({"pue": 1.5}, 0.03, 0.012),
    ({"grid_gco2e_per_kwh": 100}, 0.02, 0.002),
    ({"cpu_cores": 1}, 0.01, 0.004),
    ({"cpu_watts_per_core": 5}, 0.01, 0.004),
])
def test_settings_change_the_result(change, kwh, kg):
    fp = estimate_footprint(_manifest({"train": 3600}), None, _cpu_settings(**change))
    assert fp["total"]["energy_kwh"] == pytest.approx(kwh) and fp["total"]["co2e_kg"] == pytest.approx(kg)


def test_settings_as_mapping_and_defaults_documented():
    as_dict = estimate_footprint(_manifest({"eval": 1800}), None, {"cpu_watts_per_core": 10, "pue": 1,
                                                                   "grid_gco2e_per_kwh": 400})
    assert as_dict["total"]["energy_kwh"] == pytest.approx(0.01)
    default = estimate_footprint(_manifest({"eval": 3600}), None, None)
    # Defaults: 10 W/core, PUE 1.58 (Uptime 2023), 481 g/kWh (Ember, world 2023).
    assert default["total"]["energy_kwh"] == pytest.approx(0.02 * 1.58)
    assert default["total"]["co2e_kg"] == pytest.approx(0.02 * 1.58 * 0.481)
    assert all(a["source"] for a in default["assumptions"])
    with pytest.raises(ConfigError, match=r"compute\.pue.*0\.5"):
        estimate_footprint(_manifest({"eval": 1}), None, {"pue": 0.5})


@pytest.mark.parametrize("name, watts", [("NVIDIA H100 80GB HBM3", 700), ("NVIDIA H100 PCIe", 350),
                                         ("NVIDIA H100 NVL", 400), ("NVIDIA A100-SXM4-80GB", 400),
                                         ("NVIDIA A100 80GB PCIe", 300), ("NVIDIA L4", 72), ("NVIDIA L40S", 350),
                                         ("NVIDIA H200", 700), ("Tesla T4", 70)])
def test_gpu_tdp_table(name, watts):
    assert gpu_tdp(name)[0] == watts


def test_gpu_run_uses_tdp_on_gpu_stages_and_cpu_elsewhere():
    m = _manifest({"data": 3600, "train": 3600, "eval": 1800}, device="cuda", gpu_name="NVIDIA H100 80GB HBM3",
                  gpu_count=2)
    fp = estimate_footprint(m, None, _cpu_settings())
    rows = {r["stage"]: r for r in fp["stages"]}
    assert rows["data"]["hardware"] == "CPU" and rows["data"]["energy_kwh"] == pytest.approx(0.02)
    assert rows["train"]["hardware"] == "GPU" and rows["train"]["energy_kwh"] == pytest.approx(1.4)  # 2 × 700 W × 1 h
    assert rows["eval"]["device_hours"] == pytest.approx(1.0) and rows["eval"]["energy_kwh"] == pytest.approx(0.7)
    assert fp["total"]["gpu_hours"] == pytest.approx(3.0) and fp["total"]["cpu_core_hours"] == pytest.approx(2.0)
    assert "host CPU power during GPU stages" in fp["not_counted"]
    override = estimate_footprint(m, None, _cpu_settings(gpu_watts=100))
    assert {r["stage"]: r for r in override["stages"]}["train"]["energy_kwh"] == pytest.approx(0.2)


def test_unknown_gpu_is_not_estimated_and_says_so():
    m = _manifest({"data": 10, "train": 3600}, device="cuda", gpu_name="Mystery Accelerator 9000", gpu_count=1)
    fp = estimate_footprint(m, None, _cpu_settings())
    train = {r["stage"]: r for r in fp["stages"]}["train"]
    assert train["energy_kwh"] is None and "compute.gpu_watts" in train["note"]
    assert fp["total"]["complete"] is False and fp["total"]["not_estimated"] == ["train"]
    assert fp["total"]["energy_kwh"] == pytest.approx(20 * 10 / 3.6e6)


def test_measured_gpu_energy_takes_precedence_for_train():
    m = _manifest({"train": 3700, "eval": 3600}, device="cuda", gpu_name="NVIDIA H100 PCIe", gpu_count=1)
    summary = {"gpu_power": {"available": True, "energy_kwh": 0.25, "seconds": 3600, "samples": 3600,
                             "mean_watts": 250.0, "source": "nvidia-smi"}}
    fp = estimate_footprint(m, summary, _cpu_settings(pue=1.2))
    rows = {r["stage"]: r for r in fp["stages"]}
    # 0.25 kWh measured + 100 s outside the loop at 350 W, times PUE 1.2
    assert rows["train"]["energy_kwh"] == pytest.approx((0.25 + 350 * 100 / 3.6e6) * 1.2)
    assert rows["train"]["method"].startswith("measured GPU power")
    assert rows["eval"]["method"] == "TDP × wall time"
    assert fp["method"] == "measured GPU power (train), TDP × wall time (other stages)" and fp["measured"]
    unavailable = {"gpu_power": {"available": False, "reason": "nvidia-smi not found", "energy_kwh": None}}
    assert estimate_footprint(m, unavailable, _cpu_settings())["method"] == "TDP × wall time"


def test_absent_inputs_are_tolerated():
    empty = estimate_footprint({}, None, None)
    assert empty["stages"] == [] and empty["total"]["energy_kwh"] is None and empty["total"]["complete"] is False
    m = {"stages": {"train": {"status": "error"}, "eval": {"status": "done", "seconds": 36}}}  # no hardware
    fp = estimate_footprint(m, None, _cpu_settings())
    rows = {r["stage"]: r for r in fp["stages"]}
    assert rows["train"]["note"] == "no wall time recorded for this stage"
    assert rows["eval"]["energy_kwh"] is None and rows["eval"]["note"] == "CPU core count not recorded"
    assert estimate_footprint(m, None, _cpu_settings(cpu_cores=4))["total"]["energy_kwh"] == pytest.approx(4e-4)


# measured power ------------------------------------------------------------------------------------------------------
@pytest.fixture
def run_copy(tmp_path) -> Path:
    run = tmp_path / "run"
    for rel in ("manifest.json", "config.resolved.yaml", "train/summary.json"):
        (run / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SAMPLE / rel, run / rel)
    return run


def test_compute_view_on_sample_run(run_copy):
    v = compute_view(run_copy)
    fp = v["footprint"]
    assert fp["device"] == "cpu" and [r["stage"] for r in fp["stages"]][:3] == ["data", "audit", "train"]
    train = {r["stage"]: r for r in fp["stages"]}["train"]  # 245.38 s × 2 cores × 10 W × PUE 1.58
    assert train["energy_kwh"] == pytest.approx(245.38 * 20 / 3.6e6 * 1.58)
    assert any(g[0] == "measured energy" for g in v["gaps"]) and v["problems"] == []
    with open(run_copy / "config.resolved.yaml", "a", encoding="utf-8") as fh:
        fh.write("compute: {pue: 1.0, grid_gco2e_per_kwh: 0, grid_source: hydro contract}\n")
    v2 = compute_view(run_copy)
    assert v2["footprint"]["total"]["co2e_kg"] == 0
    assert any("hydro contract" in a["source"] for a in v2["footprint"]["assumptions"])


def test_compute_view_absent_and_bad_files(run_copy, tmp_path):
    (run_copy / "train" / "summary.json").write_text("{not json", encoding="utf-8")
    v = compute_view(run_copy)
    assert v["footprint"] is not None and "summary.json" in v["problems"][0]
    empty = compute_view(tmp_path / "nothing-here")
    assert empty["footprint"] is None and "manifest.json" in empty["why"]
    with open(run_copy / "config.resolved.yaml", "a", encoding="utf-8") as fh:
        fh.write("compute: {pue: -3}\n")
    with pytest.raises(ConfigError, match=r"config\.resolved\.yaml.*compute\.pue.*-3"):
        compute_view(run_copy)


def test_footprint_template_renders_and_escapes(run_copy):
    from audited_ft.report.format import environment as _environment
    from audited_ft.report.format import template_dir

    m = json.loads((run_copy / "manifest.json").read_text())
    m["stages"]["<script>x</script>"] = {"status": "<b>done</b>", "seconds": 1}
    (run_copy / "manifest.json").write_text(json.dumps(m))
    view = compute_view(run_copy)
    html = _environment(template_dir()).from_string('{% include "sections/_footprint.html.j2" %}').render(
        footprint=view)
    assert "<script>x" not in html and "&lt;script&gt;x" in html and "<b>done" not in html
    assert "TDP × wall time" in html and "Not counted:" in html
    assert f"{view['footprint']['total']['energy_kwh']:.6f}" in html
    assert "Uptime Institute" in html and "Ember" in html


def compute_view(run_dir):
    """The section view on a run folder that may lack its manifest."""
    return _compute_view(RunView(run_dir, manifest_required=False))
