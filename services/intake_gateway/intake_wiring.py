"""Wiring of crisis intake (called from bootstrap's lifespan): geocoder, KV buckets, the incident-state follower."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

from nats.js import JetStreamContext

from services.intake_gateway.adapters.geocoding_gazetteer import load_gazetteer
from services.intake_gateway.adapters.geocoding_geopy import GeopyLocator, gazetteer_locator, nominatim_locator
from services.intake_gateway.adapters.idempotency_kv import KvIdempotencyStore
from services.intake_gateway.adapters.incidents_kv import IncidentStateFollower, KvIncidentStates, KvRecentReports
from services.intake_gateway.application import IntakeGateway, Publish
from services.intake_gateway.settings import GatewaySettings
from services.runtime.clock import Clock

log = logging.getLogger(__name__)


@dataclass
class Intake:
    gateway: IntakeGateway
    geocoder: GeopyLocator
    idempotency: KvIdempotencyStore
    recent: KvRecentReports
    follower: IncidentStateFollower

    async def close(self) -> None:
        """Stop the follower and the watcher before the NATS connection closes."""
        with contextlib.suppress(Exception):
            await self.follower.close()
        with contextlib.suppress(Exception):
            await self.recent.close()


def make_geocoder(settings: GatewaySettings) -> tuple[GeopyLocator, tuple]:
    """The configured geocoder and the service zones (always from the gazetteer file)."""
    gazetteer = load_gazetteer(settings.gazetteer_file)
    if settings.geocoder == "nominatim":
        # geopy's RateLimiter logs each retried call with its arguments (the address): keep that out of logs
        logging.getLogger("geopy").setLevel(logging.ERROR)
        geocoder = nominatim_locator(
            gazetteer,
            domain=settings.nominatim_domain,
            scheme=settings.nominatim_scheme,
            user_agent=settings.nominatim_user_agent,
            min_delay_seconds=settings.geocoder_min_delay_seconds,
            timeout_seconds=settings.geocoder_timeout_seconds,
            cache_size=settings.geocoder_cache_size,
            max_retries=settings.geocoder_max_retries,
        )
    else:
        geocoder = gazetteer_locator(gazetteer)
    return geocoder, gazetteer.zones


async def open_intake(settings: GatewaySettings, js: JetStreamContext, publish: Publish, clock: Clock) -> Intake:
    geocoder, zones = make_geocoder(settings)
    replicas = settings.stream_replicas
    states = await KvIncidentStates.open(js, replicas=replicas)
    rule = settings.duplicate_rule()
    recent = await KvRecentReports.open(js, clock, rule=rule, replicas=replicas)
    idempotency = await KvIdempotencyStore.open(
        js,
        clock,
        retention_days=settings.idempotency_retention_days,
        replicas=replicas,
        # a claim ends when its request must have answered (plus a margin to write the answer)
        claim_seconds=settings.publish_deadline_seconds + 2.0,
    )
    follower = IncidentStateFollower(js, states)
    await follower.start()
    gateway = IntakeGateway(
        publish,
        clock,
        geocoder=geocoder,
        zones=zones,
        thresholds=settings.triage.to_domain(),
        duplicate_rule=rule,
        incidents=states,
        recent=recent,
    )
    log.info("intake ready: geocoder %s, %d service zones", geocoder.name, len(zones))
    return Intake(gateway, geocoder, idempotency, recent, follower)
