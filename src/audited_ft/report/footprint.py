"""Energy and CO2e of a run: per stage and in total, measured where the GPU reported its power, else TDP × wall time.

energy (kWh) = power (W) × wall time (h) / 1000 × PUE;  CO2e (kg) = energy (kWh) × grid intensity (g/kWh) / 1000.

The figures come from the run folder only: stage wall times from ``manifest.json``, the hardware the manifest recorded,
the power/facility/grid settings of ``config.resolved.yaml`` (section ``compute``), and, when the training loop ran
under a :class:`~audited_ft.train.power.PowerSampler`, the measured GPU energy in ``train/summary.json`` (key ``gpu_power``). Every assumption
is returned with its source, and what the estimate leaves out is listed, so a reviewer can redo the sum.

Blind spots: TDP is a ceiling, not the draw (a GPU under a small model draws far less, a CPU may boost above it);
memory, storage, network, idle time between stages, repeated runs and the hardware's embodied emissions are not counted.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Optional

from audited_ft.config import ComputeConfig
from audited_ft.errors import ConfigError

MEASURED_KEY = "gpu_power"  # train/summary.json key holding PowerSampler.summary()
GPU_STAGES = ("train", "eval")  # stages that run on the accelerator; data, audit, gate and report run on the CPU

# Known GPU TDPs, matched against torch.cuda.get_device_name() as the manifest records it (first match wins, so the
# PCIe/NVL variants come before the SXM default of the same chip). Figures and where they were checked:
#   H100 PCIe 350 W: NVIDIA H100 PCIe product brief PB-11133-001_v02 (Nov 2022): "maximum thermal design power
#     (TDP) level of 350 W". H100 SXM 700 W: NVIDIA H100 datasheet ("up to 700 W"), echoed by RunPod's H100 FAQ.
#   H100 NVL 400 W, H200 NVL 600 W: One Stop Systems blog on PCIe CEM power (2024). H200 SXM 700 W: NVIDIA H200
#     datasheet as summarised by OpenMetal ("H200 SXM5 ... runs at 700W TDP").
#   A100 SXM4 400 W, A100 PCIe 300 W (80 GB) / 250 W (40 GB): NVIDIA A100 datasheet, tabulated by Thunder Compute's
#     A100 specs guide; 400 W maximum also on TechPowerUp's A100 SXM4 page.
#   L4 72 W: NVIDIA L4 (GTC 2023: "72 W", slot-powered). L40S 350 W: Hugging Face hardware page. T4 70 W.
GPU_TDP: tuple[tuple[str, float, str], ...] = (
    (r"H200.*(NVL|PCIE)", 600.0, "H200 NVL (PCIe)"),
    (r"H200", 700.0, "H200 SXM"),
    (r"H100.*PCIE", 350.0, "H100 PCIe"),
    (r"H100.*NVL", 400.0, "H100 NVL"),
    (r"H100", 700.0, "H100 SXM"),
    (r"A100.*PCIE.*40|A100.*40GB.*PCIE", 250.0, "A100 40GB PCIe"),
    (r"A100.*PCIE", 300.0, "A100 80GB PCIe"),
    (r"A100", 400.0, "A100 SXM4"),
    (r"L40S", 350.0, "L40S"),
    (r"\bL4\b", 72.0, "L4"),
    (r"\bT4\b", 70.0, "T4"),
)
NOT_COUNTED = ("memory, storage and network power", "idle time between stages and waiting for a device",
               "earlier runs (debugging, sweeps) that led to this one",
               "embodied emissions of manufacturing the hardware")


def gpu_tdp(name: Optional[str]) -> Optional[tuple[float, str]]:
    """(watts, matched model) for a GPU name such as 'NVIDIA H100 80GB HBM3', or None when the table lacks it."""
    for pattern, watts, label in GPU_TDP:
        if name and re.search(pattern, name.upper()):
            return watts, label
    return None


def settings_from(settings: Any) -> ComputeConfig:
    if settings is None:
        return ComputeConfig()
    if isinstance(settings, ComputeConfig):
        return settings
    if isinstance(getattr(settings, "compute", None), ComputeConfig):  # a whole Config
        return settings.compute
    if isinstance(settings, Mapping):
        from pydantic import ValidationError

        try:
            return ComputeConfig(**settings)
        except ValidationError as exc:
            problems = "; ".join(f"compute.{'.'.join(map(str, e['loc']))}: {e['msg']} (got {e.get('input')!r})"
                                 for e in exc.errors())
            raise ConfigError(f"compute settings are not well-formed: {problems}") from None
    raise ConfigError(f"compute settings: expected a mapping or ComputeConfig, got {type(settings).__name__}")


def measured_energy(train_summary: Optional[dict]) -> Optional[dict]:
    """The measured GPU energy in ``train/summary.json`` (``gpu_power`` with available true), or None."""
    power = (train_summary or {}).get(MEASURED_KEY)
    if not isinstance(power, dict) or not power.get("available"):
        return None
    kwh, seconds = power.get("energy_kwh"), power.get("seconds")
    if not _number(kwh) or not _number(seconds) or kwh < 0 or seconds < 0:
        return None
    return power


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _source(cfg: ComputeConfig, name: str, default_text: str) -> str:
    return f"config compute.{name}" if name in cfg.model_fields_set else f"default: {default_text}"


def _power(cfg: ComputeConfig, hardware: dict) -> dict:
    """Watts per device for CPU and GPU stages, with the assumption rows behind them."""
    cores = cfg.cpu_cores or hardware.get("cpu_count")
    cores = cores if _number(cores) and cores > 0 else None
    rows = [{"name": "CPU power", "value": f"{cfg.cpu_watts_per_core:g} W per core × {cores or '?'} cores",
             "source": _source(cfg, "cpu_watts_per_core", "server CPU TDP per core, rounded up (Xeon E5-2683 v4: "
                               "120 W / 16 cores = 7.5 W); the Green Algorithms method (Lannelongue et al. 2021)")},
            {"name": "CPU cores counted", "value": cores or "not recorded",
             "source": "config compute.cpu_cores" if cfg.cpu_cores else
             "manifest hardware.cpu_count (logical CPUs, all counted busy: an upper bound)"}]
    out = {"cpu_units": cores, "cpu_watts": cfg.cpu_watts_per_core * cores if cores else None,
           "gpu_units": None, "gpu_watts": None, "gpu_why": None, "rows": rows}
    if hardware.get("device") != "cuda":
        return out
    count = hardware.get("gpu_count") if _number(hardware.get("gpu_count")) else 1
    name = hardware.get("gpu_name")
    known = gpu_tdp(name)
    if cfg.gpu_watts is not None:
        per, src = cfg.gpu_watts, "config compute.gpu_watts"
    elif known:
        per, src = known[0], f"TDP of the {known[1]} (vendor datasheet), matched from the GPU name {name!r}"
    else:
        per, src = None, f"GPU {name or '(name not recorded)'!r} is not in the TDP table: set compute.gpu_watts"
        out["gpu_why"] = src
    out.update(gpu_units=count, gpu_watts=per * count if per else None)
    rows.append({"name": "GPU power", "value": f"{per:g} W per GPU × {count} GPU" if per else "unknown", "source": src})
    return out


def _stage_row(name: str, st: dict, power: dict, cfg: ComputeConfig, measured: Optional[dict]) -> dict:
    gpu = power["gpu_units"] is not None and name in GPU_STAGES
    units, watts = (power["gpu_units"], power["gpu_watts"]) if gpu else (power["cpu_units"], power["cpu_watts"])
    seconds = st.get("seconds") if _number(st.get("seconds")) else None
    row = {"stage": name, "status": st.get("status", "not recorded"), "seconds": seconds,
           "hardware": "GPU" if gpu else "CPU", "units": units, "unit_label": "GPU-hours" if gpu else "CPU core-hours",
           "device_hours": seconds / 3600 * units if seconds is not None and units else None,
           "watts": watts, "energy_kwh": None, "co2e_kg": None, "method": "TDP × wall time", "note": None}
    if seconds is None:
        row.update(method="not estimated", note="no wall time recorded for this stage")
        return row
    if measured is not None and name == "train":
        rest = max(seconds - float(measured["seconds"]), 0.0)
        kwh = float(measured["energy_kwh"])
        row["method"] = "measured GPU power"
        if rest > 0.5:
            if watts is None:
                row.update(method="not estimated", note=f"{rest:.0f} s of the stage fall outside the measured "
                           f"loop and the device power is unknown ({power['gpu_why'] or 'no core count'})")
                return row
            kwh += watts * rest / 3.6e6
            row["method"] = f"measured GPU power ({measured['seconds']:.0f} s) + TDP × wall time ({rest:.0f} s)"
    elif watts is None:
        row.update(method="not estimated", note=power["gpu_why"] if gpu else "CPU core count not recorded")
        return row
    else:
        kwh = watts * seconds / 3.6e6
    row["energy_kwh"] = kwh * cfg.pue
    row["co2e_kg"] = row["energy_kwh"] * cfg.grid_gco2e_per_kwh / 1000
    return row


def estimate_footprint(manifest: dict, train_summary: dict | None, settings: Any = None) -> dict:
    """Per-stage and total device-hours, energy (kWh) and CO2e (kg) of a run, with the method and every assumption.

    ``manifest`` is the run's manifest.json (stages with ``seconds``, ``hardware``); ``train_summary`` its
    train/summary.json or None; ``settings`` a :class:`ComputeConfig`, a whole Config, a mapping of its fields, or None
    for the defaults. Stages without a wall time, or on a GPU of unknown power, are listed as not estimated and the
    totals say so (``complete`` false); nothing is guessed silently.
    """
    cfg = settings_from(settings)
    manifest = manifest if isinstance(manifest, dict) else {}
    hardware = manifest.get("hardware") if isinstance(manifest.get("hardware"), dict) else {}
    stages = manifest.get("stages") if isinstance(manifest.get("stages"), dict) else {}
    measured = measured_energy(train_summary)
    power = _power(cfg, hardware)
    rows = [_stage_row(n, st if isinstance(st, dict) else {}, power, cfg, measured) for n, st in stages.items()]
    known = [r for r in rows if r["energy_kwh"] is not None]
    total = {"seconds": sum(r["seconds"] or 0 for r in rows),
             "cpu_core_hours": sum(r["device_hours"] or 0 for r in rows if r["hardware"] == "CPU"),
             "gpu_hours": sum(r["device_hours"] or 0 for r in rows if r["hardware"] == "GPU"),
             "energy_kwh": sum(r["energy_kwh"] for r in known) if known else None,
             "co2e_kg": sum(r["co2e_kg"] for r in known) if known else None,
             "complete": bool(rows) and len(known) == len(rows),
             "not_estimated": [r["stage"] for r in rows if r["energy_kwh"] is None]}
    methods = {("measured" if r["method"].startswith("measured") else "tdp") for r in known}
    method = ("measured GPU power" if methods == {"measured"} else "TDP × wall time" if methods == {"tdp"}
              else "measured GPU power (train), TDP × wall time (other stages)" if methods else "not estimated")
    assumptions = power["rows"] + [
        {"name": "PUE", "value": cfg.pue, "source": _source(cfg, "pue", "industry average 2023, Uptime Institute "
                                                                  "Global Data Center Survey 2023")},
        {"name": "grid intensity (g CO2e / kWh)", "value": cfg.grid_gco2e_per_kwh,
         "source": f"{cfg.grid_source} ({'config' if 'grid_gco2e_per_kwh' in cfg.model_fields_set else 'default'})"},
        {"name": "stages on the GPU", "value": ", ".join(GPU_STAGES) if power["gpu_units"] else "none (CPU run)",
         "source": "audited_ft.report.footprint.GPU_STAGES; the others run on the CPU"}]
    if measured is not None:
        assumptions.append({"name": "measured GPU energy", "value": (
            f"{measured['energy_kwh']:.6f} kWh over {measured['seconds']:.0f} s, {measured.get('samples', '?')} "
            f"samples, mean {measured.get('mean_watts', '?')} W"), "source": f"train/summary.json {MEASURED_KEY} "
                                                                            f"({measured.get('source', 'nvidia-smi')})"})
    not_counted = list(NOT_COUNTED) + (["host CPU power during GPU stages"] if power["gpu_units"] else []) + (
        ["GPU power outside the training loop is TDP, not measured"] if measured is not None else [])
    return {"method": method, "device": hardware.get("device", "not recorded"), "stages": rows, "total": total,
            "assumptions": assumptions, "not_counted": not_counted, "measured": measured is not None,
            "settings": cfg.model_dump()}
