"""A page's messages still waiting in the send queue are never sent once they are moot: an accept (its own page's
and its slot's), a cancelled incident, a withdrawn page; every drop is a ``notification.dropped`` event.

The dispatcher and the notifier are fed what the CRISIS stream would carry, in its order: the dispatcher's output
is the notifier's input. One ManualClock serves both, so "while the call waits for its token" is a moment the test
holds still; the sandbox stands in for the phones.
"""

# ruff: noqa: F811 - the fixtures (settings, harness, team) are imported from tests/support/dispatch_harness.py
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from services.contract.events import (
    DispatchAcknowledged,
    DispatchAlarmStopped,
    DispatchAlarmStoppedData,
    DispatchDeclined,
    DispatchTimedOut,
    DispatchWithdrawn,
    Envelope,
    IncidentCancelled,
    IncidentCancelledData,
    NotificationRequested,
    NotificationRequestedData,
    Priority,
    new_event,
)
from services.dispatcher.application import page_notification_id
from services.notifier.application import Notifier
from services.notifier.bootstrap import build
from services.notifier.domain.send_scheduler import Idle, SendNow, WaitUntil
from services.notifier.domain.templates import VOICE_TEMPLATES
from services.runtime.clock import ManualClock
from tests import dispatch_factories as f
from tests.factories import T0, fake_phone, sms_received
from tests.integration.test_notifier import (
    ManualTime,
    Sandbox,
    outbox_events,
    running_sandbox,
    send_queue,
    settings_for,
)
from tests.support.dispatch_harness import Harness, harness, of, settings, team  # noqa: F401

VOICE_FROM = "+15005550006"


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    with running_sandbox(tmp_path / "sandbox") as running:
        yield running


class Stream:
    """Delivers events to the notifier in order, each with the next stream sequence."""

    def __init__(self, notifier: Notifier) -> None:
        self.notifier = notifier
        self.sequence = 0

    def deliver(self, events: list[Envelope]) -> None:
        for event in events:
            self.sequence += 1
            self.notifier.handle(event, self.sequence)


def fed(harness: Harness, stream: Stream, *events: Envelope) -> list[Envelope]:
    """Feed ``events`` to the dispatcher and deliver them and its output to the notifier, in stream order."""
    stream.deliver(list(events))
    out = harness.feed(*events)
    stream.deliver(out)
    return out


def shared_time(harness: Harness) -> ManualTime:
    """The send queue's sleep moves the dispatcher's clock: one time for both services."""
    time = ManualTime()
    time.clock = harness.clock
    return time


def split_at(events: list[Envelope], event_type: str) -> tuple[list[Envelope], list[Envelope]]:
    """The events up to and including the first of ``event_type``, and the rest."""
    cut = next(i for i, e in enumerate(events) if e.type == event_type) + 1
    return events[:cut], events[cut:]


def dropped(notifier: Notifier) -> dict[UUID, str]:
    return {e.data.notification_id: e.data.reason for e in outbox_events(notifier) if e.type == "notification.dropped"}


def calls(sandbox: Sandbox, phone: str) -> list[dict]:
    return sandbox.http.get("/sandbox/api/calls", params={"phone": phone}).json()["calls"]


def texts(sandbox: Sandbox, phone: str) -> list[str]:
    return [m["body"] for m in sandbox.messages(phone)]


def cancelled(incident_id: UUID) -> Envelope:
    data = IncidentCancelledData(incident_id=incident_id, reason="false alarm")
    return new_event(
        IncidentCancelled, data, event_id=uuid4(), occurred_at=T0, producer="tests", incident_id=incident_id
    )


async def test_an_accept_drops_the_queued_voice_call_of_every_page_it_covers(tmp_path, sandbox, harness, team) -> None:
    """The coach's call waits for the voice token when the clinician accepts: it is never placed."""
    near, peer = team["near"], team["peer"]
    settings = settings_for(tmp_path, sandbox.url, twilio_voice_from_number=VOICE_FROM)
    with build(settings, harness.clock) as notifier:
        stream, queue = Stream(notifier), send_queue(notifier, settings, shared_time(harness))
        pages = {
            o.data.responder_id: o.data.page_id for o in of(fed(harness, stream, f.incident()), "dispatch.offered")
        }
        assert set(pages) == {near.responder_id, peer.responder_id}  # P1: both paged at once
        await queue.drain()
        stream.deliver(harness.tick(30))  # the reminders
        await queue.drain()
        stream.deliver(harness.tick(30))  # the voice calls, both requested now
        first = await queue.step()
        assert isinstance(first, SendNow)
        assert first.entry.notification_id == page_notification_id(pages[near.responder_id], "voice")
        assert isinstance(await queue.step(), WaitUntil)  # the coach's call waits for the next voice token

        accept, rest = split_at(harness.reply(near.phone, "Y 4821"), "dispatch.acknowledged")
        stream.deliver(accept)  # the accept alone, before the dispatcher's "covered" reaches the notifier
        harness.clock.advance(f.later(1))  # the voice token is back
        assert isinstance(await queue.step(), Idle)  # nothing is left to send: the coach's call was dropped
        stream.deliver(rest)
        await queue.drain()
        drops = dropped(notifier)

    assert calls(sandbox, peer.phone) == []
    assert len(calls(sandbox, near.phone)) == 1  # placed before the accept
    assert drops == {page_notification_id(pages[peer.responder_id], "voice"): "page_covered"}
    assert texts(sandbox, peer.phone)[-1] == "El aviso 4821 ya esta cubierto. No hace falta hacer nada, gracias."


