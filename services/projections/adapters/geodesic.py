"""Distances on the WGS-84 ellipsoid through geopy (the matching's ``Distance`` port)."""

from __future__ import annotations

from geopy.distance import geodesic


def geodesic_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Kilometres between two (lat, lon) points; never raises for valid coordinates."""
    return float(geodesic(a, b).km)
