"""Distances on the WGS-84 ellipsoid through geopy."""

from __future__ import annotations

from geopy.distance import geodesic


def geodesic_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    return geodesic(a, b).km
