"""What a responder on an incident reports by text, through the dispatcher on a real store: each command records its
event (or the gateway's own dose / EMS-arrival event), notes what the incident's deadlines need, and is confirmed;
a part not understood is named and nothing is recorded; someone not on the incident records nothing.

And a drill over SMS alone leaves documentation whose dose, EMS and times are filled.
"""

# ruff: noqa: F811 - the fixtures (settings, harness, team) are imported from tests/support/dispatch_harness.py
from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

from services.contract.events import (
    EmsArrived,
    EmsArrivedData,
    Envelope,
    IncidentReported,
    IncidentReportedData,
    new_event,
)
from services.dispatcher.bootstrap import build
from services.dispatcher.settings import DispatcherSettings
from services.notifier.domain.templates import render
from services.projections.domain.documentation import assemble_documentation
from services.projections.domain.progress import incident_progress
from services.runtime.clock import ManualClock
from tests import dispatch_factories as f
from tests.factories import T0
from tests.support.dispatch_harness import Harness, harness, messages, of, settings, team  # noqa: F401
from tests.unit.test_projections_domain import recorded

CALLER = "+15005550123"


def texts_to(events: list[Envelope], phone: str) -> list[Envelope]:
    return [e for e in of(events, "notification.requested") if e.data.to == phone]


def text_of(request: Envelope) -> str:
    return render(request.data.template, request.data.params, request.data.language).text


def with_callback(reported: IncidentReported, callback: str | None) -> IncidentReported:
    data = reported.data.model_dump(mode="json")
    data["reporter"]["callback"] = callback
    return new_event(
        IncidentReported,
        IncidentReportedData.model_validate(data),
        event_id=reported.id,
        occurred_at=reported.occurred_at,
        producer="tests",
        incident_id=reported.data.incident_id,
    )


def accepted(dispatcher: Harness, people: dict, callback: str | None = None) -> IncidentReported:
    """An overdose (code 4821) accepted by the nearest clinician."""
    reported = with_callback(f.incident(), callback)
    dispatcher.feed(reported)
    assert of(dispatcher.reply(people["near"].phone, "Y 4821"), "dispatch.acknowledged")
    return reported


def field_state(dispatcher: Harness, reported: IncidentReported) -> dict:
    return dispatcher.app.repository.get(reported.data.incident_id).field_state()


# ---- accept with an ETA ----------------------------------------------------------------------------------------


def test_an_accept_with_minutes_records_the_eta_and_confirms_both(harness, team) -> None:
    reported = f.incident()
    harness.feed(reported)
    near = team["near"]
    out = harness.reply(near.phone, "Y 4821 12")
    assert of(out, "dispatch.acknowledged")
    [eta] = of(out, "field.eta_given")
    assert (eta.data.responder_id, eta.data.code, eta.data.minutes) == (near.responder_id, "4821", 12)
    assert eta.data.eta_at == T0 + timedelta(minutes=12) and eta.producer == "dispatcher"
    assert [m.data.template for m in texts_to(out, near.phone)] == ["ack_confirmed", "field_noted"]
    assert text_of(texts_to(out, near.phone)[1]) == "Noted: ETA 12 min for 4821. Reply ARRIVED 4821 on scene."
    assert field_state(harness, reported)["etas"] == {str(near.responder_id): T0 + timedelta(minutes=12)}


def test_a_later_y_with_minutes_from_the_responder_on_it_updates_the_eta(harness, team) -> None:
    reported = f.incident()
    harness.feed(reported)
    near = team["near"]
    harness.reply(near.phone, "Y 4821 10")
    harness.clock.advance(timedelta(minutes=5))
    out = harness.reply(near.phone, "Y 4821 20")
    assert not of(out, "dispatch.acknowledged") and not of(out, "dispatch.extra_acceptance")
    assert of(out, "field.eta_given")[0].data.eta_at == T0 + timedelta(minutes=25)
    assert field_state(harness, reported)["etas"] == {str(near.responder_id): T0 + timedelta(minutes=25)}
    # without minutes, the same Y is answered with the status as before, and records nothing
    again = harness.reply(near.phone, "Y 4821")
    assert [m.data.template for m in of(again, "notification.requested")] == ["status_summary"]


