"""Wiring for the dispatcher: nothing runs at import."""

from __future__ import annotations

from services.dispatcher.adapters.geocoding_gazetteer import gazetteer_landmark, gazetteer_locate
from services.dispatcher.adapters.geodesic_distance import geodesic_km
from services.dispatcher.adapters.roster_snapshot import roster_snapshots
from services.dispatcher.application import Dispatcher, Locate
from services.dispatcher.settings import DispatcherSettings
from services.runtime.clock import Clock, SystemClock
from services.runtime.settings import store_env

APPLICATION_NAME = "dispatcher"


def build(settings: DispatcherSettings, clock: Clock | None = None, locate: Locate | None = None) -> Dispatcher:
    return Dispatcher(
        store_env(settings, APPLICATION_NAME),
        clock=clock or SystemClock(),
        policy=settings.paging_policy(),
        rules=settings.routing_rules(),
        distance_km=geodesic_km,
        locate=locate or (gazetteer_locate(settings.gazetteer_file) if settings.gazetteer_file else None),
        landmark=gazetteer_landmark(settings.gazetteer_file) if settings.gazetteer_file else None,
        reply_limits=settings.reply_limits(),
        links=settings.responder_links(),
        naloxone_low_stock=settings.naloxone_low_stock,
        roster_snapshots=roster_snapshots,
        field_policy=settings.field_policy(),  # F1: check-ins, pairs only, late ETA, EMS
        time_zone=settings.org_time_zone,
    )
