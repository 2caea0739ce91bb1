"""A dispatcher fed by hand on a real store, with a ManualClock: the dispatcher tests' one harness.

Deadlines are reached by moving the clock (``tick``), never by waiting. Test modules import the fixtures they use
(``settings``, ``harness``, ``team``) from here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from services.contract.events import Envelope
from services.dispatcher.application import Dispatcher
from services.dispatcher.bootstrap import build
from services.dispatcher.settings import DispatcherSettings
from services.runtime.clock import ManualClock
from tests import dispatch_factories as f
from tests.factories import T0, sms_received


class Harness:
    """A dispatcher fed by hand: each event gets the next stream sequence; ``new()`` is what it published since."""

    def __init__(self, app: Dispatcher, clock: ManualClock) -> None:
        self.app, self.clock = app, clock
        self.sequence = 0
        self.seen = 0

    def feed(self, *events: Envelope) -> list[Envelope]:
        for event in events:
            self.sequence += 1
            self.app.handle(event, self.sequence)
        return self.new()

    def tick(self, seconds: float) -> list[Envelope]:
        self.clock.advance(f.later(seconds))
        self.app.fire_due()
        return self.new()

    def published(self) -> list[Envelope]:
        notifications = self.app.recorder.select_notifications(start=1, limit=10_000)
        return [e for n in notifications for e in self.app.outbox(self.app.mapper.to_domain_event(n))]

    def new(self) -> list[Envelope]:
        everything = self.published()
        fresh, self.seen = everything[self.seen :], len(everything)
        return fresh

    def reply(self, phone: str, body: str) -> list[Envelope]:
        return self.feed(sms_received(phone, body))

    def resume(self, app: Dispatcher, sequence: int) -> Harness:
        """A harness for ``app`` restarted on the same store: the stream position it had, nothing new yet."""
        resumed = Harness(app, self.clock)
        resumed.sequence = sequence
        resumed.seen = len(resumed.published())
        return resumed


def of(events: list[Envelope], type_: str) -> list[Envelope]:
    return [e for e in events if e.type == type_]


def messages(events: list[Envelope]) -> list[tuple[str, str]]:
    return [(e.data.to, e.data.template) for e in of(events, "notification.requested")]


@pytest.fixture
def settings(tmp_path: Path) -> DispatcherSettings:
    return DispatcherSettings(var_dir=tmp_path, roster_seed_file=None)


@pytest.fixture
def harness(settings: DispatcherSettings) -> Iterator[Harness]:
    clock = ManualClock(T0)
    with build(settings, clock) as app:
        yield Harness(app, clock)


@pytest.fixture
def team(harness: Harness):
    """Two clinicians, a peer, a supervisor and a director, all on call in zone central."""
    director = f.responder("director", skills=("licensed_clinician",), home=(39.70, -104.95))
    supervisor = f.responder("supervisor", skills=("licensed_clinician",), home=(39.74, -104.99))
    near = f.responder(
        "clinician",
        skills=("naloxone_carrier", "licensed_clinician"),
        home=(39.744, -104.988),
        supervisor_id=supervisor.responder_id,
    )
    second = f.responder(
        "clinician",
        skills=("naloxone_carrier", "licensed_clinician"),
        home=(39.75, -104.99),
        supervisor_id=supervisor.responder_id,
    )
    far = f.responder(
        "nurse", skills=("naloxone_carrier", "nurse"), home=(39.80, -104.90), supervisor_id=supervisor.responder_id
    )
    peer = f.responder(
        "peer_coach",
        skills=("naloxone_carrier",),
        home=(39.746, -104.989),
        languages=("es", "en"),
        supervisor_id=supervisor.responder_id,
    )
    people = [director, supervisor, near, second, far, peer]
    harness.feed(*(f.registered(p) for p in people), *(f.rotation([p.responder_id]) for p in people))
    harness.new()
    return {"director": director, "supervisor": supervisor, "near": near, "second": second, "far": far, "peer": peer}
