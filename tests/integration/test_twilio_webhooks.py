"""Twilio webhooks over real HTTP and a real nats-server: signatures, token rotation, keywords, status callbacks."""

from __future__ import annotations

from uuid import uuid4

import httpx
import nats
import pytest
from twilio.request_validator import RequestValidator

from services.contract.events import Envelope, decode_event, derived_id
from services.intake_gateway.bootstrap import build
from services.intake_gateway.settings import GatewaySettings
from services.runtime.stream import STREAM_NAME, NotRecorded
from tests.factories import fake_phone
from tests.support.asgi_server import serving

PRIMARY, SECONDARY = "primary-auth-token", "secondary-auth-token"
PUBLIC = "https://dispatch.example.org"
ORG = "+15005550006"


@pytest.fixture(scope="module")
def gateway(nats_server, tmp_path_factory):
    settings = GatewaySettings(
        nats_url=nats_server.url,
        twilio_auth_token=PRIMARY,
        twilio_auth_token_secondary=SECONDARY,
        gateway_public_url=PUBLIC + "/",  # a trailing slash in the setting must not break signatures
        credentials_file=tmp_path_factory.mktemp("twilio") / "none.json",
    )
    with serving(build(settings)) as url:
        yield url


def new_sid() -> str:
    return f"SM{uuid4().hex}"


def signed_post(gateway: str, path: str, params: dict[str, str], *, token: str = PRIMARY, url: str | None = None):
    signature = RequestValidator(token).compute_signature(url or PUBLIC + path, params)
    return httpx.post(gateway + path, data=params, headers={"X-Twilio-Signature": signature})


def inbound(body: str, sid: str | None = None, **extra: str) -> dict[str, str]:
    return {"MessageSid": sid or new_sid(), "From": fake_phone(), "To": ORG, "Body": body, **extra}


class Stream:
    """Reads what the tests appended, from a recorded position (the stream is shared by every test)."""

    async def __aenter__(self) -> Stream:
        self.connection = await nats.connect(self.url)
        self.js = self.connection.jetstream()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.connection.close()

    def __init__(self, url: str) -> None:
        self.url = url

    async def position(self) -> int:
        return (await self.js.stream_info(STREAM_NAME)).state.last_seq

    async def since(self, position: int, sid: str) -> list[Envelope]:
        last = await self.position()
        events = [decode_event((await self.js.get_msg(STREAM_NAME, s)).data) for s in range(position + 1, last + 1)]
        return [e for e in events if getattr(e.data, "message_sid", None) == sid]


@pytest.fixture
async def stream(nats_server):
    async with Stream(nats_server.url) as reader:
        yield reader


async def test_an_inbound_sms_is_recorded_once_and_answered_with_empty_twiml(gateway, stream) -> None:
    params = inbound("Y 4821")
    before = await stream.position()
    for _ in range(2):  # Twilio retries a webhook it thinks failed
        response = signed_post(gateway, "/twilio/sms", params)
        assert response.status_code == 200
        assert response.text == "<Response/>" and response.headers["content-type"].startswith("application/xml")
    (event,) = await stream.since(before, params["MessageSid"])
    assert event.type == "sms.received" and event.id == derived_id("sms.received", params["MessageSid"])
    assert (event.data.from_number, event.data.to_number, event.data.body) == (params["From"], ORG, "Y 4821")


@pytest.mark.parametrize("path", ["/twilio/sms", "/twilio/status"])
@pytest.mark.parametrize(
    "tamper", ["wrong signature", "unknown token", "changed parameter", "added parameter", "wrong url", "missing"]
)
async def test_a_request_not_signed_for_exactly_this_url_and_these_parameters_is_403(
    gateway, stream, path, tamper
) -> None:
    params = inbound("STOP") if path == "/twilio/sms" else {"MessageSid": new_sid(), "MessageStatus": "delivered"}
    validator = RequestValidator(PRIMARY)
    signature = {
        "wrong signature": "c2lnbmF0dXJl",
        "unknown token": RequestValidator("some-other-token").compute_signature(PUBLIC + path, params),
        "changed parameter": validator.compute_signature(PUBLIC + path, {**params, "MessageSid": new_sid()}),
        "added parameter": validator.compute_signature(PUBLIC + path, {**params, "Extra": "1"}),
        "wrong url": validator.compute_signature("https://elsewhere.example.org" + path, params),
        "missing": None,
    }[tamper]
    before = await stream.position()
    headers = {"X-Twilio-Signature": signature} if signature is not None else {}
    response = httpx.post(gateway + path, data=params, headers=headers)
    assert response.status_code == 403 and response.headers["content-type"] == "application/problem+json"
    assert await stream.position() == before