def test_the_spanish_accept_with_minutes_is_confirmed_in_spanish(harness, team) -> None:
    peer = team["peer"]  # languages ("es", "en"); the nearest naloxone carrier after the clinicians
    harness.feed(f.incident())
    out = harness.reply(peer.phone, "Sí 4821 en 15 minutos")
    assert of(out, "field.eta_given")[0].data.minutes == 15
    noted = [m for m in texts_to(out, peer.phone) if m.data.template == "field_noted"]
    assert [text_of(m) for m in noted] == ["Anotado: llegada en 15 min para 4821. Responda LLEGUE 4821 al llegar."]


def test_minutes_out_of_range_are_named_and_the_page_stays_open(harness, team) -> None:
    harness.feed(f.incident())
    near = team["near"]
    out = harness.reply(near.phone, "Y 4821 300")
    assert not of(out, "dispatch.acknowledged") and not of(out, "field.eta_given")
    [answer] = texts_to(out, near.phone)
    assert answer.data.template == "reply_not_understood"
    assert answer.data.params == {"command": "accept", "part": "minutes", "code": "4821"}
    assert text_of(answer) == "Not understood: the minutes (1-240). Example: Y 4821 15. HELP lists all."


# ---- naloxone, EMS, 911, vitals --------------------------------------------------------------------------------


def test_narcan_records_the_dose_as_the_gateway_event_and_confirms_without_naming_it(harness, team) -> None:
    reported = accepted(harness, team)
    near = team["near"]
    out = harness.reply(near.phone, "NARCAN 4821 0.4MG IM better")
    [dose] = of(out, "incident.naloxone_administered")
    assert dose.producer == "dispatcher" and dose.incident_id == reported.data.incident_id
    assert (dose.data.product, dose.data.dose_mg, dose.data.route) == (
        "naloxone 0.4 mg injection",
        0.4,
        "intramuscular",
    )
    assert (dose.data.given_by_role, dose.data.response, dose.data.given_at) == ("clinician", "improved", T0)
    assert dose.data.recorded_by == near.name
    [noted] = texts_to(out, near.phone)
    assert text_of(noted) == "Noted for 4821: dose given. Thank you."


def test_narcan_alone_is_the_common_nasal_kit(harness, team) -> None:
    accepted(harness, team)
    [dose] = of(harness.reply(team["near"].phone, "narcan"), "incident.naloxone_administered")
    assert (dose.data.product, dose.data.dose_mg, dose.data.route) == ("naloxone 4 mg nasal spray", 4.0, "intranasal")
    assert dose.data.response is None


def test_a_dose_texted_takes_a_kit_out_of_a_recorded_stock(harness, team) -> None:
    accepted(harness, team)
    near = team["near"]
    harness.reply(near.phone, "RESTOCK 2")
    out = harness.reply(near.phone, "NALOXONA 4821 4MG IN")
    assert of(out, "incident.naloxone_administered")
    [changed] = of(out, "naloxone.stock_changed")
    assert (changed.data.reason, changed.data.change, changed.data.usable) == ("dose_given", -1, 1)


def test_ems_and_911_are_recorded_and_noted_on_the_incident(harness, team) -> None:
    reported = accepted(harness, team)
    near = team["near"]
    called = harness.reply(near.phone, "911 4821")
    [event] = of(called, "field.ems_called")
    assert (event.data.called_at, event.data.responder_id, event.data.channel) == (T0, near.responder_id, "sms")
    assert text_of(texts_to(called, near.phone)[0]) == "Noted for 4821: 911 called. Reply EMS 4821 when they arrive."
    harness.clock.advance(timedelta(minutes=9))
    arrived = harness.reply(near.phone, "EMS 4821 Denver Health")
    [ems] = of(arrived, "incident.ems_arrived")
    assert (ems.data.arrived_at, ems.data.agency, ems.producer) == (
        T0 + timedelta(minutes=9),
        "DENVER HEALTH",
        "dispatcher",
    )
    assert text_of(texts_to(arrived, near.phone)[0]) == "Noted for 4821: EMS on scene. Thank you."
    state = field_state(harness, reported)
    assert (state["ems_called_at"], state["ems_arrived_at"]) == (T0, T0 + timedelta(minutes=9))


