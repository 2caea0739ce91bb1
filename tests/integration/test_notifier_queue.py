"""One filled queue proves the sending order: per-sender rate limit, P1 first, flood bundling that never
holds back a P1. Real store, real SDK, real sandbox; a ManualClock stands in for waiting."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from services.contract.events import Priority, place_ref
from services.notifier.bootstrap import build
from services.notifier.domain.notification import Notification
from tests import factories
from tests.integration.test_notifier import (
    ManualTime,
    Sandbox,
    outbox_events,
    requested,
    running_sandbox,
    send_queue,
    settings_for,
)


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    with running_sandbox(tmp_path / "sandbox") as running:
        yield running


def offer(to: str, code: str, priority: Priority):
    params = {"priority": priority.value, "code": code, "place": place_ref("Union Station"), "distance_km": 1.2}
    return requested(to, "page_offer", params, priority=priority)


def send_times(notifier) -> list[tuple[float, str, str]]:
    """(seconds after T0, phone, text) of every SMS the provider took, in order."""
    sent = []
    for stored in notifier.recorder.select_notifications(start=1, limit=1000):
        event = notifier.mapper.to_domain_event(stored)
        if isinstance(event, Notification.Sent):
            at: datetime = event.at
            sent.append(
                ((at - factories.T0).total_seconds(), notifier.repository.get(event.originator_id).to, event.body)
            )
    return sent


async def test_a_full_queue_is_rate_limited_p1_first_and_floods_are_bundled(tmp_path, sandbox) -> None:
    settings = settings_for(
        tmp_path, sandbox.url, sms_rate_per_second=1.0, sms_flood_max_messages=2, sms_flood_window_seconds=60
    )
    time = ManualTime()
    responder, other = factories.fake_phone(), factories.fake_phone()
    low = [offer(responder, f"100{n}", Priority.P3) for n in range(1, 6)]
    acks = [requested(other, "ack_confirmed", {"code": f"300{n}"}, priority=Priority.P2) for n in (1, 2)]
    urgent = offer(responder, "9001", Priority.P1)
    with build(settings, time.clock) as notifier:
        queue = send_queue(notifier, settings, time)
        for sequence, event in enumerate([*low, *acks, urgent], start=1):  # the P1 is requested last
            notifier.handle(event, sequence)
        await queue.drain()

        # the responder is now at the flood limit (2 texts in the window); more pages arrive, then a P1
        later_low = [offer(responder, f"200{n}", Priority.P3) for n in (1, 2)]
        later_urgent = offer(responder, "9002", Priority.P1)
        for sequence, event in enumerate([*later_low, later_urgent], start=10):
            notifier.handle(event, sequence)
        await queue.drain()
        sent = send_times(notifier)
        events = outbox_events(notifier)

    bundle_1 = "5 open pages (1001, 1002, 1003, 1004, 1005). Reply STATUS for details, or Y/N and the code."
    bundle_2 = "2 open pages (2001, 2002). Reply STATUS for details, or Y/N and the code."
    page = "{p} response needed near Union Station (1.2 km). Reply Y {c} to accept, N {c} to pass."
    assert sent == [
        (0.0, responder, page.format(p="P1", c="9001")),  # requested last, sent first
        (1.0, other, "Accepted 3001. Thank you - details in the app."),  # then P2, one per second
        (2.0, other, "Accepted 3002. Thank you - details in the app."),
        (3.0, responder, bundle_1),  # five P3 pages would flood the phone: one text instead
        (4.0, responder, page.format(p="P1", c="9002")),  # at the flood limit, a P1 still goes at once
        (63.0, responder, bundle_2),  # held until the phone's window frees up, then bundled
    ]
    gaps = [b[0] - a[0] for a, b in zip(sent, sent[1:], strict=False)]
    assert min(gaps) >= 1.0  # never faster than 1 SMS a second from the long code

    # every bundled page is reported sent, with the bundle's message SID
    reported = {e.data.notification_id: e for e in events if e.type == "sms.sent"}
    inbox = {m["body"]: m["sid"] for m in sandbox.messages(responder)}
    for event in low:
        assert reported[event.data.notification_id].data.message_sid == inbox[bundle_1]
        assert reported[event.data.notification_id].incident_id == event.data.incident_id
    assert set(reported) == {e.data.notification_id for e in [*low, *acks, urgent, *later_low, later_urgent]}
    assert len(sandbox.messages(responder)) == 4
