"""Text helpers shared by the data audits: normalisation, shingles, masked excerpts, salted hashes.

Standard library, numpy and audited_ft.textsafe only, so importing an audit module stays instant.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import zlib
from typing import Iterable

import numpy as np

from audited_ft.textsafe import shape  # the excerpts' masking (shared with `audited-ft init`)

# DialogSum-style speaker tags (``#Person1#``, ``#Person2#``): markup, never personal data.
SPEAKER_TAG = r"#[A-Za-z]+\d*#"

_SPACE = re.compile(r"\s+")
_NOT_WORD = re.compile(r"[^\w\s]|_")  # punctuation and symbols (anything neither alphanumeric nor space)


def normalize(text: str) -> str:
    """Unicode NFKC, lower-case, punctuation and symbols removed, whitespace collapsed.

    Punctuation is *removed* (not replaced by a space) so that "don't" and "dont" match; a symbol glued between two
    words therefore joins them ("e-mail" → "email"), which only makes duplicates easier to find.
    """
    if text.isascii():  # the common case, about 3x faster and the same result: NFKC leaves ASCII as it is
        return " ".join(text.lower().translate(_ASCII_NOT_WORD).split())
    text = _NOT_WORD.sub("", unicodedata.normalize("NFKC", text).lower())
    return _SPACE.sub(" ", text).strip()


_ASCII_NOT_WORD = {c: None for c in range(128) if _NOT_WORD.match(chr(c))}


def word_shingles(words: list[str], n: int) -> set[str]:
    """The set of word ``n``-grams; a text shorter than ``n`` words is one shingle (so short texts still compare)."""
    if len(words) < n:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


_WORD_HASH: dict[str, int] = {}
_MULT = np.uint64(1099511628211)  # FNV-1a's 64-bit prime, as the multiplier of a polynomial hash


def _word_hash(word: str) -> int:
    if len(_WORD_HASH) > 2_000_000:
        _WORD_HASH.clear()
    h = _WORD_HASH[word] = zlib.crc32(word.encode("utf-8")) | (zlib.adler32(word.encode("utf-8")) << 32)
    return h


def word_hashes(words: list[str]) -> np.ndarray:
    """A stable 64-bit hash per word (CRC-32 and Adler-32 of its UTF-8 bytes), memoised across calls."""
    cache = _WORD_HASH
    for w in set(words).difference(cache):
        _word_hash(w)
    return np.fromiter(map(cache.__getitem__, words), dtype=np.uint64, count=len(words))


def shingle_hashes(words: list[str] | np.ndarray, n: int) -> np.ndarray:
    """64-bit hashes of the word ``n``-grams in text order (a repeated n-gram repeats), the numeric twin of
    :func:`word_shingles`: a text shorter than ``n`` words is one shingle. ``words`` may be the words or their
    :func:`word_hashes`. Stable across processes and runs, so results do not depend on Python's hash seed."""
    w = words if isinstance(words, np.ndarray) else word_hashes(words)
    if not len(w):
        return np.empty(0, dtype=np.uint64)
    n = min(n, len(w))
    m = len(w) - n + 1
    h = w[:m].copy()
    for k in range(1, n):
        h = h * _MULT + w[k:m + k]  # wraps modulo 2**64, as intended
    return h


def jaccard(a: set, b: set) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def salted_hash(value: str, salt: str, length: int = 16) -> str:
    """A short salted sha256 of a normalised value: identical values group together, the value itself is not kept.

    Values are case-folded and stripped first, so "Jo@x.com" and "jo@X.com " share a hash.
    """
    digest = hashlib.sha256((salt + "\x00" + value.strip().casefold()).encode("utf-8")).hexdigest()
    return digest[:length]


def merge_spans(spans: Iterable[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Sort (start, end, label) spans and merge overlaps; a merged span keeps the label of its first part."""
    merged: list[list] = []
    for start, end, label in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end, label])
    return [(s, e, lab) for s, e, lab in merged]




EXCERPT_CONTEXT = ("shape", "none", "text")


def masked_excerpt(text: str, start: int, end: int, label: str, others: Iterable[tuple[int, int, str]],
                   width: int = 30, context: str = "shape") -> str:
    """``width`` characters either side of ``text[start:end]``, with that span shown as ``<label>``.

    Every span in ``others`` (start, end, label) that reaches into the window is masked as ``<its label>`` too, even
    when it only partly overlaps, so the excerpt never shows the value of any detected entity. Newlines become spaces.
    The context around the masks is shown as its ``shape`` (letters ``x``, digits ``9``: the excerpt says where in
    the text the value sat and what surrounded it, but cannot carry personal data the detector missed beside it — on a
    labelled PII benchmark, hundreds of undetected names, addresses and phone numbers sat in plain-text contexts),
    ``none`` (the label alone), or as written (``text``: an opt-in that publishes whatever was not detected).
    """
    if context not in EXCERPT_CONTEXT:
        raise ValueError(f"context must be one of {EXCERPT_CONTEXT}, got {context!r}")
    if context == "none":
        width = 0
    lo, hi = max(0, start - width), min(len(text), end + width)
    spans = [(start, end, label)] + [(s, e, lab) for s, e, lab in others if s < hi and e > lo]
    pieces, pos = [], lo
    for s, e, lab in merge_spans(spans):
        if s < end and e > start:  # the merged span holding the finding's own value is shown with its label
            lab = label
        s, e = max(s, lo), min(e, hi)
        if s < pos:  # fully inside an earlier merged span
            continue
        pieces.append(text[pos:s] if context == "text" else shape(text[pos:s]))
        pieces.append(f"<{lab}>")
        pos = e
    pieces.append(text[pos:hi] if context == "text" else shape(text[pos:hi]))
    body = _SPACE.sub(" ", "".join(pieces))
    return ("…" if lo > 0 else "") + body + ("…" if hi < len(text) else "")


def tag_words(text: str, tag_re: re.Pattern) -> list[tuple[int, int]]:
    """Spans of the whitespace-delimited words that contain a speaker tag: ``#Person1#'ll`` is one word, so the
    ``'ll`` glued to the tag is not left behind as a "name" once the tag is cut off."""
    spans = []
    for m in tag_re.finditer(text):
        start, end = m.span()
        while start > 0 and not text[start - 1].isspace():
            start -= 1
        while end < len(text) and not text[end].isspace():
            end += 1
        spans.append((start, end))
    return spans


def trim_span(start: int, end: int, text: str, blocked: list[tuple[int, int]]) -> tuple[int, int] | None:
    """Cut ``blocked`` spans (speaker tags) off the edges of ``[start, end)``.

    A span that touches no blocked span is returned unchanged. One that does is shrunk until it neither begins nor
    ends inside a blocked span or on a non-alphanumeric character; ``None`` when nothing is left (the span was only a
    speaker tag and punctuation, e.g. NER reading ``#Person1#`` as a PERSON).
    """
    if not any(bs < end and be > start for bs, be in blocked):
        return start, end

    def is_blocked(i: int) -> bool:
        return not text[i].isalnum() or any(bs <= i < be for bs, be in blocked)

    while start < end and is_blocked(start):
        start += 1
    while end > start and is_blocked(end - 1):
        end -= 1
    return (start, end) if start < end else None
