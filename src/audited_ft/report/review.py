"""Human A/B review: a blinded sheet of base vs adapter outputs, and the ratings folded back into the run folder.

``export_review`` pairs ``eval/generations/base.jsonl`` and ``adapter.jsonl`` by id, draws the sides at random (seeded,
balanced: half the items show the adapter as A), and writes ``review/sheet.html`` (a static page that saves the ratings
as CSV in the browser), ``review/sheet.csv`` (the same items for a spreadsheet) and ``review/key.json`` (which side is
the adapter). The sheet never reveals the key; ``key.json`` stays with whoever runs the import.

``import_ratings`` reads ratings CSVs (item_id, rater, choice = A/B/tie), maps each choice through the key to an adapter
win / tie / loss, and writes ``eval/human_review.json``: rates with bootstrap intervals over items (the item is the unit:
several raters of one item are not independent), counts, rater count and simple % agreement. Rater names are personal
data and the report travels further than the ratings file, so names are replaced by R1, R2, ... (order of first
appearance) and never written to the run folder; the imported files are identified by name and sha256 only.

Blind spots: raters see the test input, reference and both outputs, so a rater who knows the models' styles can guess
the sides; the sides follow from ``seed``, so keep the seed from raters. The test split is shown as it sits in the run
folder (after the data stage's PII policy): export only where raters may see that data.
"""

from __future__ import annotations

import csv
import hashlib
import io
import random
from pathlib import Path
from typing import Any, Sequence

from audited_ft.errors import DataError, RunFolderError
from audited_ft.report.format import environment, inline_script, neutralise
from audited_ft.run.folder import RunFolder, atomic_write_text, sha256_file, utcnow, write_json
from audited_ft.run.view import RunView

REVIEW_DIR = "review"
KEY = f"{REVIEW_DIR}/key.json"
SHEET_HTML = f"{REVIEW_DIR}/sheet.html"
SHEET_CSV = f"{REVIEW_DIR}/sheet.csv"
RESULT = "eval/human_review.json"
GENERATIONS = ("eval/generations/base.jsonl", "eval/generations/adapter.jsonl")
SHEET_COLUMNS = ("item_id", "input", "reference", "output_a", "output_b", "choice", "rater", "sheet")
RATING_COLUMNS = ("item_id", "rater", "choice")
CHOICES = {"a": "A", "b": "B", "tie": "tie"}
OUTCOMES = ("win", "tie", "loss")
MAX_ERRORS = 20  # a bad CSV lists this many problems at once, then a count
_FORMULA = ("=", "+", "-", "@", "\t", "\r")  # a cell starting with these is a formula to a spreadsheet
SCRIPT = "review.js"  # the sheet's only script, beside the template; inlined and pinned by sha256 in the CSP


def _formula_safe(text: str) -> str:
    """Spreadsheet-safe cell (OWASP CSV injection): model text starting ``=``/``+``/``-``/``@`` gets a leading ``'``."""
    return "'" + text if text.startswith(_FORMULA) else text


# export ---------------------------------------------------------------------------------------------------------------
def _by_id(path: Path, rows: list[dict]) -> dict[str, dict]:
    """Generation rows keyed by id; a row without id or prediction, or a repeated id, is a DataError."""
    out: dict[str, dict] = {}
    for n, row in enumerate(rows, 1):
        rid = row.get("id") if isinstance(row, dict) else None
        if rid is None or str(rid).strip() == "":
            raise DataError(f"{path}, row {n}: field 'id' is missing or empty (value {rid!r}); "
                            "base and adapter outputs are paired by id")
        if not isinstance(row.get("prediction"), str):
            raise DataError(f"{path}, row {n} (id {str(rid)[:60]!r}): field 'prediction' is "
                            f"{type(row.get('prediction')).__name__}, expected text")
        if str(rid) in out:
            raise DataError(f"{path}, row {n}: id {str(rid)[:60]!r} appears twice; ids must be unique")
        out[str(rid)] = row
    return out


