"""The treatment-program directory's admin API over real HTTP and a real nats-server: each command is a program
event; a CSV import is all or nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import httpx
import nats
import pytest

from services.intake_gateway.bootstrap import build
from services.intake_gateway.settings import GatewaySettings
from services.runtime.clock import ManualClock
from services.runtime.credentials import AccessRole, issue_credential
from tests.integration.test_admin_api import Stream, assert_problem
from tests.support.asgi_server import serving

NOW = datetime(2026, 12, 4, 14, 20, tzinfo=UTC)
ADMIN = {"Authorization": "Bearer program-api-test-admin"}
DIRECTOR = {"Authorization": "Bearer program-api-test-director"}
SAMPLE = Path(__file__).parents[2] / "deploy" / "demo" / "programs.csv"
CSV = {"Content-Type": "text/csv"}


@pytest.fixture(scope="module")
def gateway(nats_server, tmp_path_factory):
    credentials = tmp_path_factory.mktemp("programs") / "credentials.json"
    issue_credential(credentials, "test-admin", AccessRole.ADMIN, token=ADMIN["Authorization"].split()[1])
    issue_credential(credentials, "test-director", AccessRole.DIRECTOR, token=DIRECTOR["Authorization"].split()[1])
    settings = GatewaySettings(nats_url=nats_server.url, credentials_file=credentials, phone_default_region="US")
    with serving(build(settings, ManualClock(NOW))) as url:
        yield url


@pytest.fixture
async def stream(nats_server):
    connection = await nats.connect(nats_server.url)
    yield Stream(connection)
    await connection.close()


def program(**changes) -> dict:
    body = {
        "name": "Test Recovery Clinic",
        "address": "777 Bannock St, Denver, CO 80204",
        "location": {"lat": 39.7279, "lon": -104.9905},
        "zone": "central",
        "levels_of_care": ["2.1", "1-WM"],
        "medications": ["buprenorphine"],
        "payers": ["medicaid", "sliding_fee"],
        "populations": ["adults", "women_with_children"],
        "languages": ["en", "es"],
        "intake_phone": "(303) 555-0141",
        "hours": [{"weekday": "monday", "opens": "08:00", "closes": "17:00"}],
    }
    return body | changes


async def test_registering_a_program_appends_it_with_the_intake_phone_in_e164(gateway, stream) -> None:
    before = await stream.position()
    response = httpx.post(f"{gateway}/v1/admin/programs", json=program(), headers=ADMIN)
    assert response.status_code == 202, response.text
    (event,) = await stream.since(before)
    assert event.type == response.json()["event_type"] == "program.registered"
    assert str(event.data.program_id) == response.json()["id"]
    assert event.data.intake_phone == "+13035550141" and event.data.levels_of_care == ["2.1", "1-WM"]
    assert event.data.source == "api" and event.occurred_at == NOW


async def test_update_retire_and_availability_are_their_own_events(gateway, stream) -> None:
    program_id = uuid4()
    before = await stream.position()
    updated = httpx.put(f"{gateway}/v1/admin/programs/{program_id}", json=program(name="Renamed"), headers=ADMIN)
    report = {"beds_open": 3, "as_of": (NOW - timedelta(minutes=10)).isoformat()}
    reported = httpx.post(f"{gateway}/v1/programs/{program_id}/availability", json=report, headers=ADMIN)
    retired = httpx.delete(f"{gateway}/v1/admin/programs/{program_id}", params={"reason": "closed"}, headers=ADMIN)
    assert [r.status_code for r in (updated, reported, retired)] == [202, 202, 202]
    events = await stream.since(before)
    assert [e.type for e in events] == ["program.updated", "program.availability_reported", "program.retired"]
    availability = events[1].data
    assert availability.beds_open == 3 and availability.channel == "api" and availability.reported_by == "test-admin"
    assert availability.as_of == NOW - timedelta(minutes=10)
    assert events[2].data.reason == "closed"


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("POST", "/v1/admin/programs", {"json": program()}),
        ("PUT", f"/v1/admin/programs/{uuid4()}", {"json": program()}),
        ("DELETE", f"/v1/admin/programs/{uuid4()}", {"params": {"reason": "x"}}),
        ("POST", f"/v1/programs/{uuid4()}/availability", {"json": {"beds_open": 1}}),
        ("POST", "/v1/admin/programs/import", {"content": SAMPLE.read_bytes(), "headers": CSV}),
    ],
)
async def test_only_an_admin_may_change_the_directory(gateway, stream, method, path, kwargs) -> None:
    before = await stream.position()
    headers = kwargs.pop("headers", {})
    anonymous = httpx.request(method, f"{gateway}{path}", headers=headers, **kwargs)
    director = httpx.request(method, f"{gateway}{path}", headers=headers | DIRECTOR, **kwargs)
    assert (anonymous.status_code, director.status_code) == (401, 403)
    assert not [e.type for e in await stream.since(before) if e.type.startswith("program.")]  # refusals are audited


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (program(intake_phone="call us"), "body.intake_phone"),
        (program(levels_of_care=[]), "body.levels_of_care"),
        (program(levels_of_care=["9"]), "body.levels_of_care.0"),
        (program(medications=["heroin"]), "body.medications.0"),
        (program(languages=["klingon"]), "body.languages.0"),
        (program(location={"lat": "39.7", "lon": -104.9}), "body.location.lat"),
        (program(hours=[{"weekday": "monday", "opens": "17:00", "closes": "08:00"}]), "body.hours.0"),
    ],
)
async def test_a_bad_program_is_a_422_naming_the_field_and_records_nothing(gateway, stream, body, field) -> None:
    before = await stream.position()
    response = httpx.post(f"{gateway}/v1/admin/programs", json=body, headers=ADMIN)
    assert_problem(response, 422, field)
    assert await stream.position() == before


@pytest.mark.parametrize(
    "report",
    [{}, {"beds_open": -1}, {"beds_open": 2, "as_of": (NOW + timedelta(hours=1)).isoformat()}, {"beds_open": "3"}],
)
async def test_a_bad_availability_report_is_a_422_and_records_nothing(gateway, stream, report) -> None:
    before = await stream.position()
    response = httpx.post(f"{gateway}/v1/programs/{uuid4()}/availability", json=report, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert await stream.position() == before


async def test_a_retry_with_the_same_idempotency_key_is_one_event(gateway, stream) -> None:
    before = await stream.position()
    headers = ADMIN | {"Idempotency-Key": f"program-{uuid4()}"}
    first, retry = (httpx.post(f"{gateway}/v1/admin/programs", json=program(), headers=headers) for _ in range(2))
    assert first.json() == retry.json() and retry.headers["Idempotent-Replayed"] == "true"
    assert [e.type for e in await stream.since(before)] == ["program.registered"]


async def test_importing_the_sample_csv_registers_every_row_and_reports_unknown_codes(gateway, stream) -> None:
    before = await stream.position()
    headers = ADMIN | CSV | {"Idempotency-Key": f"import-{uuid4()}"}
    first = httpx.post(f"{gateway}/v1/admin/programs/import", content=SAMPLE.read_bytes(), headers=headers)
    retry = httpx.post(f"{gateway}/v1/admin/programs/import", content=SAMPLE.read_bytes(), headers=headers)
    assert first.status_code == 202, first.text
    answer = first.json()
    assert retry.json() == answer and answer["ignored_codes"] == {"DV": [8]}
    events = await stream.since(before)
    assert len(events) == answer["imported"] == 7  # the retry appended nothing
    assert {e.type for e in events} == {"program.registered"} and {e.data.source for e in events} == {"csv"}
    assert [str(e.data.program_id) for e in events] == answer["program_ids"]
    assert events[0].data.intake_phone == "+13035550141" and events[0].data.zone == "central"


async def test_importing_the_same_file_again_names_the_same_programs(gateway) -> None:
    answers = [
        httpx.post(f"{gateway}/v1/admin/programs/import", content=SAMPLE.read_bytes(), headers=ADMIN | CSV).json()
        for _ in range(2)
    ]
    assert answers[0]["program_ids"] == answers[1]["program_ids"]


async def test_a_bad_row_refuses_the_whole_file_with_its_line_number(gateway, stream) -> None:
    lines = SAMPLE.read_text().splitlines()
    lines[4] = lines[4].replace("(303) 555-0144", "not a phone")
    before = await stream.position()
    response = httpx.post(f"{gateway}/v1/admin/programs/import", content="\n".join(lines), headers=ADMIN | CSV)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["line"] == 5 and "line 5" in problem["errors"][0]["field"]
    assert "intake phone" in problem["errors"][0]["message"]
    assert await stream.position() == before


async def test_a_csv_import_must_be_text_csv(gateway, stream) -> None:
    before = await stream.position()
    response = httpx.post(f"{gateway}/v1/admin/programs/import", json={"csv": "x"}, headers=ADMIN)
    assert response.status_code == 415 and response.headers["content-type"] == "application/problem+json"
    assert await stream.position() == before
