"""The roster cache's snapshot: what is saved comes back the same, and a snapshot that can't be trusted is ignored.

On a real SQLite table (the adapter the dispatcher uses); the restarts themselves are in
tests/integration/test_dispatcher_restart.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest
from eventsourcing.application import Application
from eventsourcing.cipher import AESCipher
from eventsourcing.sqlite import SQLiteDatastore
from eventsourcing.utils import Environment

from services.dispatcher.adapters.roster_snapshot import SqlRosterSnapshots
from services.dispatcher.domain.roster import ResponderView
from services.dispatcher.domain.schedule import Rotation, Window
from services.dispatcher.roster_cache import RosterCache, SavedSnapshot, snapshot_version
from tests.factories import fake_phone

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
FOLDED = ("position", "roster", "record_ids", "by_phone", "rotations", "shifts", "overrides", "open_incidents")


@pytest.fixture
def store(tmp_path: Path) -> SqlRosterSnapshots:
    snapshots = SqlRosterSnapshots(
        SQLiteDatastore(str(tmp_path / "dispatcher.sqlite")), "roster_snapshot", postgres=False
    )
    snapshots.create_table()
    return snapshots


@pytest.fixture
def repository():
    """An empty store's repository: restoring reads the open incidents again, and finds none here."""
    return Application().repository


def view(**state) -> ResponderView:
    return ResponderView(uuid4(), "Generated", "clinician", fake_phone(), (39.74, -104.99), **state)


def filled(store: SqlRosterSnapshots) -> RosterCache:
    cache = RosterCache(position=1234, snapshots=store)
    supervisor = view(skills=frozenset({"licensed_clinician"}), languages=("es", "en"), zones=frozenset({"central"}))
    people = [
        supervisor,
        view(supervisor_id=supervisor.responder_id, reported_location=(39.75, -104.98), reported_at=NOW, load=1),
        view(active=False, available=False, opted_out=True),
    ]
    for person in people:
        cache.roster[person.responder_id] = person
        cache.record_ids[person.responder_id] = uuid4()
        if person.active:
            cache.by_phone[person.phone] = person.responder_id
            cache.index.place(person)
    cache.rotations = [
        Rotation.from_spec(
            {
                "rotation_id": uuid4(),
                "zones": ["central"],
                "time_zone": "America/Denver",
                "handoff_time": "08:00",
                "shift": "weekly",
                "handoff_weekday": "monday",
                "start_date": "2026-01-05",
                "participants": [people[0].responder_id, people[1].responder_id],
            }
        )
    ]
    cache.shifts = [Window(people[1].responder_id, frozenset({"north"}), NOW, NOW + timedelta(hours=8))]
    cache.overrides = [
        Window(people[0].responder_id, frozenset({"central"}), NOW, NOW + timedelta(hours=2), people[1].responder_id)
    ]
    return cache


def test_a_saved_cache_comes_back_the_same(store, repository) -> None:
    cache = filled(store)
    cache.save_snapshot()
    restored = RosterCache(snapshots=store)
    assert restored.restore(repository)
    assert {name: getattr(restored, name) for name in FOLDED} == {name: getattr(cache, name) for name in FOLDED}
    assert restored.index.placed == cache.index.placed  # rebuilt from the active responders, not saved
    assert restored.saved_position == cache.position
    for at in (NOW, NOW + timedelta(hours=3), NOW + timedelta(days=8)):
        for zone in (None, "central", "north"):
            assert restored.on_call(zone, at) == cache.on_call(zone, at)


def test_an_open_incident_the_store_does_not_have_is_not_restored(store, repository) -> None:
    cache = filled(store)
    cache.open_incidents.add(uuid4())
    cache.deadlines[next(iter(cache.open_incidents))] = NOW
    cache.save_snapshot()
    restored = RosterCache(snapshots=store)
    assert restored.restore(repository)
    assert restored.open_incidents == set() and restored.deadlines == {}


@pytest.mark.parametrize(
    "damaged",
    [
        lambda good: good._replace(version="0:an-older-shape"),
        lambda good: good._replace(state="not json"),
        lambda good: good._replace(state=good.state.replace('"overrides"', '"overrides_renamed"')),
        lambda good: good._replace(state=good.state.replace('"load":1', '"load":"plenty"')),
    ],
    ids=["other version", "not json", "missing field", "wrong type"],
)
def test_a_snapshot_that_cannot_be_trusted_is_ignored(store, repository, damaged) -> None:
    filled(store).save_snapshot()
    good = store.load()
    assert good is not None and good.version == snapshot_version()
    store.save(damaged(good))
    fresh = RosterCache(snapshots=store)
    assert not fresh.restore(repository)
    assert fresh.position == 0 and fresh.roster == {} and fresh.saved_position == 0


def test_no_snapshot_and_no_store_restore_nothing(store, repository) -> None:
    assert not RosterCache(snapshots=store).restore(repository)
    assert not RosterCache().restore(repository)
    RosterCache(position=10).save_snapshot()  # without a store: nothing to save to, and no error


def test_a_save_never_replaces_a_snapshot_further_along_the_log(store) -> None:
    version = snapshot_version()
    store.save(SavedSnapshot(version, 200, "{}"))
    store.save(SavedSnapshot(version, 100, "{}"))  # an instance that is behind saves late
    assert store.load() == SavedSnapshot(version, 200, "{}")
    store.save(SavedSnapshot("another", 200, "{}"))  # a new version at the same position replaces it
    assert store.load() == SavedSnapshot("another", 200, "{}")
    store.save(SavedSnapshot(version, 300, "{}"))
    assert store.load() == SavedSnapshot(version, 300, "{}")


def test_a_snapshot_is_saved_only_when_something_was_folded_since(store) -> None:
    cache = filled(store)
    cache.save_snapshot()
    store.save(SavedSnapshot("marker", cache.position, "{}"))
    cache.save_snapshot()  # nothing new folded: the row is left as it is
    assert store.load() == SavedSnapshot("marker", cache.position, "{}")
    cache.position += 1
    cache.save_snapshot()
    saved = store.load()
    assert saved is not None and saved.version == snapshot_version() and saved.position == cache.position


def test_with_the_store_encrypted_the_snapshot_is_too_and_another_key_cannot_open_it(tmp_path, repository) -> None:
    datastore = SQLiteDatastore(str(tmp_path / "encrypted.sqlite"))
    encrypted = SqlRosterSnapshots(datastore, "roster_snapshot", postgres=False, cipher=aes(AESCipher.create_key(16)))
    encrypted.create_table()
    cache = filled(encrypted)
    cache.save_snapshot()
    with datastore.transaction(commit=False) as cursor:
        cursor.execute("SELECT state FROM roster_snapshot")
        stored = cursor.fetchone()["state"]
    assert all(view.phone not in stored and view.name not in stored for view in cache.roster.values())
    restored = RosterCache(snapshots=encrypted)
    assert restored.restore(repository) and restored.roster == cache.roster
    rotated = SqlRosterSnapshots(datastore, "roster_snapshot", postgres=False, cipher=aes(AESCipher.create_key(16)))
    assert rotated.load() is None  # another key (after a key rotation): as if there were none
    assert not RosterCache(snapshots=rotated).restore(repository)


def aes(key: str) -> AESCipher:
    return AESCipher(Environment(env={"CIPHER_KEY": key}))
