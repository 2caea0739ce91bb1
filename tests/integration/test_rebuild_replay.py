"""The rebuild's replay (services/projections/rebuild.py): batches written while the next is read, without waiting
for each commit to reach the disk, and made durable at the end. A replay that fails keeps whole batches with their
position, and the next one carries on from there to the same read models as a replay that never failed."""

from __future__ import annotations

import asyncio
import gc
from datetime import timedelta

import pytest
from eventsourcing.persistence import PersistenceError

from services.projections.bootstrap import build_projections
from services.projections.rebuild import replay_into
from services.runtime.clock import ManualClock
from services.runtime.stream import publish_event
from tests.integration.test_projections import T0, Story, make_settings, team


async def publish_history(js) -> int:
    """Four people and six incidents' whole responses; the stream's last sequence."""
    people = team()
    events = [person.registered() for person in people.values()]
    responders = [people["clinician"], people["coach"], people["nurse"]]
    for index in range(6):
        story = Story(start=T0 + timedelta(minutes=9 * index), code=f"{2000 + index}")
        events += story.full_response(responders[index % 3], ack=1, en_route=3, arrive=20, done=60)
    sequence = 0
    for event in events:
        sequence = await publish_event(js, event)
    return sequence


def synchronous_level(read_models) -> int | None:
    """SQLite's synchronous level on a pooled writer connection (None on PostgreSQL)."""
    store = read_models.store
    if not store.sqlite:
        return None
    with store.datastore.get_connection(commit=True) as connection:
        return connection._sqlite_conn.execute("PRAGMA synchronous").fetchone()[0]


async def test_an_interrupted_replay_keeps_whole_batches_and_the_next_carries_on(
    js, nats_server, tmp_path, database_url
) -> None:
    last = await publish_history(js)
    settings = make_settings(nats_server.url, tmp_path / "var", database_url)
    clock = ManualClock(T0 + timedelta(hours=2))
    with build_projections(settings, clock, name="whole") as whole:
        level = synchronous_level(whole)
        thresholds = gc.get_threshold()
        result = await replay_into(js, whole, reset=True, batch=5)
        assert result.events == last and result.skipped == 0 and result.position == last
        expected = await asyncio.to_thread(whole.store.dump)
        assert synchronous_level(whole) == level  # the bulk load's level does not outlive it
        assert gc.get_threshold() == thresholds
    with build_projections(settings, clock, name="interrupted") as interrupted:
        apply_batch = interrupted.apply_batch
        applied: list[int] = []

        def failing_third(batch) -> None:
            if len(applied) == 2:
                raise PersistenceError("the disk went away")
            apply_batch(batch)
            applied.append(batch[-1].sequence)

        interrupted.apply_batch = failing_third  # type: ignore[method-assign]
        with pytest.raises(PersistenceError):
            await replay_into(js, interrupted, reset=True, batch=5)
        assert applied == [5, 10] and interrupted.processed_position() == 10
        assert synchronous_level(interrupted) == level
        assert gc.get_threshold() == thresholds
        interrupted.apply_batch = apply_batch  # type: ignore[method-assign]
        result = await replay_into(js, interrupted, reset=False, batch=5)
        assert result.events == last - 10 and result.position == last
        assert await asyncio.to_thread(interrupted.store.dump) == expected
    assert len(expected["timeline"]) > 40 and len(expected["responders"]) == 4
