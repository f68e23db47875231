"""What the terminal shows, and the run's full log.

By default the terminal gets this project's own lines (stage starts and ends, audit and gate results, warnings) and
one progress bar per long step where stderr is a terminal; libraries' progress bars (weights loading, dataset maps,
the trainer's bars and log dicts) and their warnings are kept off it. ``-v`` (or ``AFT_DEBUG=1``) shows everything.
Either way every record, libraries' and Python warnings included, goes to ``run.log`` in the run folder while a
command holds it (:func:`log_to`). Piped output (no TTY, CI) gets plain lines and no bars.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import Iterator

VERBOSE = [False]  # set by the CLI (-v / AFT_DEBUG=1) before a command runs
LOG_NAME = "run.log"
_OURS = ("audited_ft",)


def verbose() -> bool:
    return VERBOSE[0] or os.environ.get("AFT_DEBUG") == "1"


class OursOnly(logging.Filter):
    """Lets through this project's records, and anything at ERROR or above; the rest goes to the log file only."""

    def filter(self, record: logging.LogRecord) -> bool:
        return verbose() or record.levelno >= logging.ERROR or record.name.startswith(_OURS)


def quiet_libraries() -> None:
    """Libraries' progress bars and chatter off the terminal (unless verbose); Python warnings into the log."""
    logging.captureWarnings(True)  # warnings.warn(...) → the "py.warnings" logger: the file, and the terminal if -v
    if verbose():
        return
    # (through the libraries' own switches, not environment variables, which child processes would inherit)
    with contextlib.suppress(ImportError):
        import transformers

        transformers.utils.logging.disable_progress_bar()
        transformers.utils.logging.set_verbosity_warning()
        # transformers writes through its own handler on stderr: send its records to ours (the filter keeps them off
        # the terminal, the file keeps them)
        transformers.utils.logging.disable_default_handler()
        transformers.utils.logging.enable_propagation()
    with contextlib.suppress(ImportError):
        import datasets

        datasets.disable_progress_bars()
        datasets.utils.logging.set_verbosity_warning()
    with contextlib.suppress(ImportError):
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()


def bars_enabled() -> bool:
    """Whether this project's own progress bars are drawn: stderr is a terminal."""
    return sys.stderr.isatty()


@contextlib.contextmanager
def log_to(folder: Path) -> Iterator[Path]:
    """Every log record (DEBUG and up, every logger) appended to ``folder/run.log`` while the block runs."""
    from audited_ft.textsafe import TerminalSafeFilter

    path = Path(folder) / LOG_NAME
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(TerminalSafeFilter())
    # DEBUG from this project only: a library's debug records may quote the data they process (the run log holds no
    # raw personal data, like every artefact)
    handler.addFilter(lambda r: r.levelno >= logging.INFO or r.name.startswith(_OURS))
    root = logging.getLogger()
    before = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    for h in root.handlers:  # the terminal keeps its own level: only the file takes DEBUG
        if h is not handler and h.level == logging.NOTSET:
            h.setLevel(logging.DEBUG if verbose() else logging.INFO)
    try:
        yield path
    finally:
        root.removeHandler(handler)
        root.setLevel(before)
        handler.close()
