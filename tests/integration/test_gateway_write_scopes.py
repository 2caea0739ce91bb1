"""Writes to an incident are scoped by the caller's relation to it, like reads (issue 13, section 2).

Over real HTTP and a real nats-server: an intake caller changes what it reported, a responder what they were
paged for, a director anything; every refusal is a 403 problem document and an ``access.refused`` event (the
audit log's entry); unknown and not-yours look alike to anyone but a director; incident ids are not derivable
from what a client sends; possible duplicates name only incidents the caller may know of.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import httpx
import nats
import pytest

from services.contract.events import (
    AccessRefused,
    DispatchOffered,
    DispatchOfferedData,
    IncidentReported,
    PageReason,
    decode_event,
    derived_id,
    new_event,
)
from services.intake_gateway.adapters.incident_states_kv import INCIDENTS_BUCKET
from services.intake_gateway.bootstrap import build
from services.intake_gateway.settings import GatewaySettings
from services.runtime.clock import ManualClock
from services.runtime.credentials import AccessRole, issue_credential
from services.runtime.idempotency_kv import BUCKET, KvIdempotencyStore
from services.runtime.nats_server import EmbeddedNatsServer
from services.runtime.stream import STREAM_NAME, publish_event
from tests.support.asgi_server import serving
from tests.support.stream import kv_value

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
CENTRAL = (39.7431, -104.9876)
PAGED_RESPONDER = UUID("6f1c0a52-0000-4000-8000-00000000a001")
CALLERS = {
    "intake": ("scope-intake", AccessRole.INTAKE, None),
    "other_intake": ("scope-intake-other", AccessRole.INTAKE, None),
    "responder": ("scope-responder", AccessRole.RESPONDER, PAGED_RESPONDER),
    "director": ("scope-director", AccessRole.DIRECTOR, None),
    "admin": ("scope-admin", AccessRole.ADMIN, None),
}
UPDATES = [
    ("naloxone", {"product": "naloxone 4 mg nasal spray", "route": "intranasal"}),
    ("ems-arrived", {}),
    ("relocated", {"location": {"lat": CENTRAL[0] + 0.001, "lon": CENTRAL[1]}}),
    ("cancel", {"reason": "false alarm"}),
]


@pytest.fixture(scope="module")
def nats_url(tmp_path_factory):
    server = EmbeddedNatsServer(tmp_path_factory.mktemp("scope-nats"))
    server.start()
    yield server.url
    server.stop()


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture(scope="module")
def gateway(nats_url, clock, tmp_path_factory):
    credentials = tmp_path_factory.mktemp("scope-auth") / "credentials.json"
    for name, (subject, role, responder_id) in CALLERS.items():
        issue_credential(credentials, subject, role, responder_id, token=f"token-{name}")
    settings = GatewaySettings(nats_url=nats_url, credentials_file=credentials)
    with serving(build(settings, clock)) as url:
        yield url


@pytest.fixture(autouse=True)
def later(clock) -> None:
    clock.advance(timedelta(hours=1))  # each test outside the previous one's duplicate window


def post(url: str, path: str, body: object, caller: str, key: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer token-{caller}"}
    if key:
        headers["Idempotency-Key"] = key
    return httpx.post(url + path, json=body, headers=headers)


def report(at: tuple[float, float] = CENTRAL) -> dict:
    return {
        "kind": "overdose",
        "location": {"lat": at[0], "lon": at[1]},
        "reporter": {"channel": "hotline"},
        "details": {"ems_called": True},
    }


async def stream_events(nats_url: str, after: int = 0) -> list:
    connection = await nats.connect(nats_url)
    try:
        js = connection.jetstream()
        last = (await js.stream_info(STREAM_NAME)).state.last_seq
        return [decode_event((await js.get_msg(STREAM_NAME, s)).data) for s in range(after + 1, last + 1)]
    finally:
        await connection.close()


async def last_seq(nats_url: str) -> int:
    connection = await nats.connect(nats_url)
    try:
        return (await connection.jetstream().stream_info(STREAM_NAME)).state.last_seq
    finally:
        await connection.close()


async def page(nats_url: str, incident_id: str, responder_id: UUID, clock: ManualClock) -> None:
    """The dispatcher paged ``responder_id`` for the incident; returns once the gateway knows it."""
    data = DispatchOfferedData(
        incident_id=UUID(incident_id),
        page_id=uuid4(),
        responder_id=responder_id,
        responder_role="peer_coach",
        code="4821",
        priority="P1",
        ack_deadline=clock.now() + timedelta(seconds=90),
        step=1,
        reason=PageReason(on_call=True, skills_matched=[], distance_km=0.5, load=0, rule="P1: best two at once"),
    )
    event = new_event(
        DispatchOffered,
        data,
        event_id=uuid4(),
        occurred_at=clock.now(),
        producer="dispatcher",
        incident_id=data.incident_id,
    )
    connection = await nats.connect(nats_url)
    try:
        js = connection.jetstream()
        await publish_event(js, event)
        await kv_value(  # the gateway's follower records the page: wait for its write, not for a time
            js,
            INCIDENTS_BUCKET,
            incident_id,
            lambda state: str(responder_id) in state["paged"],
            "the gateway to record the page",
            timeout=20,
        )
    finally:
        await connection.close()


def refusals(events: list) -> list[AccessRefused]:
    return [e for e in events if isinstance(e, AccessRefused)]


@pytest.mark.parametrize(("path", "body"), UPDATES)
async def test_strangers_are_refused_with_403_and_audited_and_nothing_is_recorded(
    gateway, nats_url, clock, path, body
) -> None:
    incident = post(gateway, "/v1/incidents", report(), "intake").json()["incident_id"]
    before = await last_seq(nats_url)
    for stranger in ("other_intake", "responder", "admin"):
        refused = post(gateway, f"/v1/incidents/{incident}/{path}", body, stranger)
        assert refused.status_code == 403, (stranger, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
    events = await stream_events(nats_url, before)
    written = refusals(events)
    # intake and responder are refused by relation, the admin by role (before any relation is looked at): all
    # three are entered in the audit log
    assert [(e.data.subject, e.data.record_type, e.data.record_id) for e in written] == [
        ("scope-intake-other", "incident", incident),
        ("scope-responder", "incident", incident),
        ("scope-admin", "incident", incident),
    ]
    assert all(e.incident_id is None for e in written)  # not part of the incident's own record
    assert len(events) == len(written)  # nothing else was appended


async def test_the_reporter_the_paged_responder_and_a_director_may_change_it(gateway, nats_url, clock) -> None:
    incident = post(gateway, "/v1/incidents", report(), "intake").json()["incident_id"]
    dose = {"product": "naloxone 4 mg nasal spray", "route": "intranasal"}
    assert post(gateway, f"/v1/incidents/{incident}/naloxone", dose, "intake").status_code == 201
    assert post(gateway, f"/v1/incidents/{incident}/naloxone", dose, "responder").status_code == 403
    await page(nats_url, incident, PAGED_RESPONDER, clock)
    assert post(gateway, f"/v1/incidents/{incident}/naloxone", dose, "responder").status_code == 201
    assert post(gateway, f"/v1/incidents/{incident}/ems-arrived", {}, "director").status_code == 201


async def test_unknown_and_not_yours_look_alike_except_to_a_director(gateway, nats_url) -> None:
    someone_elses = post(gateway, "/v1/incidents", report(), "other_intake").json()["incident_id"]
    unknown = str(uuid4())
    for caller in ("intake", "responder"):
        answers = [post(gateway, f"/v1/incidents/{i}/ems-arrived", {}, caller) for i in (someone_elses, unknown)]
        assert [a.status_code for a in answers] == [403, 403]
        assert answers[0].json()["detail"] == answers[1].json()["detail"]
    assert post(gateway, f"/v1/incidents/{unknown}/ems-arrived", {}, "director").status_code == 404


async def test_incident_ids_cannot_be_computed_from_the_caller_and_its_key(gateway, nats_url) -> None:
    key = f"key-{uuid4()}"
    first = post(gateway, "/v1/incidents", report(), "intake", key=key).json()["incident_id"]
    scope = f"scope-intake\nPOST /v1/incidents\n{key}"
    assert first != str(derived_id("incident", derived_id("idempotency", scope)))  # the old, public formula
    assert post(gateway, "/v1/incidents", report(), "intake", key=key).json()["incident_id"] == first  # a retry
    # the id rests on a random seed kept with the key: the same caller and key elsewhere make another incident
    connection = await nats.connect(nats_url)
    try:
        kv = await connection.jetstream().key_value(BUCKET)
        await kv.delete(KvIdempotencyStore.key_for(scope))
    finally:
        await connection.close()
    again = post(gateway, "/v1/incidents", report(), "intake", key=key).json()["incident_id"]
    assert again != first


async def test_possible_duplicates_name_only_incidents_the_caller_may_know(gateway, nats_url, clock) -> None:
    mine = post(gateway, "/v1/incidents", report(), "intake").json()
    clock.advance(timedelta(minutes=1))
    nearby = (CENTRAL[0] + 0.0003, CENTRAL[1])
    stranger = post(gateway, "/v1/incidents", report(nearby), "other_intake").json()
    assert stranger["possible_duplicates"] == []
    own_again = post(gateway, "/v1/incidents", report(nearby), "intake").json()
    assert [d["incident_id"] for d in own_again["possible_duplicates"]] == [mine["incident_id"]]
    # the stream still links every possible duplicate, for the directors' timeline
    events = await stream_events(nats_url)
    [stranger_event] = [
        e for e in events if isinstance(e, IncidentReported) and str(e.data.incident_id) == stranger["incident_id"]
    ]
    assert [str(i) for i in stranger_event.data.possible_duplicate_of] == [mine["incident_id"]]
