"""Which of an incident's queued messages an answer makes moot (``IncidentTraffic``). Pure: no store, no clock."""

from __future__ import annotations

from uuid import uuid4

from services.notifier.domain.page_traffic import ALARM_KEY, DropReason, IncidentTraffic, is_tracked, slot_of
from tests.factories import T0


def paged(traffic: IncidentTraffic, team_role: str) -> tuple:
    page, offer, call = uuid4(), uuid4(), uuid4()
    traffic.note_offer(page, slot_of(team_role))
    traffic.track(str(page), offer)
    traffic.track(str(page), call)
    return page, str(offer), str(call)


def test_an_accept_makes_moot_its_own_pages_messages_and_those_of_its_slot_only() -> None:
    traffic = IncidentTraffic(incident_id=uuid4())
    clinician, other, coach = paged(traffic, "primary"), paged(traffic, "primary"), paged(traffic, "peer")
    supervisor = paged(traffic, "supervisor")  # the ladder's top answers for the primary response too

    moot = traffic.accept(clinician[0], T0)

    assert moot == [
        (clinician[1], DropReason.PAGE_ACCEPTED),
        (clinician[2], DropReason.PAGE_ACCEPTED),
        (other[1], DropReason.PAGE_COVERED),
        (other[2], DropReason.PAGE_COVERED),
        (supervisor[1], DropReason.PAGE_COVERED),
        (supervisor[2], DropReason.PAGE_COVERED),
    ]
    assert traffic.moot(coach[0]) is None  # a team's peer is still needed
    assert traffic.moot(other[0]) is DropReason.PAGE_COVERED


def test_a_page_closes_once_and_a_closed_incident_makes_everything_moot() -> None:
    traffic = IncidentTraffic(incident_id=uuid4())
    page, offer, call = paged(traffic, "primary")
    traffic.track(ALARM_KEY, uuid4())
    assert traffic.close_page(page, DropReason.PAGE_TIMED_OUT, T0) == [offer, call]
    traffic.close_page(page, DropReason.PAGE_COVERED, T0)
    assert traffic.moot(page) is DropReason.PAGE_TIMED_OUT  # the first reason stays
    assert traffic.moot(None) is None  # the alarm is still needed
    assert len(traffic.close(DropReason.INCIDENT_CANCELLED, T0)) == 3
    assert traffic.moot(None) is traffic.moot(uuid4()) is DropReason.INCIDENT_CANCELLED


def test_a_page_whose_slot_is_unknown_is_left_for_its_own_withdrawal() -> None:
    traffic = IncidentTraffic(incident_id=uuid4())
    accepted, unknown = uuid4(), uuid4()
    traffic.track(str(unknown), uuid4())
    assert traffic.accept(accepted, T0) == []
    assert traffic.moot(unknown) is None


def test_only_page_and_alarm_messages_are_tracked() -> None:
    tracked = {"page_offer", "page_reminder", "voice_page", "nobody_accepted", "nobody_accepted_call"}
    for template in tracked:
        assert is_tracked(template)
    for template in ("ack_confirmed", "page_covered", "status_summary", "supervisor_alert", "task_due"):
        assert not is_tracked(template)
