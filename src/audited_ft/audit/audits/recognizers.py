"""Recognizers the ``extended`` PII engine adds to Presidio's own (``audits.pii.engine``), each measured with
``benchmarks/pii_quality.py`` (figures in benchmarks/RESULTS.md).

* ``CardNumberRecognizer`` — payment cards of every length ISO/IEC 7812 allows (12–19 digits), plain or in groups,
  whose first digits belong to a card network's range and whose Luhn checksum holds. Presidio's own pattern covers
  13–16 digits of a few networks (measured: no 12- or 19-digit card found, nor Mastercard's 2-series).
* ``IbanChecksumRecognizer`` — any country's IBAN (ISO 13616: two letters, two check digits, a national part of the
  country's length), plain or in groups of four, kept only when the mod-97 check holds. Presidio's per-country
  patterns end in an optional space and then miss a Spanish IBAN followed by a word (measured: 19 of 25 missed).
* phone numbers: Presidio's ``PhoneRecognizer`` (libphonenumber) over more regions (``audits.pii.phone_regions``).
* ``StreetAddressRecognizer`` — ``STREET_ADDRESS``, which Presidio has no recognizer for: a house number beside a
  street name that ends in a street designator (the USPS Publication 28 suffixes and British ones: "12 Mill Lane",
  "580 Parsons Gateway Apt. 215"), a French "95, avenue …", or a street type word of German, Dutch, Spanish,
  Italian, Portuguese or Polish with its number ("Stumpfallee 7", "Calle Mayor 3", "ulica Witosa 57"). A street
  named without a number, or written in lower case in English, is not found.

Written here rather than taken from a library: no maintained package ships Presidio recognizers for these; the
checks themselves are the standards' (Luhn; ISO 13616 mod 97) and libphonenumber's.
"""

from __future__ import annotations

from typing import Optional

# IBAN length per country (ISO 13616 registry, SWIFT release 2024): the countries a European data set meets most.
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29, "CH": 21,
    "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18,
    "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23,
    "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27,
    "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29,
    "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "TN": 24, "TR": 26,
    "UA": 29, "VG": 24, "XK": 20,
}
# Leading digits of the card networks (ISO/IEC 7812 issuer ranges as the networks publish them).
_CARD_PREFIXES = (("4",), ("51", "52", "53", "54", "55"), tuple(str(n) for n in range(2221, 2721)), ("34", "37"),
                  ("6011", "65") + tuple(str(n) for n in range(644, 650)), ("300", "301", "302", "303", "304", "305",
                                                                              "36", "38", "39"),
                  tuple(str(n) for n in range(3528, 3590)) + ("2131", "1800"),
                  ("50",) + tuple(str(n) for n in range(56, 70)), ("62", "81"))
CARD_PREFIXES = tuple(p for group in _CARD_PREFIXES for p in group)
EXTENDED_ENTITIES = ("STREET_ADDRESS",)  # entity types only the extended engine looks for
# Street designators: USPS Publication 28, Appendix C1 (common suffixes and their abbreviations) and British usage.
_SUFFIXES = (
    "Alley|Aly|Annex|Arcade|Avenue|Ave|Bayou|Beach|Bend|Bluffs?|Bottom|Boulevard|Blvd|Branch|Bridge|Brook|Brooks|"
    "Burgs?|Bypass|Camp|Canyon|Cape|Causeway|Centers?|Centre|Circles?|Cir|Cliffs?|Close|Club|Common|Commons|Corners?|"
    "Course|Courts?|Ct|Coves?|Creek|Crescent|Cres|Crest|Crossing|Crossroad|Cross|Curve|Dale|Dam|Divide|Drives?|Dr|"
    "Estates?|Expressway|Extensions?|Falls?|Ferry|Fields?|Flats?|Fords?|Forest|Forges?|Forks?|Fort|Freeway|"
    "Gardens?|Gateway|Glens?|Green|Greens|Groves?|Harbors?|Haven|Heights|Highway|Hwy|Hills?|Hollow|Inlet|Islands?|"
    "Isle|Junctions?|Keys?|Knolls?|Lakes?|Land|Landing|Lane|Ln|Light|Lights|Loaf|Locks?|Lodge|Loop|Mall|Manors?|"
    "Meadows?|Mews|Mill|Mills|Mission|Motorway|Mount|Mountains?|Neck|Orchard|Oval|Overpass|Parade|Park|Parks|Parkway|"
    "Parkways|Pass|Passage|Path|Pike|Pines?|Place|Pl|Plains?|Plaza|Points?|Ports?|Prairie|Promenade|Radial|Ranch|Rapids?|"
    "Reserve|Rest|Ridges?|Rise|River|Road|Rd|Roads|Route|Row|Rue|Run|Shoals?|Shores?|Skyway|Springs?|Spurs?|"
    "Squares?|Sq|Station|Stravenue|Stream|Streets?|St|Summit|Terrace|Ter|Throughway|Trace|Track|Trafficway|Trail|"
    "Trailer|Tunnel|Turnpike|Underpass|Union|Unions|Valleys?|Viaduct|Views?|Villages?|Villas?|Ville|Vista|Walks?|Wall|"
    "Way|Ways|Wells?|Wharf|Wynd|Yard")
