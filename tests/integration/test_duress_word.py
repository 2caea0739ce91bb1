"""Must show: the duress word never leaves the system, while the supervisor's alert goes out.

The real stack: a reply texted through Twilio's signed webhook to the gateway, the ``sms.received`` it appends on a
real NATS stream, the dispatcher consuming it, the notifier rendering and sending what the dispatcher asked for
through the SMS sandbox (the real Twilio SDK over HTTP), and the projections serving the responder's incident page.
Every log record of every service is captured. The word is in nothing that goes out, in no log line, in no event
but the inbound record itself, and not on the responder's page; the responder's phone got the same answer as for OK.
"""

# ruff: noqa: F811 - the sandbox fixture is imported from tests/integration/test_notifier.py
from __future__ import annotations

import logging
from uuid import uuid4

import httpx
from twilio.request_validator import RequestValidator

from services.contract.events import decode_event
from services.intake_gateway.bootstrap import build as build_gateway
from services.intake_gateway.settings import GatewaySettings
from services.notifier.bootstrap import build as build_notifier
from tests.integration.test_notifier import ManualTime, sandbox, send_queue, settings_for  # noqa: F401
from tests.support.asgi_server import serving
from tests.support.responder_stack import overdose_at_the_station, responder_stack
from tests.support.stream import stream_events

WORD = "Pineapple"
TOKEN = "duress-test-auth-token"
PUBLIC = "https://dispatch.example.org"
ORG = "+15005550006"


def texted(gateway: str, phone: str, body: str) -> httpx.Response:
    """``phone`` texts ``body``: Twilio's signed webhook to the gateway."""
    params = {"MessageSid": f"SM{uuid4().hex}", "From": phone, "To": ORG, "Body": body}
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC + "/twilio/sms", params)
    return httpx.post(gateway + "/twilio/sms", data=params, headers={"X-Twilio-Signature": signature})


async def test_the_duress_word_never_leaves_the_system_while_the_supervisors_alert_goes_out(
    js, nats_server, tmp_path, monkeypatch, caplog, sandbox
) -> None:
    monkeypatch.setenv("CRISIS_DURESS_WORDS", "pineapple, blue heron")  # read by the dispatcher's settings
    caplog.set_level(logging.DEBUG)
    gateway_settings = GatewaySettings(
        nats_url=nats_server.url,
        twilio_auth_token=TOKEN,
        gateway_public_url=PUBLIC,
        credentials_file=tmp_path / "no-credentials.json",
    )
    async with responder_stack(js, nats_server.url, tmp_path / "var") as stack:
        with serving(build_gateway(gateway_settings)) as gateway:
            clinician, coach = stack.people["clinician"].phone, stack.people["coach"].phone
            supervisor = stack.people["supervisor"].phone
            await stack.publish(overdose_at_the_station())
            for phone, body in [(clinician, "Y 4821"), (coach, "SI 4821"), (clinician, "ARRIVED 4821")]:
                assert texted(gateway, phone, body).status_code == 200
                await stack.settled()
            assert texted(gateway, coach, "OK 4821").status_code == 200  # a plain OK, for comparison
            assert texted(gateway, clinician, f"ok 4821 {WORD}").status_code == 200  # the duress word
            await stack.settled()
            link = await stack.link_for("clinician")
            async with stack.client() as phone:
                opened = await phone.get(stack.path(link))
                assert opened.status_code == 303
                page = await phone.get(opened.headers["location"])
                assert page.status_code == 200 and "4821" in page.text
                html = page.text

        events = await stream_events(js)
        requests = [e for e in events if e.type == "notification.requested"]
        settings = settings_for(tmp_path, sandbox.url)
        time = ManualTime()
        time.clock.advance(stack.clock.now() - time.clock.now())
        with build_notifier(settings, time.clock) as notifier:
            for sequence, request in enumerate(requests, start=1):
                notifier.handle(decode_event(request.to_json()), sequence)
            await send_queue(notifier, settings, time).drain()

    word = WORD.lower()
    # the responder's phone got the normal OK answer, exactly as a plain OK gets it
    to_clinician = [m["body"] for m in sandbox.messages(clinician)]
    to_coach = [m["body"] for m in sandbox.messages(coach)]
    assert to_clinician[-1] == "OK noted for 4821, next check-in by 02:15."
    assert to_coach[-1] == "OK anotado para 4821, proximo control antes de las 02:15."
    assert not any("alert" in body.lower() or "alerta" in body.lower() for body in to_clinician + to_coach)
    # the supervisor's alert went out, naming the responder and the scene by the gazetteer, never the word
    alerts = [m["body"] for m in sandbox.messages(supervisor) if "SILENT ALERT" in m["body"]]
    assert alerts == [
        "SILENT ALERT: Maya Okafor (4821) may be in danger. Last known in zone central. Act now, discreetly."
    ]
    # the word is in no message the sandbox holds, to anyone (texts and calls)
    for phone in {clinician, coach, supervisor, stack.people["nurse"].phone}:
        for message in sandbox.messages(phone, "any"):  # texts and calls
            assert word not in str(message).lower(), message
    # in no log line of any service (the capture hears them: the services, the Twilio SDK, HTTP clients)
    assert {"services", "twilio", "httpx"} <= {record.name.split(".")[0] for record in caplog.records}
    logged = [record for record in caplog.records if word in record.getMessage().lower()]
    assert logged == [], [(r.name, r.getMessage()) for r in logged]
    # in no event but the inbound record itself
    carrying = [e.type for e in events if word.encode() in e.to_json().lower()]
    assert carrying == ["sms.received"]
    assert [e.type for e in events if e.type == "checkin.duress"] == ["checkin.duress"]
    # and not on the responder's page, which says nothing of an alert either
    assert word not in html.lower()
    assert "duress" not in html.lower() and "silent" not in html.lower()
