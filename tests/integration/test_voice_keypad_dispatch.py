"""The dispatcher reads a key pressed on our calls (`call.keypad_pressed`) as the command it stands for, on a real
store with a ManualClock: 1/2 on a page call accept/decline the page like "Y"/"N" texted (recorded as answered by
voice), 1/2 on a check-in call are OK/CLEAR; keys that mean nothing, and phones not on the roster, change nothing."""

# ruff: noqa: F811 - the fixtures (settings, harness, team) are imported from tests/support/dispatch_harness.py
from __future__ import annotations

import json
from uuid import uuid4

import pytest

from services.contract.events import (
    CallKeypadPressed,
    CallKeypadPressedData,
    DispatchAcknowledged,
    IncidentCancelled,
    IncidentCancelledData,
    decode_event,
    new_event,
)
from tests import dispatch_factories as f
from tests.factories import T0
from tests.support.dispatch_harness import Harness, harness, messages, of, settings, team  # noqa: F401


def pressed(phone: str, digits: str, prompt: str | None = "page", code: str | None = "4821") -> CallKeypadPressed:
    data = CallKeypadPressedData(
        call_sid=f"CA{uuid4().hex}", phone=phone, digits=digits, prompt=prompt, code=code, notification_id=uuid4()
    )
    return new_event(CallKeypadPressed, data, event_id=uuid4(), occurred_at=T0, producer="intake_gateway")


def test_1_on_a_page_call_accepts_the_page_as_y_texted_and_records_it_as_answered_by_voice(
    harness: Harness, team
) -> None:
    near = team["near"]
    harness.feed(f.incident())
    key = pressed(near.phone, "1")
    out = harness.feed(key)
    [accepted] = of(out, "dispatch.acknowledged")
    assert (accepted.data.responder_id, accepted.data.code) == (near.responder_id, "4821")
    assert (accepted.data.channel, accepted.data.message_sid) == ("voice", None)
    assert accepted.causation_id == key.id
    # confirmed by text like an accept by text, with the link to the incident page
    [confirmation] = [e for e in of(out, "notification.requested") if e.data.template == "ack_confirmed"]
    assert confirmation.data.to == near.phone and confirmation.data.channel == "sms"
    assert confirmation.data.params["code"] == "4821" and confirmation.data.params["link"]
    # from now on the responder is on it: their STATUS lists it as accepted
    [status] = of(harness.reply(near.phone, "STATUS"), "notification.requested")
    assert status.data.params["accepted"] == ["4821"]


def test_2_on_a_page_call_declines_it_as_n_texted_and_the_next_person_is_paged(harness: Harness, team) -> None:
    near = team["near"]
    harness.feed(f.incident("withdrawal", "P2", ("licensed_clinician",)))
    out = harness.feed(pressed(near.phone, "2"))
    [declined] = of(out, "dispatch.declined")
    assert (declined.data.responder_id, declined.data.channel, declined.data.message_sid) == (
        near.responder_id,
        "voice",
        None,
    )
    offered = of(out, "dispatch.offered")
    assert offered and near.responder_id not in {e.data.responder_id for e in offered}
    assert (near.phone, "decline_confirmed") in messages(out)


def test_a_key_on_the_call_of_a_cancelled_incidents_page_is_answered_like_the_text(harness: Harness, team) -> None:
    reported = f.incident()
    harness.feed(reported)
    incident_id = reported.data.incident_id
    cancelled = IncidentCancelledData(incident_id=incident_id, reason="false alarm")
    harness.feed(
        new_event(IncidentCancelled, cancelled, event_id=uuid4(), occurred_at=T0, producer="t", incident_id=incident_id)
    )
    out = harness.feed(pressed(team["near"].phone, "1"))
    assert [e.type for e in out if e.type.startswith("dispatch.")] == []
    assert messages(out) == [(team["near"].phone, "page_withdrawn")]


@pytest.mark.parametrize(
    ("digits", "prompt", "code"),
    [("9", "page", "4821"), ("*", "page", "4821"), ("1", None, None), ("3", "check_in", "4821")],
)
def test_a_key_that_means_nothing_for_its_call_changes_nothing(harness: Harness, team, digits, prompt, code) -> None:
    harness.feed(f.incident())
    assert harness.feed(pressed(team["near"].phone, digits, prompt, code)) == []


def test_a_key_from_a_phone_not_on_the_roster_changes_nothing(harness: Harness, team) -> None:
    harness.feed(f.incident())
    assert harness.feed(pressed("+15550199999", "1")) == []


def test_on_a_check_in_call_1_confirms_the_check_in_and_2_ends_it_both_by_voice(harness: Harness, team) -> None:
    near = team["near"]
    harness.feed(f.incident())
    harness.reply(near.phone, "Y 4821")
    started = of(harness.reply(near.phone, "ARRIVED 4821"), "checkin.started")
    assert started, "ARRIVED starts the responder's check-in (F1)"
    key = pressed(near.phone, "1", "check_in")
    out = harness.feed(key)
    [confirmed] = of(out, "checkin.confirmed")
    assert (confirmed.data.channel, confirmed.data.message_sid) == ("voice", None)
    assert confirmed.causation_id == key.id
    assert (near.phone, "checkin_confirmed") in messages(out)  # the text the call promised
    out = harness.feed(pressed(near.phone, "2", "check_in", code=None))  # the only incident they are on
    [ended] = of(out, "checkin.ended")
    assert (ended.data.reason, ended.data.channel) == ("clear", "voice")


def test_a_v1_page_answer_reads_as_a_text_answer_in_v2() -> None:
    answer = {"incident_id": str(uuid4()), "page_id": str(uuid4()), "responder_id": str(uuid4()), "code": "4821"}
    v1 = {
        "id": str(uuid4()),
        "type": "dispatch.acknowledged",
        "schema_version": 1,
        "occurred_at": "2026-01-01T00:00:00Z",
        "producer": "dispatcher",
        "correlation_id": str(uuid4()),
        "data": {**answer, "message_sid": "SM" + "0" * 32},
    }
    event = decode_event(json.dumps(v1).encode())
    assert isinstance(event, DispatchAcknowledged) and event.schema_version == 2
    assert (event.data.channel, event.data.message_sid) == ("sms", "SM" + "0" * 32)
