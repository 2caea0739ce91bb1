"""The notifier renders templates and sends through the real Twilio SDK to the SMS sandbox.

Every test drives the real sending loop against the real sandbox over HTTP, with a ManualClock: waiting
for a rate-limit token or a retry moves the clock instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from twilio.request_validator import RequestValidator

from services.contract.events import (
    Envelope,
    NotificationRequested,
    NotificationRequestedData,
    Priority,
    SmsOptOutChanged,
    SmsOptOutChangedData,
    SmsStatusUpdated,
    SmsStatusUpdatedData,
    derived_id,
    new_event,
    place_ref,
)
from services.notifier.application import Notifier
from services.notifier.bootstrap import build, build_providers, build_send_queue
from services.notifier.domain.notification import Notification
from services.notifier.send_queue import SendQueue
from services.notifier.settings import NotifierSettings
from services.runtime.clock import ManualClock
from services.sms_sandbox.app import build_sandbox_app
from services.sms_sandbox.settings import SandboxSettings
from tests import factories
from tests.support.asgi_server import serving

AUTH_TOKEN = "notifier-test-token"
ACCOUNT_SID = "AC" + "ab" * 16


# --- helpers shared by the notifier's integration tests -------------------------------------------------


class ManualTime:
    """A ManualClock and a sleep that moves it: the send queue waits without waiting."""

    def __init__(self) -> None:
        self.clock = ManualClock(factories.T0)
        self.slept: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.clock.advance(timedelta(seconds=seconds))
        await asyncio.sleep(0)


def requested(
    to: str,
    template: str = "page_offer",
    params: dict[str, Any] | None = None,
    *,
    priority: Priority = Priority.P1,
    language: str = "en",
    channel: str = "sms",
) -> NotificationRequested:
    notification_id = uuid4()
    if params is None:
        params = {"priority": priority.value, "code": "4821", "place": place_ref("Union Station"), "distance_km": 0.4}
    return new_event(
        NotificationRequested,
        NotificationRequestedData(
            notification_id=notification_id,
            incident_id=uuid4(),
            page_id=uuid4() if template == "page_offer" else None,
            to=to,
            template=template,
            params=params,
            language=language,
            channel=channel,
            priority=priority,
        ),
        event_id=notification_id,
        occurred_at=factories.T0,
        producer="tests",
    )


def opt_out_changed(phone: str, opted_out: bool, minutes: int = 0) -> SmsOptOutChanged:
    sid = "SM" + uuid4().hex
    return new_event(
        SmsOptOutChanged,
        SmsOptOutChangedData(
            phone=phone,
            opted_out=opted_out,
            keyword="STOP" if opted_out else "START",
            message_sid=sid,
            received_at=factories.T0 + timedelta(minutes=minutes),
        ),
        event_id=derived_id("sms.opt_out_changed", sid),
        occurred_at=factories.T0,
        producer="tests",
    )


def status_updated(message_sid: str, status: str, error_code: int | None, to: str | None = None) -> SmsStatusUpdated:
    return new_event(
        SmsStatusUpdated,
        SmsStatusUpdatedData(message_sid=message_sid, status=status, to=to, error_code=error_code),
        event_id=derived_id("sms.status_updated", message_sid, status),
        occurred_at=factories.T0,
        producer="tests",
    )


def outbox_events(notifier: Notifier) -> list[Envelope]:
    """Every contract event the notifier's outbox would publish, in order."""
    return [
        event
        for stored in notifier.recorder.select_notifications(start=1, limit=10_000)
        for event in notifier.outbox(notifier.mapper.to_domain_event(stored))
    ]


def outcomes(notifier: Notifier, notification_id: UUID) -> list[Envelope]:
    return [e for e in outbox_events(notifier) if e.data.notification_id == notification_id]


@dataclass
class CallbackReceiver:
    """Stands in for Twilio's status-callback endpoint: records each signed POST."""

    url: str = ""
    received: list[dict[str, str]] = field(default_factory=list)
    valid: list[bool] = field(default_factory=list)
    fail_first: int = 0


