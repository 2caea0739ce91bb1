"""Where a report is: the geocoding port, service zones and distances. Pure (the adapters do the I/O)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

EARTH_RADIUS_M = 6_371_008.8


@dataclass(frozen=True)
class Resolved:
    """A geocoded address or named place."""

    lat: float
    lon: float
    address: str | None  # the normalised address the geocoder knows it by, if any
    place: str | None = None  # the named place, when the query was one


class AddressNotFound(Exception):
    """The geocoder answered, and the query names nothing it knows. Carries close known names, best first."""

    def __init__(self, query_kind: Literal["address", "place"], suggestions: Sequence[str] = ()) -> None:
        super().__init__(f"{query_kind} not found")
        self.query_kind = query_kind
        self.suggestions = list(suggestions)


class GeocoderUnavailable(Exception):
    """The geocoder could not answer now (network, timeout, rate limit, quota). Nothing is known about the query."""


class Geocoder(Protocol):
    """The one geocoding interface the gateway uses (adapters: offline gazetteer, Nominatim via geopy).

    ``locate`` resolves a street address or a named place to a point. It never guesses: only an unambiguous
    match is returned.

    Errors:
    - ``AddressNotFound``: the query is not known (answer the reporter 422 with ``suggestions``, the close
      names the geocoder does know, so they can pick one or give coordinates);
    - ``GeocoderUnavailable``: a transient failure of the geocoder itself (answer 503: retry, or give
      coordinates). Any other exception is a bug.
    """

    async def locate(self, query: str, kind: Literal["address", "place"]) -> Resolved: ...


@dataclass(frozen=True)
class Zone:
    """A service zone: a polygon of (lat, lon) vertices, or a circle (centre and radius in metres)."""

    name: str
    polygon: tuple[tuple[float, float], ...] = ()
    centre: tuple[float, float] | None = None
    radius_m: float = 0.0
    bounds: tuple[float, float, float, float] = field(init=False)  # min lat, min lon, max lat, max lon

    def __post_init__(self) -> None:
        if self.polygon:
            if len(self.polygon) < 3:
                raise ValueError(f"zone {self.name!r}: a polygon needs at least 3 vertices")
            lats, lons = [p[0] for p in self.polygon], [p[1] for p in self.polygon]
            object.__setattr__(self, "bounds", (min(lats), min(lons), max(lats), max(lons)))
        elif self.centre is not None and self.radius_m > 0:
            object.__setattr__(self, "bounds", (-90.0, -180.0, 90.0, 180.0))
        else:
            raise ValueError(f"zone {self.name!r}: give a polygon or a centre and a positive radius")

    def contains(self, lat: float, lon: float) -> bool:
        if self.centre is not None:
            return distance_m((lat, lon), self.centre) <= self.radius_m
        min_lat, min_lon, max_lat, max_lon = self.bounds
        if not (min_lat <= lat <= max_lat and min_lon <= lon <= max_lon):
            return False
        return _inside_polygon(lat, lon, self.polygon)


def _inside_polygon(lat: float, lon: float, polygon: Sequence[tuple[float, float]]) -> bool:
    """Ray casting on the lat/lon plane: exact enough for city-sized zones away from the poles and the antimeridian."""
    inside = False
    j = len(polygon) - 1
    for i, (lat_i, lon_i) in enumerate(polygon):
        lat_j, lon_j = polygon[j]
        if (lat_i > lat) != (lat_j > lat):
            crossing_lon = lon_i + (lat - lat_i) * (lon_j - lon_i) / (lat_j - lat_i)
            if lon < crossing_lon:
                inside = not inside
        j = i
    return inside


def zone_of(lat: float, lon: float, zones: Sequence[Zone]) -> str | None:
    """The first zone (in configured order) containing the point, or None: outside the service area."""
    return next((zone.name for zone in zones if zone.contains(lat, lon)), None)


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Haversine distance in metres: within 0.5% of the geodesic, plenty for "within 200 m"."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))
