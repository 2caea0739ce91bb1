"""The only place names an SMS may print: the organisation's gazetteer, checked once, looked up by reference.

A page says where by ``PlaceRef`` (``services.contract.templates``): the reference of a gazetteer entry or
of a service zone, never a name. The notifier prints the name its own ``PlaceBook`` has for a reference,
built from its own copy of the gazetteer file; a reference it does not know prints nothing. So whatever a
request carries, the only words about a place that can reach a phone are names the organisation wrote
into that file: nothing a reporter typed (address, access notes, a place name, a person's name).

The book is also where those names are checked, because a place can say what a page is about: a page
"near the Methadone Clinic" discloses a substance use disorder (42 CFR Part 2). A name with a clinical
word in it (a substance, a diagnosis, a crisis kind, a treatment programme) is left out of the book, and a
page there names its zone instead. A word list is adequate for that job (a short vocabulary, written and
reviewed by the organisation, checked once at start); it is not what keeps reporter text out: the
references are.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from services.contract.events import place_ref
from services.contract.gsm7 import to_gsm7

MAX_NAME = 80
"""Longer names are left out: a page must stay one segment, and a name that long is not a landmark."""

# Words that must never stand in a place name a text prints (42 CFR Part 2: nothing that identifies a
# person as having a substance use disorder; no diagnosis, substance, crisis kind or programme name).
CLINICAL_WORDS = (
    "overdose",
    "overdosed",
    "overdosing",
    "sobredosis",
    "fentanyl",
    "fentanilo",
    "heroin",
    "heroina",
    "opioid",
    "opioids",
    "opioide",
    "opioides",
    "opiate",
    "opiates",
    "opiaceo",
    "alcohol",
    "alcoholic",
    "alcoholism",
    "alcoholico",
    "cocaine",
    "cocaina",
    "crack",
    "meth",
    "methamphetamine",
    "metanfetamina",
    "benzodiazepine",
    "benzos",
    "withdrawal",
    "abstinencia",
    "detox",
    "desintoxicacion",
    "suicide",
    "suicidal",
    "suicidio",
    "suicida",
    "self-harm",
    "self harm",
    "autolesion",
    "naloxone",
    "naloxona",
    "narcan",
    "methadone",
    "metadona",
    "buprenorphine",
    "buprenorfina",
    "suboxone",
    "moud",
    "rehab",
    "recovery",
    "recuperacion",
    "addiction",
    "adiccion",
    "substance",
    "sustancia",
    "psychiatric",
    "psiquiatrico",
    "mental health",
    "salud mental",
    "hiv",
    "vih",
)
_CLINICAL = re.compile(
    r"(?<![A-Za-z])(" + "|".join(re.escape(w).replace(r"\ ", r"[\s-]*") for w in CLINICAL_WORDS) + r")(?![A-Za-z])",
    re.IGNORECASE,
)


def printable_name(name: str) -> str | None:
    """``name`` as a text may print it (GSM-7, spacing collapsed), or None when it must not be printed."""
    text = " ".join(to_gsm7(name).split())
    if not text or len(text) > MAX_NAME or _CLINICAL.search(text):
        return None
    return text


@dataclass(frozen=True)
class PlaceBook:
    """Reference -> printable name, for gazetteer entries and for service zones. Empty: no place is printed."""

    places: Mapping[str, str] = field(default_factory=dict)
    zones: Mapping[str, str] = field(default_factory=dict)
    left_out: int = 0  # names in the gazetteer that a text may not print

    @classmethod
    def of(cls, places: Iterable[str], zones: Iterable[str]) -> PlaceBook:
        """The book of these gazetteer entry names and zone names, each checked by ``printable_name``."""
        kept: tuple[dict[str, str], dict[str, str]] = ({}, {})
        left_out = 0
        for book, names in zip(kept, (places, zones), strict=True):
            for name in names:
                printable = printable_name(name)
                if printable is None:
                    left_out += 1
                else:
                    book.setdefault(place_ref(name), printable)
        return cls(kept[0], kept[1], left_out)

    def place(self, ref: str | None) -> str | None:
        """The name of the gazetteer entry ``ref`` refers to; None when there is none or it is unknown here."""
        return self.places.get(ref) if ref else None

    def zone(self, ref: str | None) -> str | None:
        """The name of the service zone ``ref`` refers to; None when there is none or it is unknown here."""
        return self.zones.get(ref) if ref else None


NO_PLACES = PlaceBook()
