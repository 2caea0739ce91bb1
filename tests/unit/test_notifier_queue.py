"""The pure decisions of sending: priority, per-sender rate, per-recipient flood limit, retry backoff."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from services.notifier.domain.delivery import RetryPolicy, is_permanent_delivery_failure
from services.notifier.domain.send_scheduler import (
    BundleNow,
    FloodLimiter,
    Idle,
    QueueEntry,
    SendNow,
    TokenBucket,
    WaitUntil,
    choose_next,
)

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
A, B = "+15550190001", "+15550190002"


def entry(position: int, priority: str = "P3", to: str = A, template: str = "page_offer", **kw) -> QueueEntry:
    return QueueEntry(
        notification_id=uuid4(),
        position=position,
        to=to,
        channel=kw.pop("channel", "sms"),
        priority=priority,
        template=template,
        code=kw.pop("code", f"{1000 + position}"),
        due_at=kw.pop("due_at", T0),
    )


def buckets(now: datetime = T0, rate: float = 1.0) -> dict[str, TokenBucket]:
    return {"sms": TokenBucket(rate, 1, now), "voice": TokenBucket(rate, 1, now)}


def test_p1_goes_before_earlier_lower_priority_messages() -> None:
    queued = [entry(1, "P3", to=B), entry(2, "P2", to=B, template="ack_confirmed"), entry(3, "P1")]

    decision = choose_next(queued, T0, buckets(), FloodLimiter(3, timedelta(minutes=1)))

    assert decision == SendNow(queued[2])


def test_within_a_priority_the_oldest_request_goes_first() -> None:
    queued = [entry(5, "P2", template="ack_confirmed"), entry(2, "P2", to=B, template="ack_confirmed")]

    assert choose_next(queued, T0, buckets(), FloodLimiter(3, timedelta(minutes=1))) == SendNow(queued[1])


def test_an_empty_bucket_makes_everyone_wait_for_the_next_token() -> None:
    rate = buckets()
    rate["sms"].take(T0)

    decision = choose_next([entry(1, "P1")], T0, rate, FloodLimiter(3, timedelta(minutes=1)))

    assert decision == WaitUntil(T0 + timedelta(seconds=1))


def test_a_voice_call_does_not_wait_for_the_sms_bucket() -> None:
    rate = buckets()
    rate["sms"].take(T0)
    queued = [entry(1, "P1"), entry(2, "P1", template="voice_page", channel="voice")]

    assert choose_next(queued, T0, rate, FloodLimiter(3, timedelta(minutes=1))) == SendNow(queued[1])


def test_a_retry_is_not_due_before_its_time() -> None:
    later = T0 + timedelta(seconds=7)

    assert choose_next([entry(1, "P1", due_at=later)], T0, buckets(), FloodLimiter(3, timedelta(minutes=1))) == (
        WaitUntil(later)
    )
    assert choose_next([], T0, buckets(), FloodLimiter(3, timedelta(minutes=1))) == Idle()


def test_lower_priority_pages_that_would_flood_a_phone_are_bundled() -> None:
    flood = FloodLimiter(3, timedelta(minutes=1))
    flood.record(A, T0)
    queued = [entry(1), entry(2), entry(3, "P2", template="page_reminder"), entry(4, to=B)]

    decision = choose_next(queued, T0, buckets(), flood)

    assert isinstance(decision, BundleNow)
    assert decision.entries == (queued[0], queued[1], queued[2])
    assert decision.codes == ["1001", "1002", "1003"]


def test_pages_within_the_limit_go_one_by_one() -> None:
    queued = [entry(1), entry(2)]

    assert choose_next(queued, T0, buckets(), FloodLimiter(3, timedelta(minutes=1))) == SendNow(queued[0])


def test_a_flooded_phone_holds_lower_priority_pages_but_never_a_p1() -> None:
    flood = FloodLimiter(2, timedelta(minutes=1))
    flood.record(A, T0 - timedelta(seconds=50))
    flood.record(A, T0 - timedelta(seconds=10))
    held = [entry(1), entry(2, "P2")]

    assert choose_next(held, T0, buckets(), flood) == WaitUntil(T0 + timedelta(seconds=10))
    p1 = entry(3, "P1")
    assert choose_next([*held, p1], T0, buckets(), flood) == SendNow(p1)
    reply = entry(4, "P2", template="ack_confirmed")
    assert choose_next([*held, reply], T0, buckets(), flood) == SendNow(reply)


def test_a_bundle_holds_at_most_twenty_codes() -> None:
    flood = FloodLimiter(1, timedelta(minutes=1))
    queued = [entry(n) for n in range(1, 30)]

    decision = choose_next(queued, T0, buckets(), flood)

    assert isinstance(decision, BundleNow) and len(decision.codes) == 20


def test_the_token_bucket_refills_with_the_clock() -> None:
    bucket = TokenBucket(2.0, 2, T0)
    bucket.take(T0)
    bucket.take(T0)
    assert bucket.ready_at(T0) == T0 + timedelta(seconds=0.5)
    with pytest.raises(ValueError):
        bucket.take(T0)
    assert bucket.ready_at(T0 + timedelta(seconds=5)) == T0 + timedelta(seconds=5)


@pytest.mark.parametrize(("failures", "ceiling"), [(1, 1.0), (2, 2.0), (3, 4.0), (5, 16.0), (6, 30.0), (60, 30.0)])
def test_backoff_is_exponential_with_full_jitter_and_capped(failures: int, ceiling: float) -> None:
    policy = RetryPolicy(max_attempts=6, base_delay_seconds=1.0, max_delay_seconds=30.0)

    assert policy.ceiling(failures) == ceiling
    assert policy.delay(failures, 0.0) == 0.0
    assert policy.delay(failures, 0.5) == ceiling / 2
    assert policy.delay(failures, 0.999) <= ceiling


def test_the_retry_bound_counts_every_attempt() -> None:
    policy = RetryPolicy(max_attempts=3)

    assert [policy.gives_up(n) for n in (1, 2, 3)] == [False, False, True]
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


@pytest.mark.parametrize(("code", "permanent"), [(30003, True), (30008, True), (30002, False), (None, False)])
def test_delivery_failures_30003_to_30008_are_permanent(code: int | None, permanent: bool) -> None:
    assert is_permanent_delivery_failure(code) is permanent
