"""One filled queue proves the sending order: per-sender rate limit, P1 first, flood bundling that never
holds back a P1. Real store, real SDK, real sandbox; a ManualClock stands in for waiting."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from services.contract.events import Priority, place_ref
from services.notifier.bootstrap import build, build_providers
from services.notifier.domain.notification import Notification
from services.notifier.send_queue import SENDER_TRACKING_NAME
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


@pytest.mark.parametrize("in_flight", [1, 4], ids=["one-call-at-a-time", "four-calls-at-once"])
async def test_a_full_queue_is_rate_limited_p1_first_and_floods_are_bundled(tmp_path, sandbox, in_flight) -> None:
    settings = settings_for(
        tmp_path,
        sandbox.url,
        sms_rate_per_second=1.0,
        sms_flood_max_messages=2,
        sms_flood_window_seconds=60,
        sms_in_flight=in_flight,
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


class OverlapCounter:
    """The real SMS sender, counting the provider calls under way at once (each runs in a worker thread). The first
    ``together`` calls wait for each other before going on, so they are under way at once if the sender allows it
    (if it does not, the first times out: a broken barrier)."""

    def __init__(self, inner, together: int) -> None:
        self.inner = inner
        self.lock = threading.Lock()
        self.barrier = threading.Barrier(together, timeout=20)
        self.together = together
        self.now = 0
        self.most = 0
        self.calls = 0

    def send(self, to: str, body: str, *, attempt: int = 1):
        with self.lock:
            self.now += 1
            self.calls += 1
            self.most = max(self.most, self.now)
            first = self.calls <= self.together
        try:
            if first:
                self.barrier.wait()
            return self.inner.send(to, body, attempt=attempt)
        finally:
            with self.lock:
                self.now -= 1


async def test_several_calls_at_once_send_each_message_once_and_no_more_than_allowed_at_a_time(
    tmp_path, sandbox, database_url
) -> None:
    """CRISIS_SMS_IN_FLIGHT=4: twelve pages to twelve phones go out with up to four provider calls at once, each
    once; every one is recorded sent, and the sender's low-water mark reaches the end (a restart sends nothing)."""
    settings = settings_for(
        tmp_path, sandbox.url, database_url, sms_rate_per_second=1000, sms_rate_burst=1000, sms_in_flight=4
    )
    clock_time = ManualTime()
    phones = [factories.fake_phone() for _ in range(12)]
    pages = [offer(phone, f"40{n:02d}", Priority.P1) for n, phone in enumerate(phones)]
    with build(settings, clock_time.clock) as notifier:
        sms, _ = build_providers(settings)
        counter = OverlapCounter(sms, together=4)
        queue = send_queue(notifier, settings, clock_time, sms=counter)
        for sequence, event in enumerate(pages, start=1):
            notifier.handle(event, sequence)
        await queue.drain()
        assert queue.sending == {} and queue.entries == {}
        events = outbox_events(notifier)
        mark = notifier.recorder.max_tracking_id(SENDER_TRACKING_NAME)
        last_request = max(
            n.id
            for n in notifier.recorder.select_notifications(start=1, limit=1000)
            if isinstance(notifier.mapper.to_domain_event(n), Notification.Requested)
        )
        await send_queue(notifier, settings, clock_time).drain()  # a restarted sender: nothing left to send

    assert counter.most == 4  # four under way at once, never more
    assert counter.calls == 12
    assert [len(sandbox.messages(phone)) for phone in phones] == [1] * 12
    assert sorted(e.data.notification_id for e in events if e.type == "sms.sent") == sorted(
        p.data.notification_id for p in pages
    )
    assert mark is not None and mark >= last_request  # every request settled: the mark is past them all
