"""Re-assessment on scene (issue 18), pure parts: the triage rules now shared from ``services/contract/triage.py``
(the gateway's module is the same objects), which instrument fits which report, triage re-run on a score or the
C-SSRS answers, a form that is not right refused naming its field, and who may re-assess. Also the restock form's
fields and what the field's events say on the timeline, on the board and in the documentation."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest

from services.contract import triage as shared
from services.contract.events import (
    BackupRequested,
    CannotLocate,
    CheckInConfirmed,
    CheckInDuress,
    CheckInEnded,
    CheckInMissed,
    CheckInPrompted,
    CheckInStarted,
    CrisisKind,
    EmsCalled,
    EmsOverdue,
    Envelope,
    EtaGiven,
    EtaOverdue,
    IncidentReassessed,
    IncidentReported,
    IncidentReportedData,
    LastKnownLocation,
    Location,
    NaloxoneKits,
    NaloxoneLeftBehind,
    NaloxoneRestockReported,
    NaloxoneStockChanged,
    NaloxoneStockLow,
    NotificationRequested,
    NotificationRequestedData,
    PairWait,
    Priority,
    Reporter,
    SelfHarmRiskDetails,
    SmsSent,
    VitalsRecorded,
    WithdrawalDetails,
    new_event,
)
from services.contract.field import EVENTS as FIELD_EVENTS
from services.intake_gateway.domain import triage as gateway
from services.projections.answers import board_order, field_words
from services.projections.domain.access import staff_only_events
from services.projections.domain.documentation import StaffInfo, assemble_documentation
from services.projections.domain.entries import WORDING, timeline_entry
from services.projections.domain.progress import RecordedEvent, incident_progress
from services.projections.domain.reassessment import (
    ReassessmentRefused,
    instruments_for,
    may_reassess,
    reassess,
)
from services.projections.domain.restock import RestockRefused, restock_kits
from services.projections.domain.telling import Telling
from tests.factories import T0

DENVER = ZoneInfo("America/Denver")
CLEO, SAM, PAT = uuid4(), uuid4(), uuid4()
TELLING = Telling(
    DENVER,
    {
        CLEO: StaffInfo("Cleo Clinician", "clinician"),
        SAM: StaffInfo("Sam Supervisor", "supervisor"),
        PAT: StaffInfo("Pat Peer", "peer_coach"),
    },
)
INCIDENT = uuid4()


def report(kind: CrisisKind, priority: Priority, **details: Any) -> IncidentReported:
    data = IncidentReportedData(
        incident_id=INCIDENT,
        short_code="4821",
        kind=kind,
        priority=priority,
        needs=[],
        guidance=[],
        location=Location(lat=39.7431, lon=-104.9876, address="5th St & Main"),
        reporter=Reporter(channel="hotline", relation="friend"),
        **details,
    )
    return new_event(IncidentReported, data, event_id=uuid4(), occurred_at=T0, producer="tests", incident_id=INCIDENT)


def event(cls: type[Envelope], after: float = 0, /, **data: Any) -> Envelope:
    """An event of ``cls`` with ``data``, on the incident's stream (the incident named in it, else ``INCIDENT``)."""
    model = cls.model_fields["data"].annotation
    return new_event(
        cls,
        model(**data),
        event_id=uuid4(),
        occurred_at=T0 + timedelta(minutes=after),
        producer="dispatcher",
        incident_id=data.get("incident_id") or INCIDENT,
    )


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def cows_14(reasons: bool = False, by_cleo: bool = False, banded: bool = True) -> Envelope:
    """COWS 14 recorded on scene 26 minutes in: P3 -> P2."""
    return event(
        IncidentReassessed,
        26,
        incident_id=INCIDENT,
        instrument="cows",
        score=14,
        previous_priority=Priority.P3,
        priority=Priority.P2,
        risk_level="moderate" if banded else None,
        reasons=["COWS 14 >= 8: prescriber review for buprenorphine"] if reasons else [],
        recorded_by="clinician-user",
        responder_id=CLEO if by_cleo else None,
    )


