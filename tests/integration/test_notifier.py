"""The notifier sends through the real Twilio SDK to the SMS sandbox, and never forgets a requested SMS."""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

import httpx
import pytest

from services.contract.events import NotificationRequested, NotificationRequestedData, Priority, new_event
from services.notifier.bootstrap import SENDER_TRACKING_NAME, build, build_sender, sms_sender_follower
from services.notifier.sandbox.app import build_sandbox_app
from services.notifier.sandbox.settings import SandboxSettings
from services.notifier.settings import NotifierSettings
from services.runtime.clock import ManualClock
from tests import factories
from tests.support.asgi_server import serving


def requested(to: str, body: str = "P1 response needed near 5th St & Main (0.4 km).") -> NotificationRequested:
    notification_id = uuid4()
    return new_event(
        NotificationRequested,
        NotificationRequestedData(
            notification_id=notification_id,
            incident_id=uuid4(),
            page_id=None,
            to=to,
            body=body,
            template="page",
            priority=Priority.P1,
        ),
        event_id=notification_id,
        occurred_at=factories.T0,
        producer="tests",
    )


@pytest.fixture
def sandbox(tmp_path: Path):
    with serving(build_sandbox_app(SandboxSettings(var_dir=tmp_path / "sandbox"))) as url:
        yield url


def settings_for(tmp_path: Path, sandbox_url: str, database_url: str = "") -> NotifierSettings:
    return NotifierSettings(var_dir=tmp_path, sandbox_url=sandbox_url, database_url=database_url)


async def test_requested_sms_is_sent_once_and_recorded(tmp_path, sandbox, database_url) -> None:
    settings = settings_for(tmp_path, sandbox, database_url)
    phone = factories.fake_phone()
    event = requested(phone)
    with build(settings, ManualClock(factories.T0)) as notifier:
        sender = sms_sender_follower(notifier, build_sender(settings))
        assert notifier.handle(event, 1)
        assert await sender.follow_once() == 1
        assert notifier.handle(event, 1) is False
        await sender.follow_once()  # takes the stored Sent record; sends nothing more
        assert await sender.follow_once() == 0
        (sent,) = [
            e
            for n in notifier.recorder.select_notifications(start=1, limit=10)
            for e in notifier.outbox(notifier.mapper.to_domain_event(n))
        ]
    inbox = httpx.get(f"{sandbox}/sandbox/api/messages", params={"phone": phone}).json()["messages"]
    assert [m["body"] for m in inbox] == [event.data.body]
    assert sent.type == "sms.sent" and sent.data.message_sid == inbox[0]["sid"]
    assert sent.causation_id == event.id and sent.incident_id == event.data.incident_id


async def test_a_send_that_could_not_reach_the_provider_is_retried_not_lost(tmp_path, sandbox) -> None:
    phone = factories.fake_phone()
    event = requested(phone)
    down = settings_for(tmp_path, "http://127.0.0.1:9")  # nothing listens on the discard port
    with build(down, ManualClock(factories.T0)) as notifier:
        notifier.handle(event, 1)
        with pytest.raises(Exception, match="Transient|ConnectionError|TwilioException"):
            await sms_sender_follower(notifier, build_sender(down)).follow_once()
        assert notifier.recorder.max_tracking_id(SENDER_TRACKING_NAME) in (None, 0)
    # the notifier "restarts" with the provider reachable again: the recorded request is sent
    up = settings_for(tmp_path, sandbox)
    with build(up, ManualClock(factories.T0)) as notifier:
        assert await sms_sender_follower(notifier, build_sender(up)).follow_once() == 1
        assert notifier.repository.get(event.data.notification_id).status == "sent"
    inbox = httpx.get(f"{sandbox}/sandbox/api/messages", params={"phone": phone}).json()["messages"]
    assert len(inbox) == 1


async def test_a_permanent_refusal_becomes_sms_failed_with_the_code(tmp_path, sandbox) -> None:
    settings = settings_for(tmp_path, sandbox)
    event = requested("+15005550004")  # Twilio's magic number for an opted-out recipient
    with build(settings, ManualClock(factories.T0)) as notifier:
        notifier.handle(event, 1)
        await sms_sender_follower(notifier, build_sender(settings)).follow_once()
        (failed,) = [
            e
            for n in notifier.recorder.select_notifications(start=1, limit=10)
            for e in notifier.outbox(notifier.mapper.to_domain_event(n))
        ]
    assert failed.type == "sms.failed"
    assert failed.data.error_code == 21610 and failed.data.permanent is True