_UNIT = r"(?:(?:Apt\.?|Apartment|Suite|Ste\.?|Unit|Flat|Studio|Floor|Room|#)\s*[\w/-]+)"
STREET_PATTERNS = (
    # house number first: "12 Mill Lane", "Flat 9, 22 Mill Lane", "H.No. 364, Ramachandran Street", "807/021 X Way"
    ("number and street designator",
     rf"(?<![\w.])(?:{_UNIT},?\s+|H\.No\.\s*)?\d{{1,5}}[A-Za-z]?(?:/\d{{1,4}})?,?\s+"
     rf"(?:[A-Z][\w'’.-]*\s+){{1,3}}(?:{_SUFFIXES})\b\.?(?:,?\s+{_UNIT})?", 0.6),
    # French: "95, avenue Diallo", "28 rue de Richard"
    ("French number and street type",
     r"(?<![\w.])\d{1,4}(?:\s?(?:bis|ter))?,?\s+(?:rue|avenue|boulevard|bd|chemin|allée|impasse|place|quai|route|"
     r"cours|square|passage)\s+(?:(?:de la|de l'|du|des|de|d')\s*)?[A-ZÀ-Ý][\w'’-]+(?:\s+[A-ZÀ-Ý][\w'’-]+)?", 0.6),
    # German and Dutch compounds with their number: "Stumpfallee 7", "Sabina-Franke-Gasse 77/93", "Rubensteeg 9"
    ("street word and number (de, nl)",
     r"\b[A-ZÄÖÜ][\w'’-]*(?i:straße|strasse|str\.|weg|gasse|platz|allee|ring|damm|ufer|steig|pfad|chaussee|dreef|"
     r"laan|straat|hof|plein|gracht|kade|steeg|baan|boulevard|singel|markt)\s+\d{1,4}(?:[a-zA-Z]\b)?(?:[/-]\d{1,4})?\b",
     0.6),
    # Spanish, Italian, Portuguese, Polish: "Calle Mayor 3", "Via Bonino, 39", "ulica Witosa 57", "Paseo de X 4 Piso 9"
    ("street type, name and number (es, it, pt, pl)",
     r"\b(?:Calle|Paseo|Avenida|Plaza|Camino|Rambla|Ronda|Travesía|Pasaje|Pasadizo|Vial|Carrera|Glorieta|Via|Viale|"
     r"Piazza|Corso|Vicolo|Largo|Strada|Contrada|Borgo|Canale|Stretto|Incrocio|Rotonda|Rua|Alameda|Travessa|Praça|"
     r"Rodovia|Estrada|Morro|Pátio|Conjunto|Núcleo|Ladeira|ulica|ul\.|aleja|al\.|plac|osiedle)\s+"
     r"(?:[\w'’.-]+\s+){0,4}?[\w'’.-]+,?\s+\d{1,4}[a-zA-Z]?\b"
     r"(?:\s+(?:Apt\.|Apartamento|Appartamento|Piso|Puerta|Interno|Scala|m\.)\s*\d+)?", 0.6),
)
ADDRESS_CONTEXT = ["address", "live", "lives", "living", "street", "deliver", "delivery", "send", "ship", "moved",
                   "located", "visit", "home", "flat", "apartment", "office"]

