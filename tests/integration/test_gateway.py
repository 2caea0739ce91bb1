"""The gateway over real HTTP and a real nats-server: clear errors that change nothing, signed webhooks only."""

from __future__ import annotations

import json

import httpx
import nats
import pytest
from twilio.request_validator import RequestValidator

from services.contract.events import decode_event, derived_id
from services.intake_gateway.bootstrap import build
from services.intake_gateway.settings import GatewaySettings
from services.runtime.credentials import AccessRole, issue_credential
from services.runtime.stream import STREAM_NAME
from tests.factories import fake_phone
from tests.support.asgi_server import serving

TOKEN = "test-auth-token"
AUTH = {"Authorization": "Bearer test-intake-token"}
REPORT = {
    "kind": "overdose",
    "location": {"lat": 39.7431, "lon": -104.9876},
    "reporter": {"channel": "staff"},
    "details": {"ems_called": True},
}


@pytest.fixture
def gateway(nats_server, tmp_path):
    credentials = tmp_path / "credentials.json"
    issue_credential(credentials, "test-intake", AccessRole.INTAKE, token=AUTH["Authorization"].split()[1])
    settings = GatewaySettings(
        credentials_file=credentials,
        nats_url=nats_server.url,
        twilio_auth_token=TOKEN,
        gateway_public_url="https://dispatch.example.org",
    )
    with serving(build(settings)) as url:
        yield url


async def last_sequence(nats_server) -> int:
    connection = await nats.connect(nats_server.url)
    try:
        return (await connection.jetstream().stream_info(STREAM_NAME)).state.last_seq
    finally:
        await connection.close()


async def test_a_report_is_on_the_stream_before_the_201(gateway, nats_server) -> None:
    response = httpx.post(f"{gateway}/v1/incidents", json=REPORT, headers=AUTH)
    assert response.status_code == 201
    body = response.json()
    assert body["priority"] == "P1" and not any("911" in g for g in body["guidance"])
    connection = await nats.connect(nats_server.url)
    js = connection.jetstream()
    seq = (await js.stream_info(STREAM_NAME)).state.last_seq
    event = decode_event((await js.get_msg(STREAM_NAME, seq)).data)
    await connection.close()
    assert event.type == "incident.reported" and str(event.data.incident_id) == body["incident_id"]


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        (lambda r: r["location"].update(lat=95), 422, "body.location.lat"),
        (lambda r: r.update(kind="poisoning"), 422, "body.kind"),
        (lambda r: r.update(kind="withdrawal"), 422, "body.details.substance"),  # overdose details do not fit
        (lambda r: r["details"].update(naloxone_doses_given=-1), 422, "body.details.naloxone_doses_given"),
        (lambda r: r.update(extra="x"), 422, "body.extra"),
    ],
)
async def test_bad_reports_get_a_problem_naming_the_field_and_record_nothing(
    gateway, nats_server, change, status, field
) -> None:
    before = await last_sequence(nats_server)
    report = json.loads(json.dumps(REPORT))
    change(report)
    response = httpx.post(f"{gateway}/v1/incidents", json=report, headers=AUTH)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert field in [e["field"] for e in response.json()["errors"]]
    assert await last_sequence(nats_server) == before


async def test_oversized_and_non_json_bodies_are_refused(gateway) -> None:
    big = httpx.post(
        f"{gateway}/v1/incidents", content=b"x" * 70_000, headers={**AUTH, "content-type": "application/json"}
    )
    assert big.status_code == 413 and big.json()["status"] == 413
    junk = httpx.post(
        f"{gateway}/v1/incidents", content=b"{not json", headers={**AUTH, "content-type": "application/json"}
    )
    assert junk.status_code == 422 and junk.headers["content-type"] == "application/problem+json"


def signed(params: dict[str, str], url: str = "https://dispatch.example.org/twilio/sms", token: str = TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, params)


def inbound(body: str = "Y 4821") -> dict[str, str]:
    return {"MessageSid": "SM" + "ab" * 16, "From": fake_phone(), "To": "+15005550006", "Body": body}


async def test_signed_inbound_sms_is_recorded_once_per_message_sid(gateway, nats_server) -> None:
    params = inbound()
    before = await last_sequence(nats_server)
    for _ in range(2):  # Twilio retries the same webhook
        response = httpx.post(f"{gateway}/twilio/sms", data=params, headers={"X-Twilio-Signature": signed(params)})
        assert response.status_code == 200 and response.text == "<Response/>"
    connection = await nats.connect(nats_server.url)
    js = connection.jetstream()
    seq = (await js.stream_info(STREAM_NAME)).state.last_seq
    events = [decode_event((await js.get_msg(STREAM_NAME, s)).data) for s in range(before + 1, seq + 1)]
    await connection.close()
    assert [e.type for e in events] == ["sms.received"]
    assert events[0].id == derived_id("sms.received", params["MessageSid"])
    assert events[0].data.from_number == params["From"]


@pytest.mark.parametrize("tamper", ["wrong token", "changed parameter", "wrong url", "missing"])
async def test_unsigned_or_tampered_webhooks_are_forbidden_and_record_nothing(gateway, nats_server, tamper) -> None:
    params = inbound()
    signature = {
        "wrong token": signed(params, token="other-token"),
        "changed parameter": signed({**params, "Body": "N 4821"}),
        "wrong url": signed(params, url="https://elsewhere.example.org/twilio/sms"),
        "missing": "",
    }[tamper]
    before = await last_sequence(nats_server)
    response = httpx.post(f"{gateway}/twilio/sms", data=params, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 403 and response.headers["content-type"] == "application/problem+json"
    assert await last_sequence(nats_server) == before


async def test_a_signed_webhook_with_unusable_fields_is_a_422_not_a_500(gateway, nats_server) -> None:
    params = {**inbound(), "From": "ACME-ALERTS"}
    before = await last_sequence(nats_server)
    response = httpx.post(f"{gateway}/twilio/sms", data=params, headers={"X-Twilio-Signature": signed(params)})
    assert response.status_code == 422 and "From" in response.json()["detail"]
    assert await last_sequence(nats_server) == before
