"""Human A/B review (audited_ft.report.review and `audited-ft review`) on a copy of the sample run folder."""

from __future__ import annotations

import base64
import csv
import hashlib
import html as htmllib
import io
import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from audited_ft.cli import app
from audited_ft.errors import DataError, RunFolderError
from audited_ft.report.review import export_review, import_ratings, review_view
from audited_ft.run.view import RunView
from tests.report import chromium

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "tests" / "fixtures" / "sample_run"
HOSTILE = "<script>alert(1)</script><img src=x onerror=\"document.body.setAttribute('data-pwned','1')\">"
runner = CliRunner()


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    if not SAMPLE.is_dir():
        pytest.skip(f"sample run folder {SAMPLE} not found")
    dest = tmp_path / SAMPLE.name
    # The adapter weights and the probe cache are not read by the review: leave them out to keep the copy small.
    shutil.copytree(SAMPLE, dest, ignore=shutil.ignore_patterns("train", "cache", "report.html"))
    for p in dest.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    return dest


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _sheet_rows(run: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO((run / "review/sheet.csv").read_text(encoding="utf-8-sig"), newline="")))


def _key(run: Path) -> dict:
    return json.loads((run / "review/key.json").read_text(encoding="utf-8"))


def _write_ratings(path: Path, rows: list[tuple], header: tuple = ("item_id", "rater", "choice")) -> Path:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")
    return path


def test_export_writes_sheet_csv_and_key_that_agree(run_dir: Path) -> None:
    paths = export_review(run_dir)
    assert {k: p.relative_to(run_dir).as_posix() for k, p in paths.items()} == {
        "html": "review/sheet.html", "csv": "review/sheet.csv", "key": "review/key.json"}
    rows, key = _sheet_rows(run_dir), _key(run_dir)
    assert list(rows[0]) == ["item_id", "input", "reference", "output_a", "output_b", "choice", "rater", "sheet"]
    assert len(rows) == key["n_items"] == key["n_paired"] == 32
    sides = key["adapter_side"]
    assert sorted(sides.values()).count("A") == 16 and sorted(sides.values()).count("B") == 16  # balanced, mixed
    assert [r["item_id"] for r in rows] != [r["id"] for r in _jsonl(run_dir / "eval/generations/base.jsonl")]
    adapter = {r["id"]: r["prediction"] for r in _jsonl(run_dir / "eval/generations/adapter.jsonl")}
    base = {r["id"]: r["prediction"] for r in _jsonl(run_dir / "eval/generations/base.jsonl")}
    for r in rows:
        shown = r["output_a"] if sides[r["item_id"]] == "A" else r["output_b"]
        other = r["output_b"] if sides[r["item_id"]] == "A" else r["output_a"]
        assert (shown, other) == (adapter[r["item_id"]], base[r["item_id"]])
        assert r["choice"] == r["rater"] == "" and r["sheet"] == key["sheet_id"]
    test_inputs = {r["id"]: r["input"] for r in _jsonl(run_dir / "data/test.jsonl")}
    assert all(r["input"] == test_inputs[r["item_id"]] for r in rows)
    page = paths["html"].read_text(encoding="utf-8")
    assert "adapter" not in page.lower() and "key.json" not in page  # the sheet never names the sides
    assert page.count('class="item"') == 32
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    assert "review/key.json" in manifest["artefacts"]


def test_sample_is_seeded_and_sides_follow_the_seed(run_dir: Path) -> None:
    export_review(run_dir, n=5, seed=7)
    first = _key(run_dir)
    export_review(run_dir, n=5, seed=7)
    again = _key(run_dir)
    assert first["adapter_side"] == again["adapter_side"] and first["sheet_id"] == again["sheet_id"]
    assert len(first["adapter_side"]) == 5 and set(first["adapter_side"].values()) == {"A", "B"}
    export_review(run_dir, n=5, seed=8)
    assert _key(run_dir)["sheet_id"] != first["sheet_id"]


def test_hostile_generation_is_escaped_and_formula_guarded(run_dir: Path) -> None:
    path = run_dir / "eval/generations/adapter.jsonl"
    rows = _jsonl(path)
    rows[0]["prediction"] = HOSTILE
    rows[1]["prediction"] = '=HYPERLINK("http://evil.example","click")'
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    page = export_review(run_dir)["html"].read_text(encoding="utf-8")
    assert "<script>alert" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    scripts = re.findall(r"<script>(.*?)</script>", page, flags=re.S)
    assert len(scripts) == 1  # only ours, and the CSP pins exactly it
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode("utf-8")).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in page and "default-src 'none'" in page
    assert "http://" not in page.replace("http://evil.example", "") and "https://" not in page
    cells = {r["item_id"]: r for r in _sheet_rows(run_dir)}
    guarded = cells[rows[1]["id"]]
    assert "'=HYPERLINK(\"http://evil.example\",\"click\")" in (guarded["output_a"], guarded["output_b"])


