"""Wiring for projections: two stream consumers (read models, follow-up desk), the overdue watch, the JSON API
and the director workspace, in one process; the SQL tables, the audit log and the FHIR export behind the use cases'
ports (stores.py). Nothing runs at import."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from functools import partial

from eventsourcing.persistence import PersistenceError
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from services.projections.adapters import html_pages as pages
from services.projections.adapters.change_feed import ChangeFeed
from services.projections.adapters.fhir_bundle import fhir_bundle
from services.projections.adapters.session_cookies import SessionCodec, WorkspaceSessions, session_key
from services.projections.adapters.sql_directory import open_sql_directory
from services.projections.adapters.sql_read_models import open_sql_stores
from services.projections.adapters.sql_referrals import open_sql_referrals
from services.projections.adapters.sql_sessions import SqlSessionStore
from services.projections.application import ClinicalRecordAccess
from services.projections.caring_desk import CaringDesk, CaringDeskSettings, CaringWatch
from services.projections.entrypoints.auth import NotAuthenticated, SignInRequired, session_of
from services.projections.entrypoints.http import router as api_router
from services.projections.entrypoints.moud_api import install_moud_api
from services.projections.entrypoints.person_pages import install_person_pages
from services.projections.entrypoints.program_pages import install_program_directory
from services.projections.entrypoints.referral_api import install_referral_api
from services.projections.entrypoints.referral_pages import install_referral_pages
from services.projections.entrypoints.responder_page import install_responder_page
from services.projections.entrypoints.rest_pages import install_rest_pages
from services.projections.entrypoints.stream import StreamTimedConsumer
from services.projections.entrypoints.web import InvalidFormValue
from services.projections.entrypoints.web import router as web_router
from services.projections.errors import (
    NotPermitted,
    OutcomeNotConfirmed,
    Refused,
    StreamUnavailable,
    UnknownIncident,
    UnknownTask,
)
from services.projections.followup_desk import FollowUpDesk, OverdueWatch
from services.projections.person_desk import PersonDesk, PersonDeskSettings
from services.projections.read_models import ReadModels, RoleOf, no_known_roles
from services.projections.rebuild import replay_into
from services.projections.referral_desk import ReferralDesk, ReferralDeskSettings, ReferralWatch
from services.projections.referral_links import ReferralLinks
from services.projections.responder_desk import ResponderDesk
from services.projections.settings import ProjectionsSettings
from services.runtime.body_limit import RequestBodyLimit
from services.runtime.clock import Clock, SystemClock
from services.runtime.consumer import ProcessorConsumer
from services.runtime.credentials import CredentialStore
from services.runtime.idempotency_kv import KvIdempotencyStore
from services.runtime.nats_connection import answered_publisher, connect_stream, make_broker
from services.runtime.observability import (
    OVERDUE_FOLLOWUPS,
    OpsProbes,
    broker_connected,
    consumer_lag,
    counting,
    store_answers,
)
from services.runtime.observability import router as ops_router
from services.runtime.offline_docs import serve_offline_docs
from services.runtime.problems import install_problem_handlers, problem_response
from services.runtime.processor import outbox_relay
from services.runtime.security_headers import SecurityHeaders
from services.runtime.settings import store_env
from services.runtime.stream import publish_event, until_jetstream_answers

log = logging.getLogger(__name__)

APPLICATION_NAME = "projections"
DESK_NAME = "followups"
REFERRAL_DESK_NAME = "referrals"
PERSON_DESK_NAME = "persons"
CARING_DESK_NAME = "caring"
DESKS = (DESK_NAME, REFERRAL_DESK_NAME, PERSON_DESK_NAME, CARING_DESK_NAME)
IDEMPOTENCY_BUCKET = "workspace_idempotency"  # Idempotency-Keys of the workspace API's commands


def build_projections(
    settings: ProjectionsSettings,
    clock: Clock | None = None,
    role_of: RoleOf = no_known_roles,
    *,
    name: str = APPLICATION_NAME,
) -> ReadModels:
    """The read models on the configured store (SQLite file or PostgreSQL tables), their tables and audit log in
    SQL; ``role_of`` names the role of whoever made a change, for the write audit. ``name``: another store (and
    table prefix) than the live one, e.g. a side store to rebuild into and compare."""
    return ReadModels(
        store_env(settings, name),
        clock=clock or SystemClock(),
        open_stores=open_sql_stores,
        open_directory=open_sql_directory,
        open_referrals=open_sql_referrals,
        prefix=name,
        role_of=role_of,
    )


def programs_in_bundle(directory, *args):  # noqa: ANN001, ANN002, ANN201 - the FhirExport port
    """``fhir_bundle`` with the directory's profiles, for the referrals' Organization, Location, HealthcareService."""
    return fhir_bundle(*args, programs={e.program_id: e.profile for e in directory.entries()})


def build_desk(settings: ProjectionsSettings, clock: Clock | None = None) -> FollowUpDesk:
    return FollowUpDesk(store_env(settings, DESK_NAME), clock=clock or SystemClock(), rules=settings.follow_up_policy())


def build_referral_desk(settings: ProjectionsSettings, clock: Clock, links: ReferralLinks) -> ReferralDesk:
    return ReferralDesk(
        store_env(settings, REFERRAL_DESK_NAME),
        clock=clock,
        links=links,
        settings=ReferralDeskSettings(),
        time_zone=settings.time_zone(),  # a program's SLOT is its local date and time
    )


def build_person_desk(settings: ProjectionsSettings, clock: Clock) -> PersonDesk:
    return PersonDesk(store_env(settings, PERSON_DESK_NAME), clock=clock, settings=PersonDeskSettings())


def build_caring_desk(settings: ProjectionsSettings, clock: Clock) -> CaringDesk:
    return CaringDesk(store_env(settings, CARING_DESK_NAME), clock=clock, time_zone=settings.time_zone())


def build(settings: ProjectionsSettings, clock: Clock | None = None) -> FastAPI:
    clock = clock or SystemClock()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        role_of = app.state.credentials.role_of
        with (
            build_projections(settings, clock, role_of) as read_models,
            build_desk(settings, clock) as desk,
            build_referral_desk(settings, clock, app.state.referral_links) as referral_desk,
            build_person_desk(settings, clock) as person_desk,
            build_caring_desk(settings, clock) as caring_desk,
        ):
            session_store = SqlSessionStore(read_models.recorder.datastore, prefix=APPLICATION_NAME)
            session_store.create_table()
            app.state.sessions = WorkspaceSessions(session_codec, session_store, app.state.credentials)
            broker = make_broker(settings)
            js = await connect_stream(broker, settings)
            publish = counting(APPLICATION_NAME, partial(publish_event, js))
            if read_models.needs_replay:
                log.info("read models are new but the stream position is not: replaying the stream")
                await replay_into(js, read_models, reset=True)
            relay = outbox_relay(desk, publish)
            watch = OverdueWatch(desk, clock, settings.followup_check_seconds, relay.wake)
            referral_relay = outbox_relay(referral_desk, publish)
            person_relay = outbox_relay(person_desk, publish)
            caring_relay = outbox_relay(caring_desk, publish)
            caring_watch = CaringWatch(caring_desk, clock, CaringDeskSettings().caring_check_seconds, caring_relay.wake)
            referral_watch = ReferralWatch(
                referral_desk, clock, referral_desk.settings.referral_check_seconds, referral_relay.wake
            )
            consumers = (
                StreamTimedConsumer(read_models, [], publish, durable=APPLICATION_NAME),
                ProcessorConsumer(desk, [relay, watch], publish, durable=DESK_NAME),
                ProcessorConsumer(referral_desk, [referral_relay, referral_watch], publish, durable=REFERRAL_DESK_NAME),
                ProcessorConsumer(person_desk, [person_relay], publish, durable=PERSON_DESK_NAME),
                ProcessorConsumer(caring_desk, [caring_relay, caring_watch], publish, durable=CARING_DESK_NAME),
            )
            for consumer in consumers:
                await consumer.refresh(js)  # a durable an older version made: today's ack wait and filter
                consumer.subscribe(broker)
            changes = ChangeFeed(asyncio.get_running_loop(), read_models.processed_position())
            read_models.listeners.append(changes.notify_threadsafe)
            app.state.read_models = read_models
            app.state.desk = desk
            app.state.overdue_watch = watch
            app.state.referral_desk = referral_desk
            app.state.person_desk = person_desk
            app.state.caring_desk = caring_desk
            app.state.caring_schedule = CaringDeskSettings().schedule()
            app.state.referral_watch = referral_watch
            app.state.referral_outbox = referral_relay
            app.state.outbox = relay
            app.state.changes = changes
            app.state.broker = broker
            app.state.ops = OpsProbes(
                APPLICATION_NAME,
                checks={
                    "nats": broker_connected(broker),
                    "store": store_answers(read_models.recorder.datastore),
                    "followups_store": store_answers(desk.recorder.datastore),
                    "referrals_store": store_answers(referral_desk.recorder.datastore),
                    "persons_store": store_answers(person_desk.recorder.datastore),
                    "caring_store": store_answers(caring_desk.recorder.datastore),
                },
                refreshers=[
                    consumer_lag(
                        js, [APPLICATION_NAME, DESK_NAME, REFERRAL_DESK_NAME, PERSON_DESK_NAME, CARING_DESK_NAME]
                    ),
                    overdue_followups(read_models, clock),
                ],
            )
            # commands answer a person: they publish on a connection that buffers nothing while disconnected
            commands_broker = make_broker(settings, buffered=False)
            commands_js = await connect_stream(commands_broker, settings)
            answered = answered_publisher(commands_broker, commands_js, settings)
            # the one idempotency scheme (runtime/idempotency.py), in the workspace's own bucket
            app.state.answer_deadline_seconds = settings.publish_deadline_seconds
            app.state.idempotency = await until_jetstream_answers(
                lambda: KvIdempotencyStore.open(
                    commands_js,
                    clock,
                    retention_days=settings.idempotency_retention_days,
                    replicas=settings.stream_replicas,
                    claim_seconds=settings.publish_deadline_seconds + 2.0,
                    bucket=IDEMPOTENCY_BUCKET,
                ),
                "workspace idempotency keys",
            )
            app.state.record_access = ClinicalRecordAccess(
                read_models.store,
                read_models.audit,
                counting(APPLICATION_NAME, answered.publish),
                clock,
                settings.sla_targets(),
                partial(programs_in_bundle, read_models.directory),
                settings.time_zone(),
            )
            app.state.record_access.referral_views = lambda: read_models.referrals.referrals(limit=100_000)
            app.state.responder_desk = ResponderDesk(
                app.state.record_access, app.state.responder_links, changes, thresholds=settings.triage_thresholds()
            )
            await broker.start()
            followers = [follower for consumer in consumers for follower in consumer.followers]  # none forgotten
            tasks = [asyncio.create_task(follower.run(), name=follower.name) for follower in followers]
            try:
                yield
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                for consumer in consumers:  # a batch puller holds its subscription: else draining waits for it
                    await consumer.close()
                await broker.stop()
                await commands_broker.stop()

    app = FastAPI(
        title="Crisis projections",
        version="0.2.0",
        description=(
            "Incident timelines, crisis documentation and its exports, follow-up tasks, metrics and the audit log, "
            "built from the CRISIS stream; and the director workspace at /workspace/."
        ),
        lifespan=lifespan,
    )
    serve_offline_docs(app)
    app.state.clock = clock
    app.state.time_zone = settings.time_zone()  # every time a workspace page shows is in it
    app.state.credentials = CredentialStore.from_file(settings.credentials_file)  # type: ignore[arg-type]
    # the cookie's key; the sessions themselves are kept in the projections database (opened by the lifespan)
    session_codec = SessionCodec(
        session_key(settings.session_secret, settings.var_dir), timedelta(hours=settings.session_hours)
    )
    app.state.cookie_secure = settings.session_cookie_secure
    install_problem_handlers(app)
    app.add_middleware(SecurityHeaders, hsts_max_age=settings.hsts_max_age_seconds)
    # workspace forms and JSON bodies alike: cut off at the limit as they stream in (413)
    app.add_middleware(RequestBodyLimit, limit=settings.max_request_bytes)
    install_record_handlers(app)
    app.include_router(ops_router)  # /livez /readyz /metrics: open, for the internal network
    app.include_router(api_router)
    app.include_router(web_router)
    install_responder_page(app, settings)  # /r/<token> and /workspace/respond/<incident>: the responder's page
    install_program_directory(app, settings)  # /v1/programs, /workspace/programs and /p/<token>
    install_referral_api(app)  # /v1/incidents/{id}/matches, level-of-care, referrals; /v1/referrals/{id}/...
    install_moud_api(app)  # /v1/incidents/{id}/moud-bridges (issue 19)
    install_rest_pages(app)  # /workspace/resting (issue 19)
    install_referral_pages(app)  # /workspace/incidents/{id}/matches, /workspace/referrals/...
    install_person_pages(app)  # /workspace/people..., /v1/people/{id}: the person record and its consents

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse("/workspace/", status_code=307)

    return app


def overdue_followups(read_models: ReadModels, clock: Clock) -> Callable[[], Awaitable[None]]:
    """Sets crisis_followups_overdue{priority} to the open tasks past their due time in the read model."""
    seen: set[str] = set()

    async def refresh() -> None:
        counts = await asyncio.to_thread(read_models.store.overdue_by_priority, clock.now())
        seen.update(counts)
        for priority in seen:  # a priority with none overdue any more reads 0, not its last count
            OVERDUE_FOLLOWUPS.labels(priority).set(counts.get(priority, 0))

    return refresh


def _workspace(request: Request) -> bool:
    return request.url.path.startswith("/workspace")


def install_record_handlers(app: FastAPI) -> None:
    """Use-case errors as problem documents on the API, as pages in the workspace."""

    async def answer(request: Request, status: int, detail: str) -> Response:
        if _workspace(request):
            try:
                session = await session_of(request)
            except PersistenceError:  # the store is what failed: show the page without the signed-in bar
                session = None
            who, csrf = (session.principal, session.csrf_token) if session else (None, None)
            return Response(
                pages.error_page(status, detail, who, csrf),
                status_code=status,
                media_type="text/html",
                headers=pages.PAGE_SECURITY_HEADERS,
            )
        return problem_response(status, detail, instance=request.url.path)

    @app.exception_handler(SignInRequired)
    async def on_sign_in(request: Request, exc: SignInRequired) -> Response:
        return RedirectResponse(exc.location, status_code=303)

    @app.exception_handler(NotAuthenticated)
    async def on_not_authenticated(request: Request, exc: NotAuthenticated) -> JSONResponse:
        response = problem_response(401, str(exc), instance=request.url.path)
        response.headers["WWW-Authenticate"] = 'Bearer realm="crisis"'
        return response

    @app.exception_handler(UnknownIncident)
    async def on_unknown_incident(request: Request, exc: UnknownIncident) -> Response:
        return await answer(request, 404, f"no incident {exc} is known here (yet)")

    @app.exception_handler(UnknownTask)
    async def on_unknown_task(request: Request, exc: UnknownTask) -> Response:
        return await answer(request, 404, f"no follow-up task {exc} is known here (yet)")

    @app.exception_handler(NotPermitted)
    async def on_not_permitted(request: Request, exc: NotPermitted) -> Response:
        return await answer(request, 403, str(exc))

    @app.exception_handler(InvalidFormValue)
    async def on_invalid_form_value(request: Request, exc: InvalidFormValue) -> Response:
        return await answer(request, 422, str(exc))

    @app.exception_handler(Refused)
    async def on_refused(request: Request, exc: Refused) -> Response:
        return await answer(request, 409, str(exc))

    @app.exception_handler(StreamUnavailable)
    async def on_stream_unavailable(request: Request, exc: StreamUnavailable) -> Response:
        return await answer(request, 503, str(exc))

    @app.exception_handler(OutcomeNotConfirmed)
    async def on_outcome_not_confirmed(request: Request, exc: OutcomeNotConfirmed) -> Response:
        return await answer(request, 504, str(exc))

    @app.exception_handler(PersistenceError)
    async def on_store_error(request: Request, exc: PersistenceError) -> Response:
        log.error("store error on %s: %s", request.url.path, type(exc).__name__)
        return await answer(request, 503, "the record store is unavailable; nothing was shown or changed")
