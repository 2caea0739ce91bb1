"""End to end over the real stack: a responder who accepted by text calls the organisation's number from the SMS
sandbox (`POST /sandbox/api/calls/inbound`); the real gateway answers with a Gather for the code and a key; the
responder presses 4821 then 1 through the sandbox's digits API; the dispatcher records them arriving by voice and
their check-in starts with channel voice."""

from __future__ import annotations

from tests.integration.test_voice_keypad_e2e import voice_stack
from tests.support.responder_stack import overdose_at_the_station


async def test_a_responder_calls_in_and_presses_code_and_1_arrived_by_voice_starts_the_check_in(
    js, nats_server, tmp_path
) -> None:
    async with voice_stack(js, nats_server.url, tmp_path) as voice:
        stack = voice.stack
        maya = stack.people["clinician"]
        await stack.publish(overdose_at_the_station("4821"))
        await stack.settled()
        voice.sandbox.post("/sandbox/api/inbound", json={"from": maya.phone, "body": "Y 4821"})
        await stack.settled()
        assert [e.data.responder_id for e in await voice.events("dispatch.acknowledged")] == [maya.responder_id]

        response = voice.sandbox.post("/sandbox/api/calls/inbound", json={"from": maya.phone})
        assert response.status_code == 201, response.text
        call = response.json()
        assert (call["direction"], call["webhook_status"], call["awaiting_digits"]) == ("inbound", 200, True)
        assert "Enter your incident code" in call["body"]
        too_many = voice.sandbox.post(f"/sandbox/api/calls/{call['sid']}/digits", json={"digits": "482111"})
        assert too_many.status_code == 422  # the Gather takes 5 keys
        answered = voice.press(call, "48211")
        assert answered["webhook_status"] == 200
        assert answered["keypad_answer"].startswith("Thank you. A text message confirms it.")
        await stack.settled()

        [pressed] = await voice.events("call.keypad_pressed")
        assert (pressed.data.phone, pressed.data.prompt, pressed.data.code) == (maya.phone, "field", "4821")
        [arrived] = await voice.events("dispatch.arrived")
        assert (arrived.data.responder_id, arrived.data.code) == (maya.responder_id, "4821")
        assert (arrived.data.channel, arrived.data.message_sid, arrived.causation_id) == ("voice", None, pressed.id)
        [started] = await voice.events("checkin.started")
        assert (started.data.responder_id, started.data.channel) == (maya.responder_id, "voice")
        confirmations = [
            e for e in await voice.events("notification.requested") if e.data.template == "arrived_confirmed"
        ]
        assert [e.data.to for e in confirmations] == [maya.phone]
        # the sandbox shows the call in the phone's conversation, answered
        [listed] = [
            c
            for c in voice.sandbox.get("/sandbox/api/calls", params={"phone": maya.phone}).json()["calls"]
            if c["sid"] == call["sid"]
        ]
        assert (listed["digits"], listed["awaiting_digits"]) == ("48211", False)