OPIOID = report(CrisisKind.WITHDRAWAL, Priority.P3, withdrawal=WithdrawalDetails(substance="opioid", cows_score=6))
ALCOHOL = report(CrisisKind.WITHDRAWAL, Priority.P3, withdrawal=WithdrawalDetails(substance="alcohol"))
OTHER = report(CrisisKind.WITHDRAWAL, Priority.P3, withdrawal=WithdrawalDetails(substance="other"))
SEIZURE = report(
    CrisisKind.WITHDRAWAL, Priority.P1, withdrawal=WithdrawalDetails(substance="alcohol", ciwa_ar_score=8, seizure=True)
)
SELF_HARM = report(
    CrisisKind.SELF_HARM_RISK, Priority.P3, self_harm_risk=SelfHarmRiskDetails(q1=True, q2=False, q6_ever=False)
)
OVERDOSE = report(CrisisKind.OVERDOSE, Priority.P1)


# ---- the shared triage rules ------------------------------------------------------------------------------------


def test_the_gateway_reads_the_very_triage_rules_the_contract_shares() -> None:
    for name in ("Thresholds", "Triage", "triage_overdose", "triage_withdrawal", "triage_self_harm_risk", "CALL_911"):
        assert getattr(gateway, name) is getattr(shared, name), name


# ---- which instrument, and triage re-run ----------------------------------------------------------------------


def test_each_report_is_re_scored_with_the_instrument_that_measures_it() -> None:
    assert instruments_for(OPIOID) == ("cows",)
    assert instruments_for(ALCOHOL) == ("ciwa_ar",)
    assert instruments_for(OTHER) == ("cows", "ciwa_ar")
    assert instruments_for(SELF_HARM) == ("c_ssrs",)
    assert instruments_for(OVERDOSE) == () and instruments_for(None) == ()


def test_a_cows_score_on_scene_re_runs_triage_and_can_raise_the_priority() -> None:
    result = reassess(OPIOID, "P3", "cows", {"score": "14"}, shared.Thresholds())
    assert (result.instrument, result.score, result.c_ssrs_risk) == ("cows", 14, None)
    assert (result.previous_priority, result.priority) == (Priority.P3, Priority.P2)
    assert result.risk_level == "moderate"
    assert result.reasons == ("COWS 14 >= 8: prescriber review for buprenorphine",)
    lower = reassess(OPIOID, "P2", "cows", {"score": " 3 "}, shared.Thresholds())
    assert (lower.previous_priority, lower.priority, lower.risk_level) == (Priority.P2, Priority.P3, "none")


def test_thresholds_come_from_configuration() -> None:
    strict = shared.Thresholds(cows_prescriber_at=15)
    assert reassess(OPIOID, "P3", "cows", {"score": "14"}, strict).priority is Priority.P3


def test_a_ciwa_score_keeps_the_reported_danger_signs() -> None:
    """A seizure reported stays reported: a low CIWA-Ar on scene does not make a complicated withdrawal routine."""
    result = reassess(SEIZURE, "P1", "ciwa_ar", {"score": "5"}, shared.Thresholds())
    assert (result.priority, result.risk_level) == (Priority.P1, "complicated")
    severe = reassess(ALCOHOL, "P3", "ciwa_ar", {"score": "22"}, shared.Thresholds())
    assert (severe.priority, severe.risk_level) == (Priority.P2, "severe")


def test_the_c_ssrs_answers_re_run_the_screener() -> None:
    answers = {"q1": "yes", "q2": "yes", "q3": "yes", "q4": "yes", "q5": "no", "q6_ever": "no"}
    result = reassess(SELF_HARM, "P3", "c_ssrs", answers, shared.Thresholds())
    assert (result.c_ssrs_risk, result.score, result.priority) == ("high", None, Priority.P1)
    assert result.reasons == ("C-SSRS Q4 yes (intent): high risk, licensed clinician and safety precautions",)
    low = reassess(SELF_HARM, "P3", "c_ssrs", {"q1": "yes", "q2": "no", "q6_ever": "no"}, shared.Thresholds())
    assert (low.c_ssrs_risk, low.priority) == ("low", Priority.P3)