async def test_accepting_drops_the_own_pages_queued_reminder_and_the_answer_is_in_spanish(
    tmp_path, sandbox, harness, team
) -> None:
    near, peer = team["near"], team["peer"]
    settings = settings_for(tmp_path, sandbox.url)
    with build(settings, harness.clock) as notifier:
        stream, queue = Stream(notifier), send_queue(notifier, settings, shared_time(harness))
        fed(harness, stream, f.incident())
        await queue.drain()
        stream.deliver(harness.tick(30))
        assert isinstance(await queue.step(), SendNow)  # the clinician's reminder; the coach's waits a second
        fed(harness, stream, sms_received(peer.phone, "Sí 4821"))  # the coach accepts meanwhile
        await queue.drain()
        drops = dropped(notifier)

    assert list(drops.values()) == ["page_accepted"]  # the coach's own reminder
    [confirmation] = texts(sandbox, peer.phone)[1:]  # the offer, then no reminder: the confirmation
    assert confirmation.startswith("Aceptado 4821. Gracias")
    assert texts(sandbox, near.phone)[1:] == [
        "Reminder: P1 page 4821 still needs a responder. Reply Y 4821 to accept, N 4821 to pass.",
        "Page 4821 is covered. No action needed, thank you.",
    ]


async def test_a_primary_accept_leaves_the_team_peers_queued_reminder_alone(tmp_path, sandbox, harness, team) -> None:
    """A self-harm team: the clinicians' pages are one slot, the peer coach's another that stays open."""
    settings = settings_for(tmp_path, sandbox.url)
    with build(settings, harness.clock) as notifier:
        stream, queue = Stream(notifier), send_queue(notifier, settings, shared_time(harness))
        team_incident = f.incident("self_harm_risk", "P1", ("licensed_clinician", "safety_precautions"))
        offered = of(fed(harness, stream, team_incident), "dispatch.offered")
        await queue.drain()
        stream.deliver(harness.tick(30))  # three reminders
        assert isinstance(await queue.step(), SendNow)  # the first clinician's
        first, second, coach = offered
        assert [o.data.reason.team_role for o in offered] == ["primary", "primary", "peer"]
        fed(harness, stream, sms_received(phone_of(team, first.data.responder_id), "Y 4821"))
        await queue.drain()
        drops = dropped(notifier)

    assert drops == {page_notification_id(second.data.page_id, "reminder"): "page_covered"}
    coach_texts = texts(sandbox, phone_of(team, coach.data.responder_id))
    assert coach_texts[1].startswith("Recordatorio: el aviso P1 4821")


async def test_a_page_held_by_the_flood_limit_is_never_sent_after_its_incident_is_cancelled(
    tmp_path, sandbox, harness, team
) -> None:
    near = team["near"]
    settings = settings_for(tmp_path, sandbox.url, sms_flood_max_messages=2, sms_flood_window_seconds=60)
    with build(settings, harness.clock) as notifier:
        stream, queue = Stream(notifier), send_queue(notifier, settings, shared_time(harness))
        for code in ("1001", "1002"):
            fed(harness, stream, f.incident("withdrawal", "P2", ("medical_review",), short_code=code))
        await queue.drain()  # the responder is at the flood limit
        third = f.incident("withdrawal", "P2", ("medical_review",), short_code="1003")
        held = of(fed(harness, stream, third), "dispatch.offered")
        assert [o.data.responder_id for o in held] == [near.responder_id]
        assert isinstance(await queue.step(), WaitUntil)  # held until the window frees up

        harness.clock.advance(f.later(5))
        withdrawn = fed(harness, stream, cancelled(third.data.incident_id))
        assert [(w.data.code, w.data.reason) for w in of(withdrawn, "dispatch.withdrawn")] == [("1003", "cancelled")]
        await queue.drain()  # the window frees up 60 s on: nothing is left for this phone
        drops = dropped(notifier)

    sent = texts(sandbox, near.phone)
    assert len(sent) == 2 and "Y 1001" in sent[0] and "Y 1002" in sent[1]  # never the held 1003, nor its notice
    notice = next(m for m in of(withdrawn, "notification.requested") if m.data.template == "page_withdrawn")
    assert drops == {
        page_notification_id(held[0].data.page_id, "offer"): "incident_cancelled",
        notice.data.notification_id: "nothing_to_withdraw",
    }


