"""Partitions by incident (issue 16): which subject an event is published on, and which subjects each durable reads.

NATS matching is checked with a matcher written from the subject rules (``*`` one token, ``>`` the rest), over every
contract event type: a filter meant for one type in one partition must never catch another type or partition.
"""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest

from services.contract.events import (
    EVENT_TYPES,
    PARTITIONS_ENV,
    SmsReceived,
    SmsReceivedData,
    SmsStatusUpdated,
    SmsStatusUpdatedData,
    derived_id,
    new_event,
    partition_count,
    partition_of,
    partition_token,
)
from services.dispatcher.application import Dispatcher
from services.notifier.application import Notifier
from services.runtime.consumer import filter_subjects
from services.runtime.partitions import in_partition, partition_upstream
from tests import factories


def matches(pattern: str, subject: str) -> bool:
    wanted, given = pattern.split("."), subject.split(".")
    for position, token in enumerate(wanted):
        if token == ">":
            return len(given) > position
        if position >= len(given) or (token != "*" and token != given[position]):
            return False
    return len(wanted) == len(given)


def every_subject(count: int) -> dict[str, str]:
    """Every subject an event can be published on with ``count`` partitions -> its type."""
    found = {}
    for type_name, event_class in EVENT_TYPES.items():
        for index in range(count):
            for subject in event_class.partition_subjects(partition_token(index, count)):
                found[subject] = type_name
        for subject in event_class.partition_subjects(None):
            found[subject] = type_name
    return found


def test_without_partitions_every_event_is_on_its_type_subject(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PARTITIONS_ENV, raising=False)
    reported = factories.incident_reported()
    assert partition_count() == 1
    assert reported.subject == "crisis.incident.reported"


def test_with_partitions_an_incidents_events_share_one_partition_and_the_rest_are_in_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(PARTITIONS_ENV, "4")
    reported = factories.incident_reported()
    incident = reported.data.incident_id
    token = partition_token(partition_of(incident, 4), 4)
    assert reported.subject == f"crisis.{token}.incident.reported"
    status = new_event(
        SmsStatusUpdated,
        SmsStatusUpdatedData(message_sid="SM" + "1" * 32, status="failed"),
        event_id=derived_id("status", 1),
        occurred_at=factories.T0,
        producer="intake_gateway",
        incident_id=incident,
    )
    assert status.subject == f"crisis.{token}.sms.status_updated.failed"
    inbound = new_event(
        SmsReceived,
        SmsReceivedData(message_sid="SM" + "2" * 32, from_number="+15550000001", to_number="+15550000002", body="Y 1"),
        event_id=derived_id("inbound", 1),
        occurred_at=factories.T0,
        producer="intake_gateway",
    )
    assert inbound.subject == "crisis.sms.received"  # no incident: in no partition, read by every partition's reader
    assert in_partition(reported.subject) and in_partition(status.subject) and not in_partition(inbound.subject)


def test_incidents_spread_over_every_partition() -> None:
    seen = {partition_of(uuid4(), 4) for _ in range(400)}
    assert seen == {0, 1, 2, 3}
    assert partition_of(UUID(int=7), 4) == 3


@pytest.mark.parametrize("count", [1, 4, 8])
def test_a_type_s_filter_in_any_partition_catches_its_own_subjects_only(count: int) -> None:
    subjects = every_subject(count)
    for event_class in EVENT_TYPES.values():
        patterns = event_class.type_subjects()
        caught = {subject for subject in subjects if any(matches(p, subject) for p in patterns)}
        assert caught == {s for s, t in subjects.items() if t == event_class.TYPE}, event_class.TYPE


def test_a_partition_reader_reads_its_partition_and_the_events_in_none_and_nothing_else() -> None:
    subjects = every_subject(4)
    token = partition_token(1, 4)
    reader = filter_subjects(Dispatcher, partition=token)
    caught = {s for s in subjects if any(matches(p, s) for p in reader)}
    handled = {t.TYPE for t in Dispatcher.handled_types()}
    assert caught == {
        s for s, t in subjects.items() if t in handled and (not in_partition(s) or s.split(".")[1] == token)
    }
    first = filter_subjects(Dispatcher, partition=None)  # the dispatcher's durable for events in no partition
    assert not [s for s in first if in_partition(s) or "*" in s]
    assert set(first) < set(reader)


def test_services_that_are_not_partitioned_read_every_partition() -> None:
    subjects = every_subject(8)
    notifier = filter_subjects(Notifier)
    requested = {s for s, t in subjects.items() if t == "notification.requested"}
    assert requested and all(any(matches(p, s) for p in notifier) for s in requested)


def test_partition_tokens_name_their_count_and_never_look_like_a_type() -> None:
    assert partition_token(2, 4) == "p2of4" != partition_token(2, 8)
    areas = {name.split(".")[0] for name in EVENT_TYPES}
    assert not [area for area in areas if in_partition(f"crisis.{area}.x")]
    assert partition_upstream("p2of4") == "CRISIS/p2of4"
