"""crisis-rotate-key on real stores (SQLite files and PostgreSQL): the services' own applications write under
key A; after the rotation they open under key B and read the same state, key A opens nothing, an interrupted
rotation finishes when run again, and a wrong old key changes nothing."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import MapperDeserialisationError

from services.dispatcher.adapters.roster_snapshot import roster_snapshots
from services.dispatcher.bootstrap import build as build_dispatcher
from services.dispatcher.settings import DispatcherSettings
from services.notifier.bootstrap import build as build_notifier
from services.notifier.settings import NotifierSettings
from services.projections.bootstrap import build_desk, build_projections
from services.projections.settings import ProjectionsSettings
from services.runtime.clock import ManualClock
from services.runtime.consumer import dead_letter_event
from services.runtime.key_rotation import RotationRefused, aes_cipher, main, open_databases, rotate
from services.runtime.settings import RuntimeSettings
from tests.integration.test_projections import T0, Story, team

KEY_A = "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="  # 32 bytes of "A": test only
KEY_B = "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI="
KEY_C = "Q0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0M="


class Interrupted(Exception):
    pass


SERVICES = ("dispatcher", "notifier", "projections", "followups")


def open_services(
    var_dir: Path, database_url: str, key: str, stack: ExitStack, names: tuple[str, ...] = SERVICES
) -> dict[str, Any]:
    """The stores, opened by the services' own wiring, as each service would open them."""
    common = {"var_dir": var_dir, "database_url": database_url, "cipher_key": key}
    clock = ManualClock(T0)
    projections = ProjectionsSettings(**common)
    builders = {
        "dispatcher": lambda: build_dispatcher(DispatcherSettings(**common), clock),
        "notifier": lambda: build_notifier(NotifierSettings(**common), clock),
        "projections": lambda: build_projections(projections, clock),
        "followups": lambda: build_desk(projections, clock),
    }
    apps = {}
    for name in names:
        apps[name] = builders[name]()
        stack.callback(apps[name].close)
    return apps


def fill(apps: dict[str, Any]) -> None:
    """Real traffic: roster and incidents into every processor, the desk's own events into the read models."""
    people = team()
    story = Story()
    events = [*(p.registered() for p in people.values()), *story.full_response(people["coach"], 1, 2, 20, 40)]
    for sequence, event in enumerate(events, start=1):
        for name in SERVICES:
            apps[name].handle(event, sequence)
    desk = apps["followups"]
    sequence = len(events)
    for notification in desk.recorder.select_notifications(start=1, limit=1000):
        for event in desk.outbox(desk.mapper.to_domain_event(notification)):
            sequence += 1
            apps["projections"].handle(event, sequence)
    # a dead letter's reason and message are sealed too
    reason = "ValueError: cannot route 17 Secret Lane"
    dead = dead_letter_event("dispatcher", reason, 3, "crisis.incident.reported", events[-1].to_json(), T0)
    apps["projections"].handle(dead, sequence + 1)
    apps["dispatcher"].known.save_snapshot()  # the roster snapshot (issue 16) is encrypted with the same cipher
    for name in ("dispatcher", "followups"):  # snapshots are encrypted too
        app = apps[name]
        originators = {n.originator_id for n in app.recorder.select_notifications(start=1, limit=1000)}
        for originator_id in sorted(originators, key=str)[:3]:
            app.take_snapshot(originator_id)


def state_of(app: Any) -> tuple[list, list]:
    """Every event and every snapshot in one application's store, decrypted."""
    notifications = app.recorder.select_notifications(start=1, limit=100000)
    events = [app.mapper.to_domain_event(n) for n in notifications]
    ids = sorted({e.originator_id for e in events}, key=str)
    snapshots = [s for i in ids for s in app.snapshots.get(i)] if app.snapshots else []
    return events, snapshots


