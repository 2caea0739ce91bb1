"""The ``Geocoder`` port over any geopy geocoder: the offline gazetteer by default, Nominatim by configuration.

An online geocoder is called through geopy's ``RateLimiter`` (at most one request per
``geocoder_min_delay_seconds``, Nominatim's policy is 1 s; service errors retried twice) in a worker
thread, and its answers, found or not, are kept in an in-memory LRU cache so a retried report or a
popular address costs one request. Suggestions for an unknown query always come from the gazetteer,
the names the organisation knows.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from functools import partial
from typing import Any, Literal

from geopy.exc import GeopyError
from geopy.extra.rate_limiter import RateLimiter
from geopy.geocoders import Nominatim
from geopy.location import Location as GeopyLocation

from services.intake_gateway.adapters.geocoding_gazetteer import Gazetteer, GazetteerGeocoder, normalise
from services.intake_gateway.domain.places import AddressNotFound, GeocoderUnavailable, Resolved

log = logging.getLogger(__name__)

_MISSING = object()


class GeopyLocator:
    """Implements ``domain.places.Geocoder`` with a geopy ``geocode`` callable."""

    def __init__(
        self,
        geocode: Callable[[str], GeopyLocation | None],
        *,
        suggest: Callable[[str], list[str]],
        blocking: bool,
        cache_size: int = 0,
        name: str = "geocoder",
    ) -> None:
        self._geocode = geocode
        self._suggest = suggest
        self._blocking = blocking  # an online geocoder blocks (and sleeps in the RateLimiter): run it in a thread
        self._cache: OrderedDict[str, Resolved | None] = OrderedDict()
        self._cache_size = cache_size
        self.name = name
        self.requests = 0  # calls that reached the geocoder (not answered from the cache)

    async def locate(self, query: str, kind: Literal["address", "place"]) -> Resolved:
        key = normalise(query)
        cached = self._cache.get(key, _MISSING)
        if cached is _MISSING:
            self.requests += 1
            try:
                found = await asyncio.to_thread(self._geocode, query) if self._blocking else self._geocode(query)
            except GeopyError as exc:
                # the query itself is not logged: an address can identify the person
                log.warning("%s failed: %s", self.name, type(exc).__name__)
                raise GeocoderUnavailable(type(exc).__name__) from exc
            cached = _resolved(found, kind)
            self._remember(key, cached)
        else:
            self._cache.move_to_end(key)
        if cached is None:
            raise AddressNotFound(kind, self._suggest(query))
        return cached  # type: ignore[return-value]

    def _remember(self, key: str, value: Resolved | None) -> None:
        if self._cache_size <= 0:
            return
        self._cache[key] = value
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)


def _resolved(found: GeopyLocation | list[GeopyLocation] | None, kind: str) -> Resolved | None:
    if isinstance(found, list):
        found = found[0] if found else None
    if found is None:
        return None
    raw: Any = found.raw if isinstance(found.raw, dict) else {}
    if "place" in raw or "address" in raw:  # the gazetteer says which it is
        return Resolved(found.latitude, found.longitude, raw.get("address"), raw.get("place"))
    # an online geocoder's one-line display name is the address; a place query keeps it as the address too
    return Resolved(found.latitude, found.longitude, (found.address or "")[:300] or None, None)


def gazetteer_locator(gazetteer: Gazetteer) -> GeopyLocator:
    geocoder = GazetteerGeocoder(gazetteer)
    return GeopyLocator(geocoder.geocode, suggest=geocoder.suggest, blocking=False, name="gazetteer")


def nominatim_locator(
    gazetteer: Gazetteer,
    *,
    domain: str,
    scheme: str,
    user_agent: str,
    min_delay_seconds: float,
    timeout_seconds: float,
    cache_size: int,
    max_retries: int = 2,
) -> GeopyLocator:
    """Nominatim (OpenStreetMap) through geopy, biased to the service zones' bounding box."""
    nominatim = Nominatim(domain=domain, scheme=scheme, user_agent=user_agent, timeout=timeout_seconds)
    geocode = partial(nominatim.geocode, exactly_one=True, viewbox=_viewbox(gazetteer), bounded=False)
    limited = RateLimiter(
        geocode,
        min_delay_seconds=min_delay_seconds,
        max_retries=max_retries,
        error_wait_seconds=max(min_delay_seconds, 1.0),
        swallow_exceptions=False,  # a failure must be a 503, not a "not found"
    )
    return GeopyLocator(
        limited,
        suggest=GazetteerGeocoder(gazetteer).suggest,
        blocking=True,
        cache_size=cache_size,
        name=f"nominatim at {domain}",
    )


def _viewbox(gazetteer: Gazetteer) -> list[tuple[float, float]] | None:
    boxes = [zone.bounds for zone in gazetteer.zones if zone.centre is None]
    if not boxes:
        return None
    return [(min(b[0] for b in boxes), min(b[1] for b in boxes)), (max(b[2] for b in boxes), max(b[3] for b in boxes))]
