"""The seed roster, read from a JSON file (the roster as events arrives with the dispatcher issue)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from uuid import UUID

from services.dispatcher.domain.roster import Responder, Roster

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def e164(phone: str) -> str:
    """Refuse a phone that is not E.164 here: later it would be an SMS that can never be requested."""
    if not isinstance(phone, str) or not _E164.match(phone):
        raise ValueError("phone is not an E.164 number")
    return phone


def load_roster(path: Path) -> Roster:
    """Parse a roster file. Raises ValueError naming the entry when one is malformed."""
    entries = json.loads(Path(path).read_text())
    responders = []
    for index, entry in enumerate(entries):
        try:
            responders.append(
                Responder(
                    responder_id=UUID(entry["id"]),
                    display_name=entry["name"],
                    role=entry["role"],
                    phone=e164(entry["phone"]),
                    home_lat=float(entry["home"]["lat"]),
                    home_lon=float(entry["home"]["lon"]),
                    skills=frozenset(entry.get("skills", [])),
                    on_call=bool(entry.get("on_call", True)),
                    language=entry.get("language", "en"),
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"roster entry {index} is malformed: {exc!r}") from exc
    return Roster(tuple(responders))
