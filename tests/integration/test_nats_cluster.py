"""The CRISIS stream on a 3-node JetStream cluster (R3) loses nothing when the stream leader is killed mid-flow.

Three nats-servers on loopback, configured like deploy/nats/ (JetStream encrypted at rest, one route per node).
Two instances of a stream service share one durable consumer (services.runtime.processor_service.running_processor) and
one store, as scaled-out instances do; the processor keeps one eventsourcing aggregate per incident. While a
message is in flight and a second batch is being published, the node leading both the stream and the consumer
gets SIGKILL. Afterwards every event is on the stream once and was processed once, in stream order (so each
incident's events in order), and the killed node, restarted, catches up.

Also the runbook's JetStream key rotation (deploy/README.md): a node wiped and restarted with a new key
re-syncs the stream from the other two and serves it.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

import httpx
import nats
import pytest
from eventsourcing.application import AggregateNotFoundError, ProcessingEvent
from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.domain import Aggregate, event
from nats.errors import Error as NatsError

from services.contract.events import Envelope, IncidentReported, decode_event
from services.runtime.clock import ManualClock
from services.runtime.processor import StreamProcessor
from services.runtime.processor_service import running_processor
from services.runtime.settings import RuntimeSettings, store_env
from services.runtime.stream import STREAM_NAME, ensure_stream, publish_event
from tests import factories
from tests.support.nats_cluster import ClusterNode, NatsCluster
from tests.support.stream import eventually, tracked

INCIDENTS_PER_BATCH = 20  # each reported twice (a second caller), interleaved with the other incidents
HOLD_AT = 25  # the consumer holds this event of the first batch in flight while the leader is killed
KILL_AFTER = 10  # second-batch events acknowledged before the kill
WAIT = 30.0  # bound of every wait in this test
POLL = 0.1  # server state nothing announces (leaders, replicas, acks) is polled this often
DURABLE = "cluster-tally"


class IncidentTally(Aggregate):
    """Which stream events of one incident were processed, in processing order."""

    @event("Opened")
    def __init__(self, incident_id: UUID) -> None:
        self.incident_id = incident_id
        self.processed: list[tuple[str, int]] = []

    @event("Processed")
    def process(self, event_id: str, stream_sequence: int) -> None:
        self.processed.append((event_id, stream_sequence))

    @staticmethod
    def create_id(incident_id: UUID) -> UUID:
        return uuid5(NAMESPACE_URL, f"/tests/incident-tally/{incident_id}")

    @classmethod
    def of(cls, repository: Any, incident_id: UUID) -> IncidentTally:
        """The incident's tally as ``repository`` has it, or a new one."""
        try:
            return repository.get(cls.create_id(incident_id))
        except AggregateNotFoundError:
            return cls(incident_id)


class Hold:
    """Pauses whichever instance handles one event until the test releases it: a message held in flight."""

    def __init__(self, event_id: str) -> None:
        self.event_id = event_id
        self.reached = threading.Event()
        self.release = threading.Event()

    def pause_at(self, event_id: str) -> None:
        if event_id == self.event_id:
            self.reached.set()
            if not self.release.wait(WAIT):
                raise TimeoutError("the test never released the held event")


class TallyProcessor(StreamProcessor):
    """A minimal stream service: one aggregate per incident, tracking recorded with it (exactly once in effect)."""

    producer = "cluster-test"

    def __init__(self, env: dict[str, str], *, clock: ManualClock, hold: Hold) -> None:
        super().__init__(env, clock=clock)
        self.hold = hold
        self.handled = 0  # calls of handle(), redeliveries included

    def handle(self, event: Envelope, stream_sequence: int) -> bool:
        self.handled += 1
        self.hold.pause_at(str(event.id))
        return super().handle(event, stream_sequence)

    @singledispatchmethod
    def policy(self, domain_event: Any, processing_event: ProcessingEvent) -> None:
        """Other event types only advance the position."""

    @policy.register
    def _(self, reported: IncidentReported, processing_event: ProcessingEvent) -> None:
        tally = IncidentTally.of(self.repository, reported.data.incident_id)
        tally.process(str(reported.id), processing_event.tracking.notification_id)
        processing_event.collect_events(tally)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    nodes = NatsCluster(tmp_path / "nats", 3, encryption_key="cluster-test-jetstream-key")
    nodes.start()
    yield nodes
    nodes.stop()


