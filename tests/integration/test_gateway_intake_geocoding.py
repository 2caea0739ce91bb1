"""Nominatim through geopy, switched on by configuration: tested against a local fake Nominatim on loopback.

Never the internet: the fake answers /search like Nominatim does, and counts the requests that reach it.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from services.intake_gateway.adapters.geocoding_gazetteer import load_gazetteer
from services.intake_gateway.adapters.geocoding_geopy import nominatim_locator
from services.intake_gateway.bootstrap import build
from services.intake_gateway.domain.places import AddressNotFound, GeocoderUnavailable
from services.intake_gateway.settings import GatewaySettings
from services.runtime.credentials import AccessRole, issue_credential
from tests.support.asgi_server import serving

ROOT = Path(__file__).resolve().parents[2]
KNOWN = {"1 Example Plaza, Denver": ("39.7400", "-104.9900"), "Far Away Farm": ("40.5000", "-103.0000")}


class FakeNominatim:
    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.app = Starlette(routes=[Route("/search", self.search)])

    async def search(self, request: Request) -> JSONResponse:
        self.requests.append(request)
        query = request.query_params.get("q", "")
        if query.startswith("fail"):
            return JSONResponse({"error": "overloaded"}, status_code=503)
        if query not in KNOWN:
            return JSONResponse([])
        lat, lon = KNOWN[query]
        return JSONResponse([{"place_id": 1, "lat": lat, "lon": lon, "display_name": f"{query}, Colorado, USA"}])

    def queries(self) -> list[str]:
        return [r.query_params["q"] for r in self.requests]


@pytest.fixture(scope="module")
def fake():
    nominatim = FakeNominatim()
    with serving(nominatim.app) as url:
        nominatim.domain = url.removeprefix("http://")
        yield nominatim


@pytest.fixture
def locator(fake):
    fake.requests.clear()
    return nominatim_locator(
        load_gazetteer(ROOT / "deploy/demo/gazetteer.json"),
        domain=fake.domain,
        scheme="http",
        user_agent="crisis-tests",
        min_delay_seconds=0.0,
        timeout_seconds=5.0,
        cache_size=16,
        max_retries=0,
    )


async def test_nominatim_answers_are_cached_found_or_not(fake, locator) -> None:
    found = await locator.locate("1 Example Plaza, Denver", "address")
    again = await locator.locate("1 example plaza,  denver", "address")  # same query once normalised
    assert (found.lat, found.lon) == (39.74, -104.99) == (again.lat, again.lon)
    assert found.address == "1 Example Plaza, Denver, Colorado, USA"
    for _ in range(2):
        with pytest.raises(AddressNotFound) as missing:
            await locator.locate("1701 Wynkop St", "address")
    assert missing.value.suggestions[0] == "1701 Wynkoop St"  # suggestions come from the gazetteer
    assert fake.queries() == ["1 Example Plaza, Denver", "1701 Wynkop St"]
    request = fake.requests[0]
    assert request.headers["user-agent"] == "crisis-tests" and request.query_params["format"] == "json"
    assert "viewbox" in request.query_params  # biased to the service zones


async def test_a_failing_nominatim_is_unavailable_not_not_found_and_is_not_cached(fake, locator) -> None:
    for _ in range(2):
        with pytest.raises(GeocoderUnavailable):
            await locator.locate("fail please", "address")
    assert fake.queries() == ["fail please", "fail please"]


async def test_the_gateway_geocodes_with_nominatim_when_configured(fake, nats_server, tmp_path) -> None:
    credentials = tmp_path / "credentials.json"
    issue_credential(credentials, "intake", AccessRole.INTAKE, token="nominatim-intake-token")
    settings = GatewaySettings(
        nats_url=nats_server.url,
        credentials_file=credentials,
        geocoder="nominatim",
        nominatim_domain=fake.domain,
        nominatim_scheme="http",
        geocoder_min_delay_seconds=0,
        geocoder_max_retries=0,
    )
    auth = {"Authorization": "Bearer nominatim-intake-token"}

    def report(address: str) -> httpx.Response:
        body = {"kind": "overdose", "location": {"address": address}, "reporter": {"channel": "web"}}
        return httpx.post(f"{url}/v1/incidents", json=body, headers=auth)

    with serving(build(settings)) as url:
        accepted = report("1 Example Plaza, Denver")
        outside = report("Far Away Farm")
        unknown = report("Union Statoin")
        down = report("fail now")
    assert accepted.status_code == 201 and accepted.json()["zone"] == "central"
    assert accepted.json()["location"]["lat"] == 39.74 and accepted.json()["location"]["resolved_from"] == "address"
    assert outside.status_code == 201 and outside.json()["outside_service_area"] is True
    assert unknown.status_code == 422 and "Union Station" in unknown.json()["suggestions"]
    assert down.status_code == 503 and down.headers["content-type"] == "application/problem+json"
    assert "coordinates" in down.json()["detail"]
