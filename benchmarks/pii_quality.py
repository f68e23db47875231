"""Recall and precision of the PII audit, per entity type, on labelled synthetic text this project generates.

Sentences come from templates filled with Faker values (names, cities, street addresses, phone numbers and IBANs of
eleven locales; cards of every Faker card type and length; IPv4/IPv6; e-mail; US SSNs; dates), in three shapes:
plain sentences, dialogue in the task data's shape (``#Person1#: …``), and near misses that hold no personal data
but look as if they might (order numbers, versions, ISBNs, amounts, capitalised words). Every sentence carries its
gold spans. The audit under test is the one a run uses: ``audited_ft.audit.audits.pii.detect`` with the config's
``audits.pii`` options (entity list, minimum scores, speaker tags).

Matching (span level): a gold span counts as *found* when detections cover at least half of its characters, and as
*found typed* when those detections have its type; a detection counts as *correct* when at least half of it lies
on gold spans, *correct typed* when on spans of its own type. Recall is per gold type, precision per detected type,
both with Wilson 95% intervals (Wilson 1927; spans of one sentence are not independent, so the intervals are a little
narrow). F2 = 5PR / (4P + R) weighs recall four times as much as precision (van Rijsbergen's F-beta, beta = 2): a
missed value reaches training, a false alarm costs a look. Its 95% interval is a percentile bootstrap over sentences
(1,000 resamples).

Why not ``presidio-evaluator`` (PyPI): its generator is Faker plus templates, which this file does in a page, and it
would bring pandas 3, plotly and scikit-learn into the test environment for that; its span evaluation is token-level
and tied to its own data classes.

    python benchmarks/pii_quality.py [--n 3000] [--seed 0] [--set audits.pii.entities='[...]'] [--out pii.json]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "src") not in sys.path:
    sys.path.insert(0, str(REPO / "src"))

LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "pt_BR", "en_IN", "en_AU", "pl_PL")
IBAN_LOCALES = ("de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "pl_PL", "en_GB")
CARD_TYPES = ("visa16", "visa13", "visa19", "amex", "mastercard", "discover", "diners", "jcb15", "jcb16", "maestro")
TYPES = ("PERSON", "LOCATION", "STREET_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS",
         "EMAIL_ADDRESS", "US_SSN", "DATE_TIME")

# Plain sentences and dialogue in the task data's shape. {TYPE} is a slot; a template holds each type at most once.
TEMPLATES = (
    "Please send the signed contract to {EMAIL_ADDRESS} before the end of the week.",
    "You can reach me on {PHONE_NUMBER} most evenings.",
    "{PERSON} called about the delayed parcel this morning.",
    "The meeting with {PERSON} has moved to the office in {LOCATION}.",
    "Our new address is {STREET_ADDRESS}, just past the station.",
    "My card number is {CREDIT_CARD} and it expires next spring.",
    "Wire the deposit to {IBAN_CODE} with the booking reference.",
    "The server at {IP_ADDRESS} stopped answering after the update.",
    "Her social security number is {US_SSN}, according to the form.",
    "{PERSON} was born on {DATE_TIME} and grew up in {LOCATION}.",
    "Deliver it to {STREET_ADDRESS} and ask for {PERSON} at the desk.",
    "If the card {CREDIT_CARD} is declined, call {PHONE_NUMBER}.",
    "Logs show logins from {IP_ADDRESS} using the account {EMAIL_ADDRESS}.",
    "I moved from {LOCATION} last year and now live at {STREET_ADDRESS}.",
    "Refunds go to the account {IBAN_CODE} held by {PERSON}.",
    "#Person1#: Hi, I'm {PERSON}. I'd like to book a table for two.\n#Person2#: Of course. Can I take a phone "
    "number?\n#Person1#: Sure, it's {PHONE_NUMBER}.",
    "#Person1#: Where should we send the documents?\n#Person2#: To {STREET_ADDRESS}, please. My name is {PERSON}.",
    "#Person1#: How would you like to pay?\n#Person2#: By card. The number is {CREDIT_CARD}.",
    "#Person1#: Can you confirm your e-mail?\n#Person2#: Yes, it's {EMAIL_ADDRESS}.\n#Person1#: Thank you, "
    "{PERSON}.",
    "#Person1#: Where are you travelling from?\n#Person2#: From {LOCATION}. I land on {DATE_TIME}.",
    "#Person1#: I need your bank details for the salary.\n#Person2#: My IBAN is {IBAN_CODE}.",
    "#Person1#: What's your date of birth?\n#Person2#: {DATE_TIME}. And my social security number is {US_SSN}.",
    "#Person1#: The printer keeps failing.\n#Person2#: Its address is {IP_ADDRESS}; I'll reset it.",
    "#Person1#: Good morning, this is {PERSON} from the bank.\n#Person2#: Hello. Please call me back on "
    "{PHONE_NUMBER}.",
)
# No personal data, but numbers, codes and capitalised words that a detector may take for some.
NEAR_MISSES = (
    "Order {N4}-{N4}-{N2} ships with the next batch.",
    "The total came to {N3}.{N2} euros for {N1} items.",
    "Version {N1}.{N2}.{N1} fixed the crash reported in build {N8}.",
    "Room {N4} on floor {N1} is free after lunch.",
    "The ISBN 978-{N1}-{N2}-{N6}-{N1} is printed on the back cover.",
    "Flight {AB} {N4} leaves from gate {N2}.",
    "The Rule of Law and the Common Market are discussed in Chapter Seven.",
    "Apple Pie, Lemon Tart and Black Forest Cake are on the menu today.",
    "The score was {N1}-{N1} after ninety minutes.",
    "Tracking code {AB}{N9}{AB} was scanned at the depot.",
    "#Person1#: How much is the ticket?\n#Person2#: It's {N2}.{N2}, and the train leaves from platform {N1}.",
    "#Person1#: Which form do I need?\n#Person2#: Form {AB}-{N3}, section {N1}, line {N2}.",
    "Invoice {N6} covers {N3} hours at {N2} per hour.",
    "The Great Bear and Orion are easy to see in winter.",
    "Serial number {N4} {N4} {N4} {N4} is on the label.",
)


def _faker(locale: str, seed: int):
    from faker import Faker

    fake = Faker(locale)
    fake.seed_instance(seed)
    return fake


def value(kind: str, rng: random.Random, fakes: dict) -> str:
    """A value of gold type ``kind``, written as people write it (groups, separators, one line)."""
    loc = rng.choice(LOCALES)
    f = fakes[loc]
    if kind == "PERSON":
        return rng.choice((f.name, lambda: f"{f.first_name()} {f.last_name()}", f.first_name))()
    if kind == "LOCATION":
        return f.city() if rng.random() < 0.7 else f.country()
    if kind == "STREET_ADDRESS":
        return re.sub(r"\s*\n\s*", ", ", f.street_address())
    if kind == "PHONE_NUMBER":
        return f.phone_number()
    if kind == "CREDIT_CARD":
        digits = fakes["en_US"].credit_card_number(card_type=rng.choice(CARD_TYPES))
        if rng.random() < 0.5:
            sep = rng.choice((" ", "-"))
            digits = sep.join(digits[i:i + 4] for i in range(0, len(digits), 4))
        return digits
    if kind == "IBAN_CODE":
        iban = fakes[rng.choice(IBAN_LOCALES)].iban()
        return " ".join(iban[i:i + 4] for i in range(0, len(iban), 4)) if rng.random() < 0.5 else iban
    if kind == "IP_ADDRESS":
        return f.ipv4() if rng.random() < 0.7 else f.ipv6()
    if kind == "EMAIL_ADDRESS":
        return f.email()
    if kind == "US_SSN":
        return fakes["en_US"].ssn()
    if kind == "DATE_TIME":
        d = f.date_of_birth()
        return d.strftime(rng.choice(("%d %B %Y", "%B %d, %Y", "%Y-%m-%d", "%d/%m/%Y")))
    raise ValueError(kind)


def _filler(token: str, rng: random.Random) -> str:
    if token == "AB":
        return "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXZ") for _ in range(2))
    return "".join(str(rng.randrange(10)) for _ in range(int(token[1:])))


def generate(n: int, seed: int = 0, near_miss_share: float = 0.15) -> list[dict]:
    """``n`` labelled sentences: {"id", "kind" (plain / dialogue / near_miss), "text", "spans": [[start, end, type]]}."""
    rng = random.Random(seed)
    fakes = {loc: _faker(loc, seed + i) for i, loc in enumerate(LOCALES)}
    out = []
    for i in range(n):
        if rng.random() < near_miss_share:
            template = rng.choice(NEAR_MISSES)
            text = re.sub(r"\{(AB|N\d)\}", lambda m: _filler(m.group(1), rng), template)
            out.append({"id": f"s{i}", "kind": "near_miss", "text": text, "spans": []})
            continue
        template = rng.choice(TEMPLATES)
        text, spans, at = "", [], 0
        for m in re.finditer(r"\{([A-Z_]+)\}", template):
            text += template[at:m.start()]
            v = " ".join(value(m.group(1), rng, fakes).split())  # one line, no stray spaces
            spans.append([len(text), len(text) + len(v), m.group(1)])
            text += v
            at = m.end()
        text += template[at:]
        out.append({"id": f"s{i}", "kind": "dialogue" if template.startswith("#Person") else "plain",
                    "text": text, "spans": spans})
    return out


# ----------------------------------------------------------------------------------------------- scoring
def _covered(start: int, end: int, others: list[tuple[int, int]]) -> int:
    """Characters of [start, end) inside the union of ``others``."""
    mask = bytearray(end - start)
    for s, e in others:
        for i in range(max(s, start), min(e, end)):
            mask[i - start] = 1
    return sum(mask)


def match(gold: list, found: list) -> tuple[list[tuple[str, bool, bool]], list[tuple[str, bool, bool]]]:
    """Per gold span (type, found, found typed) and per detection (type, correct, correct typed), by the half-coverage
    rule of the module docstring. ``gold``: [(start, end, type)]; ``found``: [(type, start, end, score)]."""
    spans = []
    for s, e, t in gold:
        anywhere = _covered(s, e, [(fs, fe) for _, fs, fe, _ in found])
        typed = _covered(s, e, [(fs, fe) for ft, fs, fe, _ in found if ft == t])
        spans.append((t, 2 * anywhere >= e - s, 2 * typed >= e - s))
    dets = []
    for ft, fs, fe, _ in found:
        anywhere = _covered(fs, fe, [(s, e) for s, e, _ in gold])
        typed = _covered(fs, fe, [(s, e) for s, e, t in gold if t == ft])
        dets.append((ft, 2 * anywhere >= fe - fs, 2 * typed >= fe - fs))
    return spans, dets


def _counts(per_sentence: list[tuple[list, list]]) -> dict:
    c: dict = {"gold": Counter(), "found": Counter(), "found_typed": Counter(),
               "detected": Counter(), "correct": Counter(), "correct_typed": Counter()}
    for spans, dets in per_sentence:
        for t, hit, typed in spans:
            c["gold"][t] += 1
            c["found"][t] += hit
            c["found_typed"][t] += typed
        for t, ok, typed in dets:
            c["detected"][t] += 1
            c["correct"][t] += ok
            c["correct_typed"][t] += typed
    return c


def f2(p: float | None, r: float | None) -> float | None:
    if p is None or r is None or (4 * p + r) == 0:
        return None if p is None or r is None else 0.0
    return 5 * p * r / (4 * p + r)


def figures(per_sentence: list[tuple[list, list]], entities: list[str], boot: int = 1000, seed: int = 0) -> dict:
    """Per type: recall (typed, untyped), precision (typed, untyped) with Wilson intervals, F2 with a bootstrap
    interval over sentences; ``configured`` says whether the audit looks for that type at all."""
    from audited_ft.eval.stats import wilson_interval

    c = _counts(per_sentence)

    def rate(k, n):
        if not n:
            return {"value": None, "ci_low": None, "ci_high": None, "n": 0}
        lo, hi = wilson_interval(k, n, 0.95)
        return {"value": round(k / n, 4), "ci_low": round(lo, 4), "ci_high": round(hi, 4), "n": n}

    types = sorted(set(c["gold"]) | set(c["detected"]), key=lambda t: (TYPES.index(t) if t in TYPES else 99, t))
    rng = random.Random(seed)
    samples = [_counts([per_sentence[rng.randrange(len(per_sentence))] for _ in per_sentence]) for _ in range(boot)]
    out = {}
    for t in types:
        recall, precision = rate(c["found_typed"][t], c["gold"][t]), rate(c["correct_typed"][t], c["detected"][t])
        draws = sorted(x for x in (f2(s["correct_typed"][t] / s["detected"][t] if s["detected"][t] else None,
                                      s["found_typed"][t] / s["gold"][t] if s["gold"][t] else None)
                                   for s in samples) if x is not None)
        point = f2(precision["value"], recall["value"])
        out[t] = {"configured": t in entities, "recall": recall, "recall_untyped": rate(c["found"][t], c["gold"][t]),
                  "precision": precision, "precision_untyped": rate(c["correct"][t], c["detected"][t]),
                  "f2": {"value": None if point is None else round(point, 4),
                         "ci_low": round(draws[int(0.025 * len(draws))], 4) if draws else None,
                         "ci_high": round(draws[int(0.975 * len(draws)) - 1], 4) if draws else None}}
    return out


# presidio-research's entity names → this benchmark's
EXTERNAL_TYPES = {"ADDRESS": "STREET_ADDRESS", "GPE": "LOCATION", "STREET_ADDRESS": "STREET_ADDRESS"}


def external(path: Path) -> list[dict]:
    """Labelled samples of Microsoft's presidio-research (``generated_small.json`` / ``synth_dataset_v2.json``: a JSON
    list of {full_text, spans: [{entity_type, start_position, end_position}]}), read at run time from the data
    directory: an independent check of recognizers written against this file's own generator."""
    out = []
    for i, sample in enumerate(json.loads(Path(path).read_text(encoding="utf-8"))):
        spans = [[sp["start_position"], sp["end_position"], EXTERNAL_TYPES.get(sp["entity_type"], sp["entity_type"])]
                 for sp in sample.get("spans") or []]
        out.append({"id": f"x{i}", "kind": "external", "text": sample["full_text"], "spans": spans})
    return out


