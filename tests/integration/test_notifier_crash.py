"""No silent loss, bounded duplicates: the notifier stopped at each point of a send, then rebuilt from the
same store, either knows the SMS went (it has the SID) or sends it again, duplicating at most the one SMS
that was in flight. Real stores (SQLite and PostgreSQL), the real SDK, the real sandbox."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.notifier.bootstrap import build, build_providers
from services.notifier.messaging_provider import SentMessage
from tests import factories
from tests.integration.test_notifier import (
    ManualTime,
    Sandbox,
    opt_out_changed,
    outcomes,
    requested,
    running_sandbox,
    send_queue,
    settings_for,
)


class Crash(Exception):
    """The process dies here (nothing after this point runs)."""


class CrashingSender:
    """The real SMS sender, with the process dying just before or just after the provider call."""

    def __init__(self, inner, *, before_call: int | None = None, after_call: int | None = None) -> None:
        self.inner = inner
        self.before_call = before_call  # crash before the Nth call reaches the provider
        self.after_call = after_call  # crash after the Nth call succeeded, before its outcome is saved
        self.calls = 0

    def send(self, to: str, body: str, *, attempt: int = 1) -> SentMessage:
        self.calls += 1
        if self.calls == self.before_call:
            raise Crash("before the provider call")
        sent = self.inner.send(to, body, attempt=attempt)
        if self.calls == self.after_call:
            raise Crash("after the provider call")
        return sent


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    with running_sandbox(tmp_path / "sandbox") as running:
        yield running


async def run_until_crash(settings, time, events, **crash) -> None:
    """A notifier that records ``events`` and starts sending, then dies as ``crash`` says."""
    with build(settings, time.clock) as notifier:
        for sequence, event in enumerate(events, start=1):
            notifier.handle(event, sequence)
        if crash:
            sms, _ = build_providers(settings)
            with pytest.raises(Crash):
                await send_queue(notifier, settings, time, sms=CrashingSender(sms, **crash)).drain()


async def restart_and_drain(settings, time):
    notifier = build(settings, time.clock)
    await send_queue(notifier, settings, time).drain()
    return notifier


@pytest.mark.parametrize(
    ("crash", "texts_received", "attempts"),
    [
        ({}, 1, [1]),  # recorded as requested, never picked up by the sender
        ({"before_call": 1}, 1, [2]),  # attempt recorded, the call never made: sent once, as attempt 2
        ({"after_call": 1}, 2, [1, 2]),  # the provider took it, the SID was never saved: one duplicate
    ],
    ids=["after-request-recorded", "after-attempt-recorded", "after-provider-call"],
)
async def test_a_crash_at_each_point_loses_nothing_and_duplicates_at_most_one(
    tmp_path, sandbox, database_url, crash: dict, texts_received: int, attempts: list[int]
) -> None:
    settings = settings_for(tmp_path, sandbox.url, database_url)
    time = ManualTime()
    phone = factories.fake_phone()
    event = requested(phone)

    await run_until_crash(settings, time, [event], **crash)
    with await restart_and_drain(settings, time) as notifier:
        (sent,) = outcomes(notifier, event.data.notification_id)
        await send_queue(notifier, settings, time).drain()  # a second restart sends nothing more

    texts = sandbox.messages(phone)
    assert len(texts) == texts_received
    assert [t["attempt"] for t in texts] == attempts
    assert sent.type == "sms.sent" and sent.data.message_sid == texts[-1]["sid"]


async def test_a_crash_after_one_sms_was_recorded_does_not_send_it_again(tmp_path, sandbox, database_url) -> None:
    settings = settings_for(tmp_path, sandbox.url, database_url)
    time = ManualTime()
    first, second = requested(factories.fake_phone()), requested(factories.fake_phone())

    await run_until_crash(settings, time, [first, second], before_call=2)  # the first went and was recorded
    with await restart_and_drain(settings, time) as notifier:
        assert [e.type for e in outcomes(notifier, first.data.notification_id)] == ["sms.sent"]
        assert [e.type for e in outcomes(notifier, second.data.notification_id)] == ["sms.sent"]

    assert len(sandbox.messages(first.data.to)) == 1
    assert len(sandbox.messages(second.data.to)) == 1


async def test_a_restart_honours_a_recorded_backoff_and_the_retry_bound(tmp_path, sandbox) -> None:
    settings = settings_for(tmp_path, sandbox.url, sms_retry_max_attempts=3)
    time = ManualTime()
    phone = factories.fake_phone()
    event = requested(phone)
    sandbox.arm(kind="http_503", count=100, to=phone)
    with build(settings, time.clock) as notifier:
        notifier.handle(event, 1)
        queue = send_queue(notifier, settings, time)
        await queue.step()  # attempt 1 fails: a retry is recorded, then the notifier stops
        retry_at = notifier.repository.get(event.data.notification_id).retry_at
    assert retry_at is not None and retry_at >= time.clock.now()

    with await restart_and_drain(settings, time) as notifier:
        (failed,) = outcomes(notifier, event.data.notification_id)
    assert (failed.type, failed.data.permanent) == ("sms.failed", False)
    assert "gave up after 3 attempts" in failed.data.error_message  # the attempt before the restart counted
    assert time.clock.now() >= retry_at


# ---- batches (issue 16): several stream messages in one store transaction ------------------------------------


async def test_a_batch_committed_then_redelivered_sends_each_text_once(tmp_path, sandbox, database_url) -> None:
    """Crash point after the batch's commit, before its acks: the redelivered batch changes nothing, and each
    request of it is sent once; an opt-out in the same batch as a request to that phone still blocks it."""
    settings = settings_for(tmp_path, sandbox.url, database_url)
    time = ManualTime()
    phones = [factories.fake_phone() for _ in range(3)]
    events = [requested(phone) for phone in phones] + [opt_out_changed(phones[2], True)]
    items = [(event, sequence, None) for sequence, event in enumerate(events, start=1)]
    with build(settings, time.clock) as notifier:
        assert notifier.batches
        assert notifier.handle_batch(items) == [True] * len(events)
        stored = notifier.recorder.max_notification_id()
        assert notifier.handle_batch(items) == [False] * len(events)  # the redelivery
        assert notifier.handle_batch(items[1:]) == [False] * (len(events) - 1)
        assert notifier.recorder.max_notification_id() == stored
        assert notifier.processed_position() == len(events)

    with await restart_and_drain(settings, time) as notifier:
        sent = [outcomes(notifier, e.data.notification_id) for e in events[:3]]
    assert [[o.type for o in each] for each in sent] == [["sms.sent"], ["sms.sent"], ["sms.failed"]]
    assert [len(sandbox.messages(phone)) for phone in phones] == [1, 1, 0]


async def test_a_batch_that_fails_stores_nothing_and_is_then_applied_once(tmp_path, sandbox, database_url) -> None:
    """Crash point inside the batch, before its commit: nothing of it is stored, not its position; applied again,
    every request is recorded once and sent once."""
    settings = settings_for(tmp_path, sandbox.url, database_url)
    time = ManualTime()
    phones = [factories.fake_phone() for _ in range(3)]
    events = [requested(phone) for phone in phones]
    items = [(event, sequence, None) for sequence, event in enumerate(events, start=1)]
    with build(settings, time.clock) as notifier:
        calls = {"n": 0}
        track = notifier.track_request  # called by the request's policy, for each request of the batch

        def dies_on_the_third(notification):
            calls["n"] += 1
            if calls["n"] == 3:
                raise Crash("inside the batch")
            return track(notification)

        notifier.track_request = dies_on_the_third  # type: ignore[method-assign]
        with pytest.raises(Crash):
            notifier.handle_batch(items)
        assert notifier.recorder.max_notification_id() in (0, None)
        assert notifier.processed_position() == 0

    with build(settings, time.clock) as notifier:
        assert notifier.handle_batch(items) == [True] * 3
    with await restart_and_drain(settings, time) as notifier:
        assert [[o.type for o in outcomes(notifier, e.data.notification_id)] for e in events] == [["sms.sent"]] * 3
    assert [len(sandbox.messages(phone)) for phone in phones] == [1, 1, 1]


class CrashingAmongOthers:
    """As ``CrashingSender(after_call=N)``, for calls made from several threads at once: the Nth call to start dies
    after the provider took it."""

    def __init__(self, inner, *, after_call: int) -> None:
        self.inner, self.after_call = inner, after_call
        self.lock = threading.Lock()
        self.calls = 0

    def send(self, to: str, body: str, *, attempt: int = 1) -> SentMessage:
        with self.lock:
            self.calls += 1
            number = self.calls
        sent = self.inner.send(to, body, attempt=attempt)
        if number == self.after_call:
            raise Crash("after the provider call")
        return sent


async def test_with_four_calls_at_once_a_crash_loses_nothing_and_duplicates_at_most_four(
    tmp_path, sandbox, database_url
) -> None:
    """CRISIS_SMS_IN_FLIGHT=4: the process dies just after one provider call, with other calls under way; after the
    restart every message has gone, and no more than the four that could be under way went twice."""
    settings = settings_for(
        tmp_path, sandbox.url, database_url, sms_rate_per_second=1000, sms_rate_burst=1000, sms_in_flight=4
    )
    time = ManualTime()
    phones = [factories.fake_phone() for _ in range(8)]
    events = [requested(phone) for phone in phones]
    with build(settings, time.clock) as notifier:
        for sequence, event in enumerate(events, start=1):
            notifier.handle(event, sequence)
        sms, _ = build_providers(settings)
        queue = send_queue(notifier, settings, time, sms=CrashingAmongOthers(sms, after_call=3))
        with pytest.raises(Crash):
            await queue.drain()
        # the calls under way when it died end as they would have (their worker threads cannot be stopped), before
        # the store is closed; only then does the "process" go
        await asyncio.gather(*(task for _, task in queue.sending.values()), return_exceptions=True)
    with await restart_and_drain(settings, time) as notifier:
        outcome = [[o.type for o in outcomes(notifier, e.data.notification_id)] for e in events]
    assert outcome == [["sms.sent"]] * 8  # each recorded sent once
    received = [len(sandbox.messages(phone)) for phone in phones]
    assert min(received) == 1
    assert sum(received) - 8 <= 4
