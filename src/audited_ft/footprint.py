"""Energy and CO2e of a run: per stage and in total, measured where the GPU reported its power, else TDP × wall time.

energy (kWh) = power (W) × wall time (h) / 1000 × PUE;  CO2e (kg) = energy (kWh) × grid intensity (g/kWh) / 1000.

The figures come from the run folder only: stage wall times from ``manifest.json``, the hardware the manifest recorded,
the power/facility/grid settings of ``config.resolved.yaml`` (section ``compute``), and, when the training loop ran
under a :class:`PowerSampler`, the measured GPU energy in ``train/summary.json`` (key ``gpu_power``). Every assumption
is returned with its source, and what the estimate leaves out is listed, so a reviewer can redo the sum.

Blind spots: TDP is a ceiling, not the draw (a GPU under a small model draws far less, a CPU may boost above it);
memory, storage, network, idle time between stages, repeated runs and the hardware's embodied emissions are not counted.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Mapping, Optional

from audited_ft.config import ComputeConfig
from audited_ft.errors import ConfigError, RunFolderError

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


def _settings(settings: Any) -> ComputeConfig:
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
    cfg = _settings(settings)
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
         "source": "audited_ft.footprint.GPU_STAGES; the others run on the CPU"}]
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


# measured power ------------------------------------------------------------------------------------------------------
NVIDIA_SMI = ("nvidia-smi", "--query-gpu=power.draw", "--format=csv,noheader,nounits")


def parse_power_draw(text: str) -> list[Optional[float]]:
    """Watts per GPU from ``nvidia-smi --query-gpu=power.draw --format=csv,noheader,nounits`` output (one line per
    GPU); a line the GPU cannot report ('[N/A]', '[Not Supported]') or that is not a number gives None."""
    out: list[Optional[float]] = []
    for line in text.splitlines():
        line = line.strip().removesuffix("W").strip()
        if not line:
            continue
        try:
            value = float(line)
        except ValueError:
            value = None
        out.append(value if value is not None and value >= 0 and value == value else None)
    return out


class PowerSampler:
    """Polls GPU board power (nvidia-smi ``power.draw``, watts, all GPUs summed) every ``interval_s`` in a thread and
    integrates it over time (trapezoids). Use as a context manager around the training loop, then put
    :meth:`summary` into train/summary.json under ``gpu_power``.

    Without nvidia-smi, or when the GPU reports no power, the sampler is unavailable: no exception, and
    ``summary()['available']`` is false with the reason. Blind spots: board power only (no CPU, memory or host);
    on recent GPUs power.draw is itself a one-second average, so sub-second spikes are smoothed.
    """

    def __init__(self, interval_s: float = 1.0, command: tuple[str, ...] | list[str] = NVIDIA_SMI,
                 timeout_s: float = 5.0):
        self.interval_s, self.command, self.timeout_s = float(interval_s), list(command), float(timeout_s)
        self.samples: list[tuple[float, float]] = []  # (monotonic time, total watts)
        self.gpus, self.failed, self.reason = 0, 0, None
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._start = self._end = None

    def _read(self) -> Optional[float]:
        try:
            out = subprocess.run(self.command, capture_output=True, text=True, timeout=self.timeout_s)
        except (OSError, subprocess.SubprocessError) as exc:
            self.failed += 1
            self.reason = f"{self.command[0]} failed: {type(exc).__name__}"
            return None
        watts = parse_power_draw(out.stdout) if out.returncode == 0 else []
        readable = [w for w in watts if w is not None]
        if not readable:
            self.failed += 1
            self.reason = (f"{self.command[0]} exited {out.returncode}" if out.returncode else
                           f"{self.command[0]} reported no power reading ({out.stdout.strip()[:80] or 'empty'})")
            return None
        self.gpus = max(self.gpus, len(watts))
        self.samples.append((time.monotonic(), sum(readable)))
        return sum(readable)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._read()

    def __enter__(self) -> "PowerSampler":
        self._start = time.monotonic()
        if shutil.which(self.command[0]) is None:
            self.reason = f"{self.command[0]} not found on PATH: GPU power not measured"
        elif self._read() is not None:
            self.reason = None
            self._thread = threading.Thread(target=self._loop, name="PowerSampler", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout_s + self.interval_s + 1)
            self._read()  # a last reading, so the integral reaches the end of the block
        self._end = time.monotonic()

    @property
    def available(self) -> bool:
        return self._thread is not None and bool(self.samples)

    def energy_joules(self) -> float:
        """Integral of the sampled power; the first and last reading are held to the block's start and end."""
        s = self.samples
        if not s:
            return 0.0
        end = self._end if self._end is not None else time.monotonic()
        joules = sum((t1 - t0) * (w0 + w1) / 2 for (t0, w0), (t1, w1) in zip(s, s[1:]))
        return joules + (s[0][0] - self._start) * s[0][1] + max(end - s[-1][0], 0.0) * s[-1][1]

    def summary(self) -> dict:
        """What train/summary.json records under ``gpu_power`` (the footprint reads it)."""
        seconds = ((self._end or time.monotonic()) - self._start) if self._start is not None else 0.0
        base = {"available": self.available, "source": " ".join(self.command), "interval_s": self.interval_s,
                "seconds": round(seconds, 2), "samples": len(self.samples), "failed_samples": self.failed}
        if not self.available:
            return {**base, "reason": self.reason or "sampler not run", "energy_kwh": None}
        joules = self.energy_joules()
        return {**base, "reason": None, "gpus": self.gpus, "energy_kwh": joules / 3.6e6,
                "mean_watts": round(joules / seconds, 1) if seconds > 0 else None,
                "peak_watts": round(max(w for _, w in self.samples), 1)}