def callback_receiver_app(receiver: CallbackReceiver) -> FastAPI:
    app = FastAPI()

    @app.post("/twilio/status")
    async def status(request: Request) -> Response:
        form = await request.form()
        params = {key: str(value) for key, value in form.items()}
        signature = request.headers.get("X-Twilio-Signature", "")
        if receiver.fail_first > 0:
            receiver.fail_first -= 1
            return Response(status_code=503)
        receiver.received.append(params)
        receiver.valid.append(RequestValidator(AUTH_TOKEN).validate(str(request.url), params, signature))
        return Response("<Response/>", media_type="application/xml")

    return app


@dataclass
class Sandbox:
    url: str
    http: httpx.Client

    def messages(self, phone: str, kind: str = "sms") -> list[dict]:
        return self.http.get("/sandbox/api/messages", params={"phone": phone, "kind": kind}).json()["messages"]

    def arm(self, **fault: Any) -> None:
        assert self.http.post("/sandbox/api/faults", json=fault).status_code == 201

    def callbacks(self, message_sid: str, count: int) -> list[dict]:
        answer = self.http.get(
            "/sandbox/api/status-callbacks", params={"message_sid": message_sid, "count": count, "timeout": 15}
        ).json()
        assert answer["timed_out"] is False
        return answer["callbacks"]


@contextlib.contextmanager
def running_sandbox(var_dir: Path, **settings: Any) -> Iterator[Sandbox]:
    sandbox_settings = SandboxSettings(
        var_dir=var_dir,
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        sandbox_callback_retry_seconds=0.01,
        **settings,
    )
    with serving(build_sandbox_app(sandbox_settings)) as url, httpx.Client(base_url=url, timeout=30) as http:
        yield Sandbox(url, http)


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    with running_sandbox(tmp_path / "sandbox") as running:
        yield running


@pytest.fixture
def callbacks() -> Iterator[CallbackReceiver]:
    receiver = CallbackReceiver()
    with serving(callback_receiver_app(receiver)) as url:
        receiver.url = f"{url}/twilio/status"
        yield receiver


def settings_for(tmp_path: Path, sandbox_url: str, database_url: str = "", **overrides: Any) -> NotifierSettings:
    values: dict[str, Any] = {
        "var_dir": tmp_path / "notifier",
        "database_url": database_url,
        "sms_provider": "sandbox",
        "sandbox_url": sandbox_url,
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": AUTH_TOKEN,
    }
    return NotifierSettings(**values | overrides)


def send_queue(notifier: Notifier, settings: NotifierSettings, time: ManualTime, **providers: Any) -> SendQueue:
    sms, voice = build_providers(settings)
    return build_send_queue(
        notifier, settings, (providers.get("sms", sms), providers.get("voice", voice)), sleep=time.sleep
    )


# --- sending -----------------------------------------------------------------------------------------------


async def test_a_requested_page_is_rendered_sent_once_and_recorded(tmp_path, sandbox, database_url) -> None:
    settings = settings_for(tmp_path, sandbox.url, database_url)
    time = ManualTime()
    phone = factories.fake_phone()
    event = requested(phone)
    with build(settings, time.clock) as notifier:
        queue = send_queue(notifier, settings, time)
        assert notifier.handle(event, 1)
        await queue.drain()
        assert notifier.handle(event, 1) is False  # a redelivery changes nothing
        await queue.drain()
        await send_queue(notifier, settings, time).drain()  # nor does a restarted sender
        (sent,) = outcomes(notifier, event.data.notification_id)
    inbox = sandbox.messages(phone)
    expected = "P1 response needed near Union Station (0.4 km). Reply Y 4821 to accept, N 4821 to pass."
    assert [m["body"] for m in inbox] == [expected]
    assert sent.type == "sms.sent" and sent.data.message_sid == inbox[0]["sid"]
    assert sent.data.body == expected and sent.data.segments == 1
    assert sent.causation_id == event.id and sent.incident_id == event.data.incident_id


async def test_the_responders_language_chooses_the_wording(tmp_path, sandbox) -> None:
    settings = settings_for(tmp_path, sandbox.url)
    time = ManualTime()
    phone = factories.fake_phone()
    with build(settings, time.clock) as notifier:
        notifier.handle(requested(phone, "ack_confirmed", {"code": "4821"}, language="es"), 1)
        await send_queue(notifier, settings, time).drain()
    assert [m["body"] for m in sandbox.messages(phone)] == ["Aceptado 4821. Gracias - los detalles estan en la app."]


