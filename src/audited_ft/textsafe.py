"""Untrusted text (model output, data rows, names from a config or the command line) made inert for display.

Terminals act on control characters: an ANSI escape in a data row can recolour or clear the screen (``\\x1b[2J``), plant
a hyperlink (OSC 8, ``\\x1b]8;;URL\\x1b\\\\``) or rewrite the line a reviewer is reading (``\\r``), and bidi overrides
reorder what is shown. :func:`escape_controls` writes such characters out visibly (``\\x1b``, ``\\u202e``) instead;
:func:`for_terminal` does that and caps the length, for everything the CLI echoes; :class:`TerminalSafeFilter` does it
for every log record. The HTML report and cards use :func:`escape_controls` through ``report.neutralise``.
"""

from __future__ import annotations

import logging
import re
from typing import Any

TERMINAL_CHARS = 10_000  # the most of one message echoed to a terminal; the rest is counted, not shown
# C0 controls, DEL, C1 controls, and bidi embedding/override/isolate characters (text spoofing).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def escape_controls(text: Any, keep: str = "\t\n") -> str:
    """``str(text)`` with every control and bidi character not in ``keep`` written as ``\\xNN`` / ``\\uNNNN``."""
    def visible(m: re.Match) -> str:
        char = m.group()
        if char in keep:
            return char
        code = ord(char)
        return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"

    return _CONTROL.sub(visible, str(text))


def for_terminal(text: Any, limit: int = TERMINAL_CHARS) -> str:
    """Text safe to print on a terminal: control characters but newline and tab shown as visible escapes (so an ANSI
    or OSC sequence prints as ``\\x1b[31m``, never as the ESC byte), and at most ``limit`` characters."""
    out = escape_controls(text)
    if len(out) > limit:
        out = f"{out[:limit]}… ({len(out) - limit:,} more characters not shown)"
    return out


class TerminalSafeFilter(logging.Filter):
    """A logging filter that renders each record's message and passes it through :func:`for_terminal`.

    Attached to the CLI's log handler, so a warning that quotes a value from the data cannot drive the terminal.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed %-format: show the template and its arguments as they are
            message = f"{record.msg} {record.args!r}"
        record.msg, record.args = for_terminal(message), None
        return True


def clip(text: Any, limit: int = 300) -> str:
    """Untrusted text with control characters shown (tab and line breaks kept), cut to ``limit`` with an ellipsis."""
    value = escape_controls(text, keep="\t\n\r")
    return value if len(value) <= limit else value[:limit].rstrip() + "…"


_LETTER = re.compile(r"[^\W\d_]")
_DIGIT = re.compile(r"\d")


def shape(text: str) -> str:
    """The shape of ``text``: every letter ``x``, every digit ``9``; spaces and punctuation kept. What a finding's
    excerpt and ``audited-ft init`` show of data not yet (or not fully) audited for personal data."""
    return _DIGIT.sub("9", _LETTER.sub("x", text))
