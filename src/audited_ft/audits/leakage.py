"""The ``leakage`` audit: duplicates within and across splits, near-duplicates across splits, contamination."""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from itertools import combinations
from typing import Literal

from pydantic import Field, model_validator

from audited_ft.audits._base import AUDITS, Audit, AuditContext, AuditOptions, AuditOutcome
from audited_ft.audits._text import jaccard, normalize, word_shingles
from audited_ft.errors import DataError, MissingDependency

log = logging.getLogger(__name__)

Kind = Literal["exact_within_split", "exact_cross_split", "near_duplicate_cross_split", "contamination"]
KINDS = ("exact_within_split", "exact_cross_split", "near_duplicate_cross_split", "contamination")
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
    contamination_ngram: int = Field(13, ge=3, le=50, description="Words in a shared n-gram that counts a probe text "
                                     "as contaminated (13 as in the GPT-3 paper's contamination check).")
    contamination_min_words: int = Field(8, ge=1, description="Probe texts shorter than contamination_ngram but at "
                                         "least this long count when they appear whole inside a split text; shorter "
                                         "ones only by exact match.")
    contamination_splits: list[str] = Field(default_factory=lambda: ["train"], description="Splits checked against "
                                            "the evaluation probe sets (the model learns from train only).")
    fail_on: list[Kind] = Field(default_factory=lambda: ["exact_cross_split", "near_duplicate_cross_split",
                                                         "contamination"],
                                description="Kinds of finding that fail the audit and block training.")
    warn_on: list[Kind] = Field(default_factory=lambda: ["exact_within_split"],
                                description="Kinds of finding that make the audit warn (unless they also fail it).")
    max_findings: int = Field(200, ge=0, description="Findings kept in the result file (the counts cover all).")
    seed: int = Field(1, description="MinHash seed (fixed so that runs are reproducible).")

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
    default); contamination of the training split by the evaluation probe sets (exact match, or a shared 13-word
    n-gram by default).
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
        found = _Findings()
        exact_summary = _exact(splits, texts, opts.exact_fields, found)
        near_summary = _near_duplicates(splits, texts, opts, found)
        contamination = _contamination(splits, texts, ctx.probe_texts or {}, opts, found)
        totals = {k: found.counts[k] for k in KINDS}
        status = "fail" if any(totals[k] for k in opts.fail_on) else \
            "warn" if any(totals[k] for k in opts.warn_on) else "pass"
        summary = {
            "totals": totals, **exact_summary, "near_duplicate_cross_split": near_summary,
            "contamination": contamination,
            "rows_affected": {s: {"count": len(found.rows[s]), "rows": len(rows),
                                  "percent": round(100 * len(found.rows[s]) / len(rows), 2) if rows else 0.0}
                              for s, rows in splits.items()},
            "settings": opts.model_dump(exclude={"enabled", "max_findings"}),
        }
        rank = {k: 0 if k in opts.fail_on else 1 if k in opts.warn_on else 2 for k in KINDS}
        findings = sorted(found.items, key=lambda f: rank[f["kind"]])  # blocking kinds first; stable otherwise
        result = {"name": self.name, "status": status, "blocking": status == "fail",
                  "description": (type(self).__doc__ or "").strip(), "summary": summary,
                  "findings": findings[: opts.max_findings], "findings_truncated": len(findings) > opts.max_findings,
                  "seconds": round(time.time() - started, 2)}
        log.info("leakage: %s %s", status, totals)
        return AuditOutcome(result=result)


class _Findings:
    """Collects finding pairs, their counts per kind and the rows involved."""

    def __init__(self):
        self.items: list[dict] = []
        self.counts: Counter = Counter()
        self.rows: dict[str, set[int]] = defaultdict(set)

    def add(self, kind: str, field: str, split_a: str, row_a, split_b: str, row_b, jaccard: float | None = None,
            **extra) -> None:
        self.counts[kind] += 1
        for split, (index, _) in ((split_a, row_a), (split_b, row_b)):
            if index is not None:
                self.rows[split].add(index)
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