def _paired_items(run: RunView) -> tuple[list[dict], dict[str, int]]:
    """Items seen by both base and adapter, in base order, with input and reference from data/test.jsonl."""
    sides = {}
    for rel in GENERATIONS:
        path = run.path / rel
        if not path.is_file():
            raise RunFolderError(f"{path}: missing — the review compares base and adapter generations; run the "
                                 f"'eval' stage first (audited-ft eval {run.path})")
        sides[rel] = _by_id(path, run.require(rel, "eval"))
    base, adapter = (sides[rel] for rel in GENERATIONS)
    tests = {str(r.get("id")): r for r in (run.require("data/test.jsonl", "data")
                                          if run.exists("data/test.jsonl") else [])}
    items = []
    for rid, b in base.items():
        if rid not in adapter:
            continue
        a, t = adapter[rid], tests.get(rid, {})
        items.append({"item_id": rid, "input": t.get("input", b.get("prompt", "")),
                      "reference": t.get("target", b.get("reference", "")),
                      "base": b["prediction"], "adapter": a["prediction"]})
    unpaired = {"base_only": len(set(base) - set(adapter)), "adapter_only": len(set(adapter) - set(base))}
    if not items:
        raise DataError(f"{run.path / GENERATIONS[0]} and {run.path / GENERATIONS[1]}: no id appears in both "
                        f"({len(base)} base rows, {len(adapter)} adapter rows); nothing to compare")
    return items, unpaired


