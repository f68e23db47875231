"""Shared fixtures and the skip rules of the markers (gpu, realdata, browser)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    return Path(os.environ.get("AFT_DATA_DIR", REPO.parent / "shared" / "data")).resolve()


def pytest_collection_modifyitems(config, items):
    cuda = _cuda_available()
    have_data = data_dir().is_dir()
    chromium = shutil.which("chromium") or Path("/usr/bin/chromium").exists()
    for item in items:
        if "gpu" in item.keywords and not cuda:
            item.add_marker(pytest.mark.skip(reason="needs CUDA (gpu marker)"))
        if "realdata" in item.keywords and not have_data:
            item.add_marker(pytest.mark.skip(reason=f"public data sets not found at {data_dir()} (set AFT_DATA_DIR)"))
        if "browser" in item.keywords and not chromium:
            item.add_marker(pytest.mark.skip(reason="headless Chromium not installed (apt-get install chromium)"))


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


@pytest.fixture
def repo() -> Path:
    return REPO


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    import json

    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def tiny_rows() -> list[dict]:
    return make_tiny_rows()


def make_tiny_rows() -> list[dict]:
    """40 short dialogue/summary rows of the DialogSum shape."""
    topics = ["a table for two", "a taxi to the station", "a room for three nights", "two cinema tickets",
              "a haircut on Saturday", "a dentist check-up", "a pizza with olives", "a bike repair"]
    rows = []
    for i in range(40):
        t = topics[i % len(topics)]
        rows.append({"id": f"r{i:03d}",
                     "dialogue": f"#Person1#: Hello, I need {t}, case {i}.\n#Person2#: Of course, {t} it is. Anything else?"
                                 f"\n#Person1#: No, thank you, that is all for request {i}.",
                     "summary": f"#Person1# asks for {t} (case {i}) and #Person2# arranges it."})
    return rows