@pytest.mark.parametrize(
    ("typed", "field"),
    [
        ({"score": "49"}, "score"),
        ({"score": "-1"}, "score"),
        ({"score": "fourteen"}, "score"),
        ({"score": ""}, "score"),
        ({"score": "1e1"}, "score"),
    ],
)
def test_a_score_out_of_its_scale_is_refused_naming_the_score(typed: dict[str, str], field: str) -> None:
    with pytest.raises(ReassessmentRefused) as refused:
        reassess(OPIOID, "P3", "cows", typed, shared.Thresholds())
    assert refused.value.field == field and "0 to 48" in str(refused.value)


@pytest.mark.parametrize(
    ("answers", "field"),
    [
        ({"q2": "no", "q6_ever": "no"}, "q1"),
        ({"q1": "yes", "q2": "yes", "q6_ever": "no", "q4": "no", "q5": "no"}, "q3"),
        ({"q1": "yes", "q2": "no", "q3": "yes", "q6_ever": "no"}, "q3"),
        ({"q1": "yes", "q2": "no", "q6_ever": "yes"}, "q6_past_3_months"),
        ({"q1": "yes", "q2": "no", "q6_ever": "no", "q6_past_3_months": "yes"}, "q6_past_3_months"),
        ({"q1": "maybe", "q2": "no", "q6_ever": "no"}, "q1"),
    ],
)
def test_c_ssrs_skip_logic_is_checked_as_intake_checks_it(answers: dict[str, str], field: str) -> None:
    with pytest.raises(ReassessmentRefused) as refused:
        reassess(SELF_HARM, "P3", "c_ssrs", answers, shared.Thresholds())
    assert refused.value.field == field


def test_an_instrument_that_does_not_fit_the_report_is_refused() -> None:
    for reported, instrument in ((OPIOID, "ciwa_ar"), (SELF_HARM, "cows"), (ALCOHOL, "c_ssrs"), (OPIOID, "pulse")):
        with pytest.raises(ReassessmentRefused) as refused:
            reassess(reported, "P3", instrument, {"score": "10"}, shared.Thresholds())
        assert refused.value.field == "instrument"
    with pytest.raises(ReassessmentRefused, match="overdose stays P1"):
        reassess(OVERDOSE, "P1", "cows", {"score": "10"}, shared.Thresholds())


def test_who_may_re_assess() -> None:
    assert may_reassess(True, None, False)  # a director
    assert all(may_reassess(False, role, True) for role in ("clinician", "nurse", "prescriber"))
    assert not may_reassess(False, "clinician", False)  # not paged for it
    assert not any(may_reassess(False, role, True) for role in ("peer_coach", "supervisor", None))


# ---- restock form ------------------------------------------------------------------------------------------------


def test_a_restock_reads_count_lot_and_expiry_a_month_meaning_its_last_day() -> None:
    today = date(2026, 11, 23)
    assert restock_kits("3", " ab12 ", "2027-06", today) == NaloxoneKits(
        count=3, lot="AB12", expires_on=date(2027, 6, 30)
    )
    assert restock_kits("1", "", "2028-02", today).expires_on == date(2028, 2, 29)
    assert restock_kits("2", "X-9", "2027-01-15", today).expires_on == date(2027, 1, 15)
    assert restock_kits("12", "", "", today) == NaloxoneKits(count=12, lot=None, expires_on=None)


@pytest.mark.parametrize(
    ("count", "lot", "expiry", "field"),
    [
        ("0", "", "", "count"),
        ("501", "", "", "count"),
        ("two", "", "", "count"),
        ("2", "AB 12", "", "lot"),
        ("2", "<b>", "", "lot"),
        ("2", "", "2027-13", "expires_on"),
        ("2", "", "June 2027", "expires_on"),
        ("2", "", "2026-10", "expires_on"),  # already expired: not restocked
    ],
)
def test_a_restock_field_that_is_not_right_is_named(count: str, lot: str, expiry: str, field: str) -> None:
    with pytest.raises(RestockRefused) as refused:
        restock_kits(count, lot, expiry, date(2026, 11, 23))
    assert refused.value.field == field