def _draw(items: list[dict], n: int | None, seed: int) -> list[dict]:
    """A seeded sample of ``n`` items in shuffled order, each with a side: exactly half (±1) show the adapter as A."""
    if n is not None and n < 1:
        raise DataError(f"review: n = {n!r} must be at least 1")
    rng = random.Random(seed)
    chosen = rng.sample(items, min(n, len(items))) if n is not None else list(items)
    rng.shuffle(chosen)
    sides = (["A", "B"] * (len(chosen) // 2 + 1))[: len(chosen)]
    rng.shuffle(sides)  # balanced, so neither position carries the adapter more often
    for item, side in zip(chosen, sides):
        a, b = (item["adapter"], item["base"]) if side == "A" else (item["base"], item["adapter"])
        item.update(adapter_side=side, output_a=a, output_b=b)
    return chosen


def _sheet_csv(items: list[dict], sheet_id: str) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(SHEET_COLUMNS)
    for it in items:
        cells = [it["item_id"], it["input"], it["reference"], it["output_a"], it["output_b"]]
        writer.writerow([_formula_safe(neutralise(c)) for c in cells] + ["", "", sheet_id])
    return "\ufeff" + buf.getvalue()  # the BOM makes spreadsheets read the file as UTF-8


def _sheet_html(run_id: str, items: list[dict], sheet_id: str) -> str:
    env = environment()  # the report's: autoescape, control characters shown, the shared macros' filters
    script, script_hash = inline_script(SCRIPT)
    return env.get_template("review.html.j2").render(
        run_id=run_id, items=items, sheet_id=sheet_id, script=script, script_hash=script_hash)


def export_review(run_dir: Path, n: int | None = None, seed: int = 0) -> dict[str, Path]:
    """Write a blinded A/B sheet of base vs adapter outputs into ``<run_dir>/review/``; return the paths written.

    Keys of the result: ``html`` (``sheet.html``), ``csv`` (``sheet.csv``) and ``key`` (``key.json``). ``n`` caps the
    items (a seeded sample; ``None``: every item both models answered). The same run folder, ``n`` and ``seed`` give the
    same sheet. Raises :class:`RunFolderError` when the run folder or its generations are missing,
    :class:`DataError` when the generations cannot be paired.
    """
    rf = RunFolder.open(run_dir)
    run = RunView(rf.path)
    items, unpaired = _paired_items(run)
    available = len(items)
    items = _draw(items, n, seed)
    sources = {rel: sha256_file(rf / rel) for rel in (*GENERATIONS, "data/test.jsonl") if (rf / rel).is_file()}
    # Identifies this draw (ratings made on another sheet are refused on import) without encoding the sides.
    basis = "|".join([str(seed), *(it["item_id"] for it in items), *sources.values()])
    sheet_id = hashlib.sha256(basis.encode("utf-8")).hexdigest()[:16]
    paths = {"html": rf / SHEET_HTML, "csv": rf / SHEET_CSV, "key": rf / KEY}
    write_json(paths["key"], {
        "schema": 1, "sheet_id": sheet_id, "created": utcnow(), "seed": seed, "n_requested": n,
        "n_items": len(items), "n_paired": available, "unpaired": unpaired, "sources": sources,
        "note": "Which side shows the adapter. Keep this file from the raters.",
        "adapter_side": {it["item_id"]: it["adapter_side"] for it in items}})
    atomic_write_text(paths["csv"], _sheet_csv(items, sheet_id))
    atomic_write_text(paths["html"], _sheet_html(run.run_id, items, sheet_id))
    rf.record_artefacts(SHEET_HTML, SHEET_CSV, KEY)
    return paths


# import ---------------------------------------------------------------------------------------------------------------
def _read_ratings(path: Path, key: dict, errors: list[str]) -> list[dict]:
    """Rows of one ratings CSV as dicts (item_id, rater, choice, where); problems are appended to ``errors``."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{path}: ratings file not found") from None
    except (UnicodeDecodeError, OSError) as exc:
        raise DataError(f"{path}: not a readable UTF-8 CSV file ({exc})") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = {(h or "").strip().lower(): h for h in reader.fieldnames or []}
    except csv.Error as exc:
        raise DataError(f"{path}, line 1: not a readable CSV header ({exc})") from None
    missing = [c for c in RATING_COLUMNS if c not in header]
    if missing:
        raise DataError(f"{path}, line 1: missing column(s) {', '.join(map(repr, missing))} "
                        f"(found {sorted(h for h in header if h) or 'no header'}); expected {', '.join(RATING_COLUMNS)}")
    rows: list[dict] = []
    try:
        for rec in reader:
            _check_row(rec, header, reader.line_num, path, key, errors, rows)
    except csv.Error as exc:
        raise DataError(f"{path}, line {reader.line_num}: not a readable CSV ({exc})") from None
    return rows


def _check_row(rec: dict, header: dict, line: int, path: Path, key: dict, errors: list[str], rows: list[dict]) -> None:
    """One CSV record: appended to ``rows`` as a rating, its problems to ``errors``; a blank choice is skipped."""
    sides: dict = key["adapter_side"]
    get = {c: str(rec.get(header[c]) or "").strip() for c in (*RATING_COLUMNS, "sheet") if c in header}
    if not get["choice"]:
        return  # an unrated item (sheet.csv as exported) or a blank row
    item, where = get["item_id"], f"{path}, line {line}"
    if item not in sides and item.startswith("'") and item[1:] in sides:
        item = item[1:]  # the formula guard the sheet put in front of an id starting with '-', '=' ...
    if item not in sides:
        errors.append(f"{where}: field 'item_id' = {item[:80]!r} is not an item of this review sheet "
                      f"({KEY} lists {len(sides)} items)")
    choice = CHOICES.get(get["choice"].lower())
    if choice is None:
        errors.append(f"{where}: field 'choice' = {get['choice'][:40]!r} is not one of A, B, tie")
    if not get["rater"]:
        errors.append(f"{where}: field 'rater' is empty; every rating needs a rater name or initials")
    if get.get("sheet") and get["sheet"] != key["sheet_id"]:
        errors.append(f"{where}: field 'sheet' = {get['sheet'][:40]!r} does not match {KEY} "
                      f"(sheet {key['sheet_id']}): the sheet was exported again since these ratings were made")
    rows.append({"item_id": item, "rater": get["rater"], "choice": choice, "where": where})


def _outcome(choice: str, adapter_side: str) -> str:
    return "tie" if choice == "tie" else "win" if choice == adapter_side else "loss"


def _agreement(by_rater: dict[str, dict[str, str]]) -> dict | None:
    """Simple % agreement (same outcome on an item both raters rated), pooled over rater pairs and per rater."""
    labels = sorted(by_rater, key=lambda r: int(r[1:]))
    if len(labels) < 2:
        return None
    pairs, per = [], {r: [0, 0] for r in labels}
    for i, r1 in enumerate(labels):
        for r2 in labels[i + 1:]:
            shared = set(by_rater[r1]) & set(by_rater[r2])
            same = sum(by_rater[r1][it] == by_rater[r2][it] for it in shared)
            pairs.append({"raters": [r1, r2], "n_items": len(shared),
                          "agreement": same / len(shared) if shared else None})
            for r in (r1, r2):
                per[r][0] += same
                per[r][1] += len(shared)
    agreed, compared = sum(p["agreement"] * p["n_items"] for p in pairs if p["n_items"]), sum(p["n_items"] for p in pairs)
    return {"overall": agreed / compared if compared else None, "n_comparisons": compared, "pairs": pairs,
            "per_rater": {r: (a / c if c else None) for r, (a, c) in per.items()}}


def _settings(run: RunView) -> tuple[float, int]:
    """Confidence and bootstrap resamples the run's own probes used (eval/metrics.json), else 0.95 and 1000."""
    metrics = run.require("eval/metrics.json", "eval") if run.exists("eval/metrics.json") else {}
    return float(metrics.get("eval.confidence", 0.95)), int(metrics.get("eval.bootstrap_samples", 1000))


def _summarise(ratings: list[dict], key: dict, run: RunView) -> dict:
    from audited_ft.eval.stats import bootstrap_ci

    pseudonyms: dict[str, str] = {}
    per_item: dict[str, list[str]] = {}
    by_rater: dict[str, dict[str, str]] = {}
    for r in ratings:
        label = pseudonyms.setdefault(r["rater"], f"R{len(pseudonyms) + 1}")
        outcome = _outcome(r["choice"], key["adapter_side"][r["item_id"]])
        per_item.setdefault(r["item_id"], []).append(outcome)
        by_rater.setdefault(label, {})[r["item_id"]] = outcome
    confidence, samples = _settings(run)
    # Each item weighs the same whatever its number of raters: the per-item share of each outcome is bootstrapped.
    shares = {o: [v.count(o) / len(v) for v in per_item.values()] for o in OUTCOMES}
    shares["net"] = [w - lo for w, lo in zip(shares["win"], shares["loss"])]
    rates = {}
    for name, values in shares.items():
        mean, lo, hi = bootstrap_ci(values, samples, confidence, seed=0)  # fixed: same ratings, same interval
        rates[name] = {"value": mean, "ci_low": lo, "ci_high": hi}
    outcomes = [o for v in per_item.values() for o in v]
    return {"rates": rates, "counts": {o: outcomes.count(o) for o in OUTCOMES},
            "n_items": len(per_item), "n_ratings": len(outcomes), "n_raters": len(pseudonyms),
            "confidence": confidence, "bootstrap_samples": samples,
            "per_rater": [{"rater": lab, "n_ratings": len(v), **{o: list(v.values()).count(o) for o in OUTCOMES}}
                          for lab, v in by_rater.items()],
            "agreement": _agreement(by_rater)}


def import_ratings(run_dir: Path, csv_path: Path | Sequence[Path]) -> dict:
    """Fold ratings CSVs into ``<run_dir>/eval/human_review.json`` (replacing any earlier import); return its content.

    ``csv_path`` is one file or several (one per rater, say); each needs columns item_id, rater and choice (A, B or
    tie, any case; rows with a blank choice are skipped). Every problem found — unknown item id, bad choice, empty
    rater, a rater rating one item twice, a sheet exported again since — is listed in one :class:`DataError` naming
    file, line, field and value. Raises :class:`RunFolderError` when ``review/key.json`` is missing.
    """
    rf = RunFolder.open(run_dir)
    run = RunView(rf.path)
    if not run.exists(KEY):
        raise RunFolderError(f"{rf / KEY}: missing — export the review sheet first (audited-ft review {rf.path})")
    key = run.require(KEY, "review")
    if not isinstance(key, dict) or not isinstance(key.get("adapter_side"), dict) or "sheet_id" not in key:
        raise RunFolderError(f"{rf / KEY}: not a review key (no 'adapter_side' table); export the sheet again")
    paths = [Path(csv_path)] if isinstance(csv_path, (str, Path)) else [Path(p) for p in csv_path]
    if not paths:
        raise DataError("review --import: no ratings file given")
    errors: list[str] = []
    ratings = [r for p in paths for r in _read_ratings(p, key, errors)]
    seen: dict[tuple[str, str], str] = {}
    for r in ratings:
        prior = seen.setdefault((r["item_id"], r["rater"]), r["where"])
        if prior != r["where"] and r["item_id"] in key["adapter_side"]:
            errors.append(f"{r['where']}: field 'item_id' = {r['item_id'][:80]!r} was already rated by this rater "
                          f"({prior}); keep one rating per rater and item")
    if errors:
        more = f"\n... and {len(errors) - MAX_ERRORS} more" if len(errors) > MAX_ERRORS else ""
        raise DataError(f"{len(errors)} problem(s) in the ratings:\n" + "\n".join(errors[:MAX_ERRORS]) + more)
    if not ratings:
        raise DataError(f"{', '.join(map(str, paths))}: no ratings (every row's choice is blank)")
    result = {"schema": 1, "imported": utcnow(), "sheet_id": key["sheet_id"], "n_items_exported": key.get("n_items"),
              "sources": [{"file": p.name, "sha256": sha256_file(p)} for p in paths],
              "rater_names": "not stored (personal data): raters are R1, R2, ... in order of first appearance",
              **_summarise(ratings, key, run)}
    write_json(rf / RESULT, result)
    rf.record_artefacts(RESULT)
    return result


# report ---------------------------------------------------------------------------------------------------------------
def review_view(run: RunView) -> dict | None:
    """``eval/human_review.json`` shaped for ``sections/_human_review.html.j2``; ``None`` when no ratings were imported.

    An unreadable file gives a view whose ``error`` says why, so the report names the gap instead of failing.
    """
    if not (run.path / RESULT).is_file():
        return None
    sources = [{**src, "sha256": src["sha256"] or (sha256_file(run.path / src["path"])
                                                   if (run.path / src["path"]).is_file() else None)}
               for src in run.sources(RESULT, KEY, SHEET_HTML)]
    view: dict[str, Any] = {"error": None, "rows": [], "sources": sources, "agreement": None, "per_rater": [],
                            "n_items": None, "n_ratings": None, "n_raters": None, "n_items_exported": None,
                            "imported": None, "bootstrap_samples": None, "ci_label": "CI"}
    try:
        data = run.require(RESULT, "review")
        rates, counts = data["rates"], data["counts"]
        labels = {"win": "adapter better", "tie": "tie", "loss": "base better", "net": "net (adapter − base)"}
        view["rows"] = [{"name": labels[k], "count": counts.get(k), "value": rates[k]["value"],
                         "lo": rates[k]["ci_low"], "hi": rates[k]["ci_high"]} for k in ("win", "tie", "loss", "net")]
        view.update({k: data.get(k) for k in ("n_items", "n_ratings", "n_raters", "n_items_exported", "imported",
                                              "bootstrap_samples")},
                    ci_label=f"{round(100 * float(data.get('confidence', 0.95)))}% CI",
                    agreement=data.get("agreement"), per_rater=data.get("per_rater") or [])
    except (RunFolderError, KeyError, TypeError, ValueError) as exc:
        view["error"] = f"{RESULT} could not be read ({type(exc).__name__}: {exc}); import the ratings again"
        view["rows"] = []
    return view