def state(apps: dict[str, Any]) -> dict[str, Any]:
    """Everything the stores hold, decrypted: every event, every snapshot, every read-model row."""
    result: dict[str, Any] = {name: state_of(app) for name, app in apps.items()}
    result["read_models"] = apps["projections"].store.dump()
    if "dispatcher" in apps:  # the roster snapshot as the next start would restore it (None: it would not open)
        saved = roster_snapshots(apps["dispatcher"]).load()
        result["roster_snapshot"] = saved.position if saved else None
    return result


def raw_digest(settings: RuntimeSettings) -> str:
    """A digest of every encrypted value as stored (to show that nothing changed)."""
    digest = hashlib.sha256()
    databases = open_databases(settings)
    try:
        for database in databases:
            for column in database.encrypted_columns():
                with database.transaction() as cursor:
                    for row in database.page(column, None, 10**9, cursor):
                        digest.update(repr(row[:-1]).encode() + column.stored(row[-1]))
    finally:
        for database in databases:
            database.close()
    return digest.hexdigest()


def settings_for(var_dir: Path, database_url: str) -> RuntimeSettings:
    return RuntimeSettings(var_dir=var_dir, database_url=database_url)


def test_rotation_re_encrypts_every_store_and_can_be_interrupted_and_re_run(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    var_dir = tmp_path / "var"
    with ExitStack() as stack:
        apps = open_services(var_dir, database_url, KEY_A, stack)
        fill(apps)
        before = state(apps)
    assert all(before[name][0] for name in ("dispatcher", "notifier", "followups"))  # the read models hold no events
    assert before["dispatcher"][1] and before["followups"][1], "snapshots were taken"
    assert before["roster_snapshot"], "the dispatcher saved its roster snapshot"
    assert before["read_models"]["timeline"] and before["read_models"]["tasks"]
    assert [d["body"]["reason"] for d in before["read_models"]["dead_letters"]] == [
        "ValueError: cannot route 17 Secret Lane"
    ]
    settings = settings_for(var_dir, database_url)
    sealed = raw_digest(settings)

    # a wrong old key: refused during the reading pass, not one byte changed
    databases = open_databases(settings)
    try:
        with pytest.raises(RotationRefused) as refused:
            rotate(databases, KEY_C, KEY_B, batch_rows=3)
        columns = {column for database in databases for column in database.encrypted_columns()}
    finally:
        for database in databases:
            database.close()
    assert raw_digest(settings) == sealed
    tables = {column.table for column in columns}
    assert {"projections_rm_timeline", "projections_rm_tasks", "projections_rm_dead_letters"} <= tables
    if database_url:
        expected = {"dispatcher_events", "dispatcher_snapshots", "notifier_events", "readmodels_events"}
        expected |= {"dispatcher_roster_snapshot"}
        assert expected | {"followupdesk_events", "followupdesk_snapshots"} <= tables
    else:
        assert {"stored_events", "stored_snapshots", "stored_roster_snapshot"} <= tables
        assert {c.database for c in columns} == {
            f"{n}.sqlite" for n in ("dispatcher", "notifier", "projections", "followups")
        }
    assert refused.value.problems

    # interrupted after the first committed batch: values are now under either key
    def interrupt(column: Any, rows: int) -> None:
        raise Interrupted

    databases = open_databases(settings)
    try:
        with pytest.raises(Interrupted):
            rotate(databases, KEY_A, KEY_B, batch_rows=3, after_batch=interrupt)
        half = rotate(databases, KEY_A, KEY_B, check_only=True)
    finally:
        for database in databases:
            database.close()
    assert 0 < half.total("already_new") < half.total("rows")

    # run again, through the command with key files: it finishes
    (tmp_path / "old.key").write_text(KEY_A + "\n")
    (tmp_path / "new.key").write_text(KEY_B)
    monkeypatch.setenv("CRISIS_VAR_DIR", str(var_dir))
    monkeypatch.setenv("CRISIS_DATABASE_URL", database_url)
    assert main(["--old-key-file", str(tmp_path / "old.key"), "--new-key-file", str(tmp_path / "new.key")]) == 0
    assert raw_digest(settings) != sealed

    # a third run finds nothing to do (python -m, keys from the environment)
    environment = os.environ | {"CRISIS_CIPHER_KEY": KEY_A, "CRISIS_NEW_CIPHER_KEY": KEY_B}
    again = subprocess.run(
        [sys.executable, "-m", "services.runtime.key_rotation"], env=environment, capture_output=True, text=True
    )
    assert again.returncode == 0, again.stderr
    assert "re-encrypted 0 of" in again.stdout

    # the services open with key B and read exactly what they had; key A opens nothing
    with ExitStack() as stack:
        after = state(open_services(var_dir, database_url, KEY_B, stack))
    assert after == before
    for name in SERVICES:  # each fails to start, or to read what it stored
        with ExitStack() as stack, pytest.raises((ValueError, MapperDeserialisationError)):
            app = open_services(var_dir, database_url, KEY_A, stack, (name,))[name]
            app.store.dump() if name == "projections" else state_of(app)


def test_a_row_no_key_opens_stops_the_rotation_before_anything_changes(tmp_path: Path) -> None:
    var_dir = tmp_path / "var"
    with ExitStack() as stack:
        fill(open_services(var_dir, "", KEY_A, stack))
    # one value sealed under a third key (as a service started with the wrong key would have written it)
    with sqlite3.connect(var_dir / "notifier.sqlite") as connection:
        foreign = aes_cipher(KEY_C).encrypt(b"{}")
        connection.execute(
            "UPDATE stored_events SET state = ? WHERE rowid = (SELECT MIN(rowid) FROM stored_events)", (foreign,)
        )
    settings = settings_for(var_dir, "")
    sealed = raw_digest(settings)
    databases = open_databases(settings)
    try:
        with pytest.raises(RotationRefused) as refused:
            rotate(databases, KEY_A, KEY_B)
    finally:
        for database in databases:
            database.close()
    assert raw_digest(settings) == sealed
    assert [p.split(":")[0] for p in refused.value.problems] == ["notifier.sqlite"]


def test_the_read_models_keep_no_crisis_kind_task_rule_or_staff_name_in_clear(tmp_path: Path) -> None:
    """projections.sqlite: what happened (an overdose) and in which zone, what is followed up and who works here are
    sealed; the read side still answers with them, sorted by name, and a rotation re-encrypts them (the test
    above)."""
    var_dir = tmp_path / "var"
    people, story = team(), Story()
    with ExitStack() as stack:
        apps = open_services(var_dir, "", KEY_A, stack, ("projections", "followups"))
        events = [*(p.registered() for p in people.values()), story.reported()]
        for sequence, event in enumerate(events, start=1):
            apps["followups"].handle(event, sequence)
            apps["projections"].handle(event, sequence)
        desk = apps["followups"]
        for notification in desk.recorder.select_notifications(start=1, limit=1000):
            for event in desk.outbox(desk.mapper.to_domain_event(notification)):
                sequence += 1
                apps["projections"].handle(event, sequence)
        store = apps["projections"].store
        [incident] = store.incidents()
        rules = {task["rule"] for task in store.tasks()}
        names = [row["name"] for row in store.responders()]
        opened = store.incident(UUID(incident["incident_id"]))
    assert incident["kind"] == "overdose" and opened is not None and opened["kind"] == "overdose"
    assert incident["zone"] == opened["zone"] == story.reported().data.zone and incident["zone"]
    assert rules and all("overdose" in rule for rule in rules)
    assert names == sorted(person.name for person in people.values())
    stored = b"".join(path.read_bytes() for path in var_dir.glob("projections.sqlite*"))
    for clear in [b"overdose", incident["zone"].encode(), *(r.encode() for r in rules), *(n.encode() for n in names)]:
        assert clear not in stored, clear
