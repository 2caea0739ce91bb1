"""The incident's check-in state: an incident stored before check-ins existed (no such state in its snapshot) still
answers every question the clock asks, and a check-in's steps are due one after the other."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from services.dispatcher.domain.incident import FieldDue, IncidentDispatch

T = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def incident(**extra) -> IncidentDispatch:
    return IncidentDispatch(
        id=uuid4(),
        short_code="4821",
        kind="overdose",
        priority="P1",
        lat=39.74,
        lon=-104.98,
        area=None,
        zone="central",
        needs=["naloxone_carrier", "ems_now"],
        call_911=False,
        team=False,
        caused_by=uuid4(),
        at=T,
        **extra,
    )


def test_an_incident_from_before_check_ins_has_no_field_deadlines_and_no_check_ins() -> None:
    old = incident()
    for name in ("risk_level", "field_deadlines"):
        delattr(old, name)  # as a snapshot of an older version loads
    assert old.next_deadline() is None
    assert old.field_due(T + timedelta(days=1)) == []
    assert old.active_check_ins() == {} and old.arrived_at(uuid4()) is None
    assert old.ems_deadline() is None


def test_the_ems_wait_runs_from_the_report_when_the_reporter_had_called() -> None:
    reported = incident(field_deadlines={"eta_grace_minutes": 10, "ems_confirm_minutes": 20})
    assert reported.ems_deadline() == (T, T + timedelta(minutes=20))
    assert reported.next_deadline() == T + timedelta(minutes=20)
    assert reported.field_due(T + timedelta(minutes=20)) == [FieldDue("ems_overdue", None)]


def test_a_missed_step_is_due_and_the_next_one_after_it() -> None:
    state = incident()
    responder = uuid4()
    due = T + timedelta(minutes=15)
    state.start_check_in(
        responder_id=responder,
        code="4821",
        phone="+15550100000",
        language="en",
        channel="sms",
        minutes=15,
        due_at=due,
        prompt_at=due - timedelta(minutes=2),
        next_at=due,
        caused_by=uuid4(),
        at=T,
    )
    assert state.next_deadline() == due - timedelta(minutes=2)
    assert state.field_due(due) == [FieldDue("missed", responder)]  # past due: the step, not a late prompt
    state.miss_check_in(
        responder_id=responder,
        step="reminder",
        responder_name="Generated Staff",
        minutes_overdue=0,
        last_known=None,
        notified=[],
        next_at=due + timedelta(minutes=2),
        caused_by=None,
        at=due,
    )
    assert state.field_due(due + timedelta(minutes=1)) == []
    assert state.next_deadline() == due + timedelta(minutes=2)
