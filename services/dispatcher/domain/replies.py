"""Reading a responder's SMS reply. Pure and tolerant of case and spacing."""

from __future__ import annotations

import re
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
