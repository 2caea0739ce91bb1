"""Responders' SMS conversations on a real dispatcher store: every keyword in each language a responder may be set
to, answered in their language; STATUS tells accepted incidents apart; a reply to a withdrawn page says so.

Time is a ManualClock; the dispatcher's answers are rendered by the notifier's templates to check their words.
"""

# ruff: noqa: F811 - the fixtures (settings, harness, team) are imported from tests/support/dispatch_harness.py
from __future__ import annotations

from uuid import uuid4

import pytest

from services.contract.events import Envelope, IncidentCancelled, IncidentCancelledData, new_event
from services.contract.roster import ResponderProfile
from services.dispatcher.bootstrap import build
from services.dispatcher.domain.replies import KEYWORDS
from services.notifier.domain.templates import render
from services.runtime.clock import ManualClock
from tests import dispatch_factories as f
from tests.factories import T0
from tests.support.dispatch_harness import Harness, harness, messages, of, settings, team  # noqa: F401

FIRST_STAGE = {"en_route": "dispatch.en_route", "arrived": "dispatch.arrived", "done": "dispatch.completed"}
WORDS = [
    (command, language, word)
    for command, by_language in KEYWORDS.items()
    for language, words in by_language.items()
    for word in words
]


def answers(events: list[Envelope]) -> list[Envelope]:
    return of(events, "notification.requested")


def text_of(answer: Envelope) -> str:
    return render(answer.data.template, answer.data.params, answer.data.language).text


def one_responder(harness: Harness, language: str) -> ResponderProfile:
    person = f.responder(languages=(language,))
    harness.feed(f.registered(person), f.rotation([person.responder_id]))
    harness.new()
    return person


def cancel(incident_id) -> Envelope:
    data = IncidentCancelledData(incident_id=incident_id, reason="false alarm")
    return new_event(
        IncidentCancelled, data, event_id=uuid4(), occurred_at=T0, producer="tests", incident_id=incident_id
    )


@pytest.mark.parametrize(("command", "language", "word"), WORDS)
def test_every_keyword_works_for_a_responder_set_to_each_language_and_is_answered_in_it(
    harness, command: str, language: str, word: str
) -> None:
    person = one_responder(harness, language)
    harness.feed(f.incident("withdrawal", "P2", ("naloxone_carrier",)))
    if command in FIRST_STAGE:
        assert of(harness.reply(person.phone, "Y 4821"), "dispatch.acknowledged")
    out = harness.reply(person.phone, f"{word.lower()} 4821" if command != "help" else word.lower())
    expected = {
        "accept": ("dispatch.acknowledged", "ack_confirmed"),
        "decline": ("dispatch.declined", "decline_confirmed"),
        "en_route": ("dispatch.en_route", "en_route_confirmed"),
        "arrived": ("dispatch.arrived", "arrived_confirmed"),
        "done": ("dispatch.completed", "done_confirmed"),
        "status": (None, "status_summary"),
        "help": (None, "reply_help"),
    }[command]
    event_type, template = expected
    if event_type is not None:
        assert len(of(out, event_type)) == 1
    [answer] = [a for a in answers(out) if a.data.to == person.phone]
    assert (answer.data.template, answer.data.language) == (template, language)
    assert render(answer.data.template, answer.data.params, language).language == language


def test_status_lists_an_accepted_incident_as_accepted_not_as_an_open_page(harness, team) -> None:
    near = team["near"]
    for code in ("4821", "2222"):  # both page the nearest clinician
        offered = of(
            harness.feed(f.incident("withdrawal", "P2", ("medical_review",), short_code=code)), "dispatch.offered"
        )
        assert offered[0].data.responder_id == near.responder_id
    harness.reply(near.phone, "Y 4821")
    [both] = answers(harness.reply(near.phone, "STATUS"))
    assert both.data.params == {"codes": ["2222"], "accepted": ["4821"]}
    assert text_of(both) == (
        "Open pages: 2222 (reply Y or N and the code). Accepted: 4821 (reply OTW, ARRIVED or DONE and the code)."
    )
    harness.reply(near.phone, "N 2222")
    [accepted] = answers(harness.reply(near.phone, "status"))
    assert accepted.data.params == {"codes": [], "accepted": ["4821"]}
    assert text_of(accepted) == (
        "Accepted, still on: 4821. Reply OTW (en route), ARRIVED (on scene) or DONE (finished), with the code."
    )
    harness.reply(near.phone, "DONE 4821")
    [after] = answers(harness.reply(near.phone, "STATUS"))
    assert (after.data.params, text_of(after)) == ({"codes": []}, "You have no open pages and no incident in progress.")


