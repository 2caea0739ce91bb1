"""The dispatcher's use cases on a real store: who is paged, what a reply does, what it answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.dispatcher.bootstrap import build
from services.dispatcher.domain.incident import IncidentDispatch, ResponderPages
from services.dispatcher.settings import DispatcherSettings
from services.runtime.clock import ManualClock
from tests import factories

ROSTER = Path(__file__).resolve().parents[2] / "deploy" / "demo" / "roster.json"
CLINICIAN = "+15550100001"


@pytest.fixture
def dispatcher(tmp_path: Path, database_url: str):
    settings = DispatcherSettings(var_dir=tmp_path, database_url=database_url, roster_file=ROSTER)
    with build(settings, ManualClock(factories.T0)) as app:
        yield app


def contract_events(app) -> list:
    notifications = app.recorder.select_notifications(start=1, limit=1000)
    return [e for n in notifications for e in app.outbox(app.mapper.to_domain_event(n))]


def test_report_pages_the_nearest_on_call_clinician_with_a_deadline(dispatcher) -> None:
    reported = factories.incident_reported()
    assert dispatcher.handle(reported, 1) is True
    offered, sms = contract_events(dispatcher)
    assert offered.type == "dispatch.offered" and sms.type == "notification.requested"
    assert offered.data.responder_role == "clinician"
    assert offered.data.code == reported.data.short_code
    assert (offered.data.ack_deadline - factories.T0).total_seconds() == 90
    assert offered.data.reason.skills_matched == ["naloxone"]
    assert sms.data.to == CLINICIAN and sms.data.page_id == offered.data.page_id
    assert sms.causation_id == reported.id and offered.causation_id == reported.id
    assert "Call 911 if not done" in sms.data.body


def test_accept_by_code_records_the_acknowledgement_and_confirms(dispatcher) -> None:
    reported = factories.incident_reported()
    dispatcher.handle(reported, 1)
    dispatcher.handle(factories.sms_received(CLINICIAN, f"yes {reported.data.short_code}"), 2)
    incident: IncidentDispatch = dispatcher.repository.get(reported.data.incident_id)
    assert incident.accepted_by is not None
    types = [e.type for e in contract_events(dispatcher)]
    assert types == ["dispatch.offered", "notification.requested", "dispatch.acknowledged", "notification.requested"]
    assert contract_events(dispatcher)[-1].data.body.startswith(f"Accepted {reported.data.short_code}")


def test_bare_y_accepts_the_only_open_page(dispatcher) -> None:
    reported = factories.incident_reported()
    dispatcher.handle(reported, 1)
    dispatcher.handle(factories.sms_received(CLINICIAN, "Y"), 2)
    assert dispatcher.repository.get(reported.data.incident_id).accepted_by is not None


def test_wrong_code_and_gibberish_get_a_helpful_answer_and_change_nothing(dispatcher) -> None:
    reported = factories.incident_reported(short_code="4821")
    dispatcher.handle(reported, 1)
    dispatcher.handle(factories.sms_received(CLINICIAN, "Y 9999"), 2)
    dispatcher.handle(factories.sms_received(CLINICIAN, "on my way?"), 3)
    assert dispatcher.repository.get(reported.data.incident_id).accepted_by is None
    answers = [e.data.body for e in contract_events(dispatcher)[2:]]
    assert answers == ["No open page 9999.", "Not understood. Reply Y <code> to accept or N <code> to pass."]


def test_decline_closes_the_page_and_says_thanks(dispatcher) -> None:
    reported = factories.incident_reported(short_code="4821")
    dispatcher.handle(reported, 1)
    dispatcher.handle(factories.sms_received(CLINICIAN, "n 4821"), 2)
    incident = dispatcher.repository.get(reported.data.incident_id)
    assert incident.accepted_by is None and list(incident.pages.values())[0]["status"] == "declined"
    responder_id = incident.pages[next(iter(incident.pages))]["responder_id"]
    assert dispatcher.repository.get(ResponderPages.create_id(responder_id)).open_pages == {}
    assert contract_events(dispatcher)[-1].data.body == "Passed on 4821. Thank you."


def test_replies_from_unknown_numbers_change_nothing(dispatcher) -> None:
    reported = factories.incident_reported()
    dispatcher.handle(reported, 1)
    before = dispatcher.recorder.max_notification_id()
    assert dispatcher.handle(factories.sms_received(factories.fake_phone(), f"Y {reported.data.short_code}"), 2)
    assert dispatcher.recorder.max_notification_id() == before
    assert dispatcher.processed_position() == 2


def test_the_same_report_under_a_new_sequence_is_not_paged_twice(dispatcher) -> None:
    reported = factories.incident_reported()
    dispatcher.handle(reported, 1)
    assert dispatcher.handle(reported, 1) is False  # redelivery
    dispatcher.handle(reported, 7)  # re-published past the de-duplication window
    assert [e.type for e in contract_events(dispatcher)] == ["dispatch.offered", "notification.requested"]


def test_nobody_on_call_is_recorded_as_unfilled(tmp_path: Path) -> None:
    roster = tmp_path / "roster.json"
    roster.write_text(ROSTER.read_text().replace('"on_call": true', '"on_call": false'))
    settings = DispatcherSettings(var_dir=tmp_path, roster_file=roster)
    with build(settings, ManualClock(factories.T0)) as app:
        app.handle(factories.incident_reported(), 1)
        (unfilled,) = contract_events(app)
    assert unfilled.type == "dispatch.unfilled" and unfilled.data.reason == "nobody on call"


def test_a_second_incident_with_the_same_code_gets_its_own_code_for_that_responder(dispatcher) -> None:
    first = factories.incident_reported(short_code="4821")
    second = factories.incident_reported(short_code="4821")
    dispatcher.handle(first, 1)
    dispatcher.handle(second, 2)
    codes = [e.data.code for e in contract_events(dispatcher) if e.type == "dispatch.offered"]
    assert codes == ["4821", "4822"]
    dispatcher.handle(factories.sms_received(CLINICIAN, "Y 4822"), 3)
    assert dispatcher.repository.get(second.data.incident_id).accepted_by is not None
    assert dispatcher.repository.get(first.data.incident_id).accepted_by is None


def test_a_roster_phone_that_is_not_e164_is_refused_at_load(tmp_path: Path) -> None:
    from services.dispatcher.adapters.roster_file import load_roster

    roster = tmp_path / "roster.json"
    roster.write_text(ROSTER.read_text().replace('"+15550100002"', '"555-0100"'))
    with pytest.raises(ValueError, match="roster entry 1"):
        load_roster(roster)