def evaluate(sentences: list[dict], opts, workers: int | None = None) -> dict:
    """Run the audit's detector on ``sentences`` and score it; returns figures, speed and false alarms on near
    misses."""
    from audited_ft.audit.audits.pii import detect

    started = time.time()
    found = detect(opts, [s["text"] for s in sentences], workers=workers)
    seconds = time.time() - started
    per_sentence = [match([tuple(x) for x in s["spans"]], f) for s, f in zip(sentences, found)]
    near = [f for s, f in zip(sentences, found) if s["kind"] == "near_miss"]
    return {"sentences": len(sentences), "gold_spans": sum(len(s["spans"]) for s in sentences),
            "by_kind": dict(Counter(s["kind"] for s in sentences)), "seconds": round(seconds, 2),
            "near_miss_false_alarms": {"sentences": len(near), "with_a_detection": sum(bool(f) for f in near),
                                       "by_type": dict(Counter(d[0] for f in near for d in f))},
            "figures": figures(per_sentence, list(opts.entities))}


def table(result: dict) -> str:
    def cell(x):
        return "—" if x["value"] is None else f"{x['value']:.2f} [{x['ci_low']:.2f}, {x['ci_high']:.2f}]"

    lines = ["| type | in entity list | gold | recall typed | recall untyped | detections | precision typed | "
             "precision untyped | F2 |", "|---|---|---|---|---|---|---|---|---|"]
    for t, f in result["figures"].items():
        lines.append(f"| {t} | {'yes' if f['configured'] else 'no'} | {f['recall']['n']} | {cell(f['recall'])} | "
                     f"{cell(f['recall_untyped'])} | {f['precision']['n']} | {cell(f['precision'])} | "
                     f"{cell(f['precision_untyped'])} | {cell(f['f2'])} |")
    return "\n".join(lines)