# ---- the timeline's words for every field event -------------------------------------------------------------------

PLACE = LastKnownLocation(lat=39.75306, lon=-105.00008, as_of=at(20), source="scene", place_name="Union Station")


def field_events() -> list[Envelope]:
    kits = [NaloxoneKits(count=3, lot="AB12", expires_on=date(2027, 6, 30))]
    code = {"incident_id": INCIDENT, "responder_id": CLEO, "code": "4821"}
    return [
        event(CheckInStarted, 20, **code, channel="sms", minutes=15, due_at=at(35)),
        event(CheckInPrompted, 32, **code, due_at=at(35)),
        event(CheckInConfirmed, 33, **code, channel="sms", next_due_at=at(48)),
        event(CheckInMissed, 50, **code, step="reminder", due_at=at(48), minutes_overdue=2),
        event(
            CheckInMissed,
            58,
            **code,
            step="supervisor_paged",
            due_at=at(48),
            minutes_overdue=10,
            last_known=PLACE,
            notified=[SAM, PAT],
        ),
        event(CheckInDuress, 60, **code, last_known=PLACE, notified=[SAM]),
        event(CheckInEnded, 70, **code, reason="clear", channel="sms"),
        event(PairWait, 5, **code, rule="self_harm_risk: high", supervisor_id=SAM),
        event(EtaGiven, 1, **code, minutes=12, eta_at=at(13)),
        event(EtaOverdue, 30, **code, eta_at=at(13), minutes_late=17, supervisor_id=SAM),
        event(CannotLocate, 14, **code, supervisor_id=SAM, caller_asked=True),
        event(BackupRequested, 15, **code, paged=[PAT]),
        event(
            VitalsRecorded, 25, **code, taken_at=at(24), respiratory_rate=8, spo2=88, pulse=112, responsiveness="pain"
        ),
        event(EmsCalled, 21, incident_id=INCIDENT, called_at=at(21), responder_id=CLEO, channel="sms"),
        event(EmsOverdue, 41, incident_id=INCIDENT, since=at(21), minutes_waited=20, supervisor_id=SAM),
        cows_14(reasons=True, by_cleo=True),
        event(
            NaloxoneStockChanged,
            22,
            responder_id=CLEO,
            reason="dose_given",
            change=-1,
            kits=kits,
            usable=3,
            incident_id=INCIDENT,
            channel="sms",
        ),
        event(NaloxoneRestockReported, 80, responder_id=CLEO, kits=kits, recorded_by="clinician-user"),
        event(NaloxoneLeftBehind, 69, incident_id=INCIDENT, responder_id=CLEO, count=2, lot="AB12", zone="central"),
        event(NaloxoneStockLow, 23, responder_id=CLEO, usable=1, threshold=2, supervisor_id=SAM),
    ]


def test_every_field_event_type_has_its_own_plain_words() -> None:
    assert {type(e) for e in field_events()} == set(FIELD_EVENTS)
    assert set(FIELD_EVENTS) <= set(WORDING)


