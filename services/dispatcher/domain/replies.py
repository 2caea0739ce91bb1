"""Reading a responder's SMS reply. Pure, and tolerant of case, spacing and punctuation.

Y 4821 / YES 4821 / Y    accept          N 4821 / NO 4821 / N   pass
OTW [4821]               en route        ARRIVED [4821]         on scene
DONE 4821 / DONE         finished        STATUS                 my open pages
HELP                     the commands    AT <place or address>  where I am now
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

_WORDS = {
    "Y": "accept",
    "YES": "accept",
    "N": "decline",
    "NO": "decline",
    "OTW": "en_route",
    "ENROUTE": "en_route",
    "ARRIVED": "arrived",
    "ONSCENE": "arrived",
    "DONE": "done",
    "STATUS": "status",
    "HELP": "help",
    "?": "help",
}
_COMMAND = re.compile(r"^\s*([A-Za-z]+|\?)\s*[#:.,]?\s*(\d{4})?\s*[.!]*\s*$")
_ON_SCENE = re.compile(r"\bon\s+scene\b", re.IGNORECASE)
_EN_ROUTE = re.compile(r"\ben\s+route\b", re.IGNORECASE)
_AT = re.compile(r"^\s*AT\s+(.{2,200}?)\s*$", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Reply:
    command: str  # accept, decline, en_route, arrived, done, status, help, at, unknown
    code: str | None = None
    place: str | None = None


def parse_reply(body: str) -> Reply:
    """What the responder asked for. Anything else is ``unknown`` and gets a helpful answer."""
    at = _AT.match(body)
    if at is not None:
        return Reply("at", place=" ".join(at[1].split()))
    words = _EN_ROUTE.sub("ENROUTE", _ON_SCENE.sub("ONSCENE", body))
    match = _COMMAND.match(words)
    if match is None:
        return Reply("unknown")
    command = _WORDS.get(match[1].upper())
    if command is None:
        return Reply("unknown")
    return Reply(command, code=match[2])


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