def test_import_counts_rates_agreement_and_no_names(run_dir: Path, tmp_path: Path) -> None:
    export_review(run_dir, n=6, seed=3)
    sides = _key(run_dir)["adapter_side"]
    i1, i2, i3 = list(sides)[:3]
    other = {"A": "B", "B": "A"}
    ratings = _write_ratings(tmp_path / "r.csv", [
        (i1, "Alice Example", sides[i1].lower()),  # adapter better (lower case accepted)
        (i2, "Alice Example", other[sides[i2]]),  # base better
        (i3, "Alice Example", "TIE"),
        ("", "", ""),  # blank row: skipped
        (list(sides)[3], "Alice Example", ""),  # unrated: skipped
        (i1, "Bob", sides[i1]),  # agrees with Alice
        (i2, "Bob", "tie"),  # disagrees
    ])
    result = import_ratings(run_dir, ratings)
    assert result["counts"] == {"win": 2, "tie": 2, "loss": 1}
    assert (result["n_items"], result["n_ratings"], result["n_raters"]) == (3, 5, 2)
    # Per item: i1 all wins; i2 half loss, half tie; i3 all tie. Rates average the per-item shares.
    assert result["rates"]["win"]["value"] == pytest.approx(1 / 3)
    assert result["rates"]["tie"]["value"] == pytest.approx(1 / 2)
    assert result["rates"]["loss"]["value"] == pytest.approx(1 / 6)
    assert result["rates"]["net"]["value"] == pytest.approx(1 / 6)
    for r in result["rates"].values():
        assert r["ci_low"] <= r["value"] <= r["ci_high"] and r["ci_low"] < r["ci_high"]
    assert result["agreement"]["overall"] == pytest.approx(0.5) and result["agreement"]["n_comparisons"] == 2
    assert [p["rater"] for p in result["per_rater"]] == ["R1", "R2"]
    stored = (run_dir / "eval/human_review.json").read_text(encoding="utf-8")
    assert "Alice" not in stored and "Bob" not in stored and str(tmp_path) not in stored
    assert json.loads(stored)["counts"] == result["counts"]

    # Importing again replaces the earlier result instead of adding to it.
    import_ratings(run_dir, _write_ratings(tmp_path / "r2.csv", [(i3, "Carol", "b")]))
    again = json.loads((run_dir / "eval/human_review.json").read_text(encoding="utf-8"))
    assert (again["n_ratings"], again["n_raters"], again["agreement"]) == (1, 1, None)
    assert again["counts"] == ({"win": 1, "tie": 0, "loss": 0} if sides[i3] == "B" else {"win": 0, "tie": 0, "loss": 1})


