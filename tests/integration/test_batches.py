"""Batches: the read models take several stream messages in one store transaction, and a crash at any point of a
batch makes its redelivery a no-op. On SQLite and on PostgreSQL, through a real nats-server."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import AggregateNotFoundError, ProcessingEvent
from eventsourcing.dispatch import singledispatchmethod

from services.contract.events import Envelope, IncidentReported
from services.projections.bootstrap import build_projections
from services.projections.settings import ProjectionsSettings
from services.runtime.clock import ManualClock
from services.runtime.consumer import ProcessorConsumer, consumer_batch
from services.runtime.processor import LogFollower, StreamProcessor
from services.runtime.processor_service import running_processor
from services.runtime.settings import RuntimeSettings, store_env
from services.runtime.stream import STREAM_NAME, publish_event
from tests import factories
from tests.integration.test_nats_cluster import IncidentTally  # one aggregate per incident: events in order
from tests.support.stream import stream_events, tracked, wait_for_consumer_to_drain

INCIDENTS = 6


def reports() -> list:
    return [factories.incident_reported() for _ in range(INCIDENTS)]


async def test_a_batch_committed_but_never_acked_is_redelivered_as_a_no_op(
    js, nats_server, database_url: str, tmp_path: Path
) -> None:
    """Crash points: after commit before any ack (the first half, applied as one batch and never acked), and
    before commit (the second half, never applied): the consumer then applies each event exactly once."""
    settings = ProjectionsSettings(nats_url=nats_server.url, var_dir=tmp_path, database_url=database_url)
    events = reports()
    sequences = [await publish_event(js, e) for e in events]
    half = INCIDENTS // 2
    with build_projections(settings, ManualClock(factories.T0)) as projections:
        first = [(e, s, None) for e, s in zip(events[:half], sequences[:half], strict=True)]
        assert projections.handle_batch(first) == [True] * half  # committed; the process "dies" before its acks
        assert projections.processed_position() == sequences[half - 1]
        assert projections.handle_batch(first) == [False] * half  # the same batch again changes nothing

        async with running_processor(settings, projections, durable="projections"):
            await tracked(projections.recorder, sequences[-1])
            await wait_for_consumer_to_drain(js, sequences[-1], durable="projections")
        for event in events:
            assert [e["type"] for e in projections.timeline(event.data.incident_id)] == ["incident.reported"]
        assert projections.processed_position() == sequences[-1]


async def test_after_some_acks_the_rest_of_a_batch_is_applied_once(
    js, nats_server, database_url: str, tmp_path: Path
) -> None:
    """Crash point after some acks: the durable hands out the unacked rest again; the batch that contains messages
    already applied applies only the new ones."""
    settings = ProjectionsSettings(nats_url=nats_server.url, var_dir=tmp_path, database_url=database_url)
    events = reports()
    sequences = [await publish_event(js, e) for e in events]
    with build_projections(settings, ManualClock(factories.T0)) as projections:
        consumer = ProcessorConsumer(projections, [], publish=_no_publish, durable="projections", batch=INCIDENTS)
        assert consumer.batch == INCIDENTS
        await consumer.refresh(js)
        info = await js.consumer_info(STREAM_NAME, "projections")
        assert info.config.max_ack_pending == INCIDENTS  # one batch in flight across every instance
        puller = await js.pull_subscribe_bind(durable="projections", stream=STREAM_NAME)
        taken = await puller.fetch(INCIDENTS, timeout=5.0)
        assert [m.metadata.sequence.stream for m in taken] == sequences
        items = [(e, s, None) for e, s in zip(events, sequences, strict=True)]
        assert projections.handle_batch(items) == [True] * INCIDENTS  # committed
        for message in taken[:2]:
            await message.ack_sync()  # two acks, then the "crash": the rest is nak'd as a dead process's would expire
        for message in taken[2:]:
            await message.nak()
        await puller.unsubscribe()

        async with running_processor(settings, projections, durable="projections"):
            await wait_for_consumer_to_drain(js, sequences[-1], durable="projections")
        for event in events:
            assert [e["type"] for e in projections.timeline(event.data.incident_id)] == ["incident.reported"]
        assert projections.processed_position() == sequences[-1]


async def _no_publish(event) -> int:
    raise AssertionError(f"nothing to publish: {event.type}")


# ---- the eventsourcing path: one ProcessingEvent per batch ------------------------------------------------------


class TallyProcessor(StreamProcessor):
    """One aggregate per incident, created by its first report: a second report in the same batch must find it."""

    producer = "batch-test"
    batches = True

    def __init__(self, env: dict[str, str], *, poison: str = "") -> None:
        super().__init__(env, clock=ManualClock(factories.T0))
        self.poison = poison
        self.handled: list[int] = []  # every call of handle(), in batches too

    def handle(self, event: Envelope, stream_sequence: int) -> bool:
        self.handled.append(stream_sequence)
        return super().handle(event, stream_sequence)

    @singledispatchmethod
    def policy(self, domain_event: Any, processing_event: ProcessingEvent) -> None:
        """Nothing else is handled."""

    @policy.register
    def _(self, reported: IncidentReported, processing_event: ProcessingEvent) -> None:
        if str(reported.id) == self.poison:
            raise ValueError("a poison message")
        tally = IncidentTally.of(self.repository, reported.data.incident_id)
        tally.process(str(reported.id), processing_event.tracking.notification_id)
        processing_event.collect_events(tally)

    def tally(self, incident_id: UUID) -> list[tuple[str, int]]:
        return self.repository.get(IncidentTally.create_id(incident_id)).processed


def second_reports(first: list[IncidentReported]) -> list[IncidentReported]:
    """Each incident reported again (a second caller): same incident, a new event."""
    return [r.model_copy(update={"id": uuid4()}) for r in first]


def tally_settings(nats_server: Any, database_url: str, tmp_path: Path) -> RuntimeSettings:
    return RuntimeSettings(nats_url=nats_server.url, var_dir=tmp_path, database_url=database_url)


def test_a_batch_is_one_transaction_in_which_each_event_sees_the_ones_before_it(
    nats_server, database_url: str, tmp_path: Path
) -> None:
    env = store_env(tally_settings(nats_server, database_url, tmp_path), "batch_tally")
    first = [factories.incident_reported() for _ in range(2)]
    events = first + second_reports(first)  # a, b, a again, b again
    items = [(e, sequence, None) for sequence, e in enumerate(events, start=10)]
    with TallyProcessor(env) as tally:
        assert tally.handle_batch(items) == [True] * 4
        for report, again in zip(first, events[2:], strict=True):
            assert tally.tally(report.data.incident_id) == [
                (str(report.id), 10 + events.index(report)),
                (str(again.id), 10 + events.index(again)),
            ]
        assert tally.processed_position() == 13
        stored = tally.recorder.max_notification_id()
        assert tally.handle_batch(items) == [False] * 4  # the same batch again (a redelivery) changes nothing
        assert tally.handle_batch(items[2:]) == [False, False]
        assert tally.recorder.max_notification_id() == stored

        later = [factories.incident_reported(), factories.incident_reported()]
        poisoned = TallyProcessor(env, poison=str(later[1].id))
        with pytest.raises(ValueError, match="poison"):
            poisoned.handle_batch([(later[0], 14, None), (later[1], 15, None)])
        # nothing of a failed batch is stored: not the first event's tally, not the position
        assert poisoned.recorder.max_notification_id() == stored
        assert poisoned.processed_position() == 13
        with pytest.raises(AggregateNotFoundError):
            poisoned.tally(later[0].data.incident_id)
        poisoned.close()


async def test_a_dead_process_s_batch_is_taken_over_in_stream_order(
    js, nats_server, database_url: str, tmp_path: Path
) -> None:
    """Crash point after commit, before any ack, with the process gone: the durable redelivers its batch only after
    the ack wait, and meanwhile hands newer messages to the next process, which waits for the older ones and
    applies everything in stream order, the committed part as a no-op."""
    settings = tally_settings(nats_server, database_url, tmp_path)
    env = store_env(settings, "batch_tally")
    first = [factories.incident_reported() for _ in range(3)]
    again = second_reports(first)
    with TallyProcessor(env) as tally:
        consumer = ProcessorConsumer(tally, [], publish=_no_publish, durable="tally", batch=8)
        await consumer.refresh(js)
        sequences = [await publish_event(js, e) for e in first]
        puller = await js.pull_subscribe_bind(durable="tally", stream=STREAM_NAME)
        taken = await puller.fetch(8, timeout=5.0)
        assert [m.metadata.sequence.stream for m in taken] == sequences
        assert tally.handle_batch([(e, s, None) for e, s in zip(first, sequences, strict=True)]) == [True] * 3
        await puller.unsubscribe()  # the process dies: committed, never acked

        sequences += [await publish_event(js, e) for e in again]
        async with running_processor(settings, tally, durable="tally"):
            await tracked(tally.recorder, sequences[-1], timeout=30.0)
            await wait_for_consumer_to_drain(js, sequences[-1], durable="tally", timeout=30.0)
        info = await js.consumer_info(STREAM_NAME, "tally")
        assert info.config.max_ack_pending == consumer_batch()  # the durable made with 8 in flight, migrated
        for report, second in zip(first, again, strict=True):
            sequence = sequences[first.index(report)]
            assert tally.tally(report.data.incident_id) == [
                (str(report.id), sequence),
                (str(second.id), sequences[3 + first.index(report)]),
            ]
        assert tally.processed_position() == sequences[-1]


async def test_a_poison_message_in_a_batch_is_dead_lettered_and_the_rest_applied_once_in_order(
    js, nats_server, database_url: str, tmp_path: Path
) -> None:
    settings = tally_settings(nats_server, database_url, tmp_path)
    events = [factories.incident_reported() for _ in range(5)]
    with TallyProcessor(store_env(settings, "batch_tally"), poison=str(events[2].id)) as tally:
        sequences = [await publish_event(js, e) for e in events]
        async with running_processor(settings, tally, durable="tally"):
            await tracked(tally.recorder, sequences[-1], timeout=30.0)
            await wait_for_consumer_to_drain(js, sequences[-1], durable="tally", timeout=30.0)
        dead = [e for e in await stream_events(js, sequences[-1] + 1) if e.type == "message.dead_lettered"]
        assert [(d.data.stream_sequence, d.data.consumer) for d in dead] == [(sequences[2], "tally")]
        assert "poison" in dead[0].data.reason
        for report, sequence in zip(events, sequences, strict=True):
            if report is events[2]:
                with pytest.raises(AggregateNotFoundError):
                    tally.tally(report.data.incident_id)
            else:
                assert tally.tally(report.data.incident_id) == [(str(report.id), sequence)]


# ---- the outbox relay's position, recorded every few publishes (issue 16) --------------------------------------


class Died(Exception):
    """The process dies in the middle of a relay's turn."""


