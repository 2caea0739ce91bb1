"""The ops endpoints against real parts: consumer lag from JetStream, counters moved by real events, readiness
that follows the NATS connection, the overdue follow-up gauge, on every service's /metrics, /livez, /readyz."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import nats
import psycopg
import pytest
from nats.js.api import AckPolicy, ConsumerConfig
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from services.dispatcher.bootstrap import APPLICATION_NAME as DISPATCHER
from services.dispatcher.bootstrap import build as build_dispatcher
from services.dispatcher.settings import DispatcherSettings
from services.intake_gateway.adapters.incident_state_follower import FOLLOWER_DURABLE
from services.intake_gateway.bootstrap import build as build_gateway
from services.intake_gateway.settings import GatewaySettings
from services.notifier.bootstrap import APPLICATION_NAME as NOTIFIER
from services.notifier.bootstrap import build as build_notifier
from services.notifier.bootstrap import build_send_queue
from services.runtime.clock import ManualClock, SystemClock
from services.runtime.nats_server import EmbeddedNatsServer
from services.runtime.observability import consumer_lag, serving_ops
from services.runtime.processor_service import running_processor
from services.runtime.stream import STREAM_NAME, publish_event
from tests import dispatch_factories as f
from tests import factories
from tests.factories import T0
from tests.integration.test_notifier import Sandbox, opt_out_changed, requested, running_sandbox, settings_for
from tests.integration.test_projections import Story, workspace
from tests.support.asgi_server import serving
from tests.support.stream import (
    eventually,
    last_sequence,
    publish_all,
    wait_for_consumer_to_drain,
    wait_for_stream,
    watching,
)

Labels = dict[str, str]


def sample(text: str, name: str, labels: Labels | None = None) -> float:
    """The value of one sample of the exposition ``text``; 0 when absent (a counter not yet incremented)."""
    wanted = labels or {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and wanted.items() <= s.labels.items():
                return s.value
    return 0.0


def total(text: str, name: str, labels: Labels | None = None) -> float:
    """The sum over every sample of ``name`` whose labels include ``labels``."""
    wanted = labels or {}
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and wanted.items() <= s.labels.items()
    )


async def scrape(base_url: str) -> str:
    async with httpx.AsyncClient(timeout=15) as client:
        response = await client.get(f"{base_url}/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return response.text


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    with running_sandbox(tmp_path / "sandbox") as running:
        yield running


async def test_consumer_lag_counts_what_a_durable_consumer_has_not_acked(js) -> None:
    await js.add_consumer(STREAM_NAME, ConsumerConfig(durable_name="lag-probe", ack_policy=AckPolicy.EXPLICIT))
    for _ in range(3):
        await publish_event(js, factories.incident_reported())
    refresh = consumer_lag(js, ["lag-probe"])

    async def lag_is(expected: int) -> bool:  # the server counts a publish as pending just after acking it
        await refresh()
        return REGISTRY.get_sample_value("crisis_consumer_lag_messages", {"consumer": "lag-probe"}) == expected

    await eventually(lambda: lag_is(3), "the lag to count the three unread messages")
    subscription = await js.pull_subscribe_bind("lag-probe", stream=STREAM_NAME)
    for message in await subscription.fetch(3, timeout=5):
        await message.ack_sync()
    await refresh()
    assert REGISTRY.get_sample_value("crisis_consumer_lag_messages", {"consumer": "lag-probe"}) == 0
    await subscription.unsubscribe()


async def test_the_dispatcher_counts_escalations_and_unfilled_steps_and_its_lag_drains(
    js, nats_server, tmp_path, database_url
) -> None:
    settings = DispatcherSettings(
        var_dir=tmp_path, roster_seed_file=None, nats_url=nats_server.url, database_url=database_url
    )
    director = f.responder("director", skills=())
    watcher = await nats.connect(nats_server.url)
    with build_dispatcher(settings, ManualClock(T0)) as dispatcher:
        async with (
            watching(watcher, "crisis.dispatch.>") as dispatch_events,
            running_processor(settings, dispatcher, durable=DISPATCHER) as service,
            serving_ops(service.probes, "127.0.0.1", 0) as ops,
        ):
            before = await scrape(ops)
            # only a director on call: every candidate step is empty, so the ladder climbs at once
            for event in (f.registered(director), f.rotation([director.responder_id]), f.incident()):
                await publish_event(js, event)
            seen = await dispatch_events.until(
                lambda events: any(e.type == "dispatch.offered" for e in events), "the director's page"
            )
            await wait_for_consumer_to_drain(js, await last_sequence(js), DISPATCHER)
            after = await scrape(ops)
    await watcher.close()
    escalated = [e for e in seen if e.type == "dispatch.escalated"]
    unfilled = [e for e in seen if e.type == "dispatch.unfilled"]
    assert escalated and unfilled
    for event in escalated:
        labels = {"rung": str(event.data.rung), "reason": str(event.data.reason)}
        expected = sum(e.data.rung == event.data.rung and e.data.reason == event.data.reason for e in escalated)
        counted = sample(after, "crisis_dispatch_escalations_total", labels)
        assert counted - sample(before, "crisis_dispatch_escalations_total", labels) == expected
    grew = total(after, "crisis_dispatch_unfilled_total") - total(before, "crisis_dispatch_unfilled_total")
    assert grew == len(unfilled)
    published = {"service": DISPATCHER, "event_type": "dispatch.escalated"}
    assert sample(after, "crisis_events_published_total", published) - sample(
        before, "crisis_events_published_total", published
    ) == len(escalated)
    handled = {"consumer": DISPATCHER, "event_type": "incident.reported", "outcome": "processed"}
    assert (
        sample(after, "crisis_events_handled_total", handled) - sample(before, "crisis_events_handled_total", handled)
        == 1
    )
    assert sample(after, "crisis_consumer_lag_messages", {"consumer": DISPATCHER}) == 0
    assert sample(after, "crisis_dependency_up", {"service": DISPATCHER, "check": "nats"}) == 1
    assert sample(after, "crisis_dependency_up", {"service": DISPATCHER, "check": "store"}) == 1
    assert "+1555" not in after and "5th St" not in after  # no phone numbers or places in any label


async def test_the_notifier_counts_sms_failures_by_code_and_page_latency(js, nats_server, sandbox, tmp_path) -> None:
    settings = settings_for(tmp_path, sandbox.url, nats_url=nats_server.url, sms_rate_per_second=50)
    reachable, opted_out = factories.fake_phone(), factories.fake_phone()
    watcher = await nats.connect(nats_server.url)
    failed = {"channel": "sms", "error_code": "21610", "permanent": "true"}
    latency = {"channel": "sms", "priority": "P1"}
    with build_notifier(settings, SystemClock()) as notifier:
        queue = build_send_queue(notifier, settings)
        async with (
            watching(watcher, "crisis.sms.*") as outcomes,
            running_processor(settings, notifier, durable=NOTIFIER, followers=[queue]) as service,
            serving_ops(service.probes, "127.0.0.1", 0) as ops,
        ):
            before = await scrape(ops)
            for event in (requested(reachable), opt_out_changed(opted_out, True), requested(opted_out)):
                await publish_event(js, event)
            await outcomes.until(
                lambda events: {"sms.sent", "sms.failed"} <= {e.type for e in events}, "one SMS sent and one failed"
            )
            after = await scrape(ops)
    await watcher.close()
    assert sample(after, "crisis_sms_failures_total", failed) - sample(before, "crisis_sms_failures_total", failed) == 1
    observed = sample(after, "crisis_page_latency_seconds_count", latency) - sample(
        before, "crisis_page_latency_seconds_count", latency
    )
    assert observed == 1
    assert sample(after, "crisis_page_latency_seconds_sum", latency) >= sample(
        before, "crisis_page_latency_seconds_sum", latency
    )
    assert reachable not in after and opted_out not in after


async def test_readiness_follows_the_nats_connection(tmp_path) -> None:
    own = EmbeddedNatsServer(tmp_path / "nats")
    own.start()
    try:
        settings = DispatcherSettings(var_dir=tmp_path / "var", roster_seed_file=None, nats_url=own.url)
        with build_dispatcher(settings, ManualClock(T0)) as dispatcher:
            async with (
                running_processor(settings, dispatcher, durable=DISPATCHER) as service,
                serving_ops(service.probes, "127.0.0.1", 0) as ops,
                httpx.AsyncClient(base_url=ops, timeout=15) as client,
            ):
                ready = await client.get("/readyz")
                assert ready.status_code == 200
                assert ready.json() == {"status": "ready", "checks": {"nats": "up", "store": "up"}}
                assert (await client.get("/livez")).json() == {"status": "alive"}

                own.stop()

                async def not_ready() -> bool:
                    return (await client.get("/readyz")).status_code == 503

                await eventually(not_ready, "/readyz to answer 503 once NATS is down", timeout=20)
                down = await client.get("/readyz")
                assert down.headers["content-type"] == "application/problem+json"
                assert down.json()["detail"] == "not ready: nats down"
                assert down.json()["checks"] == {"nats": "down", "store": "up"}
                assert (await client.get("/livez")).status_code == 200  # alive: restarting it would not help

                own.start()

                async def ready_again() -> bool:
                    return (await client.get("/readyz")).status_code == 200

                await eventually(ready_again, "/readyz to answer 200 once NATS is back", timeout=20)
    finally:
        own.stop()


async def test_projections_serve_ops_routes_and_count_overdue_follow_ups(js, nats_server, tmp_path) -> None:
    clock = ManualClock(T0 + timedelta(hours=1))
    overdose = Story()  # an overdose report: post-overdose outreach is due 72 h later
    async with workspace(js, nats_server, tmp_path, clock=clock) as space:
        start = await publish_all(js, [overdose.reported()])
        await wait_for_stream(js, lambda es: any(e.type == "followup.created" for e in es), start)
        await space.settled(js)
        async with httpx.AsyncClient(base_url=space.url, timeout=15) as client:
            ready = await client.get("/readyz")
            assert ready.status_code == 200
            assert ready.json()["checks"] == {
                "nats": "up",
                "store": "up",
                "followups_store": "up",
                "referrals_store": "up",
                "persons_store": "up",
                "caring_store": "up",
            }
            assert (await client.get("/livez")).status_code == 200
            not_yet = await scrape(space.url)
            clock.advance(timedelta(hours=73))
            overdue = await scrape(space.url)
    assert total(not_yet, "crisis_followups_overdue") == 0
    assert total(overdue, "crisis_followups_overdue") == 1
    for consumer in ("projections", "followups"):
        assert sample(overdue, "crisis_consumer_lag_messages", {"consumer": consumer}) == 0


async def test_the_gateway_serves_ops_routes_without_a_token(js, nats_server, tmp_path) -> None:
    settings = GatewaySettings(nats_url=nats_server.url, credentials_file=tmp_path / "credentials.json")
    with serving(build_gateway(settings)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=15) as client:
            ready = await client.get("/readyz")
            assert ready.status_code == 200 and ready.json()["checks"] == {"nats": "up", "jetstream": "up"}
            assert (await client.get("/livez")).status_code == 200
            assert (await client.get("/healthz")).json()["status"] == "ok"
            openapi = (await client.get("/openapi.json")).json()
        metrics = await scrape(url)
    assert not {"/livez", "/readyz", "/metrics"} & set(openapi["paths"])
    assert sample(metrics, "crisis_consumer_lag_messages", {"consumer": FOLLOWER_DURABLE}) == 0


@pytest.mark.postgres
async def test_readiness_names_the_store_when_its_database_is_gone(js, nats_server, tmp_path, postgres_url) -> None:
    settings = DispatcherSettings(
        var_dir=tmp_path, roster_seed_file=None, nats_url=nats_server.url, database_url=postgres_url
    )
    with build_dispatcher(settings, ManualClock(T0)) as dispatcher:
        async with (
            running_processor(settings, dispatcher, durable=DISPATCHER) as service,
            serving_ops(service.probes, "127.0.0.1", 0) as ops,
            httpx.AsyncClient(base_url=ops, timeout=15) as client,
        ):
            assert (await client.get("/readyz")).status_code == 200
            name = postgres_url.rsplit("/", 1)[1]
            with psycopg.connect(postgres_url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as admin:
                admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            down = await client.get("/readyz")
            assert down.status_code == 503
            assert down.json()["detail"] == "not ready: store down"
            assert down.json()["checks"] == {"nats": "up", "store": "down"}
