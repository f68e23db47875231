"""Recognizers the ``extended`` PII engine adds to Presidio's own (``audits.pii.engine``), each measured with
``benchmarks/pii_quality.py`` (figures in benchmarks/RESULTS.md).

* ``CardNumberRecognizer`` — payment cards of every length ISO/IEC 7812 allows (12–19 digits), plain or in groups,
  whose first digits belong to a card network's range and whose Luhn checksum holds. Presidio's own pattern covers
  13–16 digits of a few networks (measured: no 12- or 19-digit card found, nor Mastercard's 2-series).
* ``IbanChecksumRecognizer`` — any country's IBAN (ISO 13616: two letters, two check digits, a national part of the
  country's length), plain or in groups of four, kept only when the mod-97 check holds. Presidio's per-country
  patterns end in an optional space and then miss a Spanish IBAN followed by a word (measured: 19 of 25 missed).
* phone numbers: Presidio's ``PhoneRecognizer`` (libphonenumber) over more regions (``audits.pii.phone_regions``).

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

    regions = tuple(phone_regions or DEFAULT_PHONE_REGIONS)
    return [CardNumberRecognizer(), IbanChecksumRecognizer(),
            PhoneRecognizer(supported_regions=regions, name="PhoneRecognizerMoreRegions")]