async def test_every_create_carries_the_status_callback_url_and_the_attempt(tmp_path, sandbox, callbacks) -> None:
    settings = settings_for(tmp_path, sandbox.url, twilio_status_callback_url=callbacks.url)
    time = ManualTime()
    phone = factories.fake_phone()
    with build(settings, time.clock) as notifier:
        notifier.handle(requested(phone), 1)
        await send_queue(notifier, settings, time).drain()
    (message,) = sandbox.messages(phone)
    assert message["status_callback"] == callbacks.url and message["attempt"] == 1
    delivered = sandbox.callbacks(message["sid"], count=3)
    assert [c["status"] for c in delivered] == ["queued", "sent", "delivered"]
    assert [c["MessageStatus"] for c in callbacks.received] == ["queued", "sent", "delivered"]
    assert all(callbacks.valid)


async def test_an_api_key_and_a_messaging_service_can_be_used_instead(tmp_path: Path) -> None:
    key_sid, key_secret = "SK" + "cd" * 16, "api-key-secret"
    service_sid = "MG" + "ef" * 16
    with running_sandbox(tmp_path / "sandbox", twilio_api_key_sid=key_sid, twilio_api_key_secret=key_secret) as box:
        settings = settings_for(
            tmp_path,
            box.url,
            twilio_auth_token="not-the-token",
            twilio_api_key_sid=key_sid,
            twilio_api_key_secret=key_secret,
            twilio_messaging_service_sid=service_sid,
        )
        time = ManualTime()
        phone = factories.fake_phone()
        with build(settings, time.clock) as notifier:
            notifier.handle(requested(phone), 1)
            await send_queue(notifier, settings, time).drain()
            assert [e.type for e in outbox_events(notifier)] == ["sms.sent"]
        assert len(box.messages(phone)) == 1


# --- retries, permanent failures ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["http_429", "http_500", "http_503", "timeout"])
async def test_transient_failures_are_retried_with_bounded_backoff(tmp_path, sandbox, kind: str) -> None:
    settings = settings_for(tmp_path, sandbox.url, twilio_timeout_seconds=0.3, sms_retry_max_delay_seconds=3)
    time = ManualTime()
    phone = factories.fake_phone()
    sandbox.arm(kind=kind, count=2, to=phone)
    event = requested(phone)
    with build(settings, time.clock) as notifier:
        notifier.handle(event, 1)
        await send_queue(notifier, settings, time).drain()
        notification = notifier.repository.get(event.data.notification_id)
        failures = list(notifier.events.get(event.data.notification_id))
        (sent,) = outcomes(notifier, event.data.notification_id)
    assert sent.type == "sms.sent"
    assert (notification.attempts, notification.failed_attempts) == (3, 2)
    delays = [(f.retry_at - f.at).total_seconds() for f in failures if isinstance(f, Notification.AttemptFailed)]
    assert len(delays) == 2 and 0 <= delays[0] <= 1.0 and 0 <= delays[1] <= 2.0  # full jitter under 1 s, 2 s
    (message,) = sandbox.messages(phone)  # the failed attempts created nothing
    assert message["attempt"] == 3


async def test_retries_exhausted_become_sms_failed_not_permanent(tmp_path, sandbox) -> None:
    settings = settings_for(tmp_path, sandbox.url, sms_retry_max_attempts=3)
    time = ManualTime()
    phone = factories.fake_phone()
    sandbox.arm(kind="http_503", count=100, to=phone)
    event = requested(phone)
    with build(settings, time.clock) as notifier:
        notifier.handle(event, 1)
        await send_queue(notifier, settings, time).drain()
        (failed,) = outcomes(notifier, event.data.notification_id)
    assert failed.type == "sms.failed"
    assert (failed.data.permanent, failed.data.error_code) == (False, 20503)
    assert "gave up after 3 attempts" in failed.data.error_message
    (fault,) = sandbox.http.get("/sandbox/api/faults").json()["faults"]
    assert fault["triggered"] == 3
    assert sandbox.messages(phone) == []


