"""Folders the tests read: the checkout and the committed sample run folder (a finished run of the default config)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE_RUN = REPO / "tests" / "fixtures" / "sample_run"
