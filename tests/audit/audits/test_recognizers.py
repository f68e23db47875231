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


def _np(text):
    from audited_ft.audit.audits.recognizers import names_and_places

    return [(e, text[s:t]) for e, s, t, _ in sorted(names_and_places(text), key=lambda d: d[1])]


@pytest.mark.parametrize("text, expected", [
    # a title or an introduction: any capitalised run after it is a name, listed or not
    ("#Person1#: Hi, I'm Tomasz Skotarczak. I'd like a table.", [("PERSON", "Tomasz Skotarczak")]),
    ("Please ask for Dott.ssa Letizia Paltrinieri at the desk.", [("PERSON", "Letizia Paltrinieri")]),
    ("My name is Imke and I moved here.", [("PERSON", "Imke")]),
    # a census first name, with a surname (particles kept) or alone
    ("Jade Lewis called about the parcel.", [("PERSON", "Jade Lewis")]),
    ("Tiffany called about the parcel.", [("PERSON", "Tiffany")]),
    ("Refunds go to the account held by Danique van der Meer.", [("PERSON", "Danique van der Meer")]),
    # places: a known place after a cue word (any language's country name), a large city or country without one
    ("I moved from Delitzsch last year.", [("LOCATION", "Delitzsch")]),
    ("She grew up in Kroatien.", [("LOCATION", "Kroatien")]),
    ("#Person2#: From Emirados Árabes Unidos. I land on Monday.", [("LOCATION", "Emirados Árabes Unidos")]),
    ("Rotterdam and Marseille have ports.", [("LOCATION", "Rotterdam"), ("LOCATION", "Marseille")]),
    # a place no list knows, after a phrase that only a place can follow
    ("He grew up in East Elliotstad before the war.", [("LOCATION", "East Elliotstad")]),
])
def test_names_and_places_by_lists_and_cues(text, expected):
    assert _np(text) == expected


@pytest.mark.parametrize("text", [
    "Will you come on Monday? May is too late.",           # first names that are words, months, days
    "My account is closed. From now on, Can I pay cash?",  # stop words a gazetteer holds as places ("Can", "From")
    "The Rule of Law and the Common Market are discussed in Chapter Seven.",
    "Apple Pie and Black Forest Cake are on the menu today.",
    "the meeting in the office went well",                 # lower case: nothing
])
def test_words_that_are_not_names_or_places(text):
    assert _np(text) == []


def test_a_first_name_that_is_a_place_is_read_by_its_cue():
    # "Georgia" is a census first name and a country: alone it is left to the NER; after "from" it is the place
    from audited_ft.audit.audits.recognizers import names_and_places

    text = "Georgia called from Georgia."
    assert [(e, s) for e, s, _, _ in names_and_places(text)] == [("LOCATION", text.rindex("Georgia"))]


def test_list_reading_wins_over_the_ner_and_names_inside_addresses_are_dropped():
    from audited_ft.audit.audits.pii import PiiOptions, detect

    texts = ["The meeting has moved to the office in Raipur.",           # spaCy: PERSON; the cue says LOCATION
             "Deliver it to 89 Julie Underpass and ring twice.",          # "Julie Underpass" is not a person
             "Marcelina called about the delayed parcel this morning."]   # spaCy: LOCATION; census name
    found = detect(PiiOptions(workers=1), texts, workers=1)
    assert {(e, texts[0][s:t]) for e, s, t, _ in found[0]} == {("LOCATION", "Raipur")}
    assert {e for e, *_ in found[1]} == {"STREET_ADDRESS"}
    assert ("PERSON", "Marcelina") in {(e, texts[2][s:t]) for e, s, t, _ in found[2]}
    stock = detect(PiiOptions(workers=1, engine="presidio-stock"), texts, workers=1)
    assert ("PERSON", "Raipur") in {(e, texts[0][s:t]) for e, s, t, _ in stock[0]}  # what the list corrects


@pytest.mark.parametrize("text, phone", [
    ("You can reach me on 1933 5012 most evenings.", "1933 5012"),        # local number without an area code
    ("Call +1-922-822-3950 after six.", "+1-922-822-3950"),              # an area code no plan assigns
    ("Sure, it's +49(0)0904 931824.", "+49(0)0904 931824"),               # international form, trunk prefix
])
def test_possible_numbers_are_phones_where_the_text_says_so(text, phone):
    from audited_ft.audit.audits.recognizers import build

    (cued,) = [r for r in build() if r.name == "CuedPhoneRecognizer"]
    assert [text[r.start:r.end] for r in cued.analyze(text, ["PHONE_NUMBER"])] == [phone]


@pytest.mark.parametrize("text", ["Serial number 4012 8812 9921 0043 is on the label.", "Invoice 48291377 covers it.",
                                  "Room 4012 on floor 7; call it a day."])
def test_numbers_without_a_phone_cue_are_not_possible_phones(text):
    from audited_ft.audit.audits.recognizers import build

    (cued,) = [r for r in build() if r.name == "CuedPhoneRecognizer"]
    assert cued.analyze(text, ["PHONE_NUMBER"]) == []
