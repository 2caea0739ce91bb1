"""The offline gazetteer: named places, street addresses and service zones from one JSON file, as a geopy geocoder.

File format (``deploy/demo/gazetteer.json`` is the demo)::

    {"zones": [{"name": "central", "polygon": [[lat, lon], ...]},
               {"name": "east", "centre": [lat, lon], "radius_m": 3000}],
     "places": [{"name": "Union Station", "address": "1701 Wynkoop St", "lat": .., "lon": .., "aliases": [..]}],
     "addresses": [{"address": "1437 Bannock St", "lat": .., "lon": ..}]}

Matching is exact after normalising case, punctuation and the usual abbreviations (``Street`` = ``St``,
``&`` = ``and``), and a trailing ", city, state zip" is ignored. There is no fuzzy match on purpose: a near
miss sends a responder to the wrong door. Near misses are offered as suggestions instead (difflib).
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geopy.geocoders.base import Geocoder as GeopyGeocoder
from geopy.location import Location as GeopyLocation

from services.intake_gateway.domain.places import Zone, distance_m

_ABBREVIATIONS = {
    "street": "st",
    "avenue": "ave",
    "av": "ave",
    "boulevard": "blvd",
    "road": "rd",
    "drive": "dr",
    "parkway": "pkwy",
    "place": "pl",
    "court": "ct",
    "circle": "cir",
    "lane": "ln",
    "north": "n",
    "south": "s",
    "east": "e",
    "west": "w",
    "saint": "st",
    "&": "and",
}
_TOKEN = re.compile(r"[a-z0-9&]+")


def normalise(text: str) -> str:
    """Lower case, punctuation dropped, common street words abbreviated: "Wynkoop Street." -> "wynkoop st"."""
    tokens = _TOKEN.findall(text.lower().replace("'", ""))
    return " ".join(_ABBREVIATIONS.get(token, token) for token in tokens)


@dataclass(frozen=True)
class Entry:
    lat: float
    lon: float
    address: str | None
    place: str | None  # the place's name; None for a plain address
    aliases: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return self.place or self.address or f"{self.lat:.5f},{self.lon:.5f}"


@dataclass(frozen=True)
class Gazetteer:
    entries: tuple[Entry, ...]
    zones: tuple[Zone, ...]
    name: str = ""


def load_gazetteer(path: Path) -> Gazetteer:
    """Read and check a gazetteer file. Raises ValueError naming the problem: a bad file stops the gateway."""
    try:
        raw: dict[str, Any] = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"gazetteer {path}: {exc}") from exc
    try:
        zones = tuple(_zone(z) for z in raw.get("zones", []))
        entries = [
            Entry(float(p["lat"]), float(p["lon"]), p.get("address"), p["name"], tuple(p.get("aliases", ())))
            for p in raw.get("places", [])
        ]
        entries += [Entry(float(a["lat"]), float(a["lon"]), a["address"], None) for a in raw.get("addresses", [])]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"gazetteer {path}: bad entry ({exc})") from exc
    for entry in entries:
        if not (-90 <= entry.lat <= 90 and -180 <= entry.lon <= 180):
            raise ValueError(f"gazetteer {path}: {entry.label} has coordinates out of range")
    return Gazetteer(tuple(entries), zones, str(raw.get("name", "")))


def _zone(raw: dict[str, Any]) -> Zone:
    if "polygon" in raw:
        return Zone(str(raw["name"]), polygon=tuple((float(lat), float(lon)) for lat, lon in raw["polygon"]))
    lat, lon = raw["centre"]
    return Zone(str(raw["name"]), centre=(float(lat), float(lon)), radius_m=float(raw["radius_m"]))


class GazetteerGeocoder(GeopyGeocoder):
    """A geopy geocoder answering from a ``Gazetteer``: no network, ever."""

    def __init__(self, gazetteer: Gazetteer) -> None:
        super().__init__()
        self.gazetteer = gazetteer
        self._index: dict[str, Entry] = {}
        self._names: dict[str, str] = {}  # normalised -> how people write it, for suggestions
        for entry in gazetteer.entries:
            for name in (entry.place, entry.address, *entry.aliases):
                if name:
                    self._index.setdefault(normalise(name), entry)
                    self._names.setdefault(normalise(name), name)

    def _match(self, query: str) -> Entry | None:
        key = normalise(query)
        if key in self._index:
            return self._index[key]
        head = normalise(query.split(",", 1)[0])  # "1701 Wynkoop St, Denver, CO 80202"
        return self._index.get(head)

    def geocode(self, query: str, *, exactly_one: bool = True, timeout: float | None = None):  # noqa: ANN201 - geopy's signature
        """geopy's ``geocode``: a ``geopy.location.Location`` (raw = the gazetteer entry), or None if unknown."""
        entry = self._match(str(query))
        if entry is None:
            return None
        location = GeopyLocation(
            entry.label, (entry.lat, entry.lon, 0.0), {"address": entry.address, "place": entry.place}
        )
        return location if exactly_one else [location]

    def reverse(self, query: Any, *, exactly_one: bool = True, timeout: float | None = None):  # noqa: ANN201
        """The nearest entry within 150 m of a (lat, lon) point, or None."""
        lat, lon = (float(v) for v in (query if isinstance(query, tuple | list) else str(query).split(",")))
        best = min(self.gazetteer.entries, key=lambda e: distance_m((lat, lon), (e.lat, e.lon)), default=None)
        if best is None or distance_m((lat, lon), (best.lat, best.lon)) > 150:
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
