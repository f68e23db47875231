"""GPU power sampling during training (nvidia-smi parsed, integrated over time; unavailable without it, said so)."""

import shutil
import sys
import time

import pytest

from audited_ft.train.power import PowerSampler, parse_power_draw

ONE_PERCENT = dict(rel=1e-2)


@pytest.mark.parametrize("text, expected", [
    ("312.45\n", [312.45]),
    ("  71.20 \n 68.03\n", [71.2, 68.03]),
    ("[N/A]\n", [None]),
    ("[Not Supported]\n55.5\n", [None, 55.5]),
    ("120.5 W\n", [120.5]),
    ("", []),
])
def test_parse_power_draw(text, expected):
    assert parse_power_draw(text) == expected


def test_sampler_unavailable_without_nvidia_smi():
    with PowerSampler(command=("surely-not-nvidia-smi-7f3a",)) as s:
        pass
    out = s.summary()
    assert out["available"] is False and "not found on PATH" in out["reason"] and out["energy_kwh"] is None
    if shutil.which("nvidia-smi") is None:  # this CPU machine: the real default command is unavailable too
        with PowerSampler() as real:
            pass
        assert real.summary()["available"] is False and "nvidia-smi" in real.summary()["reason"]


def test_sampler_unavailable_when_gpu_reports_no_power():
    with PowerSampler(command=(sys.executable, "-c", "print('[N/A]')")) as s:
        pass
    assert s.summary()["available"] is False and "no power reading" in s.summary()["reason"]


def test_sampler_integrates_constant_power():

    cmd = (sys.executable, "-c", "print('100.0'); print('50.0')")  # two GPUs, 150 W together
    with PowerSampler(interval_s=0.05, command=cmd) as s:
        time.sleep(0.4)
    out = s.summary()
    assert out["available"] and out["gpus"] == 2 and out["samples"] >= 3 and out["peak_watts"] == 150.0
    assert out["energy_kwh"] * 3.6e6 == pytest.approx(150.0 * (s._end - s._start), **ONE_PERCENT)
    assert out["mean_watts"] == pytest.approx(150.0, abs=1.0)


# the report's view ---------------------------------------------------------------------------------------------------
