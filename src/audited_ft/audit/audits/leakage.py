"""The ``leakage`` audit: duplicates within and across splits, near-duplicates across splits, contamination."""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from itertools import combinations
from typing import Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from audited_ft.audit.audits._base import AUDITS, Audit, AuditContext, AuditOptions, AuditOutcome
from audited_ft.audit.audits._text import jaccard, normalize, shingle_hashes, word_hashes, word_shingles
from audited_ft.errors import DataError, MissingDependency

log = logging.getLogger(__name__)

Kind = Literal["exact_within_split", "exact_cross_split", "near_duplicate_cross_split", "ngram_overlap_cross_split",
               "contamination"]
Action = Literal["fail", "drop", "warn", "ignore"]
DEFAULT_POLICY: dict[str, str] = {"exact_within_split": "warn", "exact_cross_split": "fail",
                                  "near_duplicate_cross_split": "fail", "ngram_overlap_cross_split": "warn",
                                  "contamination": "fail"}
KINDS = ("exact_within_split", "exact_cross_split", "near_duplicate_cross_split", "ngram_overlap_cross_split",
         "contamination")
TextField = Literal["input", "target", "input+target"]
SPLIT_ORDER = ("train", "validation", "test")


class LeakageOptions(AuditOptions):
    """Options of the ``leakage`` audit (config section ``audits.leakage``)."""

    exact_fields: list[TextField] = Field(default_factory=lambda: ["input", "target", "input+target"],
                                          description="Fields compared for exact duplicates (after normalisation: "
                                          "NFKC, lower-case, punctuation removed, whitespace collapsed).")
    near_duplicate_fields: list[TextField] = Field(
        default_factory=lambda: ["input", "input+target"],
        description="Fields compared for near-duplicates across splits. target alone is not in the default: targets "
        "written to a template (fixed-pattern summaries) resemble each other without any leak; input+target still "
        "catches rows whose long target is near-duplicated.")
    shingle_size: int = Field(5, ge=1, le=20, description="Words per shingle for near-duplicate detection.")
    num_perm: int = Field(128, ge=16, le=1024, description="MinHash permutations.")
    threshold: float = Field(0.8, gt=0, le=1, description="Jaccard similarity (of the shingle sets) from which two "
                             "texts of different splits are near-duplicates; MinHash LSH proposes, exact Jaccard "
                             "confirms.")
    lsh_margin: float = Field(0.1, ge=0, lt=1, description="MinHash LSH proposes candidate pairs from "
                              "threshold - lsh_margin, so that pairs just above the threshold are rarely missed; "
                              "every candidate is confirmed by its exact Jaccard, so precision does not change.")
    contamination_ngram: int = Field(13, ge=3, le=50, description="Words in a shared n-gram that counts a probe text "
                                     "as contaminated (13 as in the GPT-3 paper's contamination check).")
    contamination_min_words: int = Field(8, ge=1, description="Probe texts shorter than contamination_ngram but at "
                                         "least this long count when they appear whole inside a split text; shorter "
                                         "ones only by exact match.")
    contamination_splits: list[str] = Field(default_factory=lambda: ["train"], description="Splits checked against "
                                            "the evaluation probe sets (the model learns from train only).")
    policy: dict[Kind, Action] = Field(
        default_factory=dict, validate_default=True,
        description="Action per kind of finding, merged over the defaults: fail (blocks training), drop (remove the "
        "train rows involved from the training data; validation, test and probe sets stay intact; counts recorded), "
        "warn, or ignore. Defaults: fail for exact and near-duplicate rows across splits and for contamination of "
        "the training data with evaluation sets; warn for duplicates within a split and for a shared long n-gram "
        "between a training row and a validation/test row (dialogues of one domain share stock phrases; a "
        "whole-row copy is caught by the exact and near-duplicate checks).")
    max_findings: int = Field(200, ge=0, description="Findings kept in the result file (the counts cover all).")
    seed: int = Field(1, description="MinHash seed (fixed so that runs are reproducible).")

    @field_validator("policy")
    @classmethod
    def _merge_policy(cls, value: dict[str, str]) -> dict[str, str]:
        return {**DEFAULT_POLICY, **value}

    @model_validator(mode="after")
    def _min_words_below_ngram(self):
        if self.contamination_min_words > self.contamination_ngram:
            raise ValueError(f"contamination_min_words ({self.contamination_min_words}) must not exceed "
                             f"contamination_ngram ({self.contamination_ngram})")
        return self


