"""A ``queued`` status callback is answered (Twilio must not retry it) but put on no stream: no service acts on it.
The statuses after it are recorded as before. Real HTTP into the gateway, a real nats-server."""

from __future__ import annotations

from uuid import uuid4

import httpx
import nats
import pytest
from twilio.request_validator import RequestValidator

from services.contract.events import decode_event, derived_id
from services.intake_gateway.bootstrap import build
from services.intake_gateway.settings import GatewaySettings
from services.runtime.stream import STREAM_NAME
from tests.factories import fake_phone
from tests.support.asgi_server import serving

TOKEN = "queued-test-auth-token"
PUBLIC = "https://dispatch.example.org"


@pytest.fixture
def gateway(nats_server, tmp_path):
    settings = GatewaySettings(
        nats_url=nats_server.url,
        twilio_auth_token=TOKEN,
        gateway_public_url=PUBLIC,
        credentials_file=tmp_path / "none.json",
    )
    with serving(build(settings)) as url:
        yield url


def status_callback(gateway: str, params: dict[str, str]) -> httpx.Response:
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC + "/twilio/status", params)
    return httpx.post(gateway + "/twilio/status", data=params, headers={"X-Twilio-Signature": signature})


async def test_queued_is_answered_and_not_recorded_and_delivered_still_is(gateway, nats_server) -> None:
    connection = await nats.connect(nats_server.url)
    js = connection.jetstream()
    try:
        sid, to = f"SM{uuid4().hex}", fake_phone()
        queued = {"MessageSid": sid, "MessageStatus": "queued", "To": to}
        before = (await js.stream_info(STREAM_NAME)).state.last_seq
        for _ in range(2):  # and when Twilio sends it again
            response = status_callback(gateway, queued)
            assert response.status_code == 200 and response.text == "<Response/>"
        assert (await js.stream_info(STREAM_NAME)).state.last_seq == before

        for value in ("sent", "delivered"):
            assert status_callback(gateway, {**queued, "MessageStatus": value}).status_code == 200
        last = (await js.stream_info(STREAM_NAME)).state.last_seq
        events = [decode_event((await js.get_msg(STREAM_NAME, s)).data) for s in range(before + 1, last + 1)]
    finally:
        await connection.close()
    mine = [e for e in events if getattr(e.data, "message_sid", None) == sid]
    assert [e.type for e in mine] == ["sms.status_updated", "sms.status_updated"]
    assert [e.data.status for e in mine] == ["sent", "delivered"]
    assert mine[1].id == derived_id("sms.status_updated", sid, "delivered") and mine[1].data.to == to
