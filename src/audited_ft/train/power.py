"""GPU power measured while training: nvidia-smi polled in a thread and integrated over time.

The training stage runs its loop inside a :class:`PowerSampler` and records :meth:`PowerSampler.summary` in
``train/summary.json`` under ``gpu_power``; the report's compute section (``report.footprint``) prefers that measurement
to its TDP × wall-time estimate.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from typing import Any, Optional

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