def test_ems_arrival_recorded_on_the_incident_page_is_noted_once_and_the_texts_own_is_not_taken_in_again(
    harness, team
) -> None:
    reported = accepted(harness, team)
    incident_id = reported.data.incident_id
    on_page = new_event(
        EmsArrived,
        EmsArrivedData(incident_id=incident_id, arrived_at=T0 + timedelta(minutes=4), recorded_by="dr-director"),
        event_id=uuid4(),
        occurred_at=T0,
        producer="projections",
        incident_id=incident_id,
    )
    harness.feed(on_page)
    assert field_state(harness, reported)["ems_arrived_at"] == T0 + timedelta(minutes=4)
    version = harness.app.repository.get(incident_id).version
    [own] = of(harness.reply(team["near"].phone, "EMS 4821"), "incident.ems_arrived")  # still recorded, confirmed
    harness.feed(own)  # the dispatcher's own event, back from the stream
    assert field_state(harness, reported)["ems_arrived_at"] == T0 + timedelta(minutes=4)
    assert harness.app.repository.get(incident_id).version == version + 1  # the text's note only


def test_vitals_are_recorded_and_never_repeated_in_the_confirmation(harness, team) -> None:
    accepted(harness, team)
    near = team["near"]
    out = harness.reply(near.phone, "VITALS 4821 RR 8 SPO2 88% HR 52 AVPU P")
    [vitals] = of(out, "field.vitals_recorded")
    data = vitals.data
    assert (data.respiratory_rate, data.spo2, data.pulse, data.responsiveness) == (8, 88, 52, "pain")
    [noted] = texts_to(out, near.phone)
    assert text_of(noted) == "Noted for 4821: vitals recorded. Thank you."
    assert not {"88", "52"} & set(text_of(noted).replace(".", " ").split())


def test_spanish_vitals_out_of_range_name_the_value_and_record_nothing(harness, team) -> None:
    harness.feed(f.incident())
    peer = team["peer"]
    harness.reply(peer.phone, "SI 4821")
    out = harness.reply(peer.phone, "SIGNOS 4821 FR 12 SAT 140")
    assert not of(out, "field.vitals_recorded")
    [answer] = texts_to(out, peer.phone)
    assert answer.data.params == {"command": "vitals", "part": "spo2", "code": "4821"}
    assert text_of(answer) == (
        "No entendimos la saturacion (SAT 50-100). Ejemplo: SIGNOS 4821 FR 12 SAT 94 FC 88 AVDN A. "
        "AYUDA CAMPO para ver todo."
    )


def test_a_dose_not_understood_is_named_and_nothing_is_recorded(harness, team) -> None:
    accepted(harness, team)
    near = team["near"]
    out = harness.reply(near.phone, "NARCAN 4821 8MG")
    assert not of(out, "incident.naloxone_administered") and not of(out, "naloxone.stock_changed")
    [answer] = texts_to(out, near.phone)
    assert text_of(answer) == (
        "Not understood: the dose (4MG or 0.4MG). Example: NARCAN 4821 4MG IN. HELP FIELD lists all."
    )


def test_someone_not_on_the_incident_records_nothing_and_gets_the_usual_answer(harness, team) -> None:
    accepted(harness, team)
    far = team["far"]
    for body in ("NARCAN 4821", "EMS 4821", "911 4821", "VITALS 4821 RR 12", "BACKUP 4821"):  # 5: the cap on answers
        out = harness.reply(far.phone, body)
        recorded_types = {e.type for e in out} - {"notification.requested"}
        assert not recorded_types, (body, recorded_types)
        [answer] = texts_to(out, far.phone)
        assert answer.data.template in ("reply_unknown", "page_covered"), body


