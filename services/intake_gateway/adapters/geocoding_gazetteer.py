"""The offline gazetteer as a geopy geocoder, and as the gateway loads it: zones as ``Zone``s it can test points
against. Reading the file and looking names up is shared (``services/runtime/gazetteer.py``); near misses are
offered as suggestions here (difflib).
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from geopy.geocoders.base import Geocoder as GeopyGeocoder
from geopy.location import Location as GeopyLocation

from services.intake_gateway.domain.places import Zone
from services.runtime import gazetteer as shared
from services.runtime.gazetteer import Entry, Gazetteer, GazetteerIndex, normalise

__all__ = ["Entry", "Gazetteer", "GazetteerGeocoder", "load_gazetteer", "normalise"]


def load_gazetteer(path: Path) -> Gazetteer:
    """Read and check a gazetteer file, its zones as ``Zone``s. Raises ValueError naming the problem."""
    return shared.load_gazetteer(path, make_zone=Zone)


class GazetteerGeocoder(GeopyGeocoder):
    """A geopy geocoder answering from a ``Gazetteer``: no network, ever."""

    def __init__(self, gazetteer: Gazetteer) -> None:
        super().__init__()
        self.gazetteer = gazetteer
        self._index = GazetteerIndex(gazetteer)
        self._names = self._index.spelling

    def geocode(self, query: str, *, exactly_one: bool = True, timeout: float | None = None):  # noqa: ANN201 - geopy's signature
        """geopy's ``geocode``: a ``geopy.location.Location`` (raw = the gazetteer entry), or None if unknown."""
        entry = self._index.match(str(query))
        if entry is None:
            return None
        location = GeopyLocation(
            entry.label, (entry.lat, entry.lon, 0.0), {"address": entry.address, "place": entry.place}
        )
        return location if exactly_one else [location]

    def reverse(self, query: Any, *, exactly_one: bool = True, timeout: float | None = None):  # noqa: ANN201
        """The nearest entry within 150 m of a (lat, lon) point, or None."""
        lat, lon = (float(v) for v in (query if isinstance(query, tuple | list) else str(query).split(",")))
        best = self._index.near(lat, lon)
        if best is None:
            return None
        location = GeopyLocation(best.label, (best.lat, best.lon, 0.0), {"address": best.address, "place": best.place})
        return location if exactly_one else [location]

    def suggest(self, query: str, limit: int = 5) -> list[str]:
        """Known names close to ``query`` (difflib ratio >= 0.6), best first."""
        key = normalise(query)
        head = normalise(query.split(",", 1)[0])
        found: list[str] = []
        for candidate in (key, head):
            for match in difflib.get_close_matches(candidate, list(self._names), n=limit, cutoff=0.6):
                if self._names[match] not in found:
                    found.append(self._names[match])
        return found[:limit]