@pytest.mark.parametrize(("phone", "code"), [("+15005550001", 21211), ("+15005550004", 21610), ("+15005550009", 21614)])
async def test_a_permanent_refusal_becomes_sms_failed_with_the_code(tmp_path, sandbox, phone: str, code: int) -> None:
    settings = settings_for(tmp_path, sandbox.url)
    time = ManualTime()
    event = requested(phone)
    with build(settings, time.clock) as notifier:
        notifier.handle(event, 1)
        await send_queue(notifier, settings, time).drain()
        (failed,) = outcomes(notifier, event.data.notification_id)
        notification = notifier.repository.get(event.data.notification_id)
    assert failed.type == "sms.failed"
    assert (failed.data.error_code, failed.data.permanent, failed.data.channel) == (code, True, "sms")
    assert (notification.attempts, notification.failed_attempts) == (1, 0)  # never retried
    assert time.slept == []


# --- delivery failures reported by status callback ---------------------------------------------------------


@pytest.mark.parametrize("code", [30003, 30005, 30006, 30008])
async def test_an_undelivered_status_callback_becomes_a_permanent_sms_failed(
    tmp_path, sandbox, callbacks, code: int
) -> None:
    settings = settings_for(tmp_path, sandbox.url, twilio_status_callback_url=callbacks.url)
    time = ManualTime()
    phone = f"+155599300{code % 100:02d}"  # the sandbox reports these undelivered after "sent"
    event = requested(phone)
    with build(settings, time.clock) as notifier:
        notifier.handle(event, 1)
        await send_queue(notifier, settings, time).drain()
        (message,) = sandbox.messages(phone)
        statuses = [c["status"] for c in sandbox.callbacks(message["sid"], count=2 if code == 30008 else 3)]
        assert statuses == (["queued", "failed"] if code == 30008 else ["queued", "sent", "undelivered"])
        final = callbacks.received[-1]
        assert (final["MessageStatus"], final["ErrorCode"]) == ("failed" if code == 30008 else "undelivered", str(code))
        # what the gateway's /twilio/status appends for that callback
        update = status_updated(final["MessageSid"], final["MessageStatus"], int(final["ErrorCode"]), final["To"])
        assert notifier.handle(update, 2)
        assert notifier.handle(update, 2) is False
        sent, failed = outcomes(notifier, event.data.notification_id)
    assert (sent.type, failed.type) == ("sms.sent", "sms.failed")
    assert (failed.data.error_code, failed.data.permanent) == (code, True)
    assert failed.data.message_sid == message["sid"]


async def test_a_failure_callback_that_overtakes_the_sent_record_is_not_lost(tmp_path, sandbox) -> None:
    settings = settings_for(tmp_path, sandbox.url)
    time = ManualTime()
    phone = factories.fake_phone()
    event = requested(phone)

    class CallbackFirst:
        """The real sender; the callback is processed before the sender records Sent."""

        def __init__(self, inner) -> None:
            self.inner = inner

        def send(self, to: str, body: str, *, attempt: int = 1):
            sent = self.inner.send(to, body, attempt=attempt)
            notifier.handle(status_updated(sent.message_sid, "undelivered", 30003), 2)
            return sent

    with build(settings, time.clock) as notifier:
        notifier.handle(event, 1)
        sms, _ = build_providers(settings)
        await send_queue(notifier, settings, time, sms=CallbackFirst(sms)).drain()
        sent, failed = outcomes(notifier, event.data.notification_id)
    assert (sent.type, failed.type, failed.data.error_code, failed.data.permanent) == (
        "sms.sent",
        "sms.failed",
        30003,
        True,
    )


async def test_other_statuses_and_unknown_messages_change_nothing(tmp_path, sandbox) -> None:
    settings = settings_for(tmp_path, sandbox.url)
    with build(settings, ManualTime().clock) as notifier:
        before = notifier.recorder.max_notification_id()
        assert notifier.handle(status_updated("SM" + "1" * 32, "delivered", None), 1)
        assert notifier.recorder.max_notification_id() == before
        notifier.handle(status_updated("SM" + "2" * 32, "undelivered", 30005), 2)
        assert outbox_events(notifier) == []


# --- opt-out -------------------------------------------------------------------------------------------------


