"""Where a responder says they are ("AT Union Station"): the same offline gazetteer the gateway geocodes with."""

from __future__ import annotations

from pathlib import Path

from services.dispatcher.application import Locate
from services.intake_gateway.adapters.geocoding_gazetteer import GazetteerGeocoder, load_gazetteer


def gazetteer_locate(path: Path) -> Locate:
    """A ``Locate`` answering from the gazetteer file; None for a place it does not know (no network, ever)."""
    geocoder = GazetteerGeocoder(load_gazetteer(path))

    def locate(text: str) -> tuple[float, float] | None:
        found = geocoder.geocode(text)
        return (found.latitude, found.longitude) if found is not None else None

    return locate
