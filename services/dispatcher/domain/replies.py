"""Reading a responder's SMS reply. Pure, and tolerant of case, accents, spacing and punctuation.

Every keyword is understood from every responder, whatever language their texts are in: a Spanish-speaking
coach who types "Si 7047" or "AYUDA" means what "Y 7047" and "HELP" mean (``KEYWORDS``, one row per command,
the words of each language). Accents are optional ("SÍ" = "SI", "LLEGUÉ" = "LLEGUE"), and so are the spaces
inside a phrase ("EN ROUTE" = "ENROUTE"). A code may follow any keyword ("DONE 4821", "TERMINADO 4821").
``AT <place>`` (Spanish ``ESTOY EN <lugar>``) says where the responder is now.

STOP and START are not read here: they are the carrier's and Twilio's opt-out keywords, recorded by the gateway.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass

KEYWORDS: dict[str, dict[str, tuple[str, ...]]] = {
    "accept": {"en": ("Y", "YES"), "es": ("SÍ", "SI", "ACEPTO")},
    "decline": {"en": ("N", "NO"), "es": ("NO", "PASO")},
    "en_route": {
        "en": ("OTW", "EN ROUTE", "ON MY WAY"),
        "es": ("EN CAMINO", "VOY", "VOY EN CAMINO", "ESTOY EN CAMINO"),
    },
    "arrived": {
        "en": ("ARRIVED", "ON SCENE"),
        "es": ("LLEGUÉ", "YA LLEGUÉ", "EN EL LUGAR", "ESTOY EN EL LUGAR"),
    },
    "done": {"en": ("DONE",), "es": ("TERMINADO", "TERMINÉ", "YA TERMINÉ")},
    "status": {"en": ("STATUS",), "es": ("ESTADO",)},
    "help": {"en": ("HELP", "?"), "es": ("AYUDA",)},
}
"""command -> language -> the words that ask for it (with the accents a phone may add; they are optional)."""

LOCATION_WORDS: dict[str, str] = {"en": "AT", "es": "ESTOY EN"}
"""The words before a place: "AT 5th and Main", "ESTOY EN Union Station"."""


def plain(text: str) -> str:
    """``text`` as replies are compared: accents dropped, upper case, inner spaces collapsed."""
    decomposed = unicodedata.normalize("NFKD", text)
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).upper().split())


def _key(words: str) -> str:
    return plain(words).replace(" ", "")


_COMMANDS = {
    _key(word): command for command, by_language in KEYWORDS.items() for words in by_language.values() for word in words
}
_COMMAND = re.compile(r"^[¡¿]?\s*([A-Z]+(?:\s+[A-Z]+){0,3}|\?)\s*[#:.,]?\s*(\d{4})?\s*[.!?]*$")
_AT = re.compile(
    r"^\s*(?:" + "|".join(r"\s+".join(w.split()) for w in LOCATION_WORDS.values()) + r")\s+(.{2,200}?)\s*$",
    re.IGNORECASE | re.DOTALL,
)


@dataclass(frozen=True)
class Reply:
    command: str  # accept, decline, en_route, arrived, done, status, help, at, unknown
    code: str | None = None
    place: str | None = None


def parse_reply(body: str) -> Reply:
    """What the responder asked for. Anything else is ``unknown`` and gets a helpful answer.

    A keyword is read before a place, so "ESTOY EN CAMINO" is en route, not a place called "camino".
    """
    match = _COMMAND.match(plain(body))
    if match is not None and (command := _COMMANDS.get(match[1].replace(" ", ""))) is not None:
        return Reply(command, code=match[2])
    at = _AT.match(body)
    if at is not None:
        return Reply("at", place=" ".join(at[1].split()))
    return Reply("unknown")


def free_code(preferred: str, in_use: Collection[str]) -> str:
    """``preferred``, or the next 4-digit code after it that the responder is not using or just used.

    A reply names its page by code, so two open pages of one responder must never share one, and a
    code is not handed out again soon after its page closed (a late "Y" must not accept a new page).
    """
    number = int(preferred)
    for step in range(9000):
        candidate = str(1000 + (number - 1000 + step) % 9000)
        if candidate not in in_use:
            return candidate
    raise ValueError("every code is in use")
