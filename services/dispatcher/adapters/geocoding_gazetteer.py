"""The organisation's offline gazetteer, as the dispatcher asks it: where a responder says they are
("AT Union Station"), and what a page may call the scene of an incident (the name of an entry right there)."""

from __future__ import annotations

from pathlib import Path

from services.dispatcher.application import Landmark, Locate
from services.runtime.gazetteer import GazetteerIndex, load_gazetteer


def gazetteer_locate(path: Path) -> Locate:
    """A ``Locate`` answering from the gazetteer file; None for a place it does not know (no network, ever)."""
    index = GazetteerIndex(load_gazetteer(path))

    def locate(text: str) -> tuple[float, float] | None:
        found = index.match(text)
        return (found.lat, found.lon) if found is not None else None

    return locate


def gazetteer_landmark(path: Path) -> Landmark:
    """A ``Landmark`` answering from the gazetteer file: the name of its entry within 150 m of a point, else None
    (farther than that, a page names the zone instead).

    The name is the entry's own (its place name, else its address) as the file writes it, whatever a
    report said about the spot.
    """
    index = GazetteerIndex(load_gazetteer(path))

    def landmark(lat: float, lon: float) -> str | None:
        found = index.near(lat, lon)
        return found.label if found is not None else None

    return landmark
