"""Reading a responder's SMS reply. Pure and tolerant of case and spacing."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

_REPLY = re.compile(r"^\s*(Y|YES|N|NO)\s*[#:]?\s*(\d{4})?\s*[.!]?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Reply:
    accept: bool
    code: str | None


def parse_reply(body: str) -> Reply | None:
    """Y/YES <code> accepts, N/NO <code> passes; None when the text is not a reply we understand."""
    match = _REPLY.match(body)
    if match is None:
        return None
    return Reply(accept=match[1].upper().startswith("Y"), code=match[2])


def free_code(preferred: str, open_codes: Collection[str]) -> str:
    """``preferred``, or the next 4-digit code after it that none of the responder's open pages uses.

    A reply names its page by code, so two open pages of one responder must never share one.
    """
    number = int(preferred)
    for step in range(9000):
        candidate = str(1000 + (number - 1000 + step) % 9000)
        if candidate not in open_codes:
            return candidate
    raise ValueError("every code is in use")