@AUDITS.register("leakage")
class LeakageAudit(Audit):
    """Train/validation/test overlap and evaluation-set contamination: exact and near-duplicate rows across splits.

    Measures: exact duplicates after normalisation (NFKC, lower-case, punctuation removed, whitespace collapsed) of
    input, target and input+target, within each split and across each pair of splits; near-duplicates across split
    pairs (word 5-gram shingles by default, MinHash LSH candidates confirmed by exact Jaccard ≥ threshold, 0.8 by
    default); training rows sharing a 13-word n-gram with a validation or test row (partial overlap; a warning by
    default); contamination of the training split by the evaluation sets of the enabled probes (exact match, or a
    shared 13-word n-gram by default, as in the GPT-3 paper's contamination study). Policy per kind of finding:
    fail (block training), drop (remove the training rows involved; evaluation data stay intact), warn or ignore.
    Blind spots: paraphrases, translations and re-ordered sentences share few shingles and are not found; texts shorter
    than one shingle are compared exactly only; MinHash LSH may miss a pair close to the threshold (recall, not
    precision: every reported pair is confirmed); contamination is checked only against the probe sets given to the
    run, not against the base model's unknown pre-training data.
    """

    Options = LeakageOptions

    def run(self, ctx: AuditContext) -> AuditOutcome:
        started = time.time()
        opts: LeakageOptions = self.options
        splits = _ordered(ctx.splits)
        texts = _texts(splits)
        hashed = _Hashed(texts)
        found = _Findings()
        exact_summary = _exact(splits, texts, opts.exact_fields, found)
        near_summary = _near_duplicates(splits, texts, hashed, opts, found)
        overlap_summary = _ngram_overlap(splits, texts, hashed, opts, found)
        contamination = _contamination(splits, texts, hashed, ctx.probe_texts or {}, opts, found)
        totals = {k: found.counts[k] for k in KINDS}
        acted = {a: [k for k in KINDS if totals[k] and opts.policy[k] == a] for a in ("fail", "drop", "warn")}
        dropped, new_splits = _drop(splits, found, acted["drop"])
        status = "fail" if acted["fail"] else "warn" if (acted["warn"] or acted["drop"]) else "pass"
        summary = {
            "totals": totals, **exact_summary, "near_duplicate_cross_split": near_summary,
            "ngram_overlap_cross_split": overlap_summary, "contamination": contamination,
            "rows_affected": {s: {"count": len(found.rows[s]), "rows": len(rows),
                                  "percent": round(100 * len(found.rows[s]) / len(rows), 2) if rows else 0.0}
                              for s, rows in splits.items()},
            "failed_on": acted["fail"], "warned_on": acted["warn"], "dropped": dropped,
            "settings": opts.model_dump(exclude={"enabled", "max_findings"}),
        }
        rank = {k: {"fail": 0, "drop": 1, "warn": 2}.get(opts.policy[k], 3) for k in KINDS}
        findings = sorted(found.items, key=lambda f: rank[f["kind"]])  # blocking kinds first; stable otherwise
        result = {"name": self.name, "status": status, "blocking": status == "fail",
                  "summary": summary,
                  "findings": findings[: opts.max_findings], "findings_truncated": len(findings) > opts.max_findings,
                  "seconds": round(time.time() - started, 2)}
        log.info("leakage: %s (%s)", status, ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in totals.items()))
        return AuditOutcome(result=result, splits=new_splits)


