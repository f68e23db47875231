"""Untrusted text and untrusted artefacts (issue 9).

Model generations, data rows, probe items, names from a config or the command line are untrusted: a copy of
tests/fixtures/sample_run gets hostile payloads in every file the report, the cards and the review sheet read, and each
output must show them as inert text (HTML escaped, markdown escaped, terminal escapes visible) and stay usable with a
200,000-character line. Untrusted artefacts: YAML only through safe_load, weights only from safetensors (base and
adapters), no unsafe deserialisation in the source tree, trust_remote_code off unless configured and then on the record.
"""

from __future__ import annotations

import ast
import html as htmllib
import json
import logging
import pickle
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from typer.testing import CliRunner

from audited_ft.cli import app
from audited_ft.errors import ConfigError, ModelError
from audited_ft.report.format import FULL_CHARS, neutralise, template_dir
from audited_ft.report.stage import render_report
from audited_ft.textsafe import TerminalSafeFilter, for_terminal
from tests.report import chromium

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "tests" / "fixtures" / "sample_run"
runner = CliRunner()

SCRIPT = "<script>document.body.setAttribute('data-pwned','script')</script>"
CLOSE = "</script><script>document.body.setAttribute('data-pwned','close')</script>"  # ends a script it sits in
IMG = "<img src=x onerror=\"document.body.setAttribute('data-pwned','img')\">"
JINJA = "{{ 7*7 }} {% raw %} {{ config }}"
ANSI = "\x1b[31mred\x1b[0m \x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\ \x1b[2J"
CTRL = "nul\x00bell\x07bs\x08 \u202eevil"
MARKDOWN = "[click](javascript:alert(1)) `tick` | pipe"
PAYLOAD = " ".join([ANSI, SCRIPT, CLOSE, IMG, JINJA, CTRL, MARKDOWN])
LONG = "W" * 200_000  # one line without spaces
GROUP = "\x1b[31m" + IMG.replace(".", "")  # a metric key part: no dots