def test_what_the_field_events_say_on_the_timeline_in_the_organisations_zone() -> None:
    said = [
        (entry.actor, entry.how, entry.summary) for entry in map(lambda e: timeline_entry(e, TELLING), field_events())
    ]
    cleo = "Cleo Clinician (clinician)"
    assert said == [
        (cleo, "text", "check-in started for 4821: every 15 min, first due 02:35:00 MST"),
        ("dispatch", "system", f"asked {cleo} to reply OK 4821 by 02:35:00 MST"),
        (cleo, "text", "checked in (OK 4821); next check-in due 02:48:00 MST"),
        ("dispatch", "system", f"CHECK-IN MISSED by {cleo}, due 02:48:00 MST, 2 min ago: reminder sent"),
        (
            "dispatch",
            "system",
            f"CHECK-IN MISSED by {cleo}, due 02:48:00 MST, 10 min ago: supervisor and partner paged "
            "(Sam Supervisor (supervisor), Pat Peer (peer coach)), last known at Union Station "
            "(on scene, 02:20:00 MST)",
        ),
        (
            "dispatch",
            "system",
            f"Duress signal from {cleo}: supervisor paged (Sam Supervisor (supervisor)), last known at Union Station "
            "(on scene, 02:20:00 MST). Their phone was answered as for OK.",
        ),
        (cleo, "text", "check-in for 4821 ended (CLEAR: the responder is safe and done checking in)"),
        (
            "dispatch",
            "system",
            f"{cleo} told to wait for a partner before going in (pairs only: self_harm_risk: high); "
            "supervisor Sam Supervisor (supervisor) told",
        ),
        (cleo, "text", "accepted page 4821 with ETA 12 min (at 02:13:00 MST)"),
        (
            "dispatch",
            "system",
            f"{cleo} not on scene 17 min after their ETA 02:13:00 MST: supervisor Sam Supervisor (supervisor) prompted",
        ),
        (
            cleo,
            "text",
            "cannot find the person (4821): supervisor Sam Supervisor (supervisor) told; the caller was asked to "
            "confirm the location",
        ),
        (cleo, "text", "asked for backup on 4821: paged Pat Peer (peer coach)"),
        (cleo, "text", "vitals at 02:24:00 MST: RR 8/min, SpO2 88%, pulse 112/min, responds to pain"),
        (cleo, "text", "911 called at 02:21:00 MST"),
        (
            "dispatch",
            "system",
            "EMS not confirmed on scene 20 min after 02:21:00 MST: supervisor Sam Supervisor (supervisor) prompted",
        ),
        (
            "clinician-user",
            "incident page",
            "re-assessed on scene: COWS 14 (moderate); priority P3 -> P2 (COWS 14 >= 8: prescriber review for "
            "buprenorphine)",
        ),
        ("dispatch", "text", f"naloxone of {cleo}: -1 kit (a dose given); 3 usable now"),
        (
            "clinician-user",
            "incident page",
            f"restock of {cleo}'s naloxone reported: 3 kits (lot AB12, expires 2027-06-30)",
        ),
        (cleo, "text", "2 naloxone kits (lot AB12) left with the person or family"),
        (
            "dispatch",
            "system",
            f"naloxone of {cleo} is low: 1 usable kit (threshold 2); supervisor Sam Supervisor (supervisor) told",
        ),
    ]


def test_911_called_on_the_incident_page_names_who_pressed_it() -> None:
    pressed = event(
        EmsCalled, 21, incident_id=INCIDENT, called_at=at(21), responder_id=CLEO, channel="app", recorded_by="maya"
    )
    entry = timeline_entry(pressed, TELLING)
    assert (entry.actor, entry.how, entry.summary) == ("maya", "incident page", "911 called at 02:21:00 MST")


# ---- duress: staff only -----------------------------------------------------------------------------------------


def test_a_duress_signal_and_its_alert_are_hidden_from_responders_but_not_from_another_supervisor() -> None:
    duress = event(CheckInDuress, 60, incident_id=INCIDENT, responder_id=CLEO, code="4821", notified=[SAM])
    alert_id = uuid4()
    alert = event(
        NotificationRequested,
        60,
        **NotificationRequestedData(
            notification_id=alert_id,
            incident_id=INCIDENT,
            page_id=None,
            to="+15550199004",
            template="duress_alert",
            params={"responder_name": "Cleo Clinician", "code": "4821"},
            priority=Priority.P1,
        ).model_dump(),
    )
    sent = event(
        SmsSent,
        60.1,
        notification_id=alert_id,
        message_sid="SM" + "a" * 32,
        to="+15550199004",
        status="queued",
        segments=1,
    )
    confirmed = event(
        CheckInConfirmed, 60, incident_id=INCIDENT, responder_id=CLEO, code="4821", channel="sms", next_due_at=at(75)
    )
    events = [duress, alert, sent, confirmed]
    hidden = {duress.id, alert.id, sent.id}
    assert staff_only_events(events, CLEO, reader_is_supervisor=False) == hidden  # the responder under duress
    assert staff_only_events(events, CLEO, reader_is_supervisor=True) == hidden  # even if a supervisor themselves
    assert staff_only_events(events, PAT, reader_is_supervisor=False) == hidden  # the partner
    assert staff_only_events(events, SAM, reader_is_supervisor=True) == set()  # their supervisor sees it
    assert staff_only_events([confirmed], CLEO, reader_is_supervisor=False) == set()


