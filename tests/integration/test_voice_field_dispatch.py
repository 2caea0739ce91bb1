"""The dispatcher reads the keys a responder presses on a call they make to the organisation's number (prompt
"field": the incident's code, then one key) as the texted command: 1 ARRIVED, 2 OK, 3 CLEAR, 4 DONE, from the
responder whose phone called, recorded as by voice. On a real store with a ManualClock (dispatch_harness)."""

# ruff: noqa: F811 - the fixtures (settings, harness, team) are imported from tests/support/dispatch_harness.py
from __future__ import annotations

from uuid import uuid4

import pytest

from services.contract.events import CallKeypadPressed, CallKeypadPressedData, field_code, new_event
from tests import dispatch_factories as f
from tests.factories import T0
from tests.support.dispatch_harness import Harness, harness, messages, of, settings, team  # noqa: F401


def called_in(phone: str, digits: str) -> CallKeypadPressed:
    """What the gateway records for keys pressed on a call in: the code is the first four keys."""
    data = CallKeypadPressedData(
        call_sid=f"CA{uuid4().hex}", phone=phone, digits=digits, prompt="field", code=field_code("field", digits)
    )
    return new_event(CallKeypadPressed, data, event_id=uuid4(), occurred_at=T0, producer="intake_gateway")


def on_it(harness: Harness, phone: str) -> None:
    harness.feed(f.incident())
    assert of(harness.reply(phone, "Y 4821"), "dispatch.acknowledged")


def test_code_and_1_is_arrived_by_voice_it_starts_the_check_in_and_a_text_confirms_it(harness: Harness, team) -> None:
    near = team["near"]
    on_it(harness, near.phone)
    key = called_in(near.phone, "48211")
    out = harness.feed(key)
    [arrived] = of(out, "dispatch.arrived")
    assert (arrived.data.responder_id, arrived.data.code) == (near.responder_id, "4821")
    assert (arrived.data.channel, arrived.data.message_sid, arrived.causation_id) == ("voice", None, key.id)
    [started] = of(out, "checkin.started")
    assert (started.data.responder_id, started.data.code, started.data.channel) == (near.responder_id, "4821", "voice")
    assert (near.phone, "arrived_confirmed") in messages(out)  # "A text message confirms it."
    # a second ARRIVED by key leaves the running check-in alone
    assert of(harness.feed(called_in(near.phone, "48211")), "checkin.started") == []


def test_code_and_2_is_ok_code_and_3_is_clear_both_by_voice(harness: Harness, team) -> None:
    near = team["near"]
    on_it(harness, near.phone)
    harness.feed(called_in(near.phone, "48211"))
    out = harness.feed(called_in(near.phone, "48212"))
    [confirmed] = of(out, "checkin.confirmed")
    assert (confirmed.data.channel, confirmed.data.message_sid, confirmed.data.code) == ("voice", None, "4821")
    assert (near.phone, "checkin_confirmed") in messages(out)
    out = harness.feed(called_in(near.phone, "48213"))
    [ended] = of(out, "checkin.ended")
    assert (ended.data.reason, ended.data.channel) == ("clear", "voice")
    assert (near.phone, "checkin_cleared") in messages(out)


def test_code_and_4_is_done_by_voice_it_ends_the_check_in_and_completes_the_incident(harness: Harness, team) -> None:
    near = team["near"]
    on_it(harness, near.phone)
    harness.feed(called_in(near.phone, "48211"))
    key = called_in(near.phone, "48214")
    out = harness.feed(key)
    [completed] = of(out, "dispatch.completed")
    assert (completed.data.channel, completed.data.message_sid, completed.causation_id) == ("voice", None, key.id)
    assert completed.data.closes_incident is True
    [ended] = of(out, "checkin.ended")
    assert (ended.data.reason, ended.data.channel) == ("done", "voice")
    assert (near.phone, "done_confirmed") in messages(out)
    # released: STATUS lists nothing accepted any more
    [status] = of(harness.reply(near.phone, "STATUS"), "notification.requested")
    assert "4821" not in status.data.params.get("accepted", [])


def test_arrived_by_key_for_a_code_the_responder_is_not_on_records_nothing_and_is_answered_by_text(
    harness: Harness, team
) -> None:
    near = team["near"]
    on_it(harness, near.phone)
    out = harness.feed(called_in(near.phone, "99991"))
    assert [e.type for e in out if e.type.startswith(("dispatch.", "checkin."))] == []
    assert messages(out) == [(near.phone, "reply_unknown")]
    # OK and CLEAR by key for an unknown code: nothing at all
    assert harness.feed(called_in(near.phone, "99992")) == []
    assert harness.feed(called_in(near.phone, "99993")) == []


@pytest.mark.parametrize("digits", ["48215", "4821", "48219", "4821*", "1"])
def test_keys_that_are_no_code_and_command_change_nothing(harness: Harness, team, digits: str) -> None:
    on_it(harness, team["near"].phone)
    assert harness.feed(called_in(team["near"].phone, digits)) == []


def test_a_call_in_from_a_phone_not_on_the_roster_changes_nothing(harness: Harness, team) -> None:
    on_it(harness, team["near"].phone)
    assert harness.feed(called_in("+15550199999", "48211")) == []