FIGURES = REPO / "src/audited_ft/audit/audits/pii_quality.json"


def write_figures(n: int, seed: int, workers: int | None, external_path: Path | None = None) -> None:
    """Recall and precision per type of each engine with the audit's default options, for the audit to cite; and,
    when presidio-research's labelled sample is at hand, the same on it (the independent check)."""
    import datetime

    from audited_ft.audit.audits.pii import PiiOptions

    sentences = generate(n, seed)
    out = {"benchmark": "benchmarks/pii_quality.py", "date": datetime.date.today().isoformat(), "sentences": n,
           "seed": seed, "gold_spans": sum(len(s["spans"]) for s in sentences),
           "model": PiiOptions().model, "engines": {}}
    for engine in ("extended", "presidio-stock"):
        result = evaluate(sentences, PiiOptions(engine=engine), workers)
        out["engines"][engine] = {t: {"recall": f["recall"], "precision": f["precision"]}
                                  for t, f in result["figures"].items()}
        print(f"{engine}:\n{table(result)}\n")
    if external_path is not None and external_path.is_file():
        samples = external(external_path)
        out["independent"] = {"source": f"presidio-research {external_path.name}", "texts": len(samples),
                              "gold_spans": sum(len(s["spans"]) for s in samples), "engines": {}}
        for engine in ("extended", "presidio-stock"):
            result = evaluate(samples, PiiOptions(engine=engine), workers)
            out["independent"]["engines"][engine] = {t: {"recall": f["recall"], "precision": f["precision"]}
                                                     for t, f in result["figures"].items() if t in TYPES}
            print(f"{engine}, independent sample:\n{table(result)}\n")
    FIGURES.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(f"written: {FIGURES}")