@pytest.fixture
async def nc(cluster: NatsCluster) -> AsyncIterator[Any]:
    await cluster.wait_for_jetstream(WAIT)
    # all three URLs and endless reconnects: the client moves to a live node, as the services do
    connection = await nats.connect(cluster.urls, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    yield connection
    await connection.close()


@pytest.fixture
async def js(nc: Any) -> Any:
    context = nc.jetstream(timeout=2.0)
    await ensure_stream(context, replicas=3)
    return context


async def move_stream_leader(nc: Any, js: Any, preferred: str) -> None:
    """Ask the stream's leader to step down in favour of ``preferred`` (JetStream API), and wait until it has."""
    if (await js.stream_info(STREAM_NAME)).cluster.leader == preferred:
        return
    request = json.dumps({"placement": {"preferred": preferred}}).encode()
    answer = json.loads((await nc.request(f"$JS.API.STREAM.LEADER.STEPDOWN.{STREAM_NAME}", request, timeout=5)).data)
    assert answer.get("success"), answer

    async def moved() -> bool:
        try:
            return (await js.stream_info(STREAM_NAME)).cluster.leader == preferred
        except (NatsError, TimeoutError):  # no leader during the hand-over
            return False

    await eventually(moved, f"the stream leader to move to {preferred}", WAIT, interval=POLL)


async def publish_until_stored(js: Any, envelope: Envelope) -> int:
    """Publish with the same Nats-Msg-Id until the stream acknowledges it, as a producer must across a failover.

    While the stream has no leader nothing answers (no responders / timeout), and nothing announces the new
    leader, so a short pause between attempts is the only way to wait.
    """

    async def stored() -> int | None:
        try:
            return await publish_event(js, envelope)
        except (NatsError, TimeoutError):
            return None

    return await eventually(stored, f"the stream to store event {envelope.id}", WAIT, interval=POLL)


async def stream_events(js: Any) -> list[tuple[int, Envelope]]:
    info = await js.stream_info(STREAM_NAME)
    return [
        (seq, decode_event((await js.get_msg(STREAM_NAME, seq)).data))
        for seq in range(info.state.first_seq, info.state.last_seq + 1)
    ]


def batch() -> list[Envelope]:
    """Each incident reported, then each reported again by a second caller: two events per incident, interleaved."""
    reports = [factories.incident_reported() for _ in range(INCIDENTS_PER_BATCH)]
    return reports + [report.model_copy(update={"id": uuid4()}) for report in reports]


async def test_killing_the_stream_leader_mid_flow_loses_nothing(
    cluster: NatsCluster, nc: Any, js: Any, tmp_path: Path
) -> None:
    settings = RuntimeSettings(nats_url=cluster.url, stream_replicas=3, var_dir=tmp_path / "var")
    first, second = batch(), batch()
    info = await js.stream_info(STREAM_NAME)
    assert info.config.num_replicas == 3

    async def replicas_current() -> bool:  # a busy machine may take a moment to bring both followers up to date
        replicas = (await js.stream_info(STREAM_NAME)).cluster.replicas
        return len(replicas) == 2 and all(peer.current for peer in replicas)

    await eventually(replicas_current, "both followers of the stream to be current", WAIT, interval=POLL)

    hold = Hold(str(first[HOLD_AT].id))
    env = store_env(settings, "cluster_tally")  # one store shared by both instances, as scaled-out instances do
    clock = ManualClock(factories.T0)
    with TallyProcessor(env, clock=clock, hold=hold) as one, TallyProcessor(env, clock=clock, hold=hold) as two:
        async with (
            running_processor(settings, one, durable=DURABLE),
            running_processor(settings, two, durable=DURABLE),
        ):
            for envelope in first:
                await publish_until_stored(js, envelope)
            assert await asyncio.to_thread(hold.reached.wait, WAIT), "no instance reached the held event"

            # mid-flow: one message in flight at the consumer, the second batch being published
            killed_enough = asyncio.Event()

            async def publish_second_batch() -> list[int]:
                sequences = []
                for n, envelope in enumerate(second, 1):
                    sequences.append(await publish_until_stored(js, envelope))
                    if n == KILL_AFTER:
                        killed_enough.set()
                return sequences

            # the hardest case: the node that dies leads both the stream and the consumer holding the message
            consumer_leader = (await js.consumer_info(STREAM_NAME, DURABLE)).cluster.leader
            await move_stream_leader(nc, js, consumer_leader)

            publishing = asyncio.create_task(publish_second_batch())
            await asyncio.wait_for(killed_enough.wait(), WAIT)
            leader = cluster.node((await js.stream_info(STREAM_NAME)).cluster.leader)
            assert leader.name == (await js.consumer_info(STREAM_NAME, DURABLE)).cluster.leader
            cluster.kill(leader)
            hold.release.set()
            second_sequences = await asyncio.wait_for(publishing, WAIT)

            last = max(second_sequences)
            await tracked(one.recorder, last, timeout=WAIT)

            async def consumer_drained() -> bool:
                try:
                    consumer = await js.consumer_info(STREAM_NAME, DURABLE)
                except (NatsError, TimeoutError):  # the consumer's own leader may still be moving
                    return False
                return consumer.num_pending == 0 and consumer.num_ack_pending == 0

            await eventually(consumer_drained, "the durable consumer to acknowledge everything", WAIT, interval=POLL)

        # the stream holds every event exactly once, in publish order
        on_stream = await stream_events(js)
        assert [str(e.id) for _, e in on_stream] == [str(e.id) for e in first + second]

        # every event was processed exactly once, in stream order, whichever instance took it
        stream_sequence = {str(e.id): seq for seq, e in on_stream}
        processed_in_order: list[int] = []
        for notification in one.recorder.select_notifications(start=1, limit=10_000):
            domain_event = one.mapper.to_domain_event(notification)
            if isinstance(domain_event, IncidentTally.Processed):
                assert stream_sequence[domain_event.event_id] == domain_event.stream_sequence
                processed_in_order.append(domain_event.stream_sequence)
        assert processed_in_order == [seq for seq, _ in on_stream]
        assert one.processed_position() == on_stream[-1][0]
        assert one.handled > 0 and two.handled > 0  # both instances took messages from the shared consumer

        # so each incident's two reports were processed once each, in the order they were reported
        for report in first[:INCIDENTS_PER_BATCH] + second[:INCIDENTS_PER_BATCH]:
            tally = one.repository.get(IncidentTally.create_id(report.data.incident_id))
            reports = [e for e in first + second if e.data.incident_id == report.data.incident_id]
            assert tally.processed == [(str(e.id), stream_sequence[str(e.id)]) for e in reports]

    # the killed node comes back on its own store and catches up with what it missed
    cluster.restart(leader)

    async def all_replicas_current() -> bool:
        try:
            state = await js.stream_info(STREAM_NAME)
        except (NatsError, TimeoutError):
            return False
        peers = state.cluster.replicas or []
        names = {state.cluster.leader, *(p.name for p in peers)}
        return leader.name in names and len(peers) == 2 and all(p.current and not p.offline for p in peers)

    await eventually(all_replicas_current, f"{leader.name} to catch up", WAIT, interval=POLL)
    assert (await js.stream_info(STREAM_NAME)).state.messages == len(first) + len(second)


async def node_stream_messages(node: ClusterNode) -> int | None:
    """How many CRISIS messages this node's own copy holds, from its monitoring endpoint (/jsz)."""
    url = f"http://{node.host}:{node.monitor_port}/jsz?accounts=true&streams=true"
    try:
        async with httpx.AsyncClient(timeout=2.0) as client:
            report = (await client.get(url)).json()
    except httpx.HTTPError:
        return None
    streams = [s for a in report.get("account_details", []) for s in a.get("stream_detail", [])]
    return next((s["state"]["messages"] for s in streams if s["name"] == STREAM_NAME), None)


async def test_a_node_changes_its_jetstream_key_by_resyncing_from_the_others(
    cluster: NatsCluster, nc: Any, js: Any
) -> None:
    """The runbook's JetStream key rotation: one node at a time, stopped, store wiped, started with its new key."""
    reports = [factories.incident_reported() for _ in range(20)]
    for report in reports:
        await publish_until_stored(js, report)
    node = cluster.nodes[0]

    node.stop()
    node.encryption_key = "rotated-jetstream-key-for-one-node"
    cluster.restart(node, wipe_store=True)

    async def resynced() -> bool:
        return await node_stream_messages(node) == len(reports)

    await eventually(resynced, f"{node.name} to re-sync the stream under its new key", WAIT, interval=POLL)
    # its copy is encrypted with the new key: nothing readable in its files
    address = reports[0].data.location.address.encode()
    assert not [path for path in node.store_dir.rglob("*") if path.is_file() and address in path.read_bytes()]
    # and it serves the stream: as its leader, it answers reads with every event
    await move_stream_leader(nc, js, node.name)
    assert [str(e.id) for _, e in await stream_events(js)] == [str(r.id) for r in reports]
