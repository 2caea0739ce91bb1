"""Rest after a hard call (issue 19 section 5), on the dispatcher (real store, fed by hand, its clock moved): an
overdose reversal recorded on an incident rests the clinician who accepted it (``responder.rest_started``, once);
the next incident's pages pass them over and say so; a supervisor's explicit end of the rest, or its time running
out, makes them eligible again; with nobody else on call they are paged anyway, marked resting."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

from services.contract.events import (
    DocumentationFields,
    DocumentationFieldsCompleted,
    DocumentationFieldsCompletedData,
    NaloxoneDoseRecord,
    ResponderRestEnded,
    ResponderRestEndedData,
    new_event,
)
from tests import dispatch_factories as f
from tests.factories import T0
from tests.support.dispatch_harness import harness, messages, of, settings, team  # noqa: F401 - fixtures


def reversal(incident_id):
    dose = NaloxoneDoseRecord(
        given_at=T0, product="naloxone 4 mg", route="intranasal", given_by_role="clinician", response="improved"
    )
    data = DocumentationFieldsCompletedData(
        incident_id=incident_id, fields=DocumentationFields(naloxone_doses=[dose]), completed_by="clinician-user"
    )
    return new_event(DocumentationFieldsCompleted, data, event_id=uuid4(), occurred_at=T0, producer="projections")


def paged(events) -> set:
    return {e.data.responder_id for e in of(events, "dispatch.offered")}


def test_a_reversal_rests_its_responder_until_a_supervisor_ends_it(harness, team) -> None:  # noqa: F811
    near = team["near"]
    first = f.incident()
    offered = harness.feed(first)
    code = next(e.data.code for e in of(offered, "dispatch.offered") if e.data.responder_id == near.responder_id)
    harness.reply(near.phone, f"Y {code}")
    rested = harness.feed(reversal(first.data.incident_id), reversal(first.data.incident_id))  # saved twice
    (started,) = of(rested, "responder.rest_started")
    assert (started.data.responder_id, started.data.what) == (near.responder_id, "an overdose reversal")
    assert started.data.until == harness.clock.now() + timedelta(hours=8)  # CRISIS_REST_AFTER_HARD_CALL_HOURS

    harness.reply(near.phone, f"DONE {code}")
    second = harness.feed(f.incident(short_code="5150"))
    assert near.responder_id not in paged(second)
    reasons = [e.data.reason for e in of(second, "dispatch.offered")]
    assert reasons and all(r.passed_over_resting == 1 and not r.resting for r in reasons)

    ended = ResponderRestEndedData(
        responder_id=near.responder_id, incident_id=first.data.incident_id, ended_by="sam-supervisor"
    )
    harness.feed(new_event(ResponderRestEnded, ended, event_id=uuid4(), occurred_at=T0, producer="projections"))
    third = harness.feed(f.incident(short_code="6160"))
    assert near.responder_id in paged(third)
    assert all(e.data.reason.passed_over_resting == 0 for e in of(third, "dispatch.offered"))


def test_at_the_weekly_after_hours_cap_a_person_is_passed_over_at_night(team, settings) -> None:  # noqa: F811
    """With a cap of 1 (``CRISIS_AFTER_HOURS_CAP_PER_WEEK``), the clinician paged at 02:00 is passed over for the
    next night page (the page says so), and a restart keeps the count (it is in the store)."""
    from services.dispatcher.bootstrap import build
    from services.runtime.clock import ManualClock
    from tests.support.dispatch_harness import Harness

    capped = settings.model_copy(update={"after_hours_cap_per_week": 1, "var_dir": settings.var_dir / "capped"})
    capped.var_dir.mkdir()
    clock = ManualClock(T0)  # 02:00 in Denver
    with build(capped, clock) as app:
        h = Harness(app, clock)
        h.feed(*(f.registered(p) for p in team.values()), *(f.rotation([p.responder_id]) for p in team.values()))
        first = paged(h.feed(f.incident()))  # P1 overdose: the best two carriers at once
        sequence = h.sequence
    with build(capped, clock) as again:
        h = Harness(again, clock)
        h.sequence = sequence
        h.seen = len(h.published())
        second = h.feed(f.incident(short_code="5150"))
    offered = of(second, "dispatch.offered")
    assert len(first) == 2 and paged(second) and not paged(second) & first  # both paged at 02:00 are at the cap
    assert all(e.data.reason.passed_over_capped == 2 and not e.data.reason.after_hours_capped for e in offered)
