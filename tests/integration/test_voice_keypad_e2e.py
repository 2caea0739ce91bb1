"""End to end over the real stack: a P1 page's voice call, placed by the notifier through the SDK into the SMS
sandbox, is answered with 1 through the sandbox's API; the sandbox posts the key, signed, to the real gateway, which
publishes `call.keypad_pressed`; the dispatcher accepts the page as if "Y 4821" had been texted. The same for a
missed check-in's call: 1 confirms the check-in.

Real NATS, dispatcher, projections, gateway, notifier and sandbox; one ManualClock (tests/support/responder_stack.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from services.contract.events import Envelope
from services.intake_gateway.bootstrap import build as build_gateway
from services.intake_gateway.settings import GatewaySettings
from services.notifier.bootstrap import build as build_notifier
from services.notifier.bootstrap import build_send_queue
from services.notifier.settings import NotifierSettings
from services.sms_sandbox.app import build_sandbox_app
from services.sms_sandbox.settings import SandboxSettings
from tests.integration.test_notifier import ManualTime
from tests.support.asgi_server import serving
from tests.support.responder_stack import ResponderStack, overdose_at_the_station, responder_stack
from tests.support.stream import stream_events

ORG = "+15005550006"


@dataclass
class VoiceStack:
    stack: ResponderStack
    sandbox: httpx.Client
    notifier: Any
    settings: NotifierSettings
    time: ManualTime
    handled: int = 0

    async def place_calls(self) -> None:
        """Hand the notifier every message requested since last time, and send them (calls go to the sandbox)."""
        events = await stream_events(self.stack.js, self.handled + 1)
        for position, event in enumerate(events, start=self.handled + 1):
            self.notifier.handle(event, position)
        self.handled += len(events)
        await build_send_queue(self.notifier, self.settings, sleep=self.time.sleep).drain()

    def call_to(self, who: str) -> dict[str, Any]:
        phone = self.stack.people[who].phone
        [call] = self.sandbox.get("/sandbox/api/calls", params={"phone": phone}).json()["calls"][-1:]
        return call

    def press(self, call: dict[str, Any], digits: str) -> dict[str, Any]:
        response = self.sandbox.post(f"/sandbox/api/calls/{call['sid']}/digits", json={"digits": digits})
        assert response.status_code == 200, response.text
        return response.json()

    async def until_requested(self, template: str, step: timedelta, steps: int = 60) -> None:
        """Move the clock ``step`` at a time, firing the dispatcher's deadlines, until ``template`` is requested."""
        for _ in range(steps):
            self.stack.clock.advance(step)
            self.stack.dispatcher.fire_due()
            await self.stack.settled()
            if any(e.data.template == template for e in await self.events("notification.requested")):
                return
        raise AssertionError(f"{template} was never requested")

    async def events(self, type_: str) -> list[Envelope]:
        return [e for e in await stream_events(self.stack.js) if e.type == type_]


@contextlib.asynccontextmanager
async def voice_stack(js: Any, nats_url: str, var_dir: Path) -> AsyncIterator[VoiceStack]:
    async with responder_stack(js, nats_url, var_dir / "stack") as stack:
        gateway_settings = GatewaySettings(nats_url=nats_url, credentials_file=var_dir / "gateway-credentials.json")
        gateway_app = build_gateway(gateway_settings, stack.clock)
        with serving(gateway_app) as gateway:
            gateway_app.state.public_url = gateway  # the URL Twilio (the sandbox) calls it at, known once served
            sandbox_settings = SandboxSettings(
                var_dir=var_dir / "sandbox", sandbox_inbound_webhook_url=f"{gateway}/twilio/sms", sandbox_org_number=ORG
            )
            with (
                serving(build_sandbox_app(sandbox_settings)) as sandbox_url,
                httpx.Client(base_url=sandbox_url) as http,
            ):
                settings = NotifierSettings(
                    var_dir=var_dir / "notifier",
                    database_url="",
                    sms_provider="sandbox",
                    sandbox_url=sandbox_url,
                    twilio_voice_from_number=ORG,
                    twilio_voice_keypad_url=f"{gateway}/twilio/voice/keypad",
                    gazetteer_file=None,
                )
                time = ManualTime()
                with build_notifier(settings, time.clock) as notifier:
                    yield VoiceStack(stack, http, notifier, settings, time)


async def test_a_p1_pages_voice_call_answered_with_1_in_the_sandbox_accepts_the_page(js, nats_server, tmp_path) -> None:
    async with voice_stack(js, nats_server.url, tmp_path) as voice:
        stack = voice.stack
        await stack.publish(overdose_at_the_station("4821"))
        await voice.until_requested("voice_page", step=timedelta(seconds=30))  # a P1 page still open is called
        await voice.place_calls()

        call = voice.call_to("clinician")
        assert call["awaiting_digits"] is True and "To accept now, press 1" in call["body"]
        answered = voice.press(call, "1")
        assert (answered["webhook_status"], answered["keypad_answer"]) == (
            200,
            "Thank you. A text message confirms it.",
        )
        await stack.settled()

        [pressed] = await voice.events("call.keypad_pressed")
        maya = stack.people["clinician"]
        assert (pressed.data.call_sid, pressed.data.phone, pressed.data.digits) == (call["sid"], maya.phone, "1")
        assert (pressed.data.prompt, pressed.data.code) == ("page", "4821")
        [accepted] = await voice.events("dispatch.acknowledged")
        assert (accepted.data.responder_id, accepted.data.code) == (maya.responder_id, "4821")
        assert (accepted.data.channel, accepted.data.message_sid, accepted.causation_id) == ("voice", None, pressed.id)
        confirmations = [e for e in await voice.events("notification.requested") if e.data.template == "ack_confirmed"]
        assert [e.data.to for e in confirmations] == [maya.phone]
        # the confirmation text reaches the phone in the sandbox, with the incident page's link
        await voice.place_calls()
        [text] = [
            m
            for m in voice.sandbox.get("/sandbox/api/messages", params={"phone": maya.phone}).json()["messages"]
            if m["body"].startswith("Accepted 4821.")
        ]
        assert confirmations[0].data.params["link"] in text["body"]
        assert voice.call_to("clinician")["awaiting_digits"] is False


async def test_a_missed_check_ins_call_answered_with_1_confirms_the_check_in(js, nats_server, tmp_path) -> None:
    async with voice_stack(js, nats_server.url, tmp_path) as voice:
        stack = voice.stack
        await stack.publish(overdose_at_the_station("4821"))
        await stack.reply("clinician", "Y 4821")
        await stack.reply("clinician", "ARRIVED 4821")
        assert await voice.events("checkin.started")
        await voice.until_requested("checkin_call", step=timedelta(minutes=1))  # the check-in was missed
        await voice.place_calls()

        call = voice.call_to("clinician")
        assert call["awaiting_digits"] is True and "If you are safe, press 1" in call["body"]
        assert voice.press(call, "1")["webhook_status"] == 200
        await stack.settled()
        [confirmed] = await voice.events("checkin.confirmed")
        assert (confirmed.data.code, confirmed.data.channel) == ("4821", "voice")
        assert confirmed.data.responder_id == stack.people["clinician"].responder_id
