"""A dispatcher restarted on a store with history: restored from the roster snapshot, then only the log after it.

The snapshot is a cache of folding the log, so a restart from it must fire exactly what a restart that folds the
whole log fires; a snapshot behind the log is caught up; one that is unreadable or of another version is ignored.
Time is a ManualClock; each test runs on SQLite and on PostgreSQL.
"""

# ruff: noqa: F811 - the fixture settings is imported from tests/support/dispatch_harness.py
from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID, uuid4

import psycopg
import pytest
from eventsourcing.cipher import AESCipher
from nats.js.errors import NotFoundError

from services.contract.events import Envelope, IncidentCancelled, IncidentCancelledData, new_event
from services.dispatcher import roster_cache
from services.dispatcher.adapters.roster_snapshot import SqlRosterSnapshots
from services.dispatcher.application import Dispatcher
from services.dispatcher.bootstrap import build
from services.dispatcher.roster_cache import SavedSnapshot, snapshot_version
from services.dispatcher.settings import DispatcherSettings
from services.runtime.clock import ManualClock
from services.runtime.stream import STREAM_NAME
from tests import dispatch_factories as f
from tests.factories import T0
from tests.support.dispatch_harness import Harness, of, settings  # noqa: F401
from tests.support.stream import eventually

REPO = Path(__file__).resolve().parents[2]
FOLDED = (
    "position", "roster", "record_ids", "by_phone", "rotations", "shifts", "overrides", "open_incidents", "deadlines"
)  # fmt: skip


class Story:
    """A roster, and incidents in every state: completed, cancelled, open with pages waiting for an answer."""

    def __init__(self, harness: Harness) -> None:
        self.harness = harness
        self.people = [f.responder(home=(39.744 + i / 100, -104.988)) for i in range(4)]
        self.people.append(f.responder("supervisor", skills=("licensed_clinician",)))
        harness.feed(*(f.registered(p) for p in self.people), *(f.rotation([p.responder_id]) for p in self.people))
        self.completed = self.report("1001")
        offered = of(self.offers, "dispatch.offered")
        accepting = next(p for p in self.people if p.responder_id == offered[0].data.responder_id)
        harness.reply(accepting.phone, "Y 1001")
        harness.reply(accepting.phone, "done 1001")
        self.cancelled = self.report("1002")
        harness.feed(cancelled(self.cancelled))
        self.open = [self.report("1003"), self.report("1004", priority="P2")]

    def report(self, code: str, priority: str = "P1") -> UUID:
        needs = ("naloxone_carrier",) if priority == "P2" else ("naloxone_carrier", "ems_now")
        reported = f.incident("overdose" if priority == "P1" else "withdrawal", priority, needs, short_code=code)
        self.offers = self.harness.feed(reported)
        return reported.data.incident_id


def cancelled(incident_id: UUID) -> Envelope:
    data = IncidentCancelledData(incident_id=incident_id, reason="duplicate report")
    return new_event(
        IncidentCancelled, data, event_id=uuid4(), occurred_at=T0, producer="tests", incident_id=incident_id
    )


def folded(app: Dispatcher) -> dict[str, Any]:
    state = {name: getattr(app.known, name) for name in FOLDED}
    state["index"] = app.known.index.placed
    return state


def snapshot_store(app: Dispatcher) -> SqlRosterSnapshots:
    store = app.known.snapshots
    assert isinstance(store, SqlRosterSnapshots)
    return store


def forget_snapshot(app: Dispatcher) -> None:
    store = snapshot_store(app)
    with store.datastore.transaction(commit=True) as cursor:
        cursor.execute(f"DELETE FROM {store.table}")


def overwrite_snapshot(app: Dispatcher, snapshot: SavedSnapshot) -> None:
    forget_snapshot(app)
    snapshot_store(app).save(snapshot)


def fired(harness: Harness, seconds: float) -> list[tuple[str, UUID | None, str | None]]:
    """What moving the clock fires, by type, incident and recipient (ids of new pages differ between stores)."""
    return sorted(
        ((e.type, e.incident_id, getattr(e.data, "to", None)) for e in harness.tick(seconds)),
        key=lambda fire: (fire[0], str(fire[1]), fire[2] or ""),
    )


@pytest.fixture
def with_store(settings: DispatcherSettings, database_url: str) -> DispatcherSettings:
    return settings.model_copy(update={"database_url": database_url})