# ---- the board's field cell, and the documentation -----------------------------------------------------------------


def recorded(events: list[Envelope]) -> list[RecordedEvent]:
    return [RecordedEvent(i, e.occurred_at, e) for i, e in enumerate(events, start=1)]


def test_the_board_says_eta_and_check_in_due_then_missed_and_sorts_a_missed_one_first() -> None:
    reported = report(CrisisKind.OVERDOSE, Priority.P1)
    code = {"incident_id": INCIDENT, "responder_id": CLEO, "code": "4821"}
    eta = event(EtaGiven, 1, **code, minutes=12, eta_at=at(13))
    progress = incident_progress(recorded([reported, eta]))
    now = at(5)
    assert field_words(progress.board_facts()["field"], TELLING, now) == {
        "lines": [{"missed": False, "text": "ETA 02:13"}],
        "check_in_missed": False,
    }
    started = event(CheckInStarted, 14, **code, channel="sms", minutes=15, due_at=at(29))
    arrived_progress = incident_progress(recorded([reported, eta, started]))
    arrived_progress.on_scene_by.append(CLEO)  # the ETA goes once they are on scene
    assert field_words(arrived_progress.board_facts()["field"], TELLING, now)["lines"] == [
        {"missed": False, "text": "check-in due 02:29"}
    ]
    missed = event(CheckInMissed, 31, **code, step="reminder", due_at=at(29), minutes_overdue=2)
    facts = incident_progress(recorded([reported, eta, started, missed])).board_facts()["field"]
    cell = field_words(facts, TELLING, now)
    assert cell["check_in_missed"] and "CHECK-IN MISSED (due 02:29)" in [line["text"] for line in cell["lines"]]
    ok = event(CheckInConfirmed, 32, **code, channel="sms", next_due_at=at(47))
    again = incident_progress(recorded([reported, eta, started, missed, ok])).board_facts()["field"]
    assert not field_words(again, TELLING, now)["check_in_missed"]
    ended = event(CheckInEnded, 40, **code, reason="done")
    assert incident_progress(recorded([reported, started, ended])).board_facts()["field"]["check_ins"] == {}

    rows = [
        {"unfilled": False, "field": {"check_in_missed": False}, "id": "newest"},
        {"unfilled": True, "field": {"check_in_missed": False}, "id": "unfilled"},
        {"unfilled": False, "field": {"check_in_missed": True}, "id": "missed"},
    ]
    assert [r["id"] for r in board_order(rows)] == ["unfilled", "missed", "newest"]


def test_two_people_on_the_board_are_named() -> None:
    facts = {
        "etas": {str(PAT): at(13).isoformat()},
        "check_ins": {str(CLEO): {"due_at": at(29).isoformat(), "missed": True}},
    }
    texts = [line["text"] for line in field_words(facts, TELLING, at(5))["lines"]]
    assert texts == ["Pat Peer: ETA 02:13", "Cleo Clinician: CHECK-IN MISSED (due 02:29)"]
    tomorrow = field_words({"etas": {str(PAT): at(24 * 60).isoformat()}}, TELLING, at(5))
    assert tomorrow["lines"][0]["text"] == "ETA Tue 24 Nov 02:00 MST"


def test_a_re_assessment_changes_the_priority_the_board_shows() -> None:
    again = cows_14(banded=False)
    assert incident_progress(recorded([OPIOID, again])).priority == "P2"