class _Findings:
    """Collects finding pairs, their counts per kind and the rows involved."""

    def __init__(self):
        self.items: list[dict] = []
        self.counts: Counter = Counter()
        self.rows: dict[str, set[int]] = defaultdict(set)
        self.train_rows: dict[str, set[int]] = defaultdict(set)  # kind -> train row indices a drop would remove

    def add(self, kind: str, field: str, split_a: str, row_a, split_b: str, row_b, jaccard: float | None = None,
            **extra) -> None:
        self.counts[kind] += 1
        for split, (index, _) in ((split_a, row_a), (split_b, row_b)):
            if index is not None:
                self.rows[split].add(index)
        if kind == "exact_within_split":
            if split_b == "train":  # the later copy goes; the first stays
                self.train_rows[kind].add(row_b[0])
        elif split_a == "train":
            self.train_rows[kind].add(row_a[0])
        self.items.append({"kind": kind, "split_a": split_a, "row_a": row_a[1], "split_b": split_b,
                           "row_b": row_b[1], "field": field, "jaccard": jaccard, **extra})


def _ordered(splits: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """Splits in train, validation, test order (others after), so pairs read (train, test), not (test, train)."""
    names = [s for s in SPLIT_ORDER if s in splits] + [s for s in splits if s not in SPLIT_ORDER]
    return {s: splits[s] for s in names}


def _texts(splits: dict[str, list[dict]]) -> dict[str, dict[str, list[str]]]:
    """Normalised text per split, field and row; a row without string input/target is a DataError."""
    out: dict[str, dict[str, list[str]]] = {}
    for split, rows in splits.items():
        cols: dict[str, list[str]] = {"input": [], "target": []}
        for i, row in enumerate(rows):
            for field in ("input", "target"):
                value = row.get(field) if isinstance(row, dict) else None
                if not isinstance(value, str):
                    raise DataError(f"leakage audit: split '{split}' row {i} (id {_row_id(row, i)!r}): field "
                                    f"'{field}' must be a string, got {type(value).__name__}")
                cols[field].append(normalize(value))
        # \x1f keeps ("a b", "c") apart from ("a", "b c")
        cols["input+target"] = [f"{a} \x1f {b}" for a, b in zip(cols["input"], cols["target"])]
        out[split] = cols
    return out


_EMPTY = np.empty(0, dtype=np.uint64)


class _Hashed:
    """Word-hash arrays of the normalised texts, computed once per split and field and shared by every check."""

    SEP = word_hashes(["\x1f"])

    def __init__(self, texts: dict[str, dict[str, list[str]]]):
        self.texts = texts
        self._cache: dict[tuple[str, str], list[np.ndarray]] = {}

    def __call__(self, split: str, field: str) -> list[np.ndarray]:
        key = (split, field)
        if key not in self._cache:
            if field == "input+target":
                self._cache[key] = [np.concatenate([a, self.SEP, b]) for a, b in
                                    zip(self(split, "input"), self(split, "target"))]
            else:
                self._cache[key] = [word_hashes(t.split()) for t in self.texts[split][field]]
        return self._cache[key]

    def grams(self, split: str, field: str, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The distinct n-gram hashes of every text of a split and field, flattened: (hashes, owning row index).
        Texts shorter than n words have none."""
        key = (split, field, n)
        if key not in self._cache:
            per_text = [shingle_hashes(w, n) if len(w) >= n else _EMPTY for w in self(split, field)]
            owners = np.repeat(np.arange(len(per_text)), [len(g) for g in per_text])
            self._cache[key] = (np.concatenate(per_text) if per_text else _EMPTY, owners)
        return self._cache[key]


def _row_id(row, index: int) -> str:
    return str(row.get("id", index)) if isinstance(row, dict) else str(index)


def _pair_name(a: str, b: str) -> str:
    return f"{a}~{b}"


def _exact(splits, texts, fields, found: _Findings) -> dict:
    within: dict = {}
    cross: dict = defaultdict(dict)
    for field in fields:
        groups = {}  # split -> normalised text -> row indices
        for split in splits:
            g = defaultdict(list)
            for i, t in enumerate(texts[split][field]):
                if t.strip("\x1f "):
                    g[t].append(i)
            groups[split] = g
            dup_rows = 0
            for rows in g.values():
                for other in rows[1:]:
                    dup_rows += 1
                    found.add("exact_within_split", field, split, _ref(splits, split, rows[0]), split,
                              _ref(splits, split, other), 1.0)
            within.setdefault(split, {})[field] = {"duplicate_rows": dup_rows,
                                                   "groups": sum(len(r) > 1 for r in g.values())}
        for a, b in combinations(splits, 2):
            n = 0
            for t, rows_b in groups[b].items():
                rows_a = groups[a].get(t)
                if rows_a:
                    for j in rows_b:
                        n += 1
                        found.add("exact_cross_split", field, a, _ref(splits, a, rows_a[0]), b,
                                  _ref(splits, b, j), 1.0)
            cross[_pair_name(a, b)][field] = n
    return {"exact_within_split": within, "exact_cross_split": dict(cross)}


def _ref(splits, split: str, index: int) -> tuple[int, str]:
    return index, _row_id(splits[split][index], index)


def _near_duplicates(splits, texts, hashed: _Hashed, opts: LeakageOptions, found: _Findings) -> dict:
    try:
        from datasketch import MinHashLSH
    except ImportError as exc:
        raise MissingDependency("The leakage audit", "datasketch") from exc
    # datasketch chooses the banding (b bands of r rows) that minimises false positives + false negatives for the
    # candidate threshold; the bands are then matched with numpy (see _band_candidates).
    lsh = MinHashLSH(threshold=max(0.05, opts.threshold - opts.lsh_margin), num_perm=opts.num_perm)
    bands = (lsh.b, lsh.r)
    sigs = _Signatures(hashed, opts)
    out: dict = defaultdict(dict)
    for field in opts.near_duplicate_fields:
        for a, b in combinations(list(splits), 2):
            n = 0
            for i, j in _band_candidates(*sigs(a, field), *sigs(b, field), bands):
                ta, tb = texts[a][field][i], texts[b][field][j]
                if ta == tb:  # an exact duplicate, reported as such
                    continue
                sim = jaccard(*(word_shingles(t.split(), opts.shingle_size) for t in (ta, tb)))
                if sim >= opts.threshold:
                    n += 1
                    found.add("near_duplicate_cross_split", field, a, _ref(splits, a, i), b,
                              _ref(splits, b, j), round(sim, 4))
            out[_pair_name(a, b)][field] = n
    return dict(out)


class _Signatures:
    """MinHash signatures per split and field, as a (rows, num_perm) uint32 matrix and a mask of the rows that have
    one (a text shorter than one shingle has none: it is left to the exact check).

    Hash family: multiply-shift (h(x) = (a·x + b mod 2^64) >> 32, a odd; Dietzfelbinger 1996) on 32-bit shingle
    hashes, one numpy pass over many texts at once. The input+target signature is assembled, not recomputed: its
    shingles are those of the input, those of the target and the few that straddle the separator, and the MinHash of
    a union is the element-wise minimum of the parts' MinHashes — the long input is hashed once for both fields.
    """

    def __init__(self, hashed: _Hashed, opts: LeakageOptions):
        self.hashed, self.n, self.num_perm = hashed, opts.shingle_size, opts.num_perm
        rng = np.random.default_rng(opts.seed)
        self.mult = rng.integers(0, 2**63, size=opts.num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
        self.add = rng.integers(0, 2**63, size=opts.num_perm, dtype=np.uint64)
        self._cache: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}

    def __call__(self, split: str, field: str) -> tuple[np.ndarray, np.ndarray]:
        key = (split, field)
        if key not in self._cache:
            if field == "input+target":
                self._cache[key] = self._joined(split)
            else:
                words = self.hashed(split, field)
                ok = np.array([len(w) >= self.n for w in words], dtype=bool)
                self._cache[key] = (self._minhash([w for w, k in zip(words, ok) if k]), ok)
        return self._cache[key]

    def _joined(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        n, sep = self.n, self.hashed.SEP
        inputs, targets = self.hashed(split, "input"), self.hashed(split, "target")
        sig_in, ok_in = self(split, "input")
        sig_tg, ok_tg = self(split, "target")
        both = ok_in & ok_tg
        # shingles across the separator: the last n-1 input words, the separator, the first n-1 target words
        seams = [np.concatenate([inputs[i][-(n - 1):] if n > 1 else inputs[i][:0], sep, targets[i][: n - 1]])
                 for i in np.flatnonzero(both)]
        sig = np.zeros((len(inputs), self.num_perm), dtype=np.uint32)
        sig[both] = np.minimum(np.minimum(_rows_of(sig_in, ok_in, both), _rows_of(sig_tg, ok_tg, both)),
                               self._minhash(seams))
        # a row with a part shorter than one shingle: hash the joined words directly
        rest = np.flatnonzero(~both)
        joined = self.hashed(split, "input+target")
        rest = [i for i in rest if len(joined[i]) >= n]
        sig[rest] = self._minhash([joined[i] for i in rest])
        ok = both.copy()
        ok[rest] = True
        return sig[ok], ok

    def _minhash(self, arrays: list[np.ndarray]) -> np.ndarray:
        """Signatures of word-hash arrays that each have at least one shingle."""
        out = np.zeros((len(arrays), self.num_perm), dtype=np.uint32)
        values = [shingle_hashes(w, self.n) for w in arrays]
        values = [(h ^ (h >> np.uint64(32))) & np.uint64(0xFFFFFFFF) for h in values]
        chunk_values = 40_000  # ~40 MB of intermediate per chunk at 128 permutations
        start = 0
        while start < len(values):
            stop, size = start, 0
            while stop < len(values) and (size == 0 or size + len(values[stop]) <= chunk_values):
                size += len(values[stop])
                stop += 1
            flat = np.concatenate(values[start:stop])
            offsets = np.cumsum([0] + [len(v) for v in values[start:stop - 1]])
            with np.errstate(over="ignore"):
                permuted = (self.mult[:, None] * flat[None, :] + self.add[:, None]) >> np.uint64(32)
            out[start:stop] = np.minimum.reduceat(permuted, offsets, axis=1).T
            start = stop
        return out


def _rows_of(sig: np.ndarray, ok: np.ndarray, want: np.ndarray) -> np.ndarray:
    """Rows of a compacted signature matrix (only rows where ``ok``) for the rows where ``want`` (a subset of ok)."""
    return sig[np.cumsum(ok)[want] - 1]


def _band_candidates(sig_a: np.ndarray, ok_a: np.ndarray, sig_b: np.ndarray, ok_b: np.ndarray,
                     bands: tuple[int, int]) -> list[tuple[int, int]]:
    """Row pairs (i in a, j in b) whose signatures agree on every value of at least one band (MinHash LSH), sorted.

    Each band's r values are folded into one 64-bit key; the keys of ``a`` are sorted once per band and those of
    ``b`` looked up with ``searchsorted``, so the work is a sort per band rather than a Python call per row. A key
    collision only adds a candidate, which the exact Jaccard check then rejects.
    """
    b, r = bands
    rows_a, rows_b = np.flatnonzero(ok_a), np.flatnonzero(ok_b)
    if not len(rows_a) or not len(rows_b):
        return []
    codes = []
    for k in range(b):
        ka, kb = _band_keys(sig_a[:, k * r:(k + 1) * r]), _band_keys(sig_b[:, k * r:(k + 1) * r])
        order = np.argsort(ka, kind="stable")
        ka = ka[order]
        lo, hi = np.searchsorted(ka, kb, "left"), np.searchsorted(ka, kb, "right")
        hit = np.flatnonzero(hi > lo)
        if not len(hit):
            continue
        counts = (hi - lo)[hit]
        starts = np.repeat(lo[hit] - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
        ia = order[starts]
        jb = np.repeat(hit, counts)
        codes.append(rows_b[jb].astype(np.int64) * (int(ok_a.size) + 1) + rows_a[ia])
    if not codes:
        return []
    pairs = np.unique(np.concatenate(codes))
    return [(int(c % (ok_a.size + 1)), int(c // (ok_a.size + 1))) for c in pairs]


def _band_keys(block: np.ndarray) -> np.ndarray:
    h = np.zeros(len(block), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for col in block.T:
            h = h * np.uint64(1099511628211) + col.astype(np.uint64)
    return h


class _NgramIndex:
    """Texts indexed for "shares a long n-gram with" (or, when short, "appears whole in") lookups."""

    def __init__(self, n: int, min_words: int):
        self.n, self.min_words = n, min_words
        self.exact: dict[str, list] = defaultdict(list)  # normalised text -> [key]
        # length -> 64-bit n-gram hash -> [key]; a false match needs a 64-bit collision
        self.grams: dict[int, dict[int, list]] = defaultdict(lambda: defaultdict(list))

    def add(self, key, normalised: str, words: np.ndarray | None = None) -> None:
        if not normalised:
            return
        self.exact[normalised].append(key)
        words = word_hashes(normalised.split()) if words is None else words
        if len(words) >= self.n:
            for g in shingle_hashes(words, self.n).tolist():
                self.grams[self.n][g].append(key)
        elif len(words) >= self.min_words:
            self.grams[len(words)][shingle_hashes(words, len(words)).tolist()[0]].append(key)

    def matches_all(self, hashed: "_Hashed", split: str, field: str, texts: list[str]) -> list[tuple[int, object, str]]:
        """(row index, key, "exact" | "ngram") for every indexed text each row of ``split``/``field`` equals or
        contains. The n-gram test is one vectorised membership test over all rows (``np.isin``); only the hits go
        through Python."""
        hits: dict[tuple[int, object], str] = {}
        for i, t in enumerate(texts):
            for k in self.exact.get(t, ()):
                hits[(i, k)] = "exact"
        for length, index in self.grams.items():
            grams, owners = hashed.grams(split, field, length)
            if not len(grams):
                continue
            keys = np.fromiter(index.keys(), dtype=np.uint64, count=len(index))
            mask = np.isin(grams, keys)
            for g, i in zip(grams[mask].tolist(), owners[mask].tolist()):
                for k in index[g]:
                    hits.setdefault((i, k), "ngram")
        return sorted(((i, k, how) for (i, k), how in hits.items()), key=lambda x: (x[0], str(x[1])))


def _contamination(splits, texts, hashed: _Hashed, probes: dict[str, list[str]], opts: LeakageOptions,
                   found: _Findings) -> dict:
    """Probe texts found in the training splits: whole (exact after normalisation) or through one shared long n-gram."""
    if not probes:
        return {"splits_checked": [], "sets": {},
                "warning": "no evaluation probe texts were given to the audit: contamination was not checked"}
    index = _NgramIndex(opts.contamination_ngram, opts.contamination_min_words)
    for name, items in probes.items():
        for k, text in enumerate(items):
            index.add((name, k), normalize(str(text)))
    hit: dict[str, dict[int, str]] = defaultdict(dict)  # set -> probe index -> how
    splits_checked = [s for s in opts.contamination_splits if s in splits]
    for split in splits_checked:
        for field in ("input", "target"):
            for i, (name, k), how in index.matches_all(hashed, split, field, texts[split][field]):
                hit[name].setdefault(k, how)
                found.add("contamination", field, split, _ref(splits, split, i), f"probe:{name}",
                          (None, str(k)), None, match=how)
    return {"splits_checked": splits_checked, "ngram": opts.contamination_ngram,
            "sets": {name: {"probes": len(items), "contaminated": len(hit[name]),
                            "percent": round(100 * len(hit[name]) / len(items), 2) if items else 0.0,
                            "exact": sum(v == "exact" for v in hit[name].values()),
                            "ngram": sum(v == "ngram" for v in hit[name].values())}
                     for name, items in probes.items()}}


def _ngram_overlap(splits, texts, hashed: _Hashed, opts: LeakageOptions, found: _Findings) -> dict:
    """Training rows sharing a long n-gram (the contamination n) with a validation/test row, field by field.

    Vectorised: the other split's n-grams are sorted once, the training n-grams tested against them in one
    ``np.isin``, and only the hits are turned into row pairs. Pairs already reported as exact or near-duplicates are
    not reported again.
    """
    n = opts.contamination_ngram
    already = {(f["split_a"], f["row_a"], f["split_b"], f["row_b"]) for f in found.items
               if f["kind"] in ("exact_cross_split", "near_duplicate_cross_split")}
    out: dict = {}
    if "train" not in splits:
        return out
    for other in [s for s in splits if s != "train"]:
        counts = {}
        for field in ("input", "target"):
            og, oo = hashed.grams(other, field, n)
            tg, to = hashed.grams("train", field, n)
            pairs: set[tuple[int, int]] = set()
            if len(og) and len(tg):
                order = np.argsort(og, kind="stable")
                og, oo = og[order], oo[order]
                mask = np.isin(tg, og)
                hv, rows = tg[mask], to[mask]
                lo, hi = np.searchsorted(og, hv, "left"), np.searchsorted(og, hv, "right")
                for i, l, h in zip(rows.tolist(), lo.tolist(), hi.tolist()):
                    for j in oo[l:h].tolist():
                        pairs.add((i, j))
            kept = 0
            for i, j in sorted(pairs):
                ra, rb = _ref(splits, "train", i), _ref(splits, other, j)
                if ("train", ra[1], other, rb[1]) in already:
                    continue
                kept += 1
                found.add("ngram_overlap_cross_split", field, "train", ra, other, rb, None, match="ngram")
            counts[field] = kept
        out[_pair_name("train", other)] = counts
    return out


def _drop(splits: dict[str, list[dict]], found: _Findings, kinds: list[str]) -> tuple[dict, dict | None]:
    """Remove the train rows involved in findings of ``kinds``; evaluation splits are never changed.

    Returns the counts for the result file and the replacement splits (None when nothing was dropped).
    """
    if not kinds or "train" not in splits:
        return {"rows": 0, "by_kind": {}, "findings_not_involving_train": 0, "train_rows_before": len(splits.get("train", [])),
                "train_rows_after": len(splits.get("train", []))}, None
    gone: set[int] = set().union(*(found.train_rows[k] for k in kinds))
    train = [r for i, r in enumerate(splits["train"]) if i not in gone]
    if not train:
        raise DataError("leakage audit: the drop policy would remove every training row "
                        f"({len(gone)} rows involved in {', '.join(kinds)}); fix the data or use fail/warn")
    # a validation↔test pair has no train row to drop: it stays, counted here (the audit warns about it)
    outside = sum(1 for f in found.items if f["kind"] in kinds and "train" not in (f["split_a"], f["split_b"]))
    counts = {"rows": len(gone), "by_kind": {k: len(found.train_rows[k]) for k in kinds},
              "findings_not_involving_train": outside,
              "train_rows_before": len(splits["train"]), "train_rows_after": len(train),
              "row_ids": [_row_id(splits["train"][i], i) for i in sorted(gone)][:1000]}
    log.warning("leakage: dropped %d training rows (%s)", len(gone), ", ".join(kinds))
    return counts, {**splits, "train": train}
