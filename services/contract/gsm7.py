"""The GSM-7 alphabet: how many SMS segments a text costs, and how to keep a text inside it.

A text made only of GSM-7 characters fits 160 characters in one segment (153 per part when split). One
character outside it (an "á", a curly quote, an emoji) switches the whole message to UCS-2: 70 characters,
67 per part. A P1 page must be one segment, so every template's wording is GSM-7, and free text put into a
template (an address) is transliterated into the basic GSM-7 set first.
"""

from __future__ import annotations

import math
import unicodedata

SINGLE_SEGMENT_SEPTETS = 160
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")  # each costs two septets (escape + character)

# Characters people type in addresses that GSM-7 lacks (or has only as a two-septet escape).
_REPLACEMENTS = {
    "‘": "'",
    "’": "'",
    "‚": "'",
    "“": '"',
    "”": '"',
    "„": '"',
    "–": "-",
    "—": "-",
    "‐": "-",
    "…": "...",
    "[": "(",
    "]": ")",
    "{": "(",
    "}": ")",
    "~": "-",
    "|": "/",
    "\\": "/",
    "^": "",
    "€": "EUR",
    "\f": " ",
    "\n": " ",
    "\r": " ",
    "\t": " ",
    "º": "o",
    "ª": "a",
    "°": "o",
}


def is_gsm7(text: str) -> bool:
    """Whether ``text`` can be sent as GSM-7 (basic set or extension table)."""
    return all(char in GSM7_BASIC or char in GSM7_EXTENSION for char in text)


def septets(text: str) -> int:
    """Length in GSM-7 septets (extension characters count twice); only meaningful if ``is_gsm7``."""
    return sum(2 if char in GSM7_EXTENSION else 1 for char in text)


def count_segments(text: str) -> int:
    """How many SMS segments a provider bills for ``text``: GSM-7 160/153 per part, else UCS-2 70/67."""
    if is_gsm7(text):
        units, single, per_part = septets(text), SINGLE_SEGMENT_SEPTETS, 153
    else:
        units = len(text.encode("utf-16-le")) // 2  # characters outside the BMP take two code units
        single, per_part = 70, 67
    return 1 if units <= single else math.ceil(units / per_part)


def to_gsm7(text: str) -> str:
    """``text`` in the basic GSM-7 set: accents dropped where GSM-7 lacks them, others replaced or removed.

    Characters GSM-7 has (é, ñ, ü, ¿) are kept; "á" becomes "a", curly quotes straight ones, brackets
    round ones; anything with no close equivalent (emoji, CJK) is dropped. Runs of whitespace become one
    space. The result costs one septet per character.
    """
    out: list[str] = []
    for char in text:
        if char in _REPLACEMENTS:
            out.append(_REPLACEMENTS[char])
        elif char in GSM7_BASIC:
            out.append(char)
        else:
            base = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
            out.append("".join(c for c in base if c in GSM7_BASIC and c not in "\r\n"))
    return " ".join("".join(out).split())
