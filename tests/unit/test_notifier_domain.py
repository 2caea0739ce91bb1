"""The notifier's aggregates: what a notification, a phone's consent and a provider message remember."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from services.contract.events import place_ref
from services.notifier.domain.notification import Notification, PhoneConsent, bundle_id, consent_id
from services.notifier.domain.place_names import PlaceBook
from services.notifier.domain.templates import render

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def notification(**kw) -> Notification:
    values = {
        "id": uuid4(),
        "to": "+15550190001",
        "priority": "P1",
        "template": "page_offer",
        "incident_id": uuid4(),
        "page_id": uuid4(),
        "caused_by": uuid4(),
        "at": T0,
        "params": {"priority": "P1", "code": "4821", "zone": place_ref("central")},
    }
    return Notification(**values | kw)


def test_an_in_flight_attempt_is_remembered_until_its_outcome() -> None:
    n = notification()
    n.start_attempt(1, T0)
    assert (n.in_flight, n.is_settled, n.attempts) == (True, False, 1)
    n.record_attempt_failed(1, 20503, "HTTP 503", T0 + timedelta(seconds=1), T0)
    assert (n.in_flight, n.failed_attempts, n.due_at()) == (False, 1, T0 + timedelta(seconds=1))
    n.start_attempt(2, T0 + timedelta(seconds=1))
    n.record_sent("SM" + "0" * 32, "queued", 1, n.id, T0, body="text")
    assert (n.status, n.message_sid, n.in_flight) == ("sent", "SM" + "0" * 32, False)
    with pytest.raises(ValueError):
        n.start_attempt(3, T0)


def test_a_v1_record_with_a_rendered_body_is_read_as_the_legacy_template() -> None:
    old = notification(template="page", params=None, body="P1 response needed near 5th St & Main.")
    assert (old.template, old.params) == ("legacy_v1", {})
    assert render(old.template, old.params, old.language).text.startswith("You have a message from dispatch.")


def test_a_page_recorded_before_v3_is_sent_without_the_address_it_carried() -> None:
    """A v2 request's ``area`` was the address as typed: the record keeps it, the text never prints it."""
    old = notification(params={"priority": "P1", "code": "4821", "area": "Generated Name 34yo OD pregnant"})
    book = PlaceBook.of(places=["Union Station"], zones=["central"])

    assert old.params == {"priority": "P1", "code": "4821"}
    assert render(old.template, old.params, old.language, book).text == (
        "P1 response needed. Reply Y 4821 to accept, N 4821 to pass."
    )


def test_a_late_stop_does_not_undo_a_later_start() -> None:
    consent = PhoneConsent(id=consent_id("+15550190001"), opted_out=True, keyword="STOP", changed_at=T0)
    consent.change(False, "START", T0 + timedelta(minutes=5))
    consent.change(True, "STOP", T0 + timedelta(minutes=1))  # sent before the START, delivered after it
    assert consent.opted_out is False


def test_the_same_members_always_make_the_same_bundle() -> None:
    members = [uuid4(), uuid4(), uuid4()]
    assert bundle_id(members) == bundle_id(list(reversed(members)))
    assert bundle_id(members) != bundle_id(members[:2])
