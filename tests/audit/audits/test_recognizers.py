"""The extended PII engine's recognizers (audit.audits.recognizers): the checks by hand, and what they add to
stock Presidio through the audit's own detector."""

from __future__ import annotations

import pytest

from audited_ft.audit.audits.recognizers import iban_valid, luhn

pytest.importorskip("presidio_analyzer")


def test_luhn_and_iban_checks_by_hand():
    assert luhn("4111111111111111") and not luhn("4111111111111112")
    assert luhn("79927398713")  # the textbook example
    assert iban_valid("GB82 WEST 1234 5698 7654 32") and iban_valid("ES7184038854352143044324")
    assert not iban_valid("GB82 WEST 1234 5698 7654 33")        # checksum
    assert not iban_valid("ES71840388543521430443")             # Spain's IBAN has 24 characters
    assert not iban_valid("XX82WEST12345698765432")             # no such country


CARD_19 = "4960271427878900750"     # Visa, 19 digits, Luhn-valid
CARD_12 = "6304 4303 9213"          # Maestro, 12 digits in groups
SPANISH_IBAN = "ES7184038854352143044324"


@pytest.fixture(scope="module")
def found():
    from audited_ft.audit.audits.pii import PiiOptions, detect

    texts = [f"My card {CARD_19} was declined.", f"Use the old card {CARD_12} instead.",
             f"Wire the deposit to {SPANISH_IBAN} with the booking reference.",
             "Her social security number is 536-22-8726, says the form.",
             "You can reach the office on +49 30 9018 2045 after six.",
             "Invoice 482913 covers 12 hours."]
    return {engine: detect(PiiOptions(engine=engine, workers=1), texts, workers=1)
            for engine in ("extended", "presidio-stock")}, texts


def _types(result):
    return [sorted({d[0] for d in r}) for r in result]


def test_extended_engine_finds_what_stock_presidio_misses(found):
    (results, texts) = found
    ext, stock = _types(results["extended"]), _types(results["presidio-stock"])
    assert ext[0] == ["CREDIT_CARD"] and "CREDIT_CARD" not in stock[0]      # 19 digits
    assert ext[1] == ["CREDIT_CARD"] and "CREDIT_CARD" not in stock[1]      # 12 digits
    assert ext[2] == ["IBAN_CODE"] and "IBAN_CODE" not in stock[2]          # a word after a Spanish IBAN
    (iban,) = results["extended"][2]
    assert texts[2][iban[1]:iban[2]] == SPANISH_IBAN
    assert "PHONE_NUMBER" in ext[4]                                           # a German number
    assert ext[5] == []                                                        # an invoice number is nothing


def test_a_structured_identifier_is_not_also_a_phone_number(found):
    (results, _) = found
    assert _types(results["extended"])[3] == ["US_SSN"]


@pytest.mark.parametrize("text, address", [
    ("Our new address is 580 Parsons Gateway Apt. 215, just past the station.", "580 Parsons Gateway Apt. 215"),
    ("Deliver it to Flat 9, 22 Mill Lane and ask at the desk.", "Flat 9, 22 Mill Lane"),
    ("Send it to 95, avenue Diallo, please.", "95, avenue Diallo"),
    ("I live at Sabina-Franke-Gasse 77/93 now.", "Sabina-Franke-Gasse 77/93"),
    ("Her flat is at Via Bonino, 39 in the old town.", "Via Bonino, 39"),
    ("He moved to ulica Witosa 57 last year.", "ulica Witosa 57"),
])
def test_street_addresses_are_found_whole(text, address):
    from audited_ft.audit.audits.recognizers import build

    (street,) = [r for r in build() if r.name == "StreetAddressRecognizer"]
    found = [text[r.start:r.end] for r in street.analyze(text, ["STREET_ADDRESS"])]
    assert found == [address]


@pytest.mark.parametrize("text", ["Room 4012 on floor 7 is free after lunch.", "Version 2.14.4 fixed the crash.",
                                  "The score was 3-1 after ninety minutes.", "Chapter 7 of the Common Market book.",
                                  "we met at 5 in the park"])
def test_numbers_beside_words_are_not_addresses(text):
    from audited_ft.audit.audits.recognizers import build

    (street,) = [r for r in build() if r.name == "StreetAddressRecognizer"]
    assert street.analyze(text, ["STREET_ADDRESS"]) == []