@pytest.fixture
def copy_store(tmp_path: Path) -> Iterator[Callable[[DispatcherSettings], DispatcherSettings]]:
    """Copies a closed store (the SQLite directory, or the PostgreSQL database as a template) for a second run."""
    databases: list[tuple[str, str]] = []  # (server, database) to drop afterwards

    def copy(settings: DispatcherSettings) -> DispatcherSettings:
        if not settings.database_url:
            copied = tmp_path / "copy"
            shutil.copytree(settings.var_dir, copied)
            return settings.model_copy(update={"var_dir": copied})
        parts = urlsplit(settings.database_url)
        server = urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, ""))
        name = f"crisis_copy_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{parts.path.lstrip("/")}"')
        databases.append((server, name))
        return settings.model_copy(update={"database_url": urlunsplit((*parts[:2], f"/{name}", parts.query, ""))})

    yield copy
    for server, name in databases:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_restart_from_the_snapshot_fires_what_folding_the_whole_log_fires(with_store, copy_store) -> None:
    clock = ManualClock(T0)
    with build(with_store, clock) as app:
        story = Story(Harness(app, clock))
        app.catch_up()
        app.known.save_snapshot()
        story.open.append(story.report("1005"))  # after the snapshot: only the log after it tells of this one
        sequence = story.harness.sequence
    copied = copy_store(with_store)
    with build(copied, clock) as unsnapshotted:
        forget_snapshot(unsnapshotted)
    clock_a, clock_b = ManualClock(T0), ManualClock(T0)
    with build(with_store, clock_a) as restored, build(copied, clock_b) as refolded:
        assert restored.known.saved_position > 0 and refolded.known.saved_position == 0
        assert folded(restored) == folded(refolded)
        assert set(restored.known.deadlines) == set(story.open)
        from_snapshot = Harness(restored, clock_a).resume(restored, sequence)
        from_log = Harness(refolded, clock_b).resume(refolded, sequence)
        first = fired(from_snapshot, 30)
        assert first == fired(from_log, 30)
        p1_reminders = {story.open[0], story.open[2]}  # the P2's first deadline is later; closed ones have none
        assert {incident for _, incident, _ in first} == p1_reminders
        later = fired(from_snapshot, 600)
        assert later == fired(from_log, 600)
        assert {incident for kind, incident, _ in later if kind == "dispatch.timed_out"} == set(story.open)


def test_a_snapshot_behind_the_log_is_caught_up(with_store) -> None:
    clock = ManualClock(T0)
    with build(with_store, clock) as app:
        harness = Harness(app, clock)
        story = Story(harness)
        app.catch_up()
        app.known.save_snapshot()
        snapshot_at = app.known.position
        newcomer = f.responder(home=(39.7431, -104.9876))
        harness.feed(f.registered(newcomer), f.rotation([newcomer.responder_id]))
        harness.feed(cancelled(story.open[0]))
        late = story.report("1006")
        stored = app.recorder.max_notification_id()
    with build(with_store, clock) as restarted:
        assert restarted.known.saved_position == snapshot_at < stored == restarted.known.position
        assert newcomer.responder_id in restarted.known.roster
        assert newcomer.responder_id in restarted.known.on_call("central", T0)
        assert restarted.known.by_phone[newcomer.phone] == newcomer.responder_id
        assert set(restarted.known.deadlines) == {story.open[1], late}


