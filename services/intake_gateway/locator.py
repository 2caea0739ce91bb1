"""Where responders go: the coordinates a report gives, or its address or named place geocoded, and the zone.

The ``domain.places.Geocoder`` port (implemented in ``adapters/``) resolves addresses and named places.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from services.contract.events import Location
from services.intake_gateway.domain.places import AddressNotFound, Geocoder, Zone, zone_of
from services.intake_gateway.refusals import InvalidInput


@dataclass(frozen=True)
class LocationGiven:
    """What the reporter said about where: coordinates, or an address, or a named place (checked in that order)."""

    lat: float | None = None
    lon: float | None = None
    address: str | None = None
    place: str | None = None
    access_notes: str | None = None


@dataclass(frozen=True)
class Placed:
    location: Location
    zone: str | None

    @property
    def outside_service_area(self) -> bool:
        return self.zone is None


class Locator:
    def __init__(self, geocoder: Geocoder, zones: Sequence[Zone]) -> None:
        self.geocoder = geocoder
        self.zones = tuple(zones)

    async def place(self, given: LocationGiven, path: str) -> Placed:
        """Coordinates as given, or the geocoded address / place; with its service zone (None: outside)."""
        if (given.lat is None) != (given.lon is None):
            missing = "lon" if given.lon is None else "lat"
            raise InvalidInput([(f"{path}.{missing}", "give both lat and lon, or an address or a place instead")])
        if given.lat is not None and given.lon is not None:
            location = Location(
                lat=given.lat,
                lon=given.lon,
                address=given.address,
                place=given.place,
                access_notes=given.access_notes,
                resolved_from="coordinates",
            )
        else:
            kind: Literal["address", "place"] = "address" if given.address else "place"
            query = given.address or given.place
            if not query or not query.strip():
                raise InvalidInput([(path, "give coordinates (lat and lon), an address or a named place")])
            try:
                resolved = await self.geocoder.locate(query, kind)
            except AddressNotFound as exc:
                hint = f"; did you mean: {', '.join(exc.suggestions)}" if exc.suggestions else ""
                raise InvalidInput(
                    [(f"{path}.{kind}", f"this {kind} is not known here{hint}")], suggestions=exc.suggestions
                ) from exc
            location = Location(
                lat=resolved.lat,
                lon=resolved.lon,
                address=(resolved.address or (given.address if kind == "address" else None)),
                place=resolved.place or given.place,
                access_notes=given.access_notes,
                resolved_from=kind,
            )
        return Placed(location, zone_of(location.lat, location.lon, self.zones))