# ---- cannot find the person, backup ----------------------------------------------------------------------------


def test_nofind_tells_the_supervisor_and_asks_the_caller_who_left_a_callback(harness, team) -> None:
    accepted(harness, team, callback=CALLER)
    near, supervisor = team["near"], team["supervisor"]
    out = harness.reply(near.phone, "NOFIND 4821")
    [event] = of(out, "field.cannot_locate")
    assert (event.data.caller_asked, event.data.supervisor_id) == (True, supervisor.responder_id)
    assert text_of(texts_to(out, near.phone)[0]) == "Noted for 4821: person not found. Your supervisor was told."
    [alert] = texts_to(out, supervisor.phone)
    assert text_of(alert) == (
        f"{near.name} cannot find the person for 4821. The caller was asked to confirm the location. "
        "Please check the board."
    )
    [ask] = texts_to(out, CALLER)
    assert ask.data.template == "caller_confirm_location" and ask.data.params == {}
    assert "4821" not in text_of(ask) and "911" in text_of(ask)
    # a second NOFIND tells the supervisor again, and does not text the caller twice
    again = harness.reply(near.phone, "NOFIND 4821")
    assert of(again, "field.cannot_locate")[0].data.caller_asked is False
    assert not texts_to(again, CALLER) and texts_to(again, supervisor.phone)


def test_nofind_without_a_callback_asks_nobody_else(harness, team) -> None:
    accepted(harness, team)
    out = harness.reply(team["near"].phone, "no encuentro")
    assert of(out, "field.cannot_locate")[0].data.caller_asked is False
    assert {m.data.template for m in of(out, "notification.requested")} == {"field_noted", "field_alert"}


def test_backup_pages_the_next_qualified_responder_at_once_who_then_joins(harness, team) -> None:
    reported = accepted(harness, team)
    near = team["near"]
    out = harness.reply(near.phone, "BACKUP 4821")
    [offered] = of(out, "dispatch.offered")
    [asked] = of(out, "field.backup_requested")
    assert asked.data.paged == [offered.data.responder_id]
    assert offered.data.responder_id not in (near.responder_id, team["supervisor"].responder_id)
    assert text_of(texts_to(out, near.phone)[0]) == "Backup paged for 4821. Your supervisor sees it on the board."
    backup = next(p for p in team.values() if p.responder_id == offered.data.responder_id)
    joined = harness.reply(backup.phone, f"Y {offered.data.code} 20")
    [extra] = of(joined, "dispatch.extra_acceptance")
    assert extra.data.outcome == "backup"
    # confirmed like an accept (they come to the scene), not "already taken, stay available"
    assert [m.data.template for m in texts_to(joined, backup.phone)] == ["ack_confirmed", "field_noted"]
    assert of(joined, "field.eta_given")[0].data.minutes == 20
    incident = harness.app.repository.get(reported.data.incident_id)
    assert set(incident.on_it) == {str(near.responder_id), str(backup.responder_id)}


def test_a_backup_page_joins_the_incident_even_where_a_second_acceptance_stands_down(tmp_path) -> None:
    settings = DispatcherSettings(var_dir=tmp_path, roster_seed_file=None, second_acceptance="stand_down")
    with build(settings, ManualClock(T0)) as app:
        assert app.replies.policy.second_acceptance == "stand_down"
        dispatcher = Harness(app, ManualClock(T0))
        supervisor = f.responder("supervisor", skills=("licensed_clinician",), home=(39.74, -104.99))
        first = f.responder("clinician", skills=("naloxone_carrier",), supervisor_id=supervisor.responder_id)
        second = f.responder("nurse", skills=("naloxone_carrier",), home=(39.80, -104.90))
        people = [supervisor, first, second]
        dispatcher.feed(*(f.registered(p) for p in people), *(f.rotation([p.responder_id]) for p in people))
        dispatcher.feed(f.incident("withdrawal", "P2", ("naloxone_carrier",)))  # P2: one page at a time
        dispatcher.reply(first.phone, "Y 4821")
        [offered] = of(dispatcher.reply(first.phone, "BACKUP"), "dispatch.offered")
        assert offered.data.responder_id == second.responder_id
        joined = dispatcher.reply(second.phone, f"Y {offered.data.code}")
        assert of(joined, "dispatch.extra_acceptance")[0].data.outcome == "backup"


