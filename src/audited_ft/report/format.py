"""How the report, the cards and the review sheet show things: numbers, untrusted text, templates.

Model and data text is untrusted. The jinja2 environment autoescapes everything; :func:`finalize` also shows control
characters (ANSI escapes, bidi overrides) as visible ``\\x1b``-style text; long text is clipped with an ellipsis and the
rest sits in a collapsed ``<details>``.
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import math
import re
from pathlib import Path
from typing import Any

from markupsafe import Markup

from audited_ft.errors import AuditedFTError
from audited_ft.textsafe import escape_controls

TEMPLATE = "report.html.j2"
CLIP_CHARS = 280  # displayed length of one piece of model or data text before the ellipsis
FULL_CHARS = 4000  # the most shown even inside a collapsed <details>


def neutralise(text: Any) -> str:
    """``str(text)`` with control and bidi characters (but tab, newline and CR) written out visibly (``\\x1b``)
    instead of acted upon."""
    return escape_controls(text, keep="\t\n\r")


def fmt_num(value: Any, digits: int = 3) -> str:
    """Numbers for people: floats to ``digits`` decimals, ints with separators, ``None`` as an em dash."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else f"{value:.{digits}f}"
    return neutralise(value)


def clip(value: Any, limit: int = CLIP_CHARS) -> str:
    """Untrusted text shortened to ``limit`` characters with an ellipsis (escaping is left to autoescape)."""
    text = "—" if value is None else neutralise(value)
    return text if len(text) <= limit else text[:limit].rstrip() + "…"


def finalize(value: Any) -> Any:
    # Applied to every {{ }} before autoescape: our own SVG passes through, everything else is made presentable.
    if isinstance(value, Markup):
        return value
    if value is None or isinstance(value, (bool, float)):
        return fmt_num(value)
    return neutralise(value) if isinstance(value, str) else value


def cell(value: Any) -> str:
    """A table cell of unknown type: numbers formatted, text clipped."""
    return fmt_num(value) if value is None or isinstance(value, (int, float)) else clip(value, 200)


def template_dir() -> Path:
    """The folder holding ``report.html.j2``: ``reports/templates/`` in a checkout, else the packaged ``_templates``."""
    here = Path(__file__).resolve()
    candidates = [here.parents[3] / "reports" / "templates", here.parents[1] / "_templates"]
    for folder in candidates:
        if (folder / TEMPLATE).is_file():
            return folder
    raise AuditedFTError(f"report template {TEMPLATE} not found in {' or '.join(map(str, candidates))}; "
                         "run from a source checkout or reinstall audited_ft")


def reflow(doc: str) -> str:
    """A docstring as prose: hard-wrapped lines of a paragraph joined, paragraphs and bullet items ("* ", "- ")
    kept on lines of their own, RST double backquotes made single."""
    out = []
    for para in re.split(r"\n\s*\n", inspect.cleandoc(doc)):
        lines: list[str] = []
        for line in para.splitlines():
            if not lines or re.match(r"\s*[*•-] ", line):
                lines.append(line.strip())
            else:
                lines[-1] += " " + line.strip()
        out.append("\n".join(lines))
    return "\n\n".join(out).replace("``", "`")


def environment(folder: Path | None = None) -> Any:
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(folder or template_dir())), autoescape=True,
                             undefined=jinja2.StrictUndefined, finalize=finalize, trim_blocks=True,
                             lstrip_blocks=True)
    env.filters.update(num=fmt_num, clip=clip, full=lambda v: clip(v, FULL_CHARS), cell=cell,
                       doc=lambda v, limit=1200: clip(reflow(str(v)), limit) if v else "—")
    env.tests["long"] = lambda v, limit=CLIP_CHARS: v is not None and len(neutralise(v)) > limit
    env.globals["full_chars"] = FULL_CHARS
    return env


def csp_hash(script: str) -> str:
    """The Content-Security-Policy source of an inline script: ``sha256-<base64 digest>``."""
    return "sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")


def inline_script(name: str) -> tuple[Markup, str]:
    """The script file ``name`` beside the templates, to inline into a page: its text (as Markup) and its
    Content-Security-Policy source (:func:`csp_hash`). A script containing ``</`` would end its ``<script>`` element
    early: :class:`AuditedFTError`."""
    path = template_dir() / name
    script = path.read_text(encoding="utf-8")
    if "</" in script:
        raise AuditedFTError(f"{path}: must not contain '</' (it would end the inline <script> early)")
    return Markup(script), csp_hash(script)


def ci_label(confidence: Any) -> str:
    """"95% CI" for a confidence level, "CI" when the level is not a number between 0 and 1."""
    ok = isinstance(confidence, (int, float)) and not isinstance(confidence, bool) and 0 < confidence < 1
    return f"{100 * confidence:.0f}% CI" if ok else "CI"
