"""End to end over the real stack: a drill run by text alone, typed on the SMS sandbox's phones, delivered signed to
the real gateway's webhook, consumed by the dispatcher from a real NATS stream, answered by the notifier through the
sandbox; the sandbox's inbox API shows each conversation in order, in each responder's language, and the stream
holds what each text recorded.

Real NATS, dispatcher, projections, gateway, notifier and sandbox; one ManualClock (the voice keypad test's stack,
tests/integration/test_voice_keypad_e2e.py, over tests/support/responder_stack.py).
"""

from __future__ import annotations

from tests.integration.test_voice_keypad_e2e import VoiceStack, voice_stack
from tests.support.responder_stack import overdose_at_the_station
from tests.support.stream import stream_events


async def text(phones: VoiceStack, who: str, body: str) -> None:
    """``who`` types ``body`` on the sandbox's phone (delivered, signed, to the gateway's webhook); every answer
    the dispatcher asked for is then sent back through the notifier to the sandbox."""
    typed = phones.sandbox.post("/sandbox/api/inbound", json={"from": phones.stack.people[who].phone, "body": body})
    assert typed.status_code == 201 and typed.json()["webhook_status"] == 200, typed.text
    await phones.stack.settled()
    await phones.place_calls()  # sends every requested message, texts as well as calls


def conversation(phones: VoiceStack, who: str) -> list[tuple[str, str]]:
    """(direction, body) of every text to and from ``who``'s phone, oldest first: the sandbox's inbox API."""
    answer = phones.sandbox.get("/sandbox/api/messages", params={"phone": phones.stack.people[who].phone})
    return [(m["direction"], m["body"]) for m in answer.json()["messages"]]


async def test_a_drill_by_text_alone_shows_as_a_conversation_in_the_sandbox_inbox(js, nats_server, tmp_path) -> None:
    async with voice_stack(js, nats_server.url, tmp_path) as drill:
        stack = drill.stack
        await stack.publish(overdose_at_the_station("4821"))
        await drill.place_calls()
        for body in (
            "Y 4821 8",
            "ARRIVED 4821",
            "NARCAN 4821 4MG IN",
            "VITALS 4821 RR 10 SPO2 92 HR 100 AVPU V",
            "911 4821",
            "EMS 4821",
            "VITALS 4821 SPO2 140",
        ):
            stack.move_clock(minutes=1)
            await text(drill, "clinician", body)
        await text(drill, "coach", "SI 4821 10")
        await text(drill, "coach", "NALOXONA 4821 8 mg")
        await text(drill, "coach", "ayuda campo")
        events = await stream_events(js)
        clinician, coach = conversation(drill, "clinician"), conversation(drill, "coach")

    said = [body for direction, body in clinician if direction == "inbound"]
    assert said == [
        "Y 4821 8",
        "ARRIVED 4821",
        "NARCAN 4821 4MG IN",
        "VITALS 4821 RR 10 SPO2 92 HR 100 AVPU V",
        "911 4821",
        "EMS 4821",
        "VITALS 4821 SPO2 140",
    ]
    answers = [body for direction, body in clinician if direction != "inbound"]
    expected = [
        "Noted: ETA 8 min for 4821. Reply ARRIVED 4821 on scene.",
        "Noted: on scene for 4821.",
        "Noted for 4821: dose given. Thank you.",
        "Noted for 4821: vitals recorded. Thank you.",
        "Noted for 4821: 911 called. Reply EMS 4821 when they arrive.",
        "Noted for 4821: EMS on scene. Thank you.",
        "Not understood: the SpO2 (50-100). Example: VITALS 4821 RR 12 SPO2 94 HR 88 AVPU A. HELP FIELD lists all.",
    ]
    for answer in expected:
        assert answer in answers, (answer, answers)
    # each answer comes after the text it answers, in the order texted
    order = [body for _, body in clinician]
    assert order.index("NARCAN 4821 4MG IN") < order.index(expected[2]) < order.index("911 4821")
    # vitals are never in a text back
    assert not any("92" in a.split() or "100" in a.split() for a in answers)

    assert [body for direction, body in coach if direction == "inbound"] == [
        "SI 4821 10",
        "NALOXONA 4821 8 mg",
        "ayuda campo",
    ]
    coach_answers = [body for direction, body in coach if direction != "inbound"]
    assert "Anotado: llegada en 10 min para 4821. Responda LLEGUE 4821 al llegar." in coach_answers
    assert (
        "No entendimos la dosis (4MG o 0.4MG). Ejemplo: NALOXONA 4821 4MG IN. AYUDA CAMPO para ver todo."
        in coach_answers
    )
    assert any(a.startswith("Con el codigo: BIEN/LIBRE control, NALOXONA") for a in coach_answers)

    recorded = [e.type for e in events if e.producer == "dispatcher"]
    for event_type in (
        "field.eta_given",
        "incident.naloxone_administered",
        "field.vitals_recorded",
        "field.ems_called",
        "incident.ems_arrived",
    ):
        assert event_type in recorded, event_type
    assert recorded.count("incident.naloxone_administered") == 1  # the coach's "8 mg" recorded nothing
    assert recorded.count("field.vitals_recorded") == 1  # nor the SpO2 of 140
