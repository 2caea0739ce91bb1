"""The admin (roster and schedule) API over real HTTP and a real nats-server: each command is a roster event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import httpx
import nats
import pytest

from services.contract.events import Envelope, decode_event
from services.intake_gateway.bootstrap import build
from services.intake_gateway.roster_commands import normalise_phone
from services.intake_gateway.settings import GatewaySettings
from services.runtime.clock import ManualClock
from services.runtime.credentials import AccessRole, issue_credential
from services.runtime.stream import STREAM_NAME
from tests.integration.test_twilio_webhooks import ForgetfulStream
from tests.support.asgi_server import serving

NOW = datetime(2026, 10, 20, 12, 0, tzinfo=UTC)
RESPONDER_ID = UUID("5e1d2c3b-0000-4000-8000-00000000c001")
ADMIN = {"Authorization": "Bearer admin-api-test-admin"}
SELF = {"Authorization": "Bearer admin-api-test-responder"}


@pytest.fixture(scope="module")
def credentials(tmp_path_factory):
    credentials = tmp_path_factory.mktemp("admin") / "credentials.json"
    issue_credential(credentials, "test-admin", AccessRole.ADMIN, token=ADMIN["Authorization"].split()[1])
    issue_credential(
        credentials, "test-responder", AccessRole.RESPONDER, RESPONDER_ID, token=SELF["Authorization"].split()[1]
    )
    return credentials


@pytest.fixture(scope="module")
def gateway(nats_server, credentials):
    settings = GatewaySettings(nats_url=nats_server.url, credentials_file=credentials, phone_default_region="US")
    with serving(build(settings, ManualClock(NOW))) as url:
        yield url


class Stream:
    def __init__(self, connection) -> None:
        self.js = connection.jetstream()

    async def position(self) -> int:
        return (await self.js.stream_info(STREAM_NAME)).state.last_seq

    async def since(self, position: int) -> list[Envelope]:
        """Events appended after ``position`` (the stream is shared by every test: read only from here)."""
        last = await self.position()
        return [decode_event((await self.js.get_msg(STREAM_NAME, s)).data) for s in range(position + 1, last + 1)]


@pytest.fixture
async def stream(nats_server):
    connection = await nats.connect(nats_server.url)
    yield Stream(connection)
    await connection.close()


def profile(**changes) -> dict:
    body = {
        "name": "Test Clinician",
        "role": "clinician",
        "skills": ["naloxone_carrier", "licensed_clinician"],
        "languages": ["en", "es"],
        "phone": "(303) 555-0123",
        "home_base": {"lat": 39.74, "lon": -104.99},
        "zones": ["denver-central"],
    }
    return body | changes


def assert_problem(response: httpx.Response, status: int, field: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert field in [e["field"] for e in response.json()["errors"]]


# -- responders ---------------------------------------------------------------------------------------------


async def test_registering_a_responder_appends_it_with_the_phone_in_e164(gateway, stream) -> None:
    before = await stream.position()
    response = httpx.post(f"{gateway}/v1/admin/responders", json=profile(), headers=ADMIN)
    assert response.status_code == 202, response.text
    accepted = response.json()
    (event,) = await stream.since(before)
    assert event.type == accepted["event_type"] == "responder.registered"
    assert str(event.id) == accepted["event_id"] and str(event.data.responder_id) == accepted["id"]
    assert event.data.phone == "+13035550123" and event.data.skills == ["naloxone_carrier", "licensed_clinician"]
    assert event.occurred_at == NOW and event.producer == "intake_gateway"


@pytest.mark.parametrize("phone", ["+15550100001", "555-0123", "call me", "+1 303 555 01234"])
async def test_an_invalid_phone_is_a_422_naming_the_field_and_records_nothing(gateway, stream, phone) -> None:
    before = await stream.position()
    response = httpx.post(f"{gateway}/v1/admin/responders", json=profile(phone=phone), headers=ADMIN)
    assert_problem(response, 422, "body.phone")
    assert await stream.position() == before


def test_phones_without_a_country_code_are_read_in_the_configured_region() -> None:
    assert normalise_phone("(303) 555-0123", "US") == "+13035550123"
    assert normalise_phone("07911 123456", "GB") == "+447911123456"
    assert normalise_phone("+44 7911 123456", "US") == "+447911123456"


async def test_a_retry_with_the_same_idempotency_key_is_one_event(gateway, stream) -> None:
    before = await stream.position()
    headers = ADMIN | {"Idempotency-Key": f"register-{uuid4()}"}
    first, retry = (httpx.post(f"{gateway}/v1/admin/responders", json=profile(), headers=headers) for _ in range(2))
    assert first.json() == retry.json()
    assert [e.type for e in await stream.since(before)] == ["responder.registered"]


@pytest.fixture
def forgetful_gateway(nats_server, credentials):
    """A gateway whose roster commands append through ``ForgetfulStream``, with a clock the test moves."""
    clock = ManualClock(NOW)
    settings = GatewaySettings(nats_url=nats_server.url, credentials_file=credentials, phone_default_region="US")
    app = build(settings, clock)
    with serving(app) as url:
        commands = app.state.roster_commands
        commands.publish = ForgetfulStream(commands.publish)
        yield url, commands.publish, clock


def availability(state: str) -> tuple[str, str, dict, dict]:
    return "POST", f"/v1/responders/{RESPONDER_ID}/availability", {"json": {"availability": state}}, SELF


@pytest.mark.parametrize(
    "command",
    [
        ("POST", "/v1/admin/responders", {"json": profile()}, ADMIN),
        availability("off"),
        ("DELETE", f"/v1/admin/responders/{RESPONDER_ID}", {"params": {"reason": "left"}}, ADMIN),
        ("DELETE", f"/v1/admin/rotations/{uuid4()}", {}, ADMIN),
    ],
    ids=["register", "availability", "retire", "remove-rotation"],
)
async def test_a_command_retried_with_its_key_after_the_dedup_window_is_answered_again_not_recorded_again(
    forgetful_gateway, stream, command
) -> None:
    url, publish, clock = forgetful_gateway
    method, path, request, token = command
    headers = token | {"Idempotency-Key": f"late-{uuid4()}"}
    before = await stream.position()
    first = httpx.request(method, f"{url}{path}", headers=headers, **request)
    assert first.status_code == 202, first.text
    clock.advance(timedelta(hours=6))  # far beyond the stream's 300 s window (and the key's claim)
    publish.forget = True  # a re-publish now would be a new message on the stream
    for _ in range(2):
        retry = httpx.request(method, f"{url}{path}", headers=headers, **request)
        assert retry.status_code == 202 and retry.json() == first.json()
        assert retry.headers["Idempotent-Replayed"] == "true"
    assert publish.calls == 1  # the retries were answered from the stored answer, without appending
    assert [str(e.id) for e in await stream.since(before)] == [first.json()["event_id"]]


async def test_a_key_reused_for_another_command_is_refused_and_records_nothing(forgetful_gateway, stream) -> None:
    url, publish, _ = forgetful_gateway
    key = {"Idempotency-Key": f"reused-{uuid4()}"}
    _, path, off, _ = availability("off")
    assert httpx.post(f"{url}{path}", headers=SELF | key, **off).status_code == 202
    before = await stream.position()
    reused = httpx.post(f"{url}{path}", headers=SELF | key, json={"availability": "available"})
    assert reused.status_code == 422 and "Idempotency-Key" in reused.json()["detail"]
    assert await stream.position() == before


async def test_a_command_that_failed_is_recorded_once_when_retried_with_its_key(forgetful_gateway, stream) -> None:
    url, publish, _ = forgetful_gateway
    headers = ADMIN | {"Idempotency-Key": f"failed-{uuid4()}"}
    before = await stream.position()
    publish.fail_calls = {publish.calls + 1}  # NATS down: nothing recorded, 503
    failed = httpx.post(f"{url}/v1/admin/responders", json=profile(), headers=headers)
    assert failed.status_code == 503 and failed.json()["recorded"] is False
    retried = httpx.post(f"{url}/v1/admin/responders", json=profile(), headers=headers)
    assert retried.status_code == 202 and "Idempotent-Replayed" not in retried.headers
    assert [str(e.id) for e in await stream.since(before)] == [retried.json()["event_id"]]


async def test_without_a_key_each_request_is_its_own_event(gateway, stream) -> None:
    # "available", "off", "available" is three facts, even within the stream's duplicate window
    before = await stream.position()
    url = f"{gateway}/v1/responders/{RESPONDER_ID}/availability"
    for state in ("available", "off", "available"):
        assert httpx.post(url, json={"availability": state}, headers=SELF).status_code == 202
    events = await stream.since(before)
    assert [e.data.availability for e in events] == ["available", "off", "available"]


async def test_update_and_retire_name_the_responder_in_the_path(gateway, stream) -> None:
    responder = uuid4()
    before = await stream.position()
    updated = httpx.put(
        f"{gateway}/v1/admin/responders/{responder}", json=profile(name="Renamed", role="nurse"), headers=ADMIN
    )
    retired = httpx.delete(f"{gateway}/v1/admin/responders/{responder}", params={"reason": "left"}, headers=ADMIN)
    assert updated.status_code == retired.status_code == 202
    update, retire = await stream.since(before)
    assert (update.type, update.data.responder_id, update.data.name, update.data.role) == (
        "responder.updated",
        responder,
        "Renamed",
        "nurse",
    )
    assert (retire.type, retire.data.responder_id, retire.data.reason) == ("responder.retired", responder, "left")
    no_reason = httpx.delete(f"{gateway}/v1/admin/responders/{responder}", headers=ADMIN)
    assert_problem(no_reason, 422, "query.reason")


async def test_a_responder_reports_their_location(gateway, stream) -> None:
    before = await stream.position()
    url = f"{gateway}/v1/responders/{RESPONDER_ID}/location"
    response = httpx.post(url, json={"lat": 39.75, "lon": -104.98, "label": "clinic"}, headers=SELF)
    assert response.status_code == 202
    (event,) = await stream.since(before)
    assert event.type == "responder.location_reported"
    assert (event.data.location.lat, event.data.source, event.data.reported_at) == (39.75, "api", NOW)
    future = (NOW + timedelta(hours=1)).isoformat()
    assert_problem(
        httpx.post(url, json={"lat": 1, "lon": 1, "reported_at": future}, headers=SELF), 422, "body.reported_at"
    )
    naive = "2026-10-20T11:00:00"
    assert_problem(
        httpx.post(url, json={"lat": 1, "lon": 1, "reported_at": naive}, headers=SELF), 422, "body.reported_at"
    )
    assert await stream.position() == before + 1


# -- schedules ----------------------------------------------------------------------------------------------


def rotation(**changes) -> dict:
    body = {
        "name": "Denver nights",
        "zones": ["denver-central"],
        "time_zone": "America/Denver",
        "handoff_time": "08:00",
        "shift": "weekly",
        "handoff_weekday": "monday",
        "start_date": "2026-11-02",
        "participants": [str(RESPONDER_ID), str(uuid4())],
    }
    return body | changes


async def test_rotations_are_defined_and_removed(gateway, stream) -> None:
    before = await stream.position()
    defined = httpx.post(f"{gateway}/v1/admin/rotations", json=rotation(), headers=ADMIN)
    assert defined.status_code == 202
    rotation_id = defined.json()["id"]
    assert httpx.delete(f"{gateway}/v1/admin/rotations/{rotation_id}", headers=ADMIN).status_code == 202
    define, remove = await stream.since(before)
    assert define.type == "schedule.rotation_defined" and str(define.data.rotation_id) == rotation_id
    assert (define.data.time_zone, define.data.handoff_time, define.data.shift) == ("America/Denver", "08:00", "weekly")
    assert remove.type == "schedule.rotation_removed" and str(remove.data.rotation_id) == rotation_id


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"time_zone": "Mountain Time"}, "body.time_zone"),
        ({"handoff_time": "8am"}, "body.handoff_time"),
        ({"participants": []}, "body.participants"),
        ({"zones": []}, "body.zones"),
    ],
)
async def test_a_bad_rotation_is_a_422_naming_the_field(gateway, stream, change, field) -> None:
    before = await stream.position()
    assert_problem(httpx.post(f"{gateway}/v1/admin/rotations", json=rotation(**change), headers=ADMIN), 422, field)
    assert await stream.position() == before


async def test_overrides_are_added_in_utc_and_removed(gateway, stream) -> None:
    before = await stream.position()
    body = {
        "responder_id": str(RESPONDER_ID),
        "zones": ["denver-central"],
        "starts_at": "2026-10-24T20:00:00-06:00",
        "ends_at": "2026-10-25T08:00:00-06:00",
    }
    added = httpx.post(f"{gateway}/v1/admin/overrides", json=body, headers=ADMIN)
    assert added.status_code == 202
    override_id = added.json()["id"]
    assert httpx.delete(f"{gateway}/v1/admin/overrides/{override_id}", headers=ADMIN).status_code == 202
    add, remove = await stream.since(before)
    assert add.type == "schedule.override_added"
    assert (add.data.starts_at, add.data.ends_at) == (
        datetime(2026, 10, 25, 2, tzinfo=UTC),
        datetime(2026, 10, 25, 14, tzinfo=UTC),
    )
    assert remove.type == "schedule.override_removed" and str(remove.data.override_id) == override_id
    backwards = body | {"ends_at": "2026-10-24T19:00:00-06:00"}
    response = httpx.post(f"{gateway}/v1/admin/overrides", json=backwards, headers=ADMIN)
    assert response.status_code == 422 and "ends_at must be after starts_at" in response.text


# -- calendars ----------------------------------------------------------------------------------------------

WEEKLY = f"""BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//tests//EN\r
BEGIN:VEVENT\r
UID:nights@tests\r
DTSTART;TZID=America/Denver:20261026T200000\r
DTEND;TZID=America/Denver:20261027T080000\r
RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=3\r
ATTENDEE;CN=Test Clinician:urn:uuid:{RESPONDER_ID}\r
END:VEVENT\r
END:VCALENDAR\r
"""


async def test_a_text_calendar_is_imported_as_concrete_utc_shifts(gateway, stream) -> None:
    before = await stream.position()
    response = httpx.post(
        f"{gateway}/v1/admin/calendars",
        content=WEEKLY,
        params={"name": "Nights", "zones": "denver-central, denver-east"},
        headers=ADMIN | {"content-type": "text/calendar; charset=utf-8"},
    )
    assert response.status_code == 202, response.text
    assert response.json()["shifts"] == 3
    (event,) = await stream.since(before)
    assert event.type == "schedule.calendar_imported" and event.data.zones == ["denver-central", "denver-east"]
    assert [s.starts_at.hour for s in event.data.shifts] == [2, 3, 3]  # 20:00 local on both sides of the DST change
    assert {s.responder_id for s in event.data.shifts} == {RESPONDER_ID}


async def test_a_json_import_maps_attendee_emails_phones_and_summary_names(gateway, stream) -> None:
    by_email, by_phone, by_name = uuid4(), uuid4(), uuid4()
    ics = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//tests//EN\r\nX-WR-TIMEZONE:America/Denver\r\n"
        "BEGIN:VEVENT\r\nUID:a@tests\r\nDTSTART:20261101T150000Z\r\nDURATION:PT8H\r\n"
        "ATTENDEE:mailto:Ana@Example.ORG\r\nATTENDEE:tel:+1-303-555-0199\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:b@tests\r\nSUMMARY:  Bo   Chen \r\nDTSTART;VALUE=DATE:20261102\r\nEND:VEVENT\r\n"
        "END:VCALENDAR\r\n"
    )
    body = {
        "name": "Weekend cover",
        "zones": ["denver-central"],
        "ics": ics,
        "responders": {"ana@example.org": str(by_email), "(303) 555-0199": str(by_phone), "bo chen": str(by_name)},
    }
    before = await stream.position()
    response = httpx.post(f"{gateway}/v1/admin/calendars", json=body, headers=ADMIN)
    assert response.status_code == 202, response.text
    (event,) = await stream.since(before)
    owners = [(s.responder_id, s.starts_at) for s in event.data.shifts]
    assert owners == [
        (by_email, datetime(2026, 11, 1, 15, tzinfo=UTC)),
        (by_phone, datetime(2026, 11, 1, 15, tzinfo=UTC)),
        (by_name, datetime(2026, 11, 2, 7, tzinfo=UTC)),  # all-day in the calendar's zone
    ]
    again = httpx.post(f"{gateway}/v1/admin/calendars", json=body | {"name": " weekend COVER"}, headers=ADMIN)
    assert again.json()["id"] == response.json()["id"]  # same calendar by name: a re-import replaces it


@pytest.mark.parametrize(
    ("body", "field", "detail"),
    [
        ({"ics": "not a calendar"}, "body.ics", "not an iCalendar file"),
        ({"ics": WEEKLY.replace("urn:uuid:", "mailto:nobody@")}, "body.responders", "nights@tests"),
        ({"ics": WEEKLY, "time_zone": "Nowhere/Land"}, "body.time_zone", ""),
        ({"ics": WEEKLY, "zones": []}, "body.zones", ""),
    ],
)
async def test_a_bad_calendar_is_a_422_problem_and_records_nothing(gateway, stream, body, field, detail) -> None:
    before = await stream.position()
    request = {"name": "Bad", "zones": ["denver-central"]} | body
    response = httpx.post(f"{gateway}/v1/admin/calendars", json=request, headers=ADMIN)
    assert_problem(response, 422, field)
    assert detail in response.text
    assert await stream.position() == before


async def test_a_text_calendar_needs_its_name_and_zones_and_other_media_types_are_refused(gateway) -> None:
    text = ADMIN | {"content-type": "text/calendar"}
    assert_problem(httpx.post(f"{gateway}/v1/admin/calendars", content=WEEKLY, headers=text), 422, "query.name")
    assert_problem(
        httpx.post(f"{gateway}/v1/admin/calendars", content="", headers=text, params={"name": "x", "zones": "z"}),
        422,
        "body",
    )
    other = httpx.post(f"{gateway}/v1/admin/calendars", content=b"x", headers=ADMIN | {"content-type": "text/plain"})
    assert other.status_code == 415 and other.headers["content-type"] == "application/problem+json"
