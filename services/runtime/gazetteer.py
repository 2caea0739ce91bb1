"""The organisation's gazetteer file: named places, street addresses and service zones, read and looked up offline.

Shared by the gateway (geocoding reports and service zones), the dispatcher (where a responder says they are,
and what a page may call the scene) and the notifier (the only place names a text may print).

File format (``deploy/demo/gazetteer.json`` is the demo)::

    {"zones": [{"name": "central", "polygon": [[lat, lon], ...]},
               {"name": "east", "centre": [lat, lon], "radius_m": 3000}],
     "places": [{"name": "Union Station", "address": "1701 Wynkoop St", "lat": .., "lon": .., "aliases": [..]}],
     "addresses": [{"address": "1437 Bannock St", "lat": .., "lon": ..}]}

Matching is exact after normalising case, punctuation and the usual abbreviations (``Street`` = ``St``,
``&`` = ``and``), and a trailing ", city, state zip" is ignored. There is no fuzzy match on purpose: a near
miss sends a responder to the wrong door.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
_EARTH_RADIUS_M = 6_371_008.8

NEAR_M = 150.0
"""How close an entry must be to name a point after it."""


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
class ZoneShape:
    """A service zone as the file describes it: a polygon of (lat, lon) vertices, or a centre and radius."""

    name: str
    polygon: tuple[tuple[float, float], ...] = ()
    centre: tuple[float, float] | None = None
    radius_m: float = 0.0


@dataclass(frozen=True)
class Gazetteer:
    entries: tuple[Entry, ...]
    zones: tuple[Any, ...]  # what ``load_gazetteer``'s ``make_zone`` built: ``ZoneShape`` unless told otherwise
    name: str = ""


def load_gazetteer(path: Path, make_zone: Callable[..., Any] = ZoneShape) -> Gazetteer:
    """Read and check a gazetteer file. Raises ValueError naming the problem: a bad file stops the service.

    ``make_zone`` builds each zone from ``ZoneShape``'s fields (the gateway passes its own ``Zone``, which
    checks the shape and does the geometry).
    """
    try:
        raw: dict[str, Any] = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"gazetteer {path}: {exc}") from exc
    try:
        zones = tuple(_zone(z, make_zone) for z in raw.get("zones", []))
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


def _zone(raw: dict[str, Any], make_zone: Callable[..., Any]) -> Any:
    if "polygon" in raw:
        return make_zone(str(raw["name"]), polygon=tuple((float(lat), float(lon)) for lat, lon in raw["polygon"]))
    lat, lon = raw["centre"]
    return make_zone(str(raw["name"]), centre=(float(lat), float(lon)), radius_m=float(raw["radius_m"]))


class GazetteerIndex:
    """Looks entries up by any name they go by, and by nearness to a point. No network, ever."""

    def __init__(self, gazetteer: Gazetteer) -> None:
        self.gazetteer = gazetteer
        self.by_name: dict[str, Entry] = {}
        self.spelling: dict[str, str] = {}  # normalised -> how people write it, for suggestions
        for entry in gazetteer.entries:
            for name in (entry.place, entry.address, *entry.aliases):
                if name:
                    self.by_name.setdefault(normalise(name), entry)
                    self.spelling.setdefault(normalise(name), name)

    def match(self, query: str) -> Entry | None:
        """The entry ``query`` names exactly (after normalising), ignoring a trailing ", city, state zip"."""
        key = normalise(query)
        if key in self.by_name:
            return self.by_name[key]
        head = normalise(query.split(",", 1)[0])  # "1701 Wynkoop St, Denver, CO 80202"
        return self.by_name.get(head)

    def near(self, lat: float, lon: float, within_m: float = NEAR_M) -> Entry | None:
        """The nearest entry within ``within_m`` metres of the point, or None."""
        best = min(self.gazetteer.entries, key=lambda e: _distance_m((lat, lon), (e.lat, e.lon)), default=None)
        if best is None or _distance_m((lat, lon), (best.lat, best.lon)) > within_m:
            return None
        return best


def _distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Haversine distance in metres: within 0.5% of the geodesic, plenty for "within 150 m"."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * _EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))