def test_the_spanish_speaking_coach_accepts_asks_for_help_and_status_in_spanish(harness, team) -> None:
    peer = team["peer"]  # languages ("es", "en")
    harness.feed(f.incident())
    [help_answer] = answers(harness.reply(peer.phone, "AYUDA"))
    assert text_of(help_answer).startswith("Despacho: SI/NO <codigo> acepta/pasa, EN CAMINO, LLEGUE, TERMINADO")
    accepted = harness.reply(peer.phone, "Si 4821")
    assert of(accepted, "dispatch.acknowledged")[0].data.responder_id == peer.responder_id
    [status] = answers(harness.reply(peer.phone, "estado"))
    assert text_of(status).startswith("Aceptados, en curso: 4821. Responda EN CAMINO, LLEGUE")
    assert of(harness.reply(peer.phone, "en camino"), "dispatch.en_route")
    assert of(harness.reply(peer.phone, "Llegué"), "dispatch.arrived")
    done = harness.reply(peer.phone, "TERMINADO 4821")
    assert of(done, "dispatch.completed")[0].data.closes_incident is True
    assert [text_of(a) for a in answers(done)] == ["Anotado: 4821 terminado. Gracias. Complete las notas en la app."]


def test_a_reply_to_a_page_of_a_cancelled_incident_says_it_was_cancelled(harness, team) -> None:
    near, peer = team["near"], team["peer"]
    reported = f.incident()
    harness.feed(reported)
    harness.feed(cancel(reported.data.incident_id))
    late = harness.reply(near.phone, "Y 4821")
    assert [e.type for e in late if e.type.startswith("dispatch.")] == []
    [answer] = answers(late)
    assert (answer.data.template, text_of(answer)) == ("page_withdrawn", "Page 4821 was cancelled. No action needed.")
    [spanish] = answers(harness.reply(peer.phone, "no 4821"))
    assert text_of(spanish) == "El aviso 4821 fue cancelado. No hace falta hacer nada."


def test_a_reply_to_a_page_someone_else_covered_or_an_incident_already_done_says_no_action_is_needed(
    harness, team
) -> None:
    near = team["near"]
    harness.feed(f.incident("withdrawal", "P2", ("medical_review",)))
    harness.reply(near.phone, "Y 4821")
    harness.reply(near.phone, "DONE 4821")  # the incident is closed
    [answer] = answers(harness.reply(near.phone, "OTW 4821"))
    assert text_of(answer) == "Page 4821 is covered. No action needed, thank you."
    harness.feed(f.incident(short_code="5555"))  # P1: near and the peer paged; near accepts, the peer is covered
    harness.reply(near.phone, "Y 5555")
    [declined_late] = answers(harness.reply(team["peer"].phone, "N 5555"))
    assert (declined_late.data.to, text_of(declined_late)) == (
        team["peer"].phone,
        "El aviso 5555 ya esta cubierto. No hace falta hacer nada, gracias.",
    )


def test_accepting_twice_answers_with_the_status_not_with_not_understood(harness, team) -> None:
    near = team["near"]
    harness.feed(f.incident())
    harness.reply(near.phone, "Y 4821")
    [again] = answers(harness.reply(near.phone, "yes 4821"))
    assert again.data.template == "status_summary" and again.data.params["accepted"] == ["4821"]


@pytest.mark.parametrize(("body", "language", "noted"), [
    ("Estoy en Union Station", "es", "Ubicacion anotada, gracias."),
    ("at union station", "en", "Location noted, thank you."),
])  # fmt: skip
def test_a_place_texted_in_either_language_is_noted_in_the_responders(settings, body, language, noted) -> None:
    clock = ManualClock(T0)
    with build(settings, clock, locate={"union station": (39.7527, -105.0001)}.get) as app:
        local = Harness(app, clock)
        person = one_responder(local, language)
        [answer] = answers(local.reply(person.phone, body.lower()))
        assert (answer.data.template, text_of(answer)) == ("location_noted", noted)
        assert app.repository.get(app.known.record_ids[person.responder_id]).location["label"] == "union station"
