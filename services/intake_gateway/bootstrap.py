"""Wiring for the gateway: build(settings) returns the ASGI app; nothing runs at import.

The app's state, set when it starts: ``intake`` (``IncidentIntake``: reports and updates), ``incident_reads``
(``IncidentReads``: an incident's state read back), ``workspace_url`` (where timelines are), ``roster_commands``
(the admin API's use cases), ``sms_webhooks`` and ``voice_keypad`` (Twilio's webhooks), ``idempotency`` (the
Idempotency-Key store every recording route answers through), ``publish`` (the answered publisher they all append
with).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from fastapi import FastAPI
from nats.js import JetStreamContext
from twilio.request_validator import RequestValidator

from services.intake_gateway.adapters.geocoding_gazetteer import load_gazetteer
from services.intake_gateway.adapters.geocoding_geopy import GeopyLocator, gazetteer_locator, nominatim_locator
from services.intake_gateway.adapters.ics_calendar import parse_calendar
from services.intake_gateway.adapters.incident_state_follower import FOLLOWER_DURABLE, IncidentStateFollower
from services.intake_gateway.adapters.incident_states_kv import KvIncidentStates
from services.intake_gateway.adapters.recent_reports_kv import KvRecentReports
from services.intake_gateway.adapters.recorded_webhooks_kv import KvRecordedWebhooks
from services.intake_gateway.domain.places import Zone
from services.intake_gateway.entrypoints import admin, health, incidents, twilio_webhooks
from services.intake_gateway.entrypoints import programs as program_routes
from services.intake_gateway.entrypoints.auth import bearer_before_body, install_auth
from services.intake_gateway.incident_reads import IncidentReads
from services.intake_gateway.intake import IncidentIntake, Publish
from services.intake_gateway.locator import Locator
from services.intake_gateway.program_commands import ProgramCommands
from services.intake_gateway.roster_commands import RosterCommands
from services.intake_gateway.settings import GatewaySettings
from services.intake_gateway.sms_webhooks import SmsWebhooks
from services.intake_gateway.voice_keypad import VoiceKeypad
from services.runtime import observability
from services.runtime.body_limit import RequestBodyLimit
from services.runtime.clock import Clock, SystemClock
from services.runtime.credentials import CredentialStore
from services.runtime.idempotency_kv import KvIdempotencyStore
from services.runtime.nats_connection import answered_publisher, connect_stream, make_broker
from services.runtime.observability import OpsProbes, broker_connected, consumer_lag, counting, jetstream_answers
from services.runtime.offline_docs import serve_offline_docs
from services.runtime.problems import install_problem_handlers
from services.runtime.security_headers import SecurityHeaders
from services.runtime.stream import until_jetstream_answers

SERVICE_NAME = "intake_gateway"


log = logging.getLogger(__name__)


@dataclass
class OpenIntake:
    """Crisis intake and what it holds open while the gateway runs."""

    use_cases: IncidentIntake
    reads: IncidentReads
    idempotency: KvIdempotencyStore
    recent: KvRecentReports
    follower: IncidentStateFollower

    async def close(self) -> None:
        """Stop the follower and the watcher before the NATS connection closes."""
        with contextlib.suppress(Exception):
            await self.follower.close()
        with contextlib.suppress(Exception):
            await self.recent.close()


def make_geocoder(settings: GatewaySettings) -> tuple[GeopyLocator, tuple[Zone, ...]]:
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
    return geocoder, tuple(gazetteer.zones)


async def open_intake(settings: GatewaySettings, js: JetStreamContext, publish: Publish, clock: Clock) -> OpenIntake:
    """Geocoder, KV buckets (incident states, recent reports, idempotency keys) and the incident-state follower."""
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
    use_cases = IncidentIntake(
        publish,
        clock,
        locator=Locator(geocoder, zones),
        thresholds=settings.triage.to_domain(),
        duplicate_rule=rule,
        incidents=states,
        recent=recent,
    )
    log.info("intake ready: geocoder %s, %d service zones", geocoder.name, len(zones))
    return OpenIntake(use_cases, IncidentReads(states), idempotency, recent, follower)


def build(settings: GatewaySettings, clock: Clock | None = None) -> FastAPI:
    clock = clock or SystemClock()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # unbuffered: an answer of "not recorded" (503) must never be followed by the event landing later
        broker = make_broker(settings, buffered=False)
        js = await connect_stream(broker, settings)
        publish = counting(SERVICE_NAME, answered_publisher(broker, js, settings).publish)
        app.state.answer_deadline_seconds = settings.publish_deadline_seconds
        app.state.broker = broker
        app.state.js = js
        app.state.publish = publish
        app.state.clock = clock
        # intake: geocoder, KV buckets (incident state, recent reports, idempotency keys), state follower
        intake = await until_jetstream_answers(lambda: open_intake(settings, js, publish, clock), "intake setup")
        app.state.intake = intake.use_cases
        app.state.incident_reads = intake.reads
        app.state.idempotency = intake.idempotency
        app.state.program_commands = ProgramCommands(publish, clock, phone_region=settings.phone_default_region)
        app.state.roster_commands = RosterCommands(
            publish,
            clock,
            read_calendar=parse_calendar,
            phone_region=settings.phone_default_region,
            calendar_horizon_days=settings.calendar_horizon_days,
        )
        days, replicas = settings.twilio_webhook_retention_days, settings.stream_replicas
        recorded_webhooks = await until_jetstream_answers(
            lambda: KvRecordedWebhooks.open(js, retention_days=days, replicas=replicas), "webhook ledger"
        )
        app.state.sms_webhooks = SmsWebhooks(publish, clock, recorded_webhooks)
        app.state.voice_keypad = VoiceKeypad(publish, clock, recorded_webhooks)  # keys pressed on our calls
        # during a rotation Twilio may sign with either token; the primary is tried first
        tokens = [t for t in (settings.twilio_auth_token, settings.twilio_auth_token_secondary) if t]
        app.state.twilio_validators = [RequestValidator(token) for token in tokens]
        app.state.public_url = settings.gateway_public_url.rstrip("/")
        app.state.workspace_url = settings.workspace_public_url.rstrip("/")
        # ready when NATS is connected and JetStream (the stream and the KV buckets: its database) answers
        app.state.ops = OpsProbes(
            SERVICE_NAME,
            checks={"nats": broker_connected(broker), "jetstream": jetstream_answers(js)},
            refreshers=[consumer_lag(js, [FOLLOWER_DURABLE])],
        )
        try:
            yield
        finally:
            await intake.close()
            await broker.stop()

    app = FastAPI(
        title="Crisis intake gateway",
        version="0.1.0",
        description=(
            "Crisis reports, roster commands and Twilio webhooks in; events on the CRISIS stream out. "
            "Every route but /healthz, the ops routes (/livez, /readyz, /metrics) and the Twilio webhooks needs "
            "`Authorization: Bearer <token>`."
        ),
        lifespan=lifespan,
    )
    serve_offline_docs(app)
    install_problem_handlers(app)
    app.add_middleware(SecurityHeaders, hsts_max_age=settings.hsts_max_age_seconds)
    install_auth(app, CredentialStore.from_file(settings.credentials_file))
    # a body is withheld until the caller is authenticated, then cut off at the limit as it streams in
    app.add_middleware(RequestBodyLimit, limit=settings.max_request_bytes, admit=bearer_before_body)
    app.include_router(observability.router)  # /livez /readyz /metrics: open, for the internal network
    app.include_router(health.router)
    app.include_router(incidents.router)
    app.include_router(twilio_webhooks.router)
    app.include_router(admin.router)
    app.include_router(program_routes.router)  # the treatment-program directory's admin API
    return app
