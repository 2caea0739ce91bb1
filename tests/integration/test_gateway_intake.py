"""Crisis intake over real HTTP and a real nats-server: the three kinds, triage, location, idempotency,
possible duplicates, and updates to open (and closed) incidents.

This module runs its own nats-server so that the KV buckets and the duplicate index hold only its reports;
the gateway's clock is a ManualClock moved an hour at the start of each test, so no test sees another's
reports as possible duplicates.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import httpx
import nats
import pytest

from services.contract.events import (
    DispatchCompleted,
    DispatchCompletedData,
    IncidentReported,
    decode_event,
    new_event,
)
from services.intake_gateway.adapters.incident_states_kv import INCIDENTS_BUCKET
from services.intake_gateway.bootstrap import build
from services.intake_gateway.settings import GatewaySettings
from services.runtime.clock import ManualClock
from services.runtime.credentials import AccessRole, issue_credential
from services.runtime.idempotency_kv import (
    BUCKET,
    Claim,
    KeyInFlight,
    KeyReused,
    KvIdempotencyStore,
    StoredAnswer,
)
from services.runtime.nats_server import EmbeddedNatsServer
from services.runtime.stream import STREAM_NAME, publish_event
from tests.support.asgi_server import serving
from tests.support.stream import kv_value

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
TOKENS = {role: f"intake-test-{role.value}" for role in AccessRole}
CENTRAL = (39.7431, -104.9876)


@pytest.fixture(scope="module")
def nats_url(tmp_path_factory):
    server = EmbeddedNatsServer(tmp_path_factory.mktemp("intake-nats"))
    server.start()
    yield server.url
    server.stop()


@pytest.fixture(scope="module")
def settings(nats_url, tmp_path_factory) -> GatewaySettings:
    credentials = tmp_path_factory.mktemp("intake-auth") / "credentials.json"
    for role, token in TOKENS.items():
        issue_credential(credentials, f"test-{role.value}", role, token=token)
    return GatewaySettings(nats_url=nats_url, credentials_file=credentials)


@pytest.fixture(scope="module")
def module_clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def clock(module_clock) -> ManualClock:
    module_clock.advance(timedelta(hours=1))  # out of the previous test's duplicate window
    return module_clock


@pytest.fixture(scope="module")
def gateway(settings, module_clock):
    with serving(build(settings, module_clock)) as url:
        yield url


def post(url: str, path: str, body: object, role: AccessRole = AccessRole.INTAKE, key: str | None = None):
    headers = {"Authorization": f"Bearer {TOKENS[role]}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return httpx.post(url + path, json=body, headers=headers)


def report(kind: str = "overdose", details: dict | None = None, at: tuple[float, float] = CENTRAL, **location):
    return {
        "kind": kind,
        "location": location or {"lat": at[0], "lon": at[1]},
        "reporter": {"channel": "hotline"},
        "details": {"ems_called": True} if details is None else details,
    }


class Stream:
    def __init__(self, url: str) -> None:
        self.url = url

    async def last(self) -> int:
        connection = await nats.connect(self.url)
        try:
            return (await connection.jetstream().stream_info(STREAM_NAME)).state.last_seq
        finally:
            await connection.close()

    async def since(self, seq: int) -> list:
        connection = await nats.connect(self.url)
        try:
            js = connection.jetstream()
            last = (await js.stream_info(STREAM_NAME)).state.last_seq
            return [decode_event((await js.get_msg(STREAM_NAME, s)).data) for s in range(seq + 1, last + 1)]
        finally:
            await connection.close()


@pytest.fixture
def stream(nats_url) -> Stream:
    return Stream(nats_url)


# ---- the three kinds and their triage -------------------------------------------------------------------

SCREEN_NO = {"q1": False, "q2": False, "q6_ever": False}


@pytest.mark.parametrize(
    ("kind", "details", "priority", "needs", "risk", "first_words"),
    [
        (
            "overdose",
            {"ems_called": False, "responsive": False},
            "P1",
            ["naloxone_carrier", "ems_now"],
            None,
            "Call 911",
        ),
        ("withdrawal", {"substance": "opioid", "cows_score": 8}, "P2", ["prescriber"], "mild", "If the person"),
        ("withdrawal", {"substance": "alcohol", "ciwa_ar_score": 19}, "P2", ["medical_review"], "severe", "If the"),
        (
            "withdrawal",
            {"substance": "alcohol", "seizure": True},
            "P1",
            ["ems_now", "medical_review"],
            "complicated",
            "Call 911",
        ),
        (
            "self_harm_risk",
            SCREEN_NO | {"q2": True, "q3": True, "q4": True, "q5": False},
            "P1",
            ["licensed_clinician", "safety_precautions"],
            "high",
            "Stay with the person",
        ),
        ("self_harm_risk", SCREEN_NO | {"q1": True}, "P3", [], "low", "The 988 Suicide & Crisis Lifeline"),
    ],
)
async def test_each_kind_is_triaged_and_the_201_says_what_to_do_now(
    gateway, clock, stream, kind, details, priority, needs, risk, first_words
) -> None:
    before = await stream.last()
    response = post(gateway, "/v1/incidents", report(kind, details))
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["kind"], body["priority"], body["needs"], body["risk_level"]) == (kind, priority, needs, risk)
    assert body["guidance"][0].startswith(first_words)
    assert body["zone"] == "central" and body["outside_service_area"] is False
    assert response.headers["Location"] == f"/v1/incidents/{body['incident_id']}"
    [event] = await stream.since(before)
    assert isinstance(event, IncidentReported) and event.schema_version == 3
    assert event.data.reported_by == "test-intake"
    assert str(event.data.incident_id) == body["incident_id"] and event.data.short_code == body["short_code"]
    block = getattr(event.data, kind)
    assert {k: getattr(block, k) for k in details} == details
    assert event.data.assessment.risk_level == risk and event.data.needs == needs
    assert event.occurred_at == clock.now()


@pytest.mark.parametrize(
    ("kind", "details", "field"),
    [
        ("overdose", {"responsive": True, "breathing": False}, "body.details.breathing"),
        ("overdose", {"naloxone_doses_given": 21}, "body.details.naloxone_doses_given"),
        ("withdrawal", {"substance": "alcohol", "ciwa_ar_score": 68}, "body.details.ciwa_ar_score"),
        ("withdrawal", {"substance": "opioid", "cows_score": 49}, "body.details.cows_score"),
        ("withdrawal", {"substance": "opioid", "cows_score": -1}, "body.details.cows_score"),
        ("withdrawal", {"substance": "opioid", "ciwa_ar_score": 12}, "body.details.ciwa_ar_score"),
        ("withdrawal", {"substance": "alcohol", "cows_score": 9}, "body.details.cows_score"),
        ("withdrawal", {"substance": "other", "ciwa_ar_score": 9, "cows_score": 9}, "body.details.cows_score"),
        ("withdrawal", {"substance": "cannabis"}, "body.details.substance"),
        ("withdrawal", {}, "body.details.substance"),
        ("self_harm_risk", SCREEN_NO | {"q6_past_3_months": True}, "body.details.q6_past_3_months"),
        ("self_harm_risk", SCREEN_NO | {"q6_ever": True}, "body.details.q6_past_3_months"),
        ("self_harm_risk", SCREEN_NO | {"q4": True}, "body.details.q4"),
        ("self_harm_risk", SCREEN_NO | {"q2": True}, "body.details.q3"),
        ("self_harm_risk", {"q1": True}, "body.details.q2"),
    ],
)
async def test_out_of_range_and_contradictory_answers_are_a_422_naming_the_field_and_record_nothing(
    gateway, clock, stream, kind, details, field
) -> None:
    before = await stream.last()
    response = post(gateway, "/v1/incidents", report(kind, details))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert field in [e["field"] for e in problem["errors"]], problem
    assert problem["status"] == 422 and field in problem["detail"]
    assert await stream.last() == before


# ---- location ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ({"address": "1600 South Broadway, Denver, CO"}, (39.6883, -104.9876, "south", "address")),
        ({"place": "Regis University", "access_notes": "north entrance"}, (39.7903, -105.0330, "north", "place")),
        ({"place": "union station"}, (39.7527, -105.0001, "central", "place")),
        (
            {"lat": 39.7431, "lon": -104.9876, "address": "Colfax & Broadway"},
            (39.7431, -104.9876, "central", "coordinates"),
        ),
    ],
)
async def test_a_location_can_be_coordinates_an_address_or_a_named_place(
    gateway, clock, stream, location, expected
) -> None:
    before = await stream.last()
    response = post(gateway, "/v1/incidents", report(**location))
    assert response.status_code == 201, response.text
    body = response.json()
    lat, lon, zone, source = expected
    assert (body["location"]["lat"], body["location"]["lon"], body["zone"]) == (lat, lon, zone)
    assert body["location"]["resolved_from"] == source
    [event] = await stream.since(before)
    assert event.data.location.model_dump(mode="json") == body["location"] and event.data.zone == zone
    if "access_notes" in location:
        assert event.data.location.access_notes == "north entrance"


async def test_an_unknown_address_is_a_422_with_suggestions(gateway, clock, stream) -> None:
    before = await stream.last()
    response = post(gateway, "/v1/incidents", report(address="1701 Wynkop St"))
    assert response.status_code == 422
    problem = response.json()
    assert problem["errors"][0]["field"] == "body.location.address"
    assert (
        problem["suggestions"][0] == "1701 Wynkoop St"
        and "did you mean: 1701 Wynkoop St" in problem["errors"][0]["message"]
    )
    unknown_place = post(gateway, "/v1/incidents", report(place="Atlantis"))
    assert unknown_place.status_code == 422 and unknown_place.json()["errors"][0]["field"] == "body.location.place"
    assert await stream.last() == before


@pytest.mark.parametrize(
    ("location", "field"),
    [
        ({"lat": 39.74}, "body.location.lon"),
        ({"lon": -104.98}, "body.location.lat"),
        ({"access_notes": "x"}, "body.location"),
    ],
)
async def test_a_location_needs_both_coordinates_or_an_address_or_a_place(gateway, clock, location, field) -> None:
    response = post(gateway, "/v1/incidents", report(**location))
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == field


@pytest.mark.parametrize("location", [{"place": "Red Rocks"}, {"lat": 39.7479, "lon": -105.0455}])
async def test_a_point_outside_every_service_zone_is_accepted_and_flagged(gateway, clock, stream, location) -> None:
    before = await stream.last()
    response = post(gateway, "/v1/incidents", report(**location))
    assert response.status_code == 201
    body = response.json()
    assert body["outside_service_area"] is True and body["zone"] is None
    [event] = await stream.since(before)
    assert event.data.outside_service_area is True and event.data.zone is None


# ---- idempotency ----------------------------------------------------------------------------------------


async def test_a_retried_report_is_the_same_incident_even_days_later_and_after_a_restart(
    gateway, settings, clock, stream
) -> None:
    key = f"retry-{uuid4()}"
    before = await stream.last()
    first = post(gateway, "/v1/incidents", report(), key=key)
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    clock.advance(timedelta(days=3))  # far beyond the stream's de-duplication window
    again = post(gateway, "/v1/incidents", report(), key=key)
    assert (again.status_code, again.json()) == (201, first.json())
    assert again.headers["Idempotent-Replayed"] == "true" and again.headers["Location"] == first.headers["Location"]
    with serving(build(settings, clock)) as restarted:
        after_restart = post(restarted, "/v1/incidents", report(), key=key)
    assert (after_restart.status_code, after_restart.json()) == (201, first.json())
    assert [e.type for e in await stream.since(before)] == ["incident.reported"]


async def test_a_report_whose_answer_was_not_kept_is_not_appended_again_when_retried_late(
    settings, nats_url, clock, stream
) -> None:
    """The stream took the report but the gateway could not keep its answer (NATS went away right after the
    acknowledgement): the key's claim stays pending. A retry after the claim ended, and after the stream's
    de-duplication window, must answer with the same incident and append nothing."""
    key = f"lost-answer-{uuid4()}"
    app = build(settings, clock)
    with serving(app) as own_gateway:
        before = await stream.last()
        first = post(own_gateway, "/v1/incidents", report(), key=key)
        assert first.status_code == 201
        await forget_the_answer(nats_url, key, clock)
        clock.advance(timedelta(minutes=10))  # beyond the claim's end and the stream's 300 s window
        intake = app.state.intake
        appended = []
        stream_publish = intake.publish

        async def beyond_the_window(event):  # noqa: ANN001 - the stream would store a re-publish again now
            appended.append(event)
            return await stream_publish(event.model_copy(update={"id": uuid4()}))

        intake.publish = beyond_the_window
        retried = post(own_gateway, "/v1/incidents", report(), key=key)
    assert retried.status_code == 201 and appended == []
    assert retried.json()["incident_id"] == first.json()["incident_id"]
    assert retried.json()["possible_duplicates"] == []  # not its own duplicate
    assert [e.type for e in await stream.since(before)] == ["incident.reported"]


async def forget_the_answer(nats_url: str, key: str, clock: ManualClock) -> None:
    """Leave the key's claim as a gateway that lost NATS right after the stream's acknowledgement would."""
    scope = f"test-intake\nPOST /v1/incidents\n{key}"
    connection = await nats.connect(nats_url)
    try:
        kv = await connection.jetstream().key_value(BUCKET)
        done = json.loads((await kv.get(KvIdempotencyStore.key_for(scope))).value)
        pending = {"state": "pending", "fingerprint": done["fingerprint"], "seed": done["seed"]}
        pending |= {"at": clock.now().isoformat(), "until": clock.now().isoformat()}
        await kv.put(KvIdempotencyStore.key_for(scope), json.dumps(pending).encode())
    finally:
        await connection.close()


async def test_the_same_key_with_another_body_is_a_422_and_keys_are_per_caller(gateway, clock, stream) -> None:
    key = f"reuse-{uuid4()}"
    first = post(gateway, "/v1/incidents", report(), key=key)
    before = await stream.last()
    changed = post(gateway, "/v1/incidents", report(details={"ems_called": False}), key=key)
    assert changed.status_code == 422 and "Idempotency-Key" in changed.json()["detail"]
    assert await stream.last() == before
    other_caller = post(gateway, "/v1/incidents", report(), role=AccessRole.RESPONDER, key=key)
    assert other_caller.status_code == 201 and other_caller.json()["incident_id"] != first.json()["incident_id"]


async def test_a_failed_request_does_not_use_up_its_key(gateway, clock) -> None:
    key = f"fix-{uuid4()}"
    bad = post(gateway, "/v1/incidents", report(address="Nowhere Street 1"), key=key)
    assert bad.status_code == 422
    # the corrected request is a different body: it may not reuse a key that stored an answer, but this one did not
    fixed = post(gateway, "/v1/incidents", report(address="1437 Bannock St"), key=key)
    assert fixed.status_code == 201


# ---- possible duplicates ----------------------------------------------------------------------------------


async def test_reports_close_in_space_and_time_are_linked_and_never_suppressed(gateway, clock, stream) -> None:
    before = await stream.last()
    first = post(gateway, "/v1/incidents", report()).json()
    clock.advance(timedelta(minutes=3))
    second = post(gateway, "/v1/incidents", report(at=(CENTRAL[0] + 0.0004, CENTRAL[1]))).json()  # ~45 m
    other_kind = post(gateway, "/v1/incidents", report("withdrawal", {"substance": "alcohol"})).json()
    far = post(gateway, "/v1/incidents", report(at=(CENTRAL[0] + 0.005, CENTRAL[1]))).json()  # ~560 m
    clock.advance(timedelta(minutes=8))  # 11 min after the first, 8 after the second
    later = post(gateway, "/v1/incidents", report()).json()

    assert first["possible_duplicates"] == [] and other_kind["possible_duplicates"] == []
    assert far["possible_duplicates"] == []
    [link] = second["possible_duplicates"]
    assert (link["incident_id"], link["short_code"], link["minutes_before"]) == (
        first["incident_id"],
        first["short_code"],
        3,
    )
    assert 40 < link["distance_m"] < 50
    assert [d["incident_id"] for d in later["possible_duplicates"]] == [second["incident_id"]]
    events = await stream.since(before)
    assert len(events) == 5 and len({e.data.incident_id for e in events}) == 5  # every report recorded
    assert [str(i) for i in events[1].data.possible_duplicate_of] == [first["incident_id"]]


async def test_possible_duplicates_survive_a_gateway_restart(settings, clock) -> None:
    with serving(build(settings, clock)) as first_gateway:
        first = post(first_gateway, "/v1/incidents", report(place="Coors Field")).json()
    clock.advance(timedelta(minutes=2))
    with serving(build(settings, clock)) as restarted:
        second = post(restarted, "/v1/incidents", report(place="Coors Field")).json()
    assert [d["incident_id"] for d in second["possible_duplicates"]] == [first["incident_id"]]


# ---- updates ----------------------------------------------------------------------------------------------


def new_incident(gateway: str) -> str:
    response = post(gateway, "/v1/incidents", report(details={"ems_called": False, "responsive": False}))
    assert response.status_code == 201
    return response.json()["incident_id"]


async def test_updates_are_appended_as_events(gateway, clock, stream) -> None:
    incident = new_incident(gateway)
    before = await stream.last()
    given_at = (clock.now() - timedelta(minutes=2)).isoformat()
    dose = {
        "given_at": given_at,
        "product": "naloxone 4 mg nasal spray",
        "dose_mg": 4,
        "route": "intranasal",
        "given_by_role": "bystander",
        "response": "unchanged",
    }
    naloxone = post(gateway, f"/v1/incidents/{incident}/naloxone", dose)
    assert naloxone.status_code == 201, naloxone.text
    assert naloxone.json()["event_type"] == "incident.naloxone_administered"
    ems = post(
        gateway, f"/v1/incidents/{incident}/ems-arrived", {"agency": "Denver Health Paramedics"}, AccessRole.DIRECTOR
    )
    assert ems.status_code == 201
    moved = post(
        gateway,
        f"/v1/incidents/{incident}/relocated",
        {"location": {"place": "Ruby Hill Park"}, "reason": "walked off"},
    )
    assert moved.status_code == 201 and moved.json()["zone"] == "south"
    dose_event, ems_event, moved_event = await stream.since(before)
    assert dose_event.data.given_at == clock.now() - timedelta(minutes=2) and dose_event.data.route == "intranasal"
    assert (dose_event.data.response, dose_event.data.recorded_by) == ("unchanged", "test-intake")
    assert str(dose_event.incident_id) == incident == str(dose_event.data.incident_id)
    assert ems_event.type == "incident.ems_arrived" and ems_event.data.arrived_at == clock.now()
    assert ems_event.data.agency == "Denver Health Paramedics" and ems_event.data.recorded_by == "test-director"
    assert moved_event.type == "incident.relocated" and moved_event.data.location.place == "Ruby Hill Park"
    assert (moved_event.data.zone, moved_event.data.outside_service_area) == ("south", False)


async def test_a_cancelled_incident_takes_no_more_updates(gateway, clock, stream) -> None:
    incident = new_incident(gateway)
    cancel = post(gateway, f"/v1/incidents/{incident}/cancel", {"reason": "false alarm: asleep, not overdosed"})
    assert cancel.status_code == 201 and cancel.json()["event_type"] == "incident.cancelled"
    before = await stream.last()
    for path, body in [
        ("naloxone", {"product": "naloxone", "route": "intranasal"}),
        ("ems-arrived", {}),
        ("relocated", {"location": {"place": "City Park"}}),
        ("cancel", {"reason": "again"}),
    ]:
        response = post(gateway, f"/v1/incidents/{incident}/{path}", body)
        assert response.status_code == 409, path
        assert response.json()["incident_status"] == "cancelled"
    assert await stream.last() == before


async def test_a_completed_dispatch_closes_the_incident(gateway, clock, nats_url) -> None:
    incident = new_incident(gateway)
    completed = new_event(
        DispatchCompleted,
        DispatchCompletedData(
            incident_id=UUID(incident),
            page_id=uuid4(),
            responder_id=uuid4(),
            code="4821",
            message_sid="SM" + "cd" * 16,
            closes_incident=True,
        ),
        event_id=uuid4(),
        occurred_at=clock.now(),
        producer="dispatcher",
        incident_id=UUID(incident),
    )
    connection = await nats.connect(nats_url)
    try:
        await publish_event(connection.jetstream(), completed)
        await kv_value(
            connection.jetstream(),
            INCIDENTS_BUCKET,
            incident,
            lambda state: state["status"] == "completed",
            "the gateway to record the incident as completed",
        )
    finally:
        await connection.close()
    response = post(gateway, f"/v1/incidents/{incident}/ems-arrived", {})
    assert response.status_code == 409 and response.json()["incident_status"] == "completed"


async def test_unknown_or_malformed_incidents_and_future_times_are_refused(gateway, clock, stream) -> None:
    before = await stream.last()
    unknown = post(gateway, f"/v1/incidents/{uuid4()}/ems-arrived", {}, AccessRole.DIRECTOR)
    assert unknown.status_code == 404 and unknown.headers["content-type"] == "application/problem+json"
    malformed = post(gateway, "/v1/incidents/not-a-uuid/ems-arrived", {})
    assert malformed.status_code == 422 and malformed.json()["errors"][0]["field"] == "path.incident_id"
    incident = new_incident(gateway)
    after_report = await stream.last()
    future = (clock.now() + timedelta(hours=1)).isoformat()
    late = post(
        gateway, f"/v1/incidents/{incident}/naloxone", {"given_at": future, "product": "n", "route": "intranasal"}
    )
    assert late.status_code == 422 and late.json()["errors"][0]["field"] == "body.given_at"
    naive = post(gateway, f"/v1/incidents/{incident}/ems-arrived", {"arrived_at": "2026-11-23T09:00:00"})
    assert naive.status_code == 422 and naive.json()["errors"][0]["field"] == "body.arrived_at"
    assert await stream.last() == after_report == before + 1


async def test_an_update_retried_with_its_key_is_recorded_once(gateway, clock, stream) -> None:
    incident = new_incident(gateway)
    before = await stream.last()
    dose = {"product": "naloxone 4 mg nasal spray", "route": "intranasal", "response": "improved"}
    first = post(gateway, f"/v1/incidents/{incident}/naloxone", dose, key="dose-1")
    again = post(gateway, f"/v1/incidents/{incident}/naloxone", dose, key="dose-1")
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    assert [e.type for e in await stream.since(before)] == ["incident.naloxone_administered"]


async def test_roster_admins_may_report_but_not_change_clinical_facts(gateway, clock) -> None:
    incident = post(gateway, "/v1/incidents", report(), role=AccessRole.ADMIN)
    assert incident.status_code == 201
    update = post(gateway, f"/v1/incidents/{incident.json()['incident_id']}/ems-arrived", {}, role=AccessRole.ADMIN)
    assert update.status_code == 403
    director = post(gateway, f"/v1/incidents/{incident.json()['incident_id']}/ems-arrived", {}, AccessRole.DIRECTOR)
    assert director.status_code == 201


async def test_a_key_in_flight_is_refused_until_its_claim_is_stale(nats_url) -> None:
    connection = await nats.connect(nats_url)
    try:
        clock = ManualClock(T0)
        retention = GatewaySettings().idempotency_retention_days
        store = await KvIdempotencyStore.open(
            connection.jetstream(), clock, retention_days=retention, replicas=1, claim_seconds=12
        )
        scope = f"caller\nPOST /v1/incidents\n{uuid4()}"
        first = await store.begin(scope, "body-1")
        assert isinstance(first, Claim) and first.fresh
        with pytest.raises(KeyInFlight):
            await store.begin(scope, "body-1")
        with pytest.raises(KeyReused):
            await store.begin(scope, "body-2")
        clock.advance(timedelta(seconds=13))  # the claimant never answered within its deadline
        taken_over = await store.begin(scope, "body-1")
        assert taken_over == Claim(first.seed, fresh=False)  # same seed: the retry records under the same ids
        await store.complete(scope, "body-1", StoredAnswer(201, {"incident_id": "x"}, {"Location": "/x"}))
        assert await store.begin(scope, "body-1") == StoredAnswer(201, {"incident_id": "x"}, {"Location": "/x"})
    finally:
        await connection.close()


async def test_a_request_that_failed_after_sending_leaves_its_key_retryable_at_once_with_the_same_seed(
    nats_url,
) -> None:
    connection = await nats.connect(nats_url)
    try:
        clock = ManualClock(T0)
        store = await KvIdempotencyStore.open(connection.jetstream(), clock, retention_days=1, replicas=1)
        scope = f"caller\nPOST /v1/incidents\n{uuid4()}"
        claim = await store.begin(scope, "body-1")
        await store.give_up(scope, "body-1", claim)  # answered 503/504: maybe on the stream, maybe not
        retry = await store.begin(scope, "body-1")  # no waiting for the claim to go stale
        assert retry == Claim(claim.seed, fresh=False)
        seeds = {claim.seed}
        for _ in range(3):  # however often it fails, the ids stay the same
            await store.give_up(scope, "body-1", retry)
            retry = await store.begin(scope, "body-1")
            seeds.add(retry.seed)
        assert seeds == {claim.seed}
    finally:
        await connection.close()
