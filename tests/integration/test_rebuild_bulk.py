"""The rebuild's bulk writes (services/projections/adapters/sql_bulk_load.py) give the read models the live path
gives, over a stream whose incidents interleave across batches, with an event re-published after the stream's
de-duplication window (same event id, a new sequence) and an unreadable message: also when the writer's cache
forgets incidents mid-transaction (their queued rows are read back) and when the ids a replay keeps in memory run
out (the table answers from then on)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from itertools import zip_longest

import pytest

from services.contract.events import UnreadableMessage, decode_event
from services.projections.adapters import sql_bulk_load, sql_read_models
from services.projections.bootstrap import build_projections
from services.projections.rebuild import read_stream, replay_into
from services.projections.stream_reader import StreamReaderFailed
from services.runtime.clock import ManualClock
from services.runtime.stream import STREAM_NAME, publish_event
from tests.integration.test_projections import T0, Story, make_settings, team


async def publish_varied(js) -> int:
    """Four people, six incidents told a step each in turn, re-published and unreadable messages; the last sequence."""
    people = team()
    responders = [people["clinician"], people["coach"], people["nurse"]]
    stories = [Story(start=T0 + timedelta(minutes=4 * i), code=f"{3000 + i}") for i in range(6)]
    tellings = [
        story.full_response(responders[i % 3], ack=1, en_route=2, arrive=10 + i, done=40)
        for i, story in enumerate(stories[:4])
    ]
    tellings[0][3:3] = [stories[0].naloxone(5), stories[0].ems_arrived(8)]
    tellings[1][2:2] = [stories[1].escalated(3)]
    tellings.append([stories[4].reported(), stories[4].cancelled(5)])
    tellings.append([stories[5].reported(), *stories[5].offered(responders[0], 1)])
    events = [person.registered() for person in people.values()]
    events += [event for step in zip_longest(*tellings) for event in step if event is not None]
    sequence = 0
    for event in events[:20]:
        sequence = await publish_event(js, event)
    again = await js.get_msg(STREAM_NAME, sequence - 3)  # no Nats-Msg-Id: the stream stores it a second time
    await js.publish(again.subject, again.data)
    for event in events[20:]:
        sequence = await publish_event(js, event)
    await js.publish("crisis.incident.reported", b"not json")
    first = await js.get_msg(STREAM_NAME, 6)
    return (await js.publish(first.subject, first.data)).seq


async def apply_live(js, read_models) -> None:
    """As the live consumer applies the stream: decoded messages in batches of three (``handle_batch``)."""
    async for chunk in read_stream(js, batch=3):
        items = []
        for message in chunk:
            try:
                items.append((decode_event(message.data), message.sequence, message.stored_at))
            except UnreadableMessage:
                continue
        await asyncio.to_thread(read_models.handle_batch, items)


@pytest.mark.parametrize("reader", ["in process", "child process"])
@pytest.mark.parametrize("batch", [1, 4, 5000])
async def test_a_bulk_rebuild_equals_the_live_read_models(
    js, nats_server, tmp_path, database_url, monkeypatch, batch, reader
) -> None:
    """Also with the stream read by a child process, as ``python -m services.projections.rebuild`` reads it
    (stream_reader.py)."""
    url = nats_server.url if reader == "child process" else None
    last = await publish_varied(js)
    settings = make_settings(nats_server.url, tmp_path / "var", database_url)
    clock = ManualClock(T0 + timedelta(hours=2))
    with build_projections(settings, clock, name="live") as live:
        await apply_live(js, live)
        expected = await asyncio.to_thread(live.store.dump)
    ids = {row["event_id"] for row in expected["timeline"]}
    assert len(ids) == len(expected["timeline"]) > 40  # the re-published events are on it once
    assert len(expected["incidents"]) == 6 and len(expected["responders"]) == 4
    with build_projections(settings, clock, name="rebuilt") as rebuilt:
        result = await replay_into(js, rebuilt, reset=True, batch=batch, nats_url=url)
        assert result.position == last and result.skipped == 1
        assert await asyncio.to_thread(rebuilt.store.dump) == expected
        # the writer's cache keeps two incidents (queued rows are read back), the replay at most 12 ids in memory
        monkeypatch.setattr(sql_read_models, "CACHE_INCIDENTS", 2)
        monkeypatch.setattr(sql_bulk_load, "KNOWN_IDS_LIMIT", 12)
        rebuilt.store.forget()
        result = await replay_into(js, rebuilt, reset=True, batch=batch, nats_url=url)
        assert result.position == last and result.skipped == 1
        assert await asyncio.to_thread(rebuilt.store.dump) == expected


async def test_a_child_reader_that_fails_stops_the_rebuild_with_its_reason(js, nats_server, tmp_path) -> None:
    """A child that cannot read (here: an address it cannot use) is an error naming what it said, and the read
    models keep their position: never a replay that looks complete and is not."""
    await publish_varied(js)
    closed = "nats://127.0.0.1:not-a-port"
    settings = make_settings(nats_server.url, tmp_path / "var", "")
    with build_projections(settings, ManualClock(T0), name="rebuilt") as rebuilt:
        with pytest.raises(StreamReaderFailed, match="stopped early") as failure:
            await replay_into(js, rebuilt, reset=True, nats_url=closed)
        assert "Error" in str(failure.value)  # the child's own traceback, not just an exit code
        assert rebuilt.processed_position() == 0