async def test_a_relay_that_dies_mid_turn_repeats_at_most_record_every_actions_and_skips_none(
    nats_server, database_url: str, tmp_path: Path
) -> None:
    env = store_env(tally_settings(nats_server, database_url, tmp_path), "batch_tally")
    events = [factories.incident_reported() for _ in range(40)]
    with TallyProcessor(env) as tally:
        assert tally.handle_batch([(e, s, None) for s, e in enumerate(events, start=1)]) == [True] * 40
        stored = tally.recorder.max_notification_id()
        acted: list[int] = []
        dies_at = {"n": 21}

        async def act(domain_event: Any) -> None:
            if len(acted) == dies_at["n"]:
                raise Died
            acted.append(len(acted) + 1)  # the count of actions so far (a publish, in the real relay)

        relay = LogFollower(tally, "relay-test", act, record_every=8)
        with pytest.raises(Died):
            await relay.follow_once()
        assert tally.recorder.max_tracking_id("relay-test") == 16  # the last multiple of 8 before the crash
        dies_at["n"] = -1
        again = LogFollower(tally, "relay-test", act, record_every=8)
        assert await again.follow_once() == stored - 16
        assert tally.recorder.max_tracking_id("relay-test") == stored
        assert len(acted) == 21 + (stored - 16)  # positions 17-21 acted on twice (5 <= 8), none skipped
        assert await again.follow_once() == 0