DEFAULT_PHONE_REGIONS = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "PL", "PT", "BR", "IN", "AU", "CA", "IE", "CH",
                         "AT", "BE", "SE", "NO", "DK", "FI", "MX", "IL", "ZA", "NZ")


def luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_valid(candidate: str) -> bool:
    """ISO 13616: the country's length and mod 97 == 1 over the rearranged string (letters as 10–35)."""
    s = candidate.replace(" ", "").upper()
    if len(s) != IBAN_LENGTHS.get(s[:2], -1) or not s[2:4].isdigit() or not s.isalnum():
        return False
    return int("".join(str(int(c, 36)) for c in s[4:] + s[:4])) % 97 == 1


def build(phone_regions: Optional[list[str]] = None) -> list:
    """The extended engine's added recognizers (Presidio objects), for ``registry.add_recognizer``."""
    from presidio_analyzer import EntityRecognizer, Pattern, PatternRecognizer, RecognizerResult
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    class CardNumberRecognizer(PatternRecognizer):
        """12–19 digits, plain or grouped by spaces or dashes, a network's leading digits and a valid Luhn sum."""

        def __init__(self):
            super().__init__(supported_entity="CREDIT_CARD", name="CardNumberRecognizer",
                             patterns=[Pattern("card number (12-19 digits)", r"(?<![\d+-])(?<!\d )\d(?:[ -]?\d){11,18}(?![\d-]| \d)",
                                               0.5)],
                             context=["card", "credit", "debit", "visa", "mastercard", "amex", "payment", "expires"])

        def validate_result(self, pattern_text: str) -> bool:
            digits = EntityRecognizer.sanitize_value(pattern_text, [("-", ""), (" ", "")])
            return 12 <= len(digits) <= 19 and digits.startswith(CARD_PREFIXES) and luhn(digits)

    class IbanChecksumRecognizer(EntityRecognizer):
        """Two letters, two check digits and the rest in any grouping; the longest prefix that is a valid IBAN of
        its country's length."""

        import re as _re

        CANDIDATE = _re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}")

        def __init__(self):
            super().__init__(supported_entities=["IBAN_CODE"], name="IbanChecksumRecognizer",
                             supported_language="en")

        def load(self) -> None:
            pass

        def analyze(self, text, entities, nlp_artifacts=None):
            out = []
            for m in self.CANDIDATE.finditer(text):
                chars = m.group(0)
                for cut in range(len(chars), 14, -1):  # the longest valid prefix (a word may follow the last group)
                    piece = chars[:cut].rstrip()
                    if len(piece) == cut and iban_valid(piece):
                        out.append(RecognizerResult("IBAN_CODE", m.start(), m.start() + cut, 1.0,
                                                    analysis_explanation=None))
                        break
            return out

    import regex

    class StreetAddressRecognizer(PatternRecognizer):
        """House number and street name, in the forms of the module docstring (case matters: no IGNORECASE)."""

        def __init__(self):
            super().__init__(supported_entity="STREET_ADDRESS", name="StreetAddressRecognizer",
                             patterns=[Pattern(name, rx, score) for name, rx, score in STREET_PATTERNS],
                             context=ADDRESS_CONTEXT, global_regex_flags=regex.M | regex.S)

    regions = tuple(phone_regions or DEFAULT_PHONE_REGIONS)
    return [CardNumberRecognizer(), IbanChecksumRecognizer(),
            PhoneRecognizer(supported_regions=regions, name="PhoneRecognizerMoreRegions"), StreetAddressRecognizer()]