# the report's view ---------------------------------------------------------------------------------------------------
def _load(run_dir: Path, rel: str, problems: list[str]) -> Any:
    from audited_ft.runfolder import read_json

    if not (run_dir / rel).is_file():
        return None
    try:
        return read_json(run_dir / rel)
    except RunFolderError as exc:
        problems.append(str(exc))
        return None


def _resolved_compute(run_dir: Path, problems: list[str]) -> dict:
    """The ``compute`` section of config.resolved.yaml ({} when absent: runs from before the section existed)."""
    import yaml

    path = run_dir / "config.resolved.yaml"
    if not path.is_file():
        return {}
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        problems.append(f"{path}: not readable YAML ({type(exc).__name__}); default compute settings used")
        return {}
    section = raw.get("compute") if isinstance(raw, dict) else None
    if section is not None and not isinstance(section, dict):
        raise ConfigError(f"{path}: compute: expected a mapping of settings, got {section!r}")
    return section or {}


def compute_view(run_dir: Path) -> dict:
    """The report's energy/CO2e block, read from the run folder only (absent files tolerated and said so).

    Keys: ``footprint`` (:func:`estimate_footprint` or None), ``why`` (when None), ``problems`` (unreadable files),
    ``gaps`` ((what, why) pairs for the Summary's list of what was not measured), ``sources`` (evidence links).
    """
    run_dir, problems = Path(run_dir), []
    manifest = _load(run_dir, "manifest.json", problems)
    summary = _load(run_dir, "train/summary.json", problems)
    try:
        settings = _settings(_resolved_compute(run_dir, problems))
    except ConfigError as exc:
        raise ConfigError(f"{run_dir / 'config.resolved.yaml'}: {exc}") from None
    hashes = (manifest or {}).get("artefacts") or {}
    sources = [{"path": r, "exists": (run_dir / r).exists(), "sha256": hashes.get(r)}
               for r in ("manifest.json", "train/summary.json", "config.resolved.yaml")]
    if not isinstance(manifest, dict):
        why = "manifest.json is absent or unreadable: no stage wall times to estimate energy from"
        return {"footprint": None, "why": why, "problems": problems, "gaps": [("energy and CO2e", why)],
                "sources": sources}
    fp = estimate_footprint(manifest, summary, settings)
    gaps = []
    if not fp["measured"]:
        reason = ((summary or {}).get(MEASURED_KEY) or {}).get("reason") or "no power meter ran"
        gaps.append(("measured energy", f"energy is an estimate (TDP × wall time), not a measurement: {reason}"))
    if fp["total"]["not_estimated"]:
        gaps.append(("energy of some stages", "not estimated for: " + ", ".join(fp["total"]["not_estimated"])))
    return {"footprint": fp, "why": None, "problems": problems, "gaps": gaps, "sources": sources}
