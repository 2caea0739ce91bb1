"""Wiring for the gateway: build(settings) returns the ASGI app; nothing runs at import."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from twilio.request_validator import RequestValidator

from services.intake_gateway.adapters.incidents_kv import FOLLOWER_DURABLE
from services.intake_gateway.adapters.recorded_webhooks_kv import KvRecordedWebhooks
from services.intake_gateway.entrypoints import admin, http, twilio_webhooks
from services.intake_gateway.entrypoints.auth import bearer_before_body, install_auth
from services.intake_gateway.intake_wiring import open_intake
from services.intake_gateway.roster_admin import RosterAdmin
from services.intake_gateway.settings import GatewaySettings
from services.intake_gateway.sms_inbox import SmsInbox
from services.runtime import observability
from services.runtime.body_limit import RequestBodyLimit
from services.runtime.clock import Clock, SystemClock
from services.runtime.credentials import CredentialStore
from services.runtime.observability import OpsProbes, broker_connected, consumer_lag, counting, jetstream_answers
from services.runtime.problems import install_problem_handlers
from services.runtime.security_headers import SecurityHeaders
from services.runtime.service import answered_publisher, connect_stream, make_broker
from services.runtime.stream import until_jetstream_answers

SERVICE_NAME = "intake_gateway"


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
        app.state.intake = intake
        app.state.gateway = intake.gateway
        app.state.idempotency = intake.idempotency
        app.state.roster_admin = RosterAdmin(
            publish,
            clock,
            phone_region=settings.phone_default_region,
            calendar_horizon_days=settings.calendar_horizon_days,
        )
        days, replicas = settings.twilio_webhook_retention_days, settings.stream_replicas
        recorded_webhooks = await until_jetstream_answers(
            lambda: KvRecordedWebhooks.open(js, retention_days=days, replicas=replicas), "webhook ledger"
        )
        app.state.sms_inbox = SmsInbox(publish, clock, recorded_webhooks)
        # during a rotation Twilio may sign with either token; the primary is tried first
        tokens = [t for t in (settings.twilio_auth_token, settings.twilio_auth_token_secondary) if t]
        app.state.twilio_validators = [RequestValidator(token) for token in tokens]
        app.state.public_url = settings.gateway_public_url.rstrip("/")
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
    install_problem_handlers(app)
    app.add_middleware(SecurityHeaders, hsts_max_age=settings.hsts_max_age_seconds)
    install_auth(app, CredentialStore.from_file(settings.credentials_file))
    # a body is withheld until the caller is authenticated, then cut off at the limit as it streams in
    app.add_middleware(RequestBodyLimit, limit=settings.max_request_bytes, admit=bearer_before_body)
    app.include_router(observability.router)  # /livez /readyz /metrics: open, for the internal network
    app.include_router(http.router)
    app.include_router(twilio_webhooks.router)
    app.include_router(admin.router)
    return app
