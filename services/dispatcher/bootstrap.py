"""Wiring for the dispatcher: nothing runs at import."""

from __future__ import annotations

from services.dispatcher.adapters.geodesic_distance import geodesic_km
from services.dispatcher.adapters.roster_file import load_roster
from services.dispatcher.application import Dispatcher
from services.dispatcher.settings import DispatcherSettings
from services.runtime.clock import Clock, SystemClock
from services.runtime.settings import store_env

APPLICATION_NAME = "dispatcher"


def build(settings: DispatcherSettings, clock: Clock | None = None) -> Dispatcher:
    return Dispatcher(
        store_env(settings, APPLICATION_NAME),
        clock=clock or SystemClock(),
        roster=load_roster(settings.roster_file),
        ack_timeouts=settings.ack_timeouts(),
        distance_km=geodesic_km,
    )
