"""The dispatcher and the projections service on one real NATS stream and one ManualClock, with a small roster of
generated staff: what the responder page's tests (HTTP and browser) run against.

A report published here is paged by the dispatcher; a reply is an ``sms.received`` event as the gateway would
publish it; the accept confirmation's link is read from the ``notification.requested`` the dispatcher published.
Nothing sleeps: ``settled`` waits on each processor's tracking and outbox positions until the stream is quiet.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx

from services.contract.events import (
    Assessment,
    CrisisKind,
    Envelope,
    IncidentReported,
    IncidentReportedData,
    Location,
    OverdoseDetails,
    Priority,
    Reporter,
    ResponderProfile,
    new_event,
)
from services.dispatcher.application import Dispatcher
from services.dispatcher.bootstrap import build as build_dispatcher
from services.dispatcher.settings import DispatcherSettings
from services.projections.bootstrap import DESK_NAME
from services.projections.bootstrap import build as build_projections
from services.projections.settings import ProjectionsSettings
from services.runtime.clock import ManualClock
from services.runtime.credentials import AccessRole, issue_credential
from services.runtime.processor_service import running_processor
from tests import dispatch_factories as f
from tests.factories import T0, sms_received
from tests.support.asgi_server import serving
from tests.support.stream import last_sequence, publish_all, relayed, stream_events, taken_in, tracked

SCENE = (39.75306, -105.00008)  # in front of a railway station downtown (generated test data)
ACCESS_NOTES = "Bench by track 3, north end of the platform. Station security meets you at the Wynkoop St doors."
GUIDANCE = [
    "Call 911 now if nobody has.",
    "Give naloxone if you have it: one spray in one nostril; a second after 2-3 minutes if there is no response.",
    "If they are not breathing, give rescue breaths: one every 5 seconds.",
    "Lay them on their side and stay with them until help arrives.",
]


def staff(
    name: str,
    role: str,
    phone: str,
    *,
    skills: tuple[str, ...] = (),
    supervisor: UUID | None = None,
    home: tuple[float, float] = (39.7525, -104.999),
    languages: tuple[str, ...] = ("en",),
) -> ResponderProfile:
    return ResponderProfile(
        responder_id=uuid4(),
        name=name,
        role=role,
        skills=list(skills),
        languages=list(languages),
        phone=phone,
        home_base={"lat": home[0], "lon": home[1]},
        zones=list(f.ZONES),
        supervisor_id=supervisor,
    )


def roster() -> dict[str, ResponderProfile]:
    """Generated people: a clinician and a peer coach near the scene, a nurse further off, their supervisor."""
    supervisor = staff(
        "Dana Whitfield", "supervisor", "+15550142004", skills=("licensed_clinician",), home=(39.7392, -104.9903)
    )
    boss = supervisor.responder_id
    return {
        "supervisor": supervisor,
        "clinician": staff(
            "Maya Okafor",
            "clinician",
            "+15550142001",
            skills=("licensed_clinician", "naloxone_carrier"),
            supervisor=boss,
            home=(39.7512, -104.9985),
        ),
        "coach": staff(
            "Luis Romero",
            "peer_coach",
            "+15550142002",
            skills=("naloxone_carrier",),
            supervisor=boss,
            home=(39.7541, -105.0032),
            languages=("es", "en"),
        ),
        "nurse": staff(
            "Nia Barros", "nurse", "+15550142003", skills=("nurse",), supervisor=boss, home=(39.678, -104.961)
        ),
    }


def overdose_at_the_station(short_code: str = "4821") -> IncidentReported:
    incident_id = uuid4()
    data = IncidentReportedData(
        incident_id=incident_id,
        short_code=short_code,
        kind=CrisisKind.OVERDOSE,
        priority=Priority.P1,
        needs=["naloxone_carrier", "ems_now"],
        guidance=GUIDANCE,
        location=Location(
            lat=SCENE[0],
            lon=SCENE[1],
            address="1701 Wynkoop St, Denver, CO 80202",
            access_notes=ACCESS_NOTES,
            place="Union Station",
            resolved_from="address",
        ),
        reporter=Reporter(channel="hotline", relation="bystander", callback="+15550188001"),
        overdose=OverdoseDetails(responsive=False, breathing=True, naloxone_doses_given=0, ems_called=False),
        assessment=Assessment(reasons=["overdose: always P1", "EMS not called yet: call 911"]),
        zone="central",
    )
    return new_event(
        IncidentReported, data, event_id=uuid4(), occurred_at=T0, producer="tests", incident_id=incident_id
    )


@dataclass
class ResponderStack:
    js: Any
    url: str
    app: Any  # the projections' FastAPI app
    dispatcher: Dispatcher
    clock: ManualClock
    people: dict[str, ResponderProfile]
    tokens: dict[str, str]

    async def settled(self) -> None:
        """Wait until the dispatcher, the follow-up desk and the read models have taken in (and published what
        they decided on) everything on the stream."""
        desk, read_models = self.app.state.desk, self.app.state.read_models
        while True:
            last = await last_sequence(self.js)
            await taken_in(self.js, "dispatcher")
            await relayed(self.dispatcher)
            await taken_in(self.js, DESK_NAME)
            await relayed(desk)
            if await last_sequence(self.js) == last:
                await tracked(read_models.store, last)
                return

    async def publish(self, *events: Envelope) -> None:
        await publish_all(self.js, events)
        await self.settled()

    async def reply(self, who: str, body: str) -> None:
        """``who`` texts ``body`` (as the gateway publishes an inbound SMS)."""
        await self.publish(sms_received(self.people[who].phone, body))

    async def link_for(self, who: str) -> str:
        """The link in the accept confirmation the dispatcher asked to send to ``who``."""
        for event in reversed(await stream_events(self.js)):
            data = event.data
            if event.type == "notification.requested" and data.template == "ack_confirmed":
                if data.to == self.people[who].phone:
                    return data.params["link"]
        raise AssertionError(f"no accept confirmation to {who}")

    def path(self, link: str) -> str:
        assert link.startswith(self.url + "/r/"), link
        return link.removeprefix(self.url)

    def client(self) -> httpx.AsyncClient:
        """A browser-like client of the projections service: keeps cookies, does not follow redirects."""
        return httpx.AsyncClient(base_url=self.url, timeout=30)

    def move_clock(self, **delta: float) -> None:
        self.clock.advance(timedelta(**delta))


@contextlib.asynccontextmanager
async def responder_stack(js: Any, nats_url: str, var_dir: Path) -> AsyncIterator[ResponderStack]:
    var_dir.mkdir(parents=True, exist_ok=True)
    clock = ManualClock(T0)
    people = roster()
    credentials = var_dir / "credentials.json"
    tokens = {"director": issue_credential(credentials, "dr-director", AccessRole.DIRECTOR)}
    for key, person in people.items():
        tokens[key] = issue_credential(credentials, f"{key}-user", AccessRole.RESPONDER, person.responder_id)
    # everyone on call at once: one rotation each
    await publish_all(
        js, [*(f.registered(p) for p in people.values()), *(f.rotation([p.responder_id]) for p in people.values())]
    )
    projections = ProjectionsSettings(
        nats_url=nats_url, var_dir=var_dir, credentials_file=credentials, followup_check_seconds=3600
    )
    app = build_projections(projections, clock)
    with serving(app) as url:
        settings = DispatcherSettings(
            nats_url=nats_url,
            var_dir=var_dir,
            roster_seed_file=None,
            gazetteer_file=None,
            dispatcher_ops_port=0,
            workspace_public_url=url,
        )
        with build_dispatcher(settings, clock) as dispatcher:
            async with running_processor(settings, dispatcher, durable="dispatcher"):
                stack = ResponderStack(js, url, app, dispatcher, clock, people, tokens)
                await stack.settled()
                yield stack
