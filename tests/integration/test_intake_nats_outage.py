"""What an intake answer means when nats-server is SIGKILLed mid-request and restarted.

Clients keep reporting (half with an Idempotency-Key, retried with it; half without) while the stream's
server is killed and, once the gateway has answered some requests during the outage, restarted. Each report
carries a marker of its own (in its access notes), so the stream can be counted against the answers:

- every 201 is on the stream exactly once, under the incident id it named;
- every request answered only 503 is not on the stream, ever (nothing buffered lands after the answer);
- a 504 (sent, outcome unknown) is on the stream at most once;
- a keyed request retried after NATS is back ends in 201 (recorded once, or replayed).

Before the fix the client library buffered publishes while disconnected and sent them on reconnect: requests
answered 503 became incidents.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from uuid import uuid4

import httpx
import nats
import pytest

from services.contract.events import IncidentReported, decode_event
from services.intake_gateway.bootstrap import build
from services.intake_gateway.settings import GatewaySettings
from services.runtime.credentials import AccessRole, issue_credential
from services.runtime.nats_server import EmbeddedNatsServer
from services.runtime.stream import STREAM_NAME
from tests.support.asgi_server import serving

TOKEN = "outage-test-intake"
CENTRAL = (39.7431, -104.9876)
CLIENTS = 4
REPORTS_AFTER_RESTART = 3  # per client, after NATS answers again
MAX_ATTEMPTS = 40  # a keyed request is retried this often at most (the test fails if that is not enough)


@dataclass
class Outcomes:
    answers: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))  # marker -> statuses
    incident_of: dict[str, str] = field(default_factory=dict)  # marker -> incident id named in the 201
    keyed: set[str] = field(default_factory=set)
    during_outage: Counter = field(default_factory=Counter)  # "keyed"/"unkeyed" -> 503/504 answers
    after_restart: Counter = field(default_factory=Counter)
    outage_answers: asyncio.Event = field(default_factory=asyncio.Event)
    restarted: asyncio.Event = field(default_factory=asyncio.Event)
    first_reports: asyncio.Event = field(default_factory=asyncio.Event)
    created = 0


def report(marker: str) -> dict:
    return {
        "kind": "overdose",
        "location": {"lat": CENTRAL[0], "lon": CENTRAL[1], "access_notes": marker},
        "reporter": {"channel": "hotline"},
        "details": {"ems_called": True},
    }


async def client_loop(base: str, client_no: int, outcomes: Outcomes) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    keyed = client_no % 2 == 0
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        while outcomes.after_restart[client_no] < REPORTS_AFTER_RESTART:
            marker = f"marker-{uuid4()}"
            request_headers = dict(headers)
            if keyed:
                outcomes.keyed.add(marker)
                request_headers["Idempotency-Key"] = f"key-{marker}"
            for _ in range(MAX_ATTEMPTS):
                restarted_before = outcomes.restarted.is_set()
                response = await http.post("/v1/incidents", json=report(marker), headers=request_headers)
                outcomes.answers[marker].append(response.status_code)
                assert response.status_code in (201, 409, 503, 504), response.text
                if response.status_code == 201:
                    outcomes.incident_of[marker] = response.json()["incident_id"]
                    outcomes.created += 1
                    if outcomes.created >= 2 * CLIENTS:
                        outcomes.first_reports.set()
                    if restarted_before:
                        outcomes.after_restart[client_no] += 1
                    break
                if response.status_code in (503, 504):
                    assert response.headers["content-type"].startswith("application/problem+json")
                    body = response.json()
                    assert body["recorded"] == (False if response.status_code == 503 else "unknown")
                    if not outcomes.restarted.is_set():
                        outcomes.during_outage["keyed" if keyed else "unkeyed"] += 1
                        if outcomes.during_outage["keyed"] >= 2 and outcomes.during_outage["unkeyed"] >= CLIENTS:
                            outcomes.outage_answers.set()
                if not keyed:
                    break  # a client without a key cannot retry safely: it moves on to its next report
                if response.status_code in (503, 504):
                    await outcomes.restarted.wait()  # retried once NATS is back (and, keyed, with the same key)
                else:
                    await asyncio.sleep(0.5)  # 409: "retry shortly"
            else:
                pytest.fail(
                    f"a keyed request was not recorded after {MAX_ATTEMPTS} attempts: {outcomes.answers[marker]}"
                )


async def reported_markers(url: str) -> Counter:
    connection = await nats.connect(url)
    try:
        js = connection.jetstream()
        last = (await js.stream_info(STREAM_NAME)).state.last_seq
        found: Counter = Counter()
        incidents: dict[str, set[str]] = defaultdict(set)
        for seq in range(1, last + 1):
            event = decode_event((await js.get_msg(STREAM_NAME, seq)).data)
            if isinstance(event, IncidentReported):
                marker = event.data.location.access_notes or ""
                found[marker] += 1
                incidents[marker].add(str(event.data.incident_id))
        return found, incidents
    finally:
        await connection.close()


async def test_no_503_lands_later_and_every_201_is_on_the_stream_once(tmp_path) -> None:
    server = EmbeddedNatsServer(tmp_path / "nats")
    server.start()
    credentials = tmp_path / "credentials.json"
    issue_credential(credentials, "outage-intake", AccessRole.INTAKE, token=TOKEN)
    settings = GatewaySettings(
        nats_url=server.url, credentials_file=credentials, var_dir=tmp_path / "var", publish_deadline_seconds=2.0
    )
    outcomes = Outcomes()
    try:
        with serving(build(settings)) as base:
            clients = [asyncio.create_task(client_loop(base, n, outcomes)) for n in range(CLIENTS)]
            waiting = asyncio.gather(*clients)
            await asyncio.wait_for(outcomes.first_reports.wait(), 60)
            server.kill()  # SIGKILL, with requests in flight
            await asyncio.wait_for(outcomes.outage_answers.wait(), 60)
            outcomes.restarted.set()
            await asyncio.to_thread(server.start)  # same port, same store
            await asyncio.wait_for(waiting, 120)
            # every request has its answer; anything still buffered somewhere would land now, so look after it
            counted, incidents = await reported_markers(server.url)
    finally:
        server.stop()

    statuses = {marker: set(answers) for marker, answers in outcomes.answers.items()}
    created = [m for m, s in statuses.items() if 201 in s]
    refused_only = [m for m, s in statuses.items() if s <= {503}]
    unknown = [m for m, s in statuses.items() if 504 in s and 201 not in s]
    assert refused_only and outcomes.during_outage["keyed"] >= 2, "the outage was not exercised"
    for marker in created:
        assert counted[marker] == 1, (marker, outcomes.answers[marker], counted[marker])
        assert incidents[marker] == {outcomes.incident_of[marker]}
    for marker in refused_only:
        assert counted[marker] == 0, f"answered 503 {outcomes.answers[marker]} but on the stream"
    for marker in unknown:
        assert counted[marker] <= 1
    assert set(counted) <= set(statuses), "an incident nobody was told about"
    # keyed requests retried through the outage all ended recorded, exactly once
    assert all(201 in statuses[m] for m in outcomes.keyed)