def main() -> None:
    from audited_ft.audit.audits.pii import PiiOptions
    from audited_ft.pipeline import load_config

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=3000, help="sentences (default 3,000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--config", type=Path, default=REPO / "configs/default.yaml", help="whose audits.pii options")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="override, e.g. audits.pii.model=...")
    ap.add_argument("--workers", type=int)
    ap.add_argument("--external", type=Path, help=(
        "score a presidio-research labelled file instead (e.g. DATA/presidio_research/generated_small.json)"))
    ap.add_argument("--out", type=Path)
    ap.add_argument("--write-figures", action="store_true", help=(
        "measure both engines with the default options and write the figures the audit ships "
        "(src/audited_ft/audit/audits/pii_quality.json); with --external (default: DATA/presidio_research/"
        "generated_small.json if present) also on that independent sample"))
    args = ap.parse_args()
    if args.write_figures:
        import os

        sample = args.external or (Path(os.environ.get("AFT_DATA_DIR", REPO.parent / "shared/data"))
                                   / "presidio_research/generated_small.json")
        write_figures(args.n, args.seed, args.workers, sample)
        return
    cfg = load_config(args.config, args.sets)
    opts = PiiOptions(**((cfg.audits or {}).get("pii") or {}))
    sentences = external(args.external) if args.external else generate(args.n, args.seed)
    result = {"config": str(args.config), "overrides": args.sets, "seed": args.seed, **evaluate(sentences, opts,
                                                                                                  args.workers)}
    print(table(result))
    nm = result["near_miss_false_alarms"]
    print(f"\n{result['sentences']} sentences ({result['by_kind']}), {result['gold_spans']} gold spans, scanned in "
          f"{result['seconds']} s; near misses with a detection: {nm['with_a_detection']} of {nm['sentences']} "
          f"{nm['by_type']}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