def test_sheet_csv_filled_in_a_spreadsheet_imports(run_dir: Path, tmp_path: Path) -> None:
    export_review(run_dir, n=4, seed=1)
    rows = _sheet_rows(run_dir)
    sides = _key(run_dir)["adapter_side"]
    for r in rows[:2]:
        r.update(choice=sides[r["item_id"]], rater="RS")
    filled = tmp_path / "filled.csv"
    with open(filled, "w", encoding="utf-8-sig", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    result = import_ratings(run_dir, filled)
    assert result["counts"] == {"win": 2, "tie": 0, "loss": 0} and result["n_items"] == 2


@pytest.mark.parametrize("rows,header,expected", [
    ([("no-such-item", "R", "A")], None, ["line 2", "'item_id'", "'no-such-item'"]),
    ([("FIRST", "R", "A"), ("FIRST", "R", "maybe")], None, ["line 3", "'choice'", "'maybe'", "A, B, tie"]),
    ([("FIRST", "", "B")], None, ["line 2", "'rater'", "empty"]),
    ([("FIRST", "R", "A"), ("FIRST", "R", "B")], None, ["line 3", "'item_id'", "already rated", "line 2"]),
    ([("FIRST", "R", "A", "0123456789abcdef")], ("item_id", "rater", "choice", "sheet"),
     ["line 2", "'sheet'", "'0123456789abcdef'", "exported again"]),
    ([("FIRST", "R")], ("item_id", "rater"), ["line 1", "missing column(s) 'choice'"]),
])
def test_bad_ratings_exit_2_naming_file_line_field_value(run_dir, tmp_path, rows, header, expected) -> None:
    export_review(run_dir, n=3)
    first = next(iter(_key(run_dir)["adapter_side"]))
    rows = [tuple(first if c == "FIRST" else c for c in r) for r in rows]
    bad = _write_ratings(tmp_path / "bad.csv", rows, header or ("item_id", "rater", "choice"))
    r = runner.invoke(app, ["review", str(run_dir), "--import", str(bad)])
    assert r.exit_code == 2, r.output
    assert str(bad) in r.output and "Traceback" not in r.output
    for piece in expected:
        assert piece in r.output, (piece, r.output)
    assert not (run_dir / "eval/human_review.json").exists()


def test_cli_export_then_import(run_dir: Path, tmp_path: Path) -> None:
    r = runner.invoke(app, ["review", str(run_dir), "--n", "4", "--seed", "2"])
    assert r.exit_code == 0, r.output
    assert "sheet.html" in r.output and (run_dir / "review/sheet.csv").is_file()
    sides = _key(run_dir)["adapter_side"]
    ratings = _write_ratings(tmp_path / "r.csv", [(i, "R", s) for i, s in sides.items()])
    r = runner.invoke(app, ["review", str(run_dir), "--import", str(ratings)])
    assert r.exit_code == 0, r.output
    assert "4 rating(s) of 4 item(s) by 1 rater(s): adapter better 1.000" in r.output
    r = runner.invoke(app, ["review", str(run_dir), "--import", str(ratings), "--n", "2"])
    assert r.exit_code == 2 and "--n and --seed" in r.output


def test_missing_generations_and_key_are_clear_errors(run_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(RunFolderError, match="key.json: missing"):
        import_ratings(run_dir, tmp_path / "r.csv")
    (run_dir / "eval/generations/adapter.jsonl").unlink()
    r = runner.invoke(app, ["review", str(run_dir)])
    assert r.exit_code == 2
    assert "adapter.jsonl: missing" in r.output and "audited-ft eval" in r.output
    (run_dir / "eval/generations/adapter.jsonl").write_text('{"id": "x", "prediction": 3}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"adapter.jsonl, row 1 .*'prediction' is int"):
        export_review(run_dir)


def test_review_view_and_partial(run_dir: Path, tmp_path: Path) -> None:
    from audited_ft.report.format import environment as _environment
    from audited_ft.report.format import template_dir

    def render(view) -> str:
        env = _environment(template_dir())
        return env.from_string('{% include "sections/_human_review.html.j2" %}').render(human_review=view)

    assert review_view(RunView(run_dir)) is None
    assert "Not measured in this run." in render(None)
    export_review(run_dir, n=4)
    sides = _key(run_dir)["adapter_side"]
    import_ratings(run_dir, _write_ratings(tmp_path / "r.csv", [(i, "R", s) for i, s in sides.items()]))
    view = review_view(RunView(run_dir))
    assert [r["name"] for r in view["rows"]][:3] == ["adapter better", "tie", "base better"]
    assert view["rows"][0]["value"] == 1.0 and view["n_items"] == 4 and view["n_raters"] == 1
    html = render(view)
    assert "Not measured" not in html and "95% CI" in html and "[1.000, 1.000]" in html
    assert "eval/human_review.json" in html and "One rater only" in html
    (run_dir / "eval/human_review.json").write_text("{}", encoding="utf-8")
    assert "could not be read" in render(review_view(RunView(run_dir)))


@pytest.mark.browser
def test_browser_sheet_runs_its_script_and_saves_importable_ratings(run_dir: Path, tmp_path: Path) -> None:
    if chromium.available():
        pytest.skip(chromium.available())
    page = export_review(run_dir, n=4, seed=5)["html"]
    shown = chromium.run_once("--virtual-time-budget=2000", "--dump-dom", page.as_uri(), cwd=tmp_path, log=True)
    assert "0 of 4 items rated" in shown.stdout  # the pinned script ran under the CSP
    assert ":CONSOLE" not in shown.stderr, shown.stderr[-2000:]  # no CSP violation, no script error

    # A test driver (added to a copy, with its own hash in the CSP) rates like a person and clicks Save.
    driver = ('document.getElementById("rater").value="Tess";'
              'document.querySelectorAll("fieldset.item").forEach(function(f,i){'
              'f.querySelectorAll("input")[i % 3].checked=true;});'
              'document.getElementById("save").click();'
              'document.body.setAttribute("data-out",document.getElementById("csv-text").value);')
    digest = "sha256-" + base64.b64encode(hashlib.sha256(driver.encode()).digest()).decode()
    text = page.read_text(encoding="utf-8").replace("script-src '", f"script-src '{digest}' '")
    copy = tmp_path / "driven.html"
    copy.write_text(text.replace("</body>", f"<script>{driver}</script></body>"), encoding="utf-8")
    dom = chromium.run_once("--virtual-time-budget=2000", "--dump-dom", copy.as_uri(), cwd=tmp_path, log=True).stdout
    saved = htmllib.unescape(re.search(r'data-out="([^"]*)"', dom).group(1))
    assert saved.startswith("item_id,rater,choice,sheet") and saved.count("Tess") == 4
    (tmp_path / "saved.csv").write_text(saved, encoding="utf-8")
    result = import_ratings(run_dir, tmp_path / "saved.csv")
    picks = ["A", "tie", "B", "A"]  # radio order per item: A, tie, B
    sides = _key(run_dir)["adapter_side"]
    expected = {"win": 0, "tie": 0, "loss": 0}
    for item, pick in zip(sides, picks):
        expected["tie" if pick == "tie" else "win" if pick == sides[item] else "loss"] += 1
    assert result["counts"] == expected and result["n_raters"] == 1
