"""A reply to caring contacts pages the on-call clinician (issue 19 section 2) through the referral alarm's ladder:
the clinicians on duty first, then again with the supervisors and directors until someone replies Y <code>; the
same reply again pages nobody; the text the person wrote is in no page. The dispatcher on a real store, fed by
hand, its clock moved."""

from __future__ import annotations

from uuid import uuid4

from services.contract.events import CaringReplyReceived, CaringReplyReceivedData, new_event
from tests.factories import T0
from tests.support.dispatch_harness import harness, messages, of, settings, team  # noqa: F401 - fixtures


def replied(code: str = "6120"):
    data = CaringReplyReceivedData(
        enrolment_id=uuid4(), person_id=uuid4(), code=code, message_sid="SM" + uuid4().hex, received_at=T0
    )
    return new_event(CaringReplyReceived, data, event_id=uuid4(), occurred_at=T0, producer="projections")


def test_the_on_call_clinicians_are_paged_then_wider_until_one_takes_it(harness, team) -> None:  # noqa: F811
    reply = replied()
    first = harness.feed(reply)
    clinicians = {team["near"].phone, team["second"].phone}
    assert {to for to, template in messages(first)} == clinicians
    assert {template for _, template in messages(first)} == {"caring_reply_alert"}
    assert {e.data.params["code"] for e in of(first, "notification.requested")} == {"6120"}
    assert messages(harness.feed(reply)) == []  # the same reply again: paged once

    second = harness.tick(15 * 60)
    wider = {team["supervisor"].phone, team["director"].phone}
    assert {to for to, _ in messages(second)} == clinicians | wider
    assert {e.data.params["repeat"] for e in of(second, "notification.requested")} == {2}

    taken = harness.reply(team["second"].phone, "Y 6120")
    told = {(e.data.to, e.data.template, e.data.params["reason"]) for e in of(taken, "notification.requested")}
    assert (team["second"].phone, "caring_alarm_answered", "taken_by_you") in told
    assert {to for to, _, reason in told if reason == "taken"} == (clinicians | wider) - {team["second"].phone}
    assert harness.tick(60 * 60) == []  # taken: no more soundings