async def test_the_query_string_is_part_of_the_signed_url(gateway, stream) -> None:
    params = {"MessageSid": new_sid(), "MessageStatus": "sent"}
    path = "/twilio/status?attempt=2"
    assert signed_post(gateway, path, params, url=PUBLIC + "/twilio/status").status_code == 403
    assert signed_post(gateway, path, params).status_code == 200


async def test_during_a_token_rotation_the_secondary_token_is_accepted_too(gateway, stream) -> None:
    params = inbound("N 4821")
    before = await stream.position()
    response = signed_post(gateway, "/twilio/sms", params, token=SECONDARY)
    assert response.status_code == 200
    assert [e.type for e in await stream.since(before, params["MessageSid"])] == ["sms.received"]


@pytest.mark.parametrize(
    ("body", "opted_out", "keyword"),
    [
        ("STOP", True, "STOP"),
        ("  stop \n", True, "STOP"),
        ("StopAll", True, "STOPALL"),
        ("UNSUBSCRIBE", True, "UNSUBSCRIBE"),
        ("cancel", True, "CANCEL"),
        ("END", True, "END"),
        ("quit", True, "QUIT"),
        ("START", False, "START"),
        ("unstop", False, "UNSTOP"),
    ],
)
async def test_stop_and_start_keywords_also_record_an_opt_out_change(gateway, stream, body, opted_out, keyword) -> None:
    params = inbound(body)
    before = await stream.position()
    for _ in range(2):
        assert signed_post(gateway, "/twilio/sms", params).text == "<Response/>"
    received, changed = await stream.since(before, params["MessageSid"])
    assert received.type == "sms.received" and received.data.body == body
    assert changed.type == "sms.opt_out_changed" and changed.causation_id == received.id
    assert changed.id == derived_id("sms.opt_out_changed", params["MessageSid"])
    assert (changed.data.phone, changed.data.opted_out, changed.data.keyword) == (params["From"], opted_out, keyword)


@pytest.mark.parametrize("body", ["HELP", "info", "YES", "Y 4821", "STOP PLEASE", "please stop"])
async def test_help_yes_and_other_messages_change_no_opt_out_state(gateway, stream, body) -> None:
    # YES is Twilio's opt-in word too, but it is also how a responder accepts a page: see sms_keywords.py
    params = inbound(body)
    before = await stream.position()
    assert signed_post(gateway, "/twilio/sms", params).status_code == 200
    assert [e.type for e in await stream.since(before, params["MessageSid"])] == ["sms.received"]


async def test_twilios_opt_out_type_is_followed_for_custom_keywords(gateway, stream) -> None:
    params = inbound("ALTO", OptOutType="STOP")  # an operator-added Spanish opt-out keyword
    before = await stream.position()
    assert signed_post(gateway, "/twilio/sms", params).status_code == 200
    _, changed = await stream.since(before, params["MessageSid"])
    assert changed.data.opted_out is True and changed.data.keyword == "ALTO"


async def test_status_callbacks_are_recorded_once_per_message_and_status(gateway, stream) -> None:
    sid, to = new_sid(), fake_phone()
    before = await stream.position()
    sent = {"MessageSid": sid, "MessageStatus": "sent", "To": to, "AccountSid": "AC" + "0" * 32}
    undelivered = {**sent, "MessageStatus": "undelivered", "ErrorCode": "30003"}
    for params in (sent, sent, undelivered, undelivered):
        response = signed_post(gateway, "/twilio/status", params)
        assert response.status_code == 200 and response.text == "<Response/>"
    first, second = await stream.since(before, sid)
    assert first.type == second.type == "sms.status_updated"
    assert first.id == derived_id("sms.status_updated", sid, "sent")
    assert (first.data.status, first.data.to, first.data.error_code) == ("sent", to, None)
    assert (second.data.status, second.data.error_code) == ("undelivered", 30003)


async def test_a_status_callback_tolerates_blank_error_code_and_a_non_phone_to(gateway, stream) -> None:
    params = {"MessageSid": new_sid(), "MessageStatus": "delivered", "ErrorCode": "", "To": "whatsapp:+13035550123"}
    before = await stream.position()
    assert signed_post(gateway, "/twilio/status", params).status_code == 200
    (event,) = await stream.since(before, params["MessageSid"])
    assert event.data.to is None and event.data.error_code is None


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/twilio/status", {"MessageSid": "SM" + "0" * 32}, "MessageStatus"),
        ("/twilio/status", {"MessageSid": "not-a-sid", "MessageStatus": "sent"}, "MessageSid"),
        ("/twilio/status", {"MessageSid": "SM" + "0" * 32, "MessageStatus": "Sent!"}, "MessageStatus"),
        ("/twilio/sms", {"MessageSid": "SM" + "0" * 32, "From": "ACME", "To": ORG, "Body": "x"}, "From"),
    ],
)
async def test_signed_but_unusable_fields_are_a_422_naming_them_and_record_nothing(
    gateway, stream, path, params, field
) -> None:
    before = await stream.position()
    response = signed_post(gateway, path, params)
    assert response.status_code == 422 and field in response.json()["detail"]
    assert await stream.position() == before