def phone_of(team: dict, responder_id: UUID) -> str:
    return next(p.phone for p in team.values() if p.responder_id == responder_id)


# --- the notifier alone: bundles, a call in flight, late requests, the alarm --------------------------------


def request(to: str, template: str, incident_id: UUID, page_id: UUID | None, **params: Any) -> Envelope:
    channel = "voice" if template in VOICE_TEMPLATES else "sms"
    data = NotificationRequestedData(
        notification_id=uuid4(),
        incident_id=incident_id,
        page_id=page_id,
        to=to,
        channel=channel,
        template=template,
        params={"priority": "P3", "code": "4821"} | params,
        priority=Priority(params.get("priority", "P3")),
    )
    return new_event(NotificationRequested, data, event_id=data.notification_id, occurred_at=T0, producer="tests")


def answered(event_class: type[Envelope], incident_id: UUID, page_id: UUID, **data: Any) -> Envelope:
    fields = {"incident_id": incident_id, "page_id": page_id, "responder_id": uuid4(), "code": "4821"}
    payload = event_class.model_fields["data"].annotation(**fields | data)
    return new_event(event_class, payload, event_id=uuid4(), occurred_at=T0, producer="tests", incident_id=incident_id)


def notifier_settings(tmp_path: Path):
    return settings_for(tmp_path, "http://127.0.0.1:9", twilio_voice_from_number=VOICE_FROM)  # never called


def test_a_bundle_is_dropped_once_every_page_it_stands_for_is_closed(tmp_path) -> None:
    phone, incident_id, first_page, second_page = fake_phone(), uuid4(), uuid4(), uuid4()
    offers = [request(phone, "page_offer", incident_id, page) for page in (first_page, second_page)]
    with build(notifier_settings(tmp_path), ManualClock(T0)) as notifier:
        stream = Stream(notifier)
        stream.deliver(offers)
        bundle = notifier.bundle([o.data.notification_id for o in offers])
        assert bundle is not None
        stream.deliver([answered(DispatchWithdrawn, incident_id, first_page, reason="covered")])
        assert dropped(notifier) == {}  # the bundle still stands for an open page
        stream.deliver([answered(DispatchDeclined, incident_id, second_page, message_sid="SM" + "0" * 32)])
        assert notifier.begin_attempt(bundle) is None
        drops = dropped(notifier)
    assert drops == {o.data.notification_id: "page_declined" for o in offers}  # reported for each page it stood for


def test_a_call_in_flight_when_the_notifier_stopped_is_not_made_again_once_its_page_is_accepted(tmp_path) -> None:
    phone, incident_id, page_id = fake_phone(), uuid4(), uuid4()
    call = request(phone, "voice_page", incident_id, page_id, priority="P1")
    settings = notifier_settings(tmp_path)
    with build(settings, ManualClock(T0)) as notifier:
        notifier.handle(call, 1)
        assert notifier.begin_attempt(call.data.notification_id) is not None  # then the notifier stops
        notifier.handle(answered(DispatchAcknowledged, incident_id, page_id, message_sid="SM" + "1" * 32), 2)
        assert dropped(notifier) == {}  # a call under way may be ringing: it is not dropped from under itself
    with build(settings, ManualClock(T0)) as restarted:
        assert restarted.begin_attempt(call.data.notification_id) is None  # not made again
        assert dropped(restarted) == {call.data.notification_id: "page_accepted"}


def test_a_request_for_a_page_already_closed_is_dropped_at_once(tmp_path) -> None:
    phone, incident_id, page_id = fake_phone(), uuid4(), uuid4()
    reminder = request(phone, "page_reminder", incident_id, page_id)
    with build(notifier_settings(tmp_path), ManualClock(T0)) as notifier:
        Stream(notifier).deliver([answered(DispatchTimedOut, incident_id, page_id, deadline=T0), reminder])
        assert notifier.pending_since(0) == ([], notifier.recorder.max_notification_id())
        assert dropped(notifier) == {reminder.data.notification_id: "page_timed_out"}


def test_the_alarms_queued_texts_and_calls_are_dropped_when_it_stops(tmp_path) -> None:
    phone, incident_id = fake_phone(), uuid4()
    params = {"priority": "P1", "kind": "overdose", "minutes_since_report": 5, "repeat": 1}
    alarm = [request(phone, t, incident_id, None, **params) for t in ("nobody_accepted", "nobody_accepted_call")]
    stopped = new_event(
        DispatchAlarmStopped,
        DispatchAlarmStoppedData(incident_id=incident_id, reason="accepted", repeats=1),
        event_id=uuid4(),
        occurred_at=T0,
        producer="tests",
        incident_id=incident_id,
    )
    with build(notifier_settings(tmp_path), ManualClock(T0)) as notifier:
        Stream(notifier).deliver([*alarm, stopped])
        drops = dropped(notifier)
    assert drops == {a.data.notification_id: "alarm_stopped" for a in alarm}