def _near_duplicates(splits, texts, opts: LeakageOptions, found: _Findings) -> dict:
    try:
        from datasketch import MinHash, MinHashLSH
    except ImportError as exc:
        raise MissingDependency("The leakage audit", "datasketch") from exc
    out: dict = defaultdict(dict)
    names = list(splits)
    for field in opts.near_duplicate_fields:
        sigs, lsh = {}, {}
        for split in names:
            sigs[split] = _minhashes(MinHash, texts[split][field], opts)
        for a, b in combinations(names, 2):
            if a not in lsh:
                lsh[a] = MinHashLSH(threshold=opts.threshold, num_perm=opts.num_perm)
                with lsh[a].insertion_session() as session:
                    for i, m in enumerate(sigs[a]):
                        if m is not None:
                            session.insert(i, m, check_duplication=False)
            n = 0
            for j, m in enumerate(sigs[b]):
                if m is None:
                    continue
                for i in sorted(lsh[a].query(m)):
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


def _minhashes(MinHash, texts: list[str], opts: LeakageOptions) -> list:
    """One MinHash per text; None for a text shorter than one shingle (left to the exact check)."""
    shingles = [word_shingles(t.split(), opts.shingle_size) if len(t.split()) >= opts.shingle_size else None
                for t in texts]
    todo = [[g.encode("utf-8") for g in s] for s in shingles if s]
    done = iter(MinHash.bulk(todo, num_perm=opts.num_perm, seed=opts.seed))
    return [next(done) if s else None for s in shingles]


def _contamination(splits, texts, probes: dict[str, list[str]], opts: LeakageOptions, found: _Findings) -> dict:
    """Probe texts found in the splits: whole (exact after normalisation) or through one shared long n-gram."""
    if not probes:
        return {"splits_checked": [], "sets": {},
                "warning": "no evaluation probe texts were given to the audit: contamination was not checked"}
    n = opts.contamination_ngram
    exact_index: dict[str, list] = defaultdict(list)  # normalised probe text -> [(set, index)]
    gram_index: dict[int, dict[str, list]] = defaultdict(lambda: defaultdict(list))  # length -> n-gram -> [(set, i)]
    for name, items in probes.items():
        for k, text in enumerate(items):
            words = normalize(str(text)).split()
            if not words:
                continue
            exact_index[" ".join(words)].append((name, k))
            if len(words) >= n:
                for g in word_shingles(words, n):
                    gram_index[n][g].append((name, k))
            elif len(words) >= opts.contamination_min_words:
                gram_index[len(words)][" ".join(words)].append((name, k))
    hit: dict[str, dict[int, str]] = defaultdict(dict)  # set -> probe index -> how
    splits_checked = [s for s in opts.contamination_splits if s in splits]
    for split in splits_checked:
        for field in ("input", "target"):
            for i, t in enumerate(texts[split][field]):
                matches = {p: "exact" for p in exact_index.get(t, ())}
                if gram_index:
                    words = t.split()
                    for length, index in gram_index.items():
                        for g in word_shingles(words, length) if len(words) >= length else ():
                            for p in index.get(g, ()):
                                matches.setdefault(p, "ngram")
                for (name, k), how in sorted(matches.items()):
                    hit[name].setdefault(k, how)
                    found.add("contamination", field, split, _ref(splits, split, i), f"probe:{name}",
                              (None, str(k)), None, match=how)
    return {"splits_checked": splits_checked, "ngram": n,
            "sets": {name: {"probes": len(items), "contaminated": len(hit[name]),
                            "percent": round(100 * len(hit[name]) / len(items), 2) if items else 0.0,
                            "exact": sum(v == "exact" for v in hit[name].values()),
                            "ngram": sum(v == "ngram" for v in hit[name].values())}
                     for name, items in probes.items()}}
