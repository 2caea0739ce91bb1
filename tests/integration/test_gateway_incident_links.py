"""The links in a report's 201 answer resolve (issue 14): ``Location`` on the gateway, ``timeline_url`` on the
projections service (an absolute URL: ``CRISIS_WORKSPACE_PUBLIC_URL``).

Both services run over real HTTP on the same real nats-server and credentials file. Each link answers 200 to a
caller related to the incident and 403 to a responder who was not paged for it; the gateway's refusal is an
``access.refused`` event (the audit log's entry), like a refused write.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from uuid import UUID

import httpx
import pytest

from services.contract.events import AccessRefused
from services.intake_gateway.bootstrap import build as build_gateway
from services.intake_gateway.settings import GatewaySettings
from services.projections.bootstrap import build as build_projections
from services.runtime.clock import ManualClock
from services.runtime.credentials import AccessRole, issue_credential
from tests.integration.test_gateway_write_scopes import T0, page, report
from tests.integration.test_projections import make_settings
from tests.support.asgi_server import serving
from tests.support.stream import last_sequence, stream_events, tracked

PAGED = UUID("6f1c0a52-0000-4000-8000-00000000b001")
NOT_PAGED = UUID("6f1c0a52-0000-4000-8000-00000000b002")
CALLERS = {
    "intake": ("links-intake", AccessRole.INTAKE, None),
    "paged": ("links-paged", AccessRole.RESPONDER, PAGED),
    "not_paged": ("links-not-paged", AccessRole.RESPONDER, NOT_PAGED),
    "director": ("links-director", AccessRole.DIRECTOR, None),
}


@dataclass
class Services:
    gateway: str
    projections: str
    projections_app: object
    clock: ManualClock

    def get(self, url: str, caller: str) -> httpx.Response:
        return httpx.get(url, headers=bearer(caller))

    def report(self) -> httpx.Response:
        return httpx.post(self.gateway + "/v1/incidents", json=report(), headers=bearer("intake"))


def bearer(caller: str) -> dict[str, str]:
    return {"Authorization": f"Bearer token-{caller}"}


@contextlib.contextmanager
def both_services(nats_url: str, var_dir: Path) -> Iterator[Services]:
    projections_settings = make_settings(nats_url, var_dir, "")
    var_dir.mkdir(parents=True)
    for name, (subject, role, responder_id) in CALLERS.items():
        issue_credential(projections_settings.credentials_file, subject, role, responder_id, token=f"token-{name}")
    clock = ManualClock(T0)
    projections_app = build_projections(projections_settings, clock)
    with serving(projections_app) as projections:
        gateway_settings = GatewaySettings(
            nats_url=nats_url, credentials_file=projections_settings.credentials_file, workspace_public_url=projections
        )
        with serving(build_gateway(gateway_settings, clock)) as gateway:
            yield Services(gateway, projections, projections_app, clock)


@pytest.fixture
def services(js, nats_server, tmp_path) -> Iterator[Services]:
    with both_services(nats_server.url, tmp_path / "var") as running:
        yield running


async def test_location_answers_the_incident_state_to_related_callers_and_403_to_another_responder(
    services: Services, js, nats_server
) -> None:
    accepted = services.report()
    incident = accepted.json()["incident_id"]
    location = services.gateway + accepted.headers["location"]
    assert accepted.headers["location"] == f"/v1/incidents/{incident}"
    await page(nats_server.url, incident, PAGED, services.clock)
    before = await last_sequence(js)

    answers = {caller: services.get(location, caller) for caller in CALLERS}

    assert {caller: a.status_code for caller, a in answers.items()} == {
        "intake": 200,
        "paged": 200,
        "not_paged": 403,
        "director": 200,
    }
    state = answers["paged"].json()
    assert (state["incident_id"], state["kind"], state["status"]) == (incident, "overdose", "open")
    assert datetime.fromisoformat(state["reported_at"]) == T0 and state["closed_at"] is None
    assert state["responders_paged"] == 1
    assert state["timeline_url"] == accepted.json()["timeline_url"]
    assert answers["not_paged"].headers["content-type"] == "application/problem+json"
    refused = [e for e in await stream_events(js, before + 1) if isinstance(e, AccessRefused)]
    assert [(e.data.subject, e.data.record_type, e.data.record_id) for e in refused] == [
        ("links-not-paged", "incident", incident)
    ]


async def test_an_unknown_incident_is_403_to_a_responder_and_404_to_a_director(services: Services) -> None:
    unknown = f"{services.gateway}/v1/incidents/{UUID(int=7)}"
    assert services.get(unknown, "paged").status_code == 403
    assert services.get(unknown, "director").status_code == 404


async def test_timeline_url_is_the_incident_timeline_on_the_projections_service(
    services: Services, js, nats_server
) -> None:
    accepted = services.report().json()
    incident = accepted["incident_id"]
    assert accepted["timeline_url"] == f"{services.projections}/v1/incidents/{incident}/timeline"
    await page(nats_server.url, incident, PAGED, services.clock)
    await tracked(services.projections_app.state.read_models.store, await last_sequence(js))

    answers = {caller: services.get(accepted["timeline_url"], caller) for caller in ("paged", "not_paged", "director")}

    assert {caller: a.status_code for caller, a in answers.items()} == {"paged": 200, "not_paged": 403, "director": 200}
    timeline = answers["paged"].json()
    assert (timeline["incident_id"], timeline["kind"]) == (incident, "overdose")