async def test_a_multipart_upload_is_refused_not_a_500(gateway, stream) -> None:
    before = await stream.position()
    response = httpx.post(
        f"{gateway}/twilio/sms",
        data=inbound("STOP"),
        files={"MediaUrl0": ("a.txt", b"x")},
        headers={"X-Twilio-Signature": "c2lnbmF0dXJl"},
    )
    assert response.status_code == 415 and response.headers["content-type"] == "application/problem+json"
    assert await stream.position() == before


# -- replays after the stream's de-duplication window ------------------------------------------------------


class ForgetfulStream:
    """The gateway's publish port, standing in for the stream after its de-duplication window has passed:
    with ``forget`` every event gets a fresh id, so the stream would store a replay again. ``fail_calls``
    are the (1-based) publish calls that fail as if NATS were down (nothing recorded)."""

    def __init__(self, publish) -> None:  # noqa: ANN001 - the gateway's own publish callable
        self.publish = publish
        self.forget = False
        self.fail_calls: set[int] = set()
        self.calls = 0

    async def __call__(self, event: Envelope) -> int:
        self.calls += 1
        if self.calls in self.fail_calls:
            raise NotRecorded(event.id)
        return await self.publish(event.model_copy(update={"id": uuid4()}) if self.forget else event)


@pytest.fixture
def forgetful_gateway(nats_server, tmp_path):
    settings = GatewaySettings(
        nats_url=nats_server.url,
        twilio_auth_token=PRIMARY,
        gateway_public_url=PUBLIC,
        credentials_file=tmp_path / "none.json",
    )
    app = build(settings)
    with serving(app) as url:
        inbox = app.state.sms_webhooks
        inbox.publish = ForgetfulStream(inbox.publish)
        yield url, inbox.publish


async def test_a_signed_stop_replayed_after_the_dedup_window_is_answered_but_not_recorded_again(
    forgetful_gateway, stream
) -> None:
    url, publish = forgetful_gateway
    params = inbound("STOP")
    before = await stream.position()
    assert signed_post(url, "/twilio/sms", params).status_code == 200
    publish.forget = True  # days later: the stream no longer knows the event ids
    for _ in range(2):
        replay = signed_post(url, "/twilio/sms", params)
        assert replay.status_code == 200 and replay.text == "<Response/>"
    events = await stream.since(before, params["MessageSid"])
    assert [e.type for e in events] == ["sms.received", "sms.opt_out_changed"]  # one opt-out, not two


async def test_a_status_callback_replayed_after_the_dedup_window_is_not_recorded_again(
    forgetful_gateway, stream
) -> None:
    url, publish = forgetful_gateway
    sid = new_sid()
    sent, delivered = {"MessageSid": sid, "MessageStatus": "sent"}, {"MessageSid": sid, "MessageStatus": "delivered"}
    before = await stream.position()
    assert signed_post(url, "/twilio/status", sent).status_code == 200
    publish.forget = True
    for params in (sent, delivered, delivered, sent):  # a new status is recorded; replays of either are not
        response = signed_post(url, "/twilio/status", params)
        assert response.status_code == 200 and response.text == "<Response/>"
    assert [e.data.status for e in await stream.since(before, sid)] == ["sent", "delivered"]


async def test_a_webhook_whose_append_failed_is_recorded_when_twilio_retries_it(forgetful_gateway, stream) -> None:
    url, publish = forgetful_gateway
    params = inbound("STOP")
    before = await stream.position()
    publish.fail_calls = {publish.calls + 2}  # sms.received lands, sms.opt_out_changed does not
    failed = signed_post(url, "/twilio/sms", params)
    assert failed.status_code == 503
    retried = signed_post(url, "/twilio/sms", params)  # Twilio's retry, within the window: not seen yet
    assert retried.status_code == 200
    publish.forget = True
    assert signed_post(url, "/twilio/sms", params).status_code == 200  # now it was seen: nothing more
    events = await stream.since(before, params["MessageSid"])
    assert [e.type for e in events] == ["sms.received", "sms.opt_out_changed"]