def test_documentation_takes_vitals_and_911_called_from_the_field() -> None:
    reported = OVERDOSE
    code = {"incident_id": INCIDENT, "responder_id": CLEO, "code": "4821"}
    vitals = event(VitalsRecorded, 25, **code, taken_at=at(24), respiratory_rate=8, spo2=88, channel="sms")
    called = event(EmsCalled, 21, incident_id=INCIDENT, called_at=at(21), responder_id=CLEO, channel="sms")
    later = event(EmsCalled, 23, incident_id=INCIDENT, called_at=at(23), channel="app", recorded_by="director")
    events = recorded([reported, vitals, called, later])
    doc = assemble_documentation(events, incident_progress(events), {CLEO: StaffInfo("Cleo Clinician", "clinician")})
    assert doc.what["ems"]["activated"] is True and doc.what["ems"]["called_at"] == at(21)
    assert "ems_activated" not in {g.key for g in doc.gaps}
    [taken] = doc.what["vitals"]
    assert (taken["taken_at"], taken["respiratory_rate"], taken["spo2"], taken["pulse"]) == (at(24), 8, 88, None)
    assert taken["recorded_by"] == "Cleo Clinician"
    without = recorded([reported])
    assert assemble_documentation(without, incident_progress(without), {}).what["ems"]["called_at"] is None


def test_times_on_the_board_are_the_organisations() -> None:
    utc = Telling(UTC)
    assert field_words({"etas": {str(CLEO): at(13).isoformat()}}, utc, at(5))["lines"][0]["text"] == "ETA 09:13"


def test_vitals_and_a_re_assessment_are_valid_fhir_observations() -> None:
    from fhir.resources.R4B.bundle import Bundle
    from fhir.resources.R4B.observation import Observation

    from services.projections.adapters.fhir_bundle import fhir_bundle

    code = {"incident_id": INCIDENT, "responder_id": CLEO, "code": "4821"}
    vitals = event(
        VitalsRecorded, 25, **code, taken_at=at(24), respiratory_rate=8, spo2=88, pulse=112, responsiveness="voice"
    )
    again = cows_14()
    events = recorded([OPIOID, vitals, again])
    progress = incident_progress(events)
    doc = assemble_documentation(events, progress, {CLEO: StaffInfo("Cleo Clinician", "clinician")})
    bundle = fhir_bundle(doc, progress, events, [], {})
    Bundle.model_validate(bundle)
    observations = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"]
    for resource in observations:
        Observation.model_validate(resource)
    measured = {
        o["code"]["coding"][0]["code"]: o.get("valueQuantity", o.get("valueCodeableConcept"))
        for o in observations
        if o.get("category")
    }
    assert measured == {
        "9279-1": {"value": 8, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"},
        "59408-5": {"value": 88, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"},
        "8867-4": {"value": 112, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"},
        "67775-7": {"text": "AVPU: voice"},
    }
    assert all(o["effectiveDateTime"] == at(24).isoformat() for o in observations if o.get("category"))
    [rescored] = [o for o in observations if "re-assessed" in o["code"].get("text", "")]
    assert (rescored["valueInteger"], rescored["effectiveDateTime"]) == (14, at(26).isoformat())


def test_the_documentation_page_and_exports_list_vitals_911_called_and_re_assessments() -> None:
    from services.projections.adapters.record_layout import document_sections

    code = {"incident_id": INCIDENT, "responder_id": CLEO, "code": "4821"}
    vitals = event(VitalsRecorded, 25, **code, taken_at=at(24), respiratory_rate=8, spo2=88, channel="sms")
    called = event(EmsCalled, 21, incident_id=INCIDENT, called_at=at(21), responder_id=CLEO, channel="sms")
    again = cows_14(reasons=True)
    events = recorded([OPIOID, vitals, called, again])
    doc = assemble_documentation(events, incident_progress(events), {CLEO: StaffInfo("Cleo Clinician", "clinician")})
    rows = dict(dict(document_sections(doc, DENVER))["What"])
    assert rows["Vitals 2026-11-23 02:24:00 MST"] == "RR 8/min, SpO2 88% (Cleo Clinician, by text)"
    assert rows["Re-assessed 2026-11-23 02:26:00 MST"] == (
        "COWS 14 (moderate): priority P3 -> P2, by clinician-user (COWS 14 >= 8: prescriber review for buprenorphine)"
    )
    assert rows["911 called"] == "2026-11-23 02:21:00 MST" and rows["EMS activated"] == "yes"
    assert rows["Priority"] == "P2"