@pytest.mark.parametrize("damage", ["other version", "not json", "missing field"])
def test_an_unreadable_or_other_version_snapshot_is_ignored_and_the_log_folded(with_store, damage) -> None:
    clock = ManualClock(T0)
    with build(with_store, clock) as app:
        story = Story(Harness(app, clock))
        app.catch_up()
        app.known.save_snapshot()
        good = snapshot_store(app).load()
        assert good is not None and good.version == snapshot_version()
        damaged = {
            "other version": good._replace(version="0:an-older-shape", state=good.state.replace("1", "2")),
            "not json": good._replace(state=good.state[: len(good.state) // 2]),
            "missing field": good._replace(state=good.state.replace('"open_incidents"', '"open_old"')),
        }[damage]
        overwrite_snapshot(app, damaged)
        expected = folded(app)
    with build(with_store, clock) as restarted:
        assert restarted.known.saved_position == 0  # nothing restored: everything folded from the log
        assert folded(restarted) == expected
        assert set(restarted.known.deadlines) == set(story.open)


def test_closed_incidents_are_not_in_the_deadline_index_even_from_a_stale_snapshot(with_store) -> None:
    clock = ManualClock(T0)
    with build(with_store, clock) as app:
        harness = Harness(app, clock)
        story = Story(harness)
        app.catch_up()
        assert set(app.known.deadlines) == set(story.open)
        app.known.save_snapshot()
        saved = snapshot_store(app).load()
        assert saved is not None
        # a snapshot that claims the closed incidents and one never stored are open (as a snapshot written by an
        # older version might): restoring reads each open incident again, and keeps only what is open
        claimed = [story.completed, story.cancelled, uuid4()]
        stale = saved.state.replace('"open_incidents":[', '"open_incidents":[' + "".join(f'"{i}",' for i in claimed))
        assert stale != saved.state
        overwrite_snapshot(app, saved._replace(state=stale))
    with build(with_store, clock) as restarted:
        assert restarted.known.saved_position == saved.position  # restored, not folded
        assert set(restarted.known.deadlines) == restarted.known.open_incidents == set(story.open)
        harness = Harness(restarted, clock).resume(restarted, harness.sequence)
        assert {e.incident_id for e in harness.tick(600)} == set(story.open)


def test_a_running_dispatcher_saves_its_snapshot_as_it_folds(with_store, monkeypatch) -> None:
    """Every ``SNAPSHOT_EVERY`` notifications folded, without a clean stop: a crash leaves a snapshot at most that
    far behind the log."""
    monkeypatch.setattr(roster_cache, "SNAPSHOT_EVERY", 20)
    clock = ManualClock(T0)
    with build(with_store, clock) as app:
        harness = Harness(app, clock)
        Story(harness)
        assert app.known.saved_position > 0
        assert app.known.position - app.known.saved_position < 20  # checked after every fold
        saved = snapshot_store(app).load()
        assert saved is not None and saved.position == app.known.saved_position
    with build(with_store, clock) as restarted:
        assert restarted.known.saved_position >= saved.position  # restored, the rest folded from the log


async def test_a_dispatcher_process_stopped_cleanly_saves_its_snapshot_at_the_end_of_the_log(
    js, nats_server, tmp_path
) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CRISIS_")}
    environment |= {
        "CRISIS_NATS_URL": nats_server.url,
        "CRISIS_VAR_DIR": str(tmp_path),
        "CRISIS_DISPATCHER_OPS_PORT": "0",
    }
    # with no responders the dispatcher publishes the demo roster, and then consumes it
    process = subprocess.Popen([sys.executable, "-m", "services.dispatcher"], cwd=REPO, env=environment)
    try:

        async def took_in_the_roster() -> bool:
            with contextlib.suppress(NotFoundError):
                info = await js.consumer_info(STREAM_NAME, "dispatcher")
                return info.ack_floor.stream_seq > 0 and not info.num_pending and not info.num_ack_pending
            return False

        await eventually(took_in_the_roster, "the dispatcher to take in the demo roster")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            exit_code = await asyncio.to_thread(process.wait, 30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert exit_code == 0  # stopped cleanly
    settings = DispatcherSettings(var_dir=tmp_path, roster_seed_file=None)
    with build(settings, ManualClock(T0)) as restarted:
        assert restarted.known.roster
        assert restarted.known.saved_position == restarted.recorder.max_notification_id()


def test_an_encrypted_store_keeps_an_encrypted_snapshot_and_restarts_from_it(with_store) -> None:
    encrypted = with_store.model_copy(update={"cipher_key": AESCipher.create_key(16)})
    clock = ManualClock(T0)
    with build(encrypted, clock) as app:
        story = Story(Harness(app, clock))
        app.catch_up()
        app.known.save_snapshot()
        expected = folded(app)
        store = snapshot_store(app)
        with store.datastore.transaction(commit=False) as cursor:
            cursor.execute(f"SELECT state FROM {store.table}")
            stored = cursor.fetchone()["state"]
        assert not any(person.phone in stored or person.name in stored for person in story.people)
    with build(encrypted, clock) as restarted:
        assert restarted.known.saved_position == expected["position"]  # restored, not folded
        assert folded(restarted) == expected


def test_what_the_dispatcher_stores_is_folded_from_the_aggregates_in_hand_as_a_fold_of_the_log_would(
    with_store, monkeypatch
) -> None:
    """Issue 16: after each message (and each deadline fired) the cache is already at the end of the log, folded from
    the aggregates just saved, so ``catch_up`` reads no aggregate back; and it equals a fold of the whole log."""
    clock = ManualClock(T0)
    with build(with_store, clock) as app:
        harness = Harness(app, clock)
        Story(harness)
        harness.tick(95)  # deadlines fired: their saves are folded too
        harness.feed(f.incident("overdose", "P1", ("naloxone_carrier",), short_code="1005"))  # the last: a message
        assert app.known.position == app.recorder.max_notification_id()

        def no_reading_back(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("catch_up read an aggregate back from the store")

        monkeypatch.setattr(app.repository, "get", no_reading_back)
        app.catch_up()
        monkeypatch.undo()
        in_hand = folded(app)
        forget_snapshot(app)
    with build(with_store, clock) as refolded:  # no snapshot: the whole log folded from the store
        assert folded(refolded) == in_hand


def test_what_does_not_directly_follow_the_folded_position_is_left_to_catch_up() -> None:
    """Stored by another instance in between (or a gap after a failed transaction): not folded from the aggregates in
    hand, nothing changed; the next ``catch_up`` reads it from the store."""
    cache = roster_cache.RosterCache(position=5)
    aggregate_id = uuid4()

    def recording(notification_id: int) -> Any:
        return SimpleNamespace(
            notification=SimpleNamespace(id=notification_id), domain_event=SimpleNamespace(originator_id=aggregate_id)
        )

    assert not cache.fold_stored([recording(7), recording(8)], {aggregate_id: object()})  # 6 is someone else's
    assert not cache.fold_stored([recording(6), recording(8)], {aggregate_id: object()})  # a gap
    assert not cache.fold_stored([recording(6)], {})  # the aggregate not in hand
    assert not cache.fold_stored([], {})
    assert cache.position == 5
    assert cache.fold_stored([recording(6), recording(7)], {aggregate_id: object()})  # an aggregate it does not keep
    assert cache.position == 7