# a hostile run folder -------------------------------------------------------------------------------------------------
def _read(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def _write(path: Path, obj) -> None:
    path.write_text(json.dumps(obj), encoding="utf-8")


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _write_rows(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _inject_data(run: Path) -> str:
    """Data rows (input/target) and both models' predictions of the first test item."""
    for split in ("train", "validation", "test"):
        rows = _rows(run / f"data/{split}.jsonl")
        rows[0].update(input=PAYLOAD + " " + LONG, target=PAYLOAD)
        _write_rows(run / f"data/{split}.jsonl", rows)
    item = _rows(run / "data/test.jsonl")[0]["id"]
    for side in ("base", "adapter"):
        rows = _rows(run / f"eval/generations/{side}.jsonl")
        for r in rows:
            if r["id"] == item:
                r["prediction"] = PAYLOAD + " " + LONG
        _write_rows(run / f"eval/generations/{side}.jsonl", rows)
    stats = _read(run / "data/stats.json")
    stats["sources"]["test"] = PAYLOAD + LONG
    _write(run / "data/stats.json", stats)
    return item


def _inject_audits(run: Path) -> None:
    """A PII finding with a hostile masked excerpt and entity name, and a leakage pair of hostile row ids."""
    pii = _read(run / "audits/pii.json")
    pii["findings"].insert(0, {"split": "train", "row_id": PAYLOAD, "field": "input", "entity": "EMAIL_ADDRESS",
                               "start": 0, "end": 4, "score": 0.9, "excerpt": PAYLOAD + LONG})
    pii["summary"]["counts"]["train"][IMG] = 1
    _write(run / "audits/pii.json", pii)
    leak = _read(run / "audits/leakage.json")
    leak["findings"].insert(0, {"kind": "exact_cross_split", "split_a": "train", "row_a": "row-" + SCRIPT,
                                "split_b": "test", "row_b": "row-" + IMG + LONG, "field": "input", "jaccard": 1.0})
    _write(run / "audits/leakage.json", leak)


def _inject_eval(run: Path) -> None:
    """Probe items (a CrowS-Pairs bias type in metric keys, explain tokens), probe notes, a gate on a hostile key."""
    metrics = _read(run / "eval/metrics.json")
    for key in [k for k in metrics if k.startswith("bias.crows_pairs.gender.")]:
        metrics[key.replace(".gender.", f".{GROUP}.")] = metrics[key]
    _write(run / "eval/metrics.json", metrics)
    probes = _read(run / "eval/probes.json")
    probes["crows_pairs"]["info"]["data"].update(title=PAYLOAD, notes=[PAYLOAD + LONG])
    probes["rouge"].update(status="skipped", reason=PAYLOAD + LONG, limitations=PAYLOAD + LONG)
    token = {"base": -2.0, "adapter": -0.5}
    probes["explain"] = {"description": "Per-token log-probabilities.", "status": "done", "limitations": PAYLOAD,
                         "info": {"compared": PAYLOAD, "split": "test", "top_k": 1, "items": {PAYLOAD: {
                             "tokens": [{"text": SCRIPT, **token}, {"text": " " + ANSI, **token}],
                             "top": [{"text": IMG, "index": 0, **token}], "input_excerpt": PAYLOAD + LONG,
                             "n_tokens": 2, "mean_logprob_per_token": {"base": -2.0, "adapter": -0.5}}}}}
    _write(run / "eval/probes.json", probes)
    gates = _read(run / "gates.json")
    gates["results"][0].update(metric=PAYLOAD + LONG, message=PAYLOAD + LONG, reason=PAYLOAD + LONG, passed=False)
    gates["passed"] = False
    _write(run / "gates.json", gates)


def _inject_config(run: Path) -> None:
    """Config strings: the manifest's run id, model and accepted risk; the resolved config's system prompt."""
    manifest = _read(run / "manifest.json")
    manifest["run_id"] = PAYLOAD + LONG
    manifest["model"]["name_or_path"] = PAYLOAD + LONG
    manifest["accepted_risks"] = [{"audit": PAYLOAD, "by": PAYLOAD, "reason": PAYLOAD + LONG, "date": PAYLOAD}]
    manifest["stages"]["eval"]["error"] = PAYLOAD + LONG
    _write(run / "manifest.json", manifest)
    config = (run / "config.resolved.yaml").read_text(encoding="utf-8")
    config = re.sub(r"(?m)^  system_prompt: .*$", lambda _: "  system_prompt: " + json.dumps(PAYLOAD + LONG), config)
    (run / "config.resolved.yaml").write_text(config, encoding="utf-8")


def hostile_run(root: Path) -> tuple[Path, str]:
    """A copy of the sample run folder with payloads in every file the outputs read; returns it and the hostile
    test item's id."""
    run = root / "hostile"
    shutil.copytree(SAMPLE, run, ignore=shutil.ignore_patterns("report.html", "*_card.md", "review"))
    item = _inject_data(run)
    _inject_audits(run)
    _inject_eval(run)
    _inject_config(run)
    return run, item


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> dict:
    from audited_ft.report.cards import write_cards
    from audited_ft.report.review import export_review

    run, item = hostile_run(tmp_path_factory.mktemp("untrusted"))
    report = render_report(run, title=PAYLOAD + LONG)
    cards = write_cards(run)
    sheet = export_review(run, seed=1)
    return {"run": run, "item": item, "report": report, "html": report.read_text(encoding="utf-8"), **cards,
            "sheet": sheet["html"]}


def _section(html: str, name: str) -> str:
    start = html.index(f"{name}</h2>")
    end = html.find("<h2", start)
    return html[start:] if end == -1 else html[start:end]


def _longest_run(text: str, char: str = "W") -> int:
    return max((len(m) for m in re.findall(f"{char}+", text)), default=0)


# 1. untrusted text in the report, the cards and the review sheet ------------------------------------------------------
def test_report_shows_every_payload_as_inert_text(hostile: dict) -> None:
    html = hostile["html"]
    assert html.count("<script>") == 1 and html.count("<script") == 1  # only the CSP-pinned print helper
    assert "<img" not in html and "data-pwned','script')</script>" not in html
    assert "&lt;/script&gt;&lt;script&gt;document.body.setAttribute(&#39;data-pwned&#39;,&#39;close&#39;)" in html
    assert "\x1b" not in html and "\x00" not in html and "\u202e" not in html and "\x07" not in html
    assert "\\x1b[31mred\\x1b[0m \\x1b]8;;http://x\\x1b\\link" in html
    assert "nul\\x00bell\\x07bs\\x08 \\u202eevil" in html
    assert "{{ 7*7 }} {% raw %} {{ config }}" in html and " 49 " not in html  # shown, never evaluated
    # Each place untrusted text reaches, escaped:
    dataset, summary = _section(html, "Dataset"), _section(html, "Summary")
    assert "train ↔ test" in dataset and "row-&lt;script&gt;document" in dataset  # leakage pair, named
    assert "&lt;img src=x onerror=" in dataset  # PII entity name and masked excerpt
    assert "gate failed: \\x1b[31mred" in summary and "&lt;script&gt;" in summary  # gate message, accepted risk
    assert "stereotype rate" in html.lower() and "\\x1b[31m&lt;img src=x onerror=" in html  # CrowS bias type
    assert "Per-token" in _section(html, "Transparency and explanation")  # explain probe items rendered
    assert "system_prompt: &#34;\\u001b[31mred" in html  # the config string, in the resolved config


def test_report_stays_usable_with_a_200000_character_line(hostile: dict) -> None:
    html = hostile["html"]
    # Nothing prints the long line whole: the title, run id, gate name, sources, reasons are clipped with an
    # ellipsis, and even the collapsed "full text" stops at FULL_CHARS with a note saying where the rest is. The
    # resolved config (collapsed, in a <pre> that wraps anywhere) is shown up to 50,000 characters.
    config = re.search(r'<details class="config">.*?</details>', html, re.S).group(0)
    assert 40_000 < _longest_run(config) <= 50_000 and config.count("…") == 1
    assert _longest_run(html.replace(config, "")) <= FULL_CHARS
    assert f"Only the first {FULL_CHARS:,} characters are shown here" in html
    assert "full text (200,000 characters)" not in html and "full text (200" in html
    assert len(html) < 2_000_000  # several hostile fields, each clipped: the page is not blown up
    title = re.search(r"<title>(.*?)</title>", html, re.S).group(1)
    assert len(title) < 1000 and title.endswith("…")
    css = (template_dir() / "report.css").read_text(encoding="utf-8")
    assert ".untrusted { white-space: pre-wrap; overflow-wrap: anywhere; }" in css
    assert re.search(r"\npre \{[^}]*overflow-wrap: anywhere; \}", css)
    assert re.search(r"\.wrap-any[^{]*\{ overflow-wrap: anywhere; \}", css)


def _card_prose(text: str) -> tuple[str, str]:
    """(markdown outside fenced code blocks, the code blocks)."""
    parts = re.split(r"(?m)^```.*$", text)
    return "\n".join(parts[0::2]), "\n".join(parts[1::2])


@pytest.mark.parametrize("card", ["model_card", "data_card"])
def test_cards_escape_markdown_html_and_template_syntax(hostile: dict, card: str) -> None:
    from tests.report.test_cards import _assert_tables_intact

    text = hostile[card].read_text(encoding="utf-8")
    prose, code = _card_prose(text)
    assert "\\`tick\\`" in prose and not re.search(r"(?<!\\)`tick", prose)  # a backtick cannot open code
    assert "\\[click\\](javascript:alert(1))" in prose and not re.search(r"(?<!\\)\]\(javascript", prose)
    assert "<script" not in text and "<img" not in text and "&lt;img src=x onerror=" in prose
    assert "{{ 7\\*7 }} {% raw %} {{ config }}" in prose and "\x1b" not in text and "\x00" not in text
    assert "\\\\x1b\\[31mred" in prose  # the ESC byte shown as text (backslash escaped for markdown)
    assert _longest_run(text) <= 600 and "\n" + "W" * 401 not in text  # every value clipped
    _assert_tables_intact(text)
    if card == "model_card":
        meta = yaml.safe_load(text.split("---\n", 2)[1])
        assert all(re.fullmatch(r"[\w./:+-]+", str(v)) for v in (meta["base_model"], *meta["datasets"]))
        # The code sample quotes the (hostile) model name as one ASCII literal, clipped, with no way out of it.
        line = next(ln for ln in code.splitlines() if ln.startswith("base = "))
        assert len(line) < 700 and "`" not in code and "<" not in code and "\\u001b[31m" in line


class _Elements(HTMLParser):
    """Every start tag with its attributes, and the text of every <script>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"
        if self._in_script:
            self.scripts.append("")

    def handle_endtag(self, tag):
        self._in_script = False if tag == "script" else self._in_script

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1] += data


def test_review_sheet_keeps_data_out_of_its_script_and_attributes(hostile: dict) -> None:
    page = hostile["sheet"].read_text(encoding="utf-8")
    parsed = _Elements()
    parsed.feed(page)
    assert parsed.scripts == [(template_dir() / "review.js").read_text(encoding="utf-8")]  # no data in a script
    assert not [(t, a) for t, a in parsed.tags if any(k.startswith("on") for k in a)]  # no injected handler
    assert "img" not in {t for t, _ in parsed.tags} and "\x1b" not in page
    items = [a["data-item"] for t, a in parsed.tags if t == "fieldset" and "data-item" in a]
    assert neutralise(hostile["item"]) in items  # the attribute round-trips the id, quotes and all
    assert "&lt;script&gt;document.body.setAttribute(&#39;data-pwned&#39;,&#39;script&#39;)" in page
    assert _longest_run(page) <= FULL_CHARS  # run id in the title, outputs: clipped


def test_evidence_page_keeps_data_out_of_its_script_and_markup(hostile: dict) -> None:
    """evidence.html (written by the report stage) carries every item as JSON data its script renders as text."""
    page = (hostile["run"] / "evidence.html").read_text(encoding="utf-8")
    parsed = _Elements()
    parsed.feed(page)
    data, script = parsed.scripts  # the JSON data block, then the page's one script
    assert script == (template_dir() / "evidence.js").read_text(encoding="utf-8")
    assert not re.search("[<>&\u2028\u2029]", data)  # no payload can end or alter the data block
    assert not [(t, a) for t, a in parsed.tags if any(k.startswith("on") for k in a)]  # no injected handler
    assert "img" not in {t for t, _ in parsed.tags} and "\x1b" not in page and "\u202e" not in page
    item = next(it for it in json.loads(data)["items"] if it["probe"] == "rouge" and it["id"] == hostile["item"])
    shown = "".join(t for op, t in item["texts"][0]["diff"] if op >= 0)
    assert shown.startswith(neutralise(PAYLOAD)) and item["clipped"]  # the payload, as data, controls made visible
    assert _longest_run(page) <= FULL_CHARS  # the 200,000-character answer, clipped


def _measured_copy(page: Path, out: Path) -> Path:
    """The page without its Content-Security-Policy (so an injected script or handler would run), every <details>
    open, and a probe that writes the document's width onto <body>."""
    text = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page.read_text(encoding="utf-8"), count=1)
    probe = ("<script>addEventListener('load',function(){document.body.setAttribute('data-width',"
             "document.documentElement.scrollWidth)})</script>")
    out.write_text(text.replace("<details", "<details open").replace("</body>", probe + "</body>"), encoding="utf-8")
    return out


@pytest.mark.browser
def test_browser_runs_no_injected_code_and_keeps_the_page_width(hostile: dict, tmp_path: Path) -> None:
    if chromium.available():
        pytest.skip(chromium.available())
    for page in (hostile["report"], hostile["sheet"]):
        dom = chromium.run_once("--virtual-time-budget=2000", "--dump-dom", page.as_uri(), cwd=tmp_path).stdout
        assert "</html>" in dom, f"chromium produced no DOM for {page.name}"
        assert "data-pwned=" not in dom and "<img" not in dom, page.name
        assert "&lt;img src=x onerror=" in dom and "{{ 7*7 }}" in dom  # the payload is there, as text
        # Without the CSP and with every collapsed block open: still no injected code, and no horizontal blow-up.
        copy = _measured_copy(page, tmp_path / f"measured-{page.name}")
        dom = chromium.run_once("--window-size=1280,1000", "--virtual-time-budget=5000", "--dump-dom", copy.as_uri(),
                        cwd=tmp_path).stdout
        body = re.search(r"<body[^>]*>", dom).group(0)
        assert "data-pwned" not in body, (page.name, body[:300])
        width = int(re.search(r'data-width="(\d+)"', body).group(1))
        assert width <= 1280, f"{page.name} is {width}px wide in a 1280px window: a long line is not wrapped"


# 2. terminal output ---------------------------------------------------------------------------------------------------
def test_for_terminal_shows_control_characters_and_caps_length() -> None:
    assert for_terminal("a\x1b[2Jb\x1b]8;;http://x\x1b\\c") == "a\\x1b[2Jb\\x1b]8;;http://x\\x1b\\c"
    assert for_terminal("tab\tnl\ncr\rnul\x00c1\x9bbidi\u202e") == "tab\tnl\ncr\\x0dnul\\x00c1\\x9bbidi\\u202e"
    capped = for_terminal("x" * 50, limit=10)
    assert capped == "x" * 10 + "… (40 more characters not shown)"


def _assert_terminal_safe(output: str, visible: str) -> None:
    assert "\x1b" not in output and "\x00" not in output, repr(output[-400:])
    assert visible in output, output[-400:]


def test_cli_error_quoting_an_adapter_name_shows_the_escape(tmp_path: Path) -> None:
    r = runner.invoke(app, ["eval", str(tmp_path), "--adapter", f"{ANSI}evil={tmp_path}"])
    assert r.exit_code == 2
    _assert_terminal_safe(r.output, "--adapter \\x1b[31mred\\x1b[0m \\x1b]8;;http://x")


def test_cli_echo_of_a_config_string_shows_the_escape() -> None:
    r = runner.invoke(app, ["validate", str(REPO / "configs/default.yaml"), "--set", "model.name_or_path=\x1b[2Jevil"])
    assert r.exit_code == 0, r.output
    _assert_terminal_safe(r.output, "OK — model \\x1b[2Jevil")


def test_cli_gate_failure_list_shows_the_escape(tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(SAMPLE, run)
    metrics = _read(run / "eval/metrics.json")
    key = "bias.crows_pairs.\x1b[31mevil.stereotype_rate"  # a bias type read from a probe data file
    metrics.update({f"{key}.{side}": 0.9 for side in ("base", "adapter", "delta")})
    _write(run / "eval/metrics.json", metrics)
    (tmp_path / "gates.yaml").write_text(f"- {{metric: {json.dumps(key + '.delta')}, max: 0.1}}\n")
    r = runner.invoke(app, ["gate", str(run), "--gates", str(tmp_path / "gates.yaml")])
    assert r.exit_code == 1
    _assert_terminal_safe(r.output, "FAIL bias.crows_pairs.\\x1b[31mevil.stereotype_rate.delta = 0.900 > max 0.100")
    assert "\x1b" not in (run / "gates.md").read_text() and "\x1b" not in (run / "gates.junit.xml").read_text()


def test_cli_review_import_message_shows_the_escape(tmp_path: Path) -> None:
    from audited_ft.report.review import export_review

    run = tmp_path / "run"
    shutil.copytree(SAMPLE, run)
    export_review(run, n=2, seed=0)
    (tmp_path / "ratings.csv").write_text("item_id,rater,choice\n\x1b[2Jfake,Ann,\x1b]8;;http://x\x1b\\A\n")
    r = runner.invoke(app, ["review", str(run), "--import", str(tmp_path / "ratings.csv")])
    assert r.exit_code == 2
    _assert_terminal_safe(r.output, "field 'item_id' = '\\x1b[2Jfake'")


def test_cli_ls_shows_a_description_with_an_escape(monkeypatch) -> None:
    from audited_ft.eval.probes import PROBES

    class EvilProbe:
        """\x1b]8;;http://evil.example\x1b\\Looks harmless\x1b]8;;\x1b\\ \x1b[2J"""

    PROBES.names()  # discover the built-ins first, then add one for this test only
    monkeypatch.setitem(PROBES._items, "zz_evil", EvilProbe)
    r = runner.invoke(app, ["ls"])
    assert r.exit_code == 0
    _assert_terminal_safe(r.output, "zz_evil          \\x1b]8;;http://evil.example\\x1b\\Looks harmless")


def test_log_records_show_escapes_on_the_cli_handler(monkeypatch) -> None:
    import io

    from audited_ft import cli

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(TerminalSafeFilter())
    log = logging.getLogger("audited_ft.test_untrusted")
    log.addHandler(handler)
    try:
        log.warning("dropped row %s", "\x1b[2J\x1b]8;;http://x\x1b\\id")
    finally:
        log.removeHandler(handler)
    assert stream.getvalue() == "dropped row \\x1b[2J\\x1b]8;;http://x\\x1b\\id\n"
    monkeypatch.setattr(logging.root, "handlers", [])  # as in a fresh process: basicConfig installs the handler
    cli._setup_logging(False)
    assert any(isinstance(f, TerminalSafeFilter) for h in logging.root.handlers for f in h.filters)


# 3. untrusted artefacts -----------------------------------------------------------------------------------------------
class _Touch:
    """Unpickling this creates ``path``: proof that a pickle was loaded."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_yaml_python_tag_is_a_clean_config_error_and_runs_nothing(tmp_path: Path) -> None:
    from audited_ft.pipeline import load_config, load_gates_file

    marker = tmp_path / "pwned"
    tag = f'!!python/object/apply:os.system ["touch {marker}"]'
    config = tmp_path / "evil.yaml"
    config.write_text(f"run: {tag}\n")
    with pytest.raises(ConfigError, match=r"evil\.yaml.*not valid YAML.*could not determine a constructor"):
        load_config(config)
    gates = tmp_path / "gates.yaml"
    gates.write_text(f"- {tag}\n")
    with pytest.raises(ConfigError, match=r"--gates .*gates\.yaml.*YAML.*could not determine a constructor"):
        load_gates_file(gates)
    r = runner.invoke(app, ["validate", str(config)])
    assert r.exit_code == 2 and "Traceback" not in r.output and "not valid YAML" in r.output
    r = runner.invoke(app, ["validate", str(REPO / "configs/default.yaml"), "--set", f"model.revision={tag}"])
    assert r.exit_code == 0  # an override that is not safe YAML is read as the plain string it is
    assert not marker.exists()


def test_base_model_with_only_a_pickle_checkpoint_is_refused(tmp_path: Path) -> None:
    from audited_ft.models import load_base_model, resolve_model
    from tests.tiny_model import build_tiny_llama

    folder = build_tiny_llama(tmp_path / "tiny", ["a tiny model folder"], hidden=32, layers=1)
    quant = SimpleNamespace(load_in_4bit=False, compute_dtype="float32")
    assert load_base_model(resolve_model(str(folder)), quant, "cpu") is not None  # safetensors: loads
    marker = tmp_path / "pwned"
    (folder / "model.safetensors").unlink()
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(_Touch(marker)))
    with pytest.raises(ModelError, match=r"no safetensors weights .*a \.bin checkpoint is a pickle"):
        load_base_model(resolve_model(str(folder)), quant, "cpu")
    assert not marker.exists()


def test_adapter_with_only_adapter_model_bin_is_refused(tmp_path: Path) -> None:
    from audited_ft.eval.model import ModelUnderTest, check_adapter_weights
    from audited_ft.pipeline import load_config

    marker = tmp_path / "pwned"
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 4}))
    (adapter / "adapter_model.bin").write_bytes(pickle.dumps(_Touch(marker)))
    message = r"adapter: the adapter's weights are only in adapter_model\.bin \(a pickle"
    with pytest.raises(ModelError, match=message):
        check_adapter_weights(adapter)
    cfg = load_config(REPO / "configs/default.yaml")
    with pytest.raises(ModelError, match=message):  # the run's adapter, refused before any model is loaded
        ModelUnderTest(cfg, adapter)
    good = tmp_path / "good"
    shutil.copytree(SAMPLE / "train/adapter", good)
    (good / "adapter_model.safetensors").write_bytes(b"")
    with pytest.raises(ModelError, match=message):  # a further adapter (--adapter NAME=DIR)
        ModelUnderTest(cfg, good, extra_adapters={"other": adapter})
    assert not marker.exists()
    assert check_adapter_weights(good) == good / "adapter_model.safetensors"


_ALLOWED = {  # (file, call): why it is safe
    ("eval/scorers/jigsaw_bilstm.py", "pickle.load"): "the toxicity scorer's tokenizer, shipped inside its pinned wheel: as trusted as "
                                    "the package's own code, never a file from a run folder or the hub",
}


def unsafe_calls(source: str, filename: str) -> list[str]:
    """Calls that deserialise or execute untrusted input: ``torch.load`` without ``weights_only=True``,
    pickle/marshal/dill/joblib loads, ``yaml.load``/``unsafe_load``/``full_load``, builtin ``eval``/``exec``, and a
    literal ``trust_remote_code=True`` or ``use_safetensors=False``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else (
            f"{func.value.id}.{func.attr}" if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
            else None)
        keywords = {k.arg: k.value for k in node.keywords}
        bad = None
        if name == "torch.load":
            weights_only = keywords.get("weights_only")
            bad = not (isinstance(weights_only, ast.Constant) and weights_only.value is True)
        elif name in ("eval", "exec") or name in {f"{m}.{f}" for m in ("pickle", "marshal", "dill", "joblib",
                                                                       "cloudpickle") for f in ("load", "loads")}:
            bad = True
        elif name in ("yaml.load", "yaml.load_all"):  # safe only with a safe loader named (the tool's strict one)
            loader = keywords.get("Loader", node.args[1] if len(node.args) > 1 else None)
            bad = getattr(loader, "id", getattr(loader, "attr", None)) not in ("SafeLoader", "CSafeLoader",
                                                                               "StrictSafeLoader")
        elif name in ("yaml.unsafe_load", "yaml.full_load", "yaml.unsafe_load_all", "yaml.full_load_all"):
            bad = True
        for key, unsafe in (("trust_remote_code", True), ("use_safetensors", False)):
            value = keywords.get(key)
            if isinstance(value, ast.Constant) and value.value is unsafe:
                bad, name = True, f"{name}({key}={unsafe})"
        if bad and (filename, name) not in _ALLOWED:
            found.append(f"{filename}:{node.lineno}: {name}")
    return found


def test_source_tree_has_no_unsafe_deserialisation_or_code_execution() -> None:
    sample = ("import torch, pickle, yaml\ntorch.load(f)\ntorch.load(f, weights_only=False)\npickle.loads(b)\n"
              "yaml.load(s)\neval(s)\nexec(s)\nM.from_pretrained(p, trust_remote_code=True)\n"
              "yaml.load(s, Loader=yaml.Loader)\nyaml.full_load(s)\n"
              "torch.load(f, weights_only=True)\nyaml.safe_load(s)\nmodel.eval()\n"
              "yaml.load(s, Loader=StrictSafeLoader)\nyaml.load(s, Loader=yaml.CSafeLoader)\n")
    assert [f.split(": ")[1] for f in unsafe_calls(sample, "sample.py")] == [
        "torch.load", "torch.load", "pickle.loads", "yaml.load", "eval", "exec",
        "M.from_pretrained(trust_remote_code=True)", "yaml.load", "yaml.full_load"]  # and not the safe forms
    found = [f for path in sorted((REPO / "src/audited_ft").rglob("*.py"))
             for f in unsafe_calls(path.read_text(encoding="utf-8"),
                                   path.relative_to(REPO / "src/audited_ft").as_posix())]
    assert found == []


def test_trust_remote_code_is_off_by_default_recorded_when_on_and_reported(tmp_path: Path) -> None:
    from audited_ft.pipeline import load_config, start_run
    from audited_ft.report.sections.dependencies import FLAG_LABELS

    assert load_config(REPO / "configs/default.yaml").model.trust_remote_code is False
    label = htmllib.escape(FLAG_LABELS["remote_code"])
    for value in (False, True):
        _, rf = start_run(REPO / "configs/default.yaml", [f"model.trust_remote_code={str(value).lower()}"],
                          str(tmp_path), f"remote-{value}")
        assert _read(rf.path / "manifest.json")["model"]["trust_remote_code"] is value
        dependencies = _section(render_report(rf.path).read_text(encoding="utf-8"),
                                "Dependence on proprietary technologies")
        assert (label in dependencies) is value
        assert ("trust_remote_code is on (model.trust_remote_code in the config)" in dependencies) is value


# Joins onto a run folder (or the output folder, or the evaluation cache) whose right-hand side is not a literal: each
# is vetted here with the reason it cannot come from a user's string. A new one fails the test until it is vetted or
# goes through the containment checks (run.folder.check_name / contained / inside).
_ROOTS = {"rf", "rf.path", "self.path", "run.path", "run_dir", "out", "out_root", "root", "self.cache_dir", "work"}
_VETTED_JOINS = {
    ("audit/stage.py", "rf / f'audits/{name}.json'"): "name: an enabled audit, from the audits registry",
    ("audit/stage.py", "rf / f'data/{split}.jsonl'"): "split: one of data.SPLITS",
    ("data/stage.py", "rf / f'data/{split}.jsonl'"): "split: one of data.SPLITS",
    ("eval/stage.py", "rf / f'eval/generations/{stem}.jsonl'"): "stem: a registered probe's metric stem",
    ("eval/model.py", "self.cache_dir / f'{method}-{variant}-{key[:20]}.json'"):
        "variant: 'base', 'adapter' or an --adapter name (check_extra_adapters: [a-z][a-z0-9_-]{0,39}); key: a hash",
    ("audit/spacy_build.py", "root / f'{m}.pyx'"): "m: one of the module's MODULES",
    ("audit/spacy_build.py", "root / f'{m}{suffix}'"): "m: one of MODULES; suffix: the interpreter's",
    ("report/review.py", "run.path / rel"): "rel: one of GENERATIONS",
    ("report/review.py", "rf / rel"): "rel: one of GENERATIONS or data/test.jsonl",
    ("report/review.py", "run.path / src['path']"): "src: run.sources() of the module's constant names",
    ("run/folder.py", "root / name"): "contained(): the containment check itself",
    ("run/folder.py", "root / rel"): "inside(): checked on the lines above",
}


def unvetted_joins(source: str, filename: str) -> list[str]:
    """``ROOT / x`` where ROOT names a run, output or cache folder and ``x`` is neither a string literal nor an
    upper-case constant (``KEY``, ``GENERATIONS[0]``), and the join is not in ``_VETTED_JOINS``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div)):
            continue
        left, right = ast.unparse(node.left), node.right
        if left not in _ROOTS:
            continue
        literal = isinstance(right, ast.Constant) and isinstance(right.value, str)
        constant = isinstance(right, (ast.Name, ast.Subscript)) and ast.unparse(right).split("[")[0].isupper()
        text = f"{left} / {ast.unparse(right)}"
        if not (literal or constant) and (filename, text) not in _VETTED_JOINS:
            found.append(f"{filename}:{node.lineno}: {text}")
    return found


def test_run_folder_paths_are_never_built_from_an_unchecked_name() -> None:
    sample = ("rf / 'audits/pii.json'\nrf / KEY\nrun.path / GENERATIONS[0]\nrf / f'eval/{user_name}.json'\n"
              "out_root / run_id\nself.path / rel\nother / name\n")
    assert [f.split(": ", 1)[1] for f in unvetted_joins(sample, "sample.py")] == [
        "rf / f'eval/{user_name}.json'", "out_root / run_id", "self.path / rel"]  # and not literals, constants
    found = [f for path in sorted((REPO / "src/audited_ft").rglob("*.py"))
             for f in unvetted_joins(path.read_text(encoding="utf-8"),
                                     path.relative_to(REPO / "src/audited_ft").as_posix())]
    assert found == [], "join onto a run folder from a name: check it (run.folder.inside / contained) or vet it"


def test_inside_refuses_paths_that_leave_the_run_folder(tmp_path: Path) -> None:
    from audited_ft.errors import RunFolderError
    from audited_ft.run.folder import RunFolder, inside
    from audited_ft.run.view import RunView

    assert inside(tmp_path, "audits/pii.json") == tmp_path / "audits/pii.json"
    for rel in ("../x.json", "/etc/passwd", "a/../../b", "", "a\0b"):
        with pytest.raises(RunFolderError, match="not a path inside the run folder"):
            inside(tmp_path, rel)
    (tmp_path / "manifest.json").write_text("{}")
    with pytest.raises(RunFolderError):
        RunView(tmp_path).load("../outside.json")
    with pytest.raises(RunFolderError):
        RunFolder(tmp_path) / "../outside"