def test_backup_with_nobody_left_tells_the_supervisor(harness) -> None:
    supervisor = f.responder("supervisor", skills=("licensed_clinician",), home=(39.74, -104.99))
    alone = f.responder("clinician", skills=("naloxone_carrier",), supervisor_id=supervisor.responder_id)
    people = [supervisor, alone]
    harness.feed(*(f.registered(p) for p in people), *(f.rotation([p.responder_id]) for p in people))
    harness.feed(f.incident())
    harness.reply(alone.phone, "Y 4821")
    out = harness.reply(alone.phone, "REFUERZO 4821")
    assert not of(out, "dispatch.offered")
    assert of(out, "field.backup_requested")[0].data.paged == []
    [alert] = texts_to(out, supervisor.phone)
    assert (alert.data.template, alert.data.params["what"]) == ("field_alert", "backup_unfilled")
    assert text_of(texts_to(out, alone.phone)[0]) == "No backup is free for 4821 right now. Your supervisor was told."


# ---- help ------------------------------------------------------------------------------------------------------


def test_help_field_and_help_kit_list_the_field_commands_in_the_responders_language(harness, team) -> None:
    near, peer = team["near"], team["peer"]
    assert messages(harness.reply(near.phone, "HELP FIELD")) == [(near.phone, "reply_help_field")]
    assert messages(harness.reply(near.phone, "help kit")) == [(near.phone, "reply_help_kit")]
    [campo] = texts_to(harness.reply(peer.phone, "ayuda campo"), peer.phone)
    assert campo.data.language == "es" and "NALOXONA" in text_of(campo)


# ---- a drill over SMS alone ------------------------------------------------------------------------------------


def test_a_drill_over_sms_alone_fills_the_documentations_dose_ems_and_times(harness, team) -> None:
    reported = with_callback(f.incident(), None)
    harness.feed(reported)
    near = team["near"]
    steps = [
        (0, "Y 4821 10"),
        (2, "OTW 4821"),
        (9, "ARRIVED 4821"),
        (10, "NARCAN 4821 4MG IN IMPROVED"),
        (11, "VITALS 4821 RR 14 SPO2 95 HR 90 AVPU A"),
        (12, "911 4821"),
        (20, "EMS 4821 AMR"),
        (30, "DONE 4821"),
    ]
    for minute, body in steps:
        harness.clock.advance(T0 + timedelta(minutes=minute) - harness.clock.now())
        harness.reply(near.phone, body)
    history = recorded([reported, *harness.published()])
    doc = assemble_documentation(history, incident_progress(history), {})
    assert doc.when["acknowledged_at"] == T0 and doc.when["on_scene_at"] == T0 + timedelta(minutes=9)
    assert doc.when["cleared_at"] == T0 + timedelta(minutes=30)
    what = doc.what
    [dose] = what["interventions"]["naloxone_doses"]
    assert (dose["given_at"], dose["route"], dose["response"]) == (T0 + timedelta(minutes=10), "intranasal", "improved")
    assert what["ems"]["arrived_at"] == T0 + timedelta(minutes=20) and what["ems"]["agency"] == "AMR"
    assert what["vitals"]
    gap_keys = {gap.key for gap in doc.gaps}
    assert not gap_keys & {"acknowledged_at", "on_scene_at", "cleared_at", "ems_activated", "ems_agency"}
    assert not any(key.startswith("naloxone_doses") for key in gap_keys)
