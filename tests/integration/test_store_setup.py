"""Services sharing one PostgreSQL database all create eventsourcing's tables and functions when they start;
started at the same moment (a deploy, a host reboot) they must all come up."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest

from services.dispatcher.bootstrap import build as build_dispatcher
from services.dispatcher.settings import DispatcherSettings
from services.notifier.bootstrap import build as build_notifier
from services.notifier.settings import NotifierSettings
from services.projections.bootstrap import build_desk, build_projections
from services.projections.settings import ProjectionsSettings
from services.runtime.clock import ManualClock
from tests.factories import T0

pytestmark = pytest.mark.postgres


def test_services_started_at_once_on_one_database_all_come_up(postgres_url: str, tmp_path) -> None:
    builders = [
        lambda: build_dispatcher(DispatcherSettings(database_url=postgres_url, roster_seed_file=None), ManualClock(T0)),
        lambda: build_dispatcher(DispatcherSettings(database_url=postgres_url, roster_seed_file=None), ManualClock(T0)),
        lambda: build_notifier(NotifierSettings(database_url=postgres_url), ManualClock(T0)),
        lambda: build_notifier(NotifierSettings(database_url=postgres_url), ManualClock(T0)),
        lambda: build_projections(ProjectionsSettings(database_url=postgres_url, var_dir=tmp_path), ManualClock(T0)),
        lambda: build_desk(ProjectionsSettings(database_url=postgres_url, var_dir=tmp_path), ManualClock(T0)),
    ]
    start = Barrier(len(builders))

    def start_together(build):
        start.wait()
        return build()

    with ThreadPoolExecutor(len(builders)) as pool:
        apps = list(pool.map(start_together, builders))
    try:
        assert all(app.recorder.max_notification_id() in (None, 0) for app in apps)
    finally:
        for app in apps:
            app.close()