async def test_an_opted_out_phone_gets_sms_failed_21610_without_a_provider_call_until_start(tmp_path, sandbox) -> None:
    settings = settings_for(tmp_path, sandbox.url)
    time = ManualTime()
    phone = factories.fake_phone()
    stop, start = opt_out_changed(phone, True, minutes=0), opt_out_changed(phone, False, minutes=5)
    while_stopped, after_start = requested(phone), requested(phone, "ack_confirmed", {"code": "4821"})
    with build(settings, time.clock) as notifier:
        queue = send_queue(notifier, settings, time)
        assert notifier.handle(stop, 1)
        assert notifier.handle(stop, 1) is False
        notifier.handle(while_stopped, 2)
        await queue.drain()
        assert sandbox.messages(phone) == []  # Twilio was never called
        notifier.handle(opt_out_changed(phone, True, minutes=-10), 3)  # an older STOP arriving late: no change
        notifier.handle(start, 4)
        notifier.handle(after_start, 5)
        await queue.drain()
        (failed,) = outcomes(notifier, while_stopped.data.notification_id)
        (sent,) = outcomes(notifier, after_start.data.notification_id)
    assert (failed.type, failed.data.error_code, failed.data.permanent) == ("sms.failed", 21610, True)
    assert sent.type == "sms.sent"
    assert [m["body"] for m in sandbox.messages(phone)] == ["Accepted 4821. Thank you - details in the app."]


async def test_stop_texted_into_the_sandbox_blocks_sends_like_twilio(tmp_path, sandbox) -> None:
    settings = settings_for(tmp_path, sandbox.url)
    time = ManualTime()
    phone = factories.fake_phone()
    sandbox.http.post("/sandbox/api/inbound", json={"from": phone, "body": "stop"})
    event = requested(phone)
    with build(settings, time.clock) as notifier:
        notifier.handle(event, 1)
        await send_queue(notifier, settings, time).drain()
        (failed,) = outcomes(notifier, event.data.notification_id)
    assert (failed.data.error_code, failed.data.permanent) == (21610, True)


# --- voice -----------------------------------------------------------------------------------------------


async def test_a_voice_page_places_a_call_that_says_how_to_accept(tmp_path, sandbox) -> None:
    settings = settings_for(tmp_path, sandbox.url, twilio_voice_from_number="+15005550006")
    time = ManualTime()
    phone = factories.fake_phone()
    event = requested(phone, "voice_page", {"priority": "P1", "code": "4821"}, channel="voice", language="es")
    with build(settings, time.clock) as notifier:
        notifier.handle(event, 1)
        await send_queue(notifier, settings, time).drain()
        (placed,) = outcomes(notifier, event.data.notification_id)
    (call,) = sandbox.http.get("/sandbox/api/calls", params={"phone": phone}).json()["calls"]
    assert placed.type == "call.placed" and placed.data.call_sid == call["sid"]
    assert '<Say language="es-MX">' in call["twiml"] and "4, 8, 2, 1" in call["twiml"]
    assert "Y, 4, 8, 2, 1" in call["body"]
    assert sandbox.messages(phone) == []  # a call, not an SMS
    page = sandbox.http.get("/", params={"phone": phone}).text
    assert "voice call from" in page and "4, 8, 2, 1" in page


@pytest.mark.parametrize(
    ("phone", "fault", "code", "permanent"),
    [
        ("+15005550004", None, 21216, True),
        (None, "http_500", 20500, False),
    ],
)
async def test_a_call_that_cannot_be_placed_becomes_sms_failed_for_the_dispatcher(
    tmp_path, sandbox, phone, fault, code, permanent
) -> None:
    settings = settings_for(tmp_path, sandbox.url, sms_retry_max_attempts=2)
    time = ManualTime()
    phone = phone or factories.fake_phone()
    if fault:
        sandbox.arm(kind=fault, count=10, resource="calls")
    event = requested(phone, "voice_page", {"priority": "P1", "code": "4821"}, channel="voice")
    with build(settings, time.clock) as notifier:
        notifier.handle(event, 1)
        await send_queue(notifier, settings, time).drain()
        (failed,) = outcomes(notifier, event.data.notification_id)
    assert failed.type == "sms.failed"
    assert (failed.data.channel, failed.data.error_code, failed.data.permanent) == ("voice", code, permanent)
