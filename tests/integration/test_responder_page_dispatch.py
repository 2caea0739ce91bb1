"""The dispatcher's side of the responder page: the accept confirmation carries a link signed for the responder
who accepted, and the page's en route / on scene / done are recorded exactly as the same words texted are."""

# ruff: noqa: F811 - the fixtures (settings, harness, team) are imported from tests/support/dispatch_harness.py
from __future__ import annotations

import base64
from datetime import timedelta
from uuid import uuid4

from services.contract.events import ProgressReported, ProgressReportedData, new_event
from services.dispatcher.settings import DispatcherSettings
from services.notifier.bootstrap import build as build_notifier
from services.notifier.domain.templates import render
from services.runtime.signed_links import ResponderLinks, link_key
from tests import dispatch_factories as f
from tests import factories
from tests.factories import T0
from tests.integration.test_notifier import ManualTime, outcomes, requested, sandbox, send_queue, settings_for  # noqa: F401
from tests.support.dispatch_harness import Harness, harness, messages, of, settings, team  # noqa: F401


def pressed(incident_id, responder_id, stage: str, subject: str = "maya") -> ProgressReported:
    data = ProgressReportedData(incident_id=incident_id, responder_id=responder_id, stage=stage, reported_by=subject)
    return new_event(
        ProgressReported, data, event_id=uuid4(), occurred_at=T0, producer="projections", incident_id=incident_id
    )


def accepted_incident(harness: Harness, team) -> tuple:
    reported = f.incident(short_code="4821")
    harness.feed(reported)
    out = harness.reply(team["near"].phone, "Y 4821")
    return reported.data.incident_id, out


def test_the_accept_confirmation_links_to_the_page_signed_for_that_responder_for_twelve_hours(
    harness: Harness, team, settings: DispatcherSettings
) -> None:
    incident_id, out = accepted_incident(harness, team)

    [confirmation] = [e for e in of(out, "notification.requested") if e.data.template == "ack_confirmed"]
    link = confirmation.data.params["link"]
    assert link.startswith("http://127.0.0.1:8081/r/")
    token = link.removeprefix("http://127.0.0.1:8081/r/")
    assert len(token) == 40
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    assert team["near"].responder_id.bytes not in raw  # the token names no responder
    links = ResponderLinks(link_key("", settings.var_dir))
    claim = links.read(token)
    assert claim is not None and claim.incident_id == incident_id
    assert claim.expires_at == T0 + timedelta(hours=12)  # from the moment they accepted (the dispatcher's clock)
    everyone = [p.responder_id for p in team.values()]
    assert links.signed_for(claim, everyone) == team["near"].responder_id
    assert ResponderLinks(b"another key").signed_for(claim, everyone) is None
    text = render("ack_confirmed", confirmation.data.params, "en").text
    assert text == f"Accepted 4821. Thank you - details: {link}" and len(text) <= 160


def test_en_route_on_scene_and_done_pressed_on_the_page_are_recorded_like_texts_without_an_sms(
    harness: Harness, team
) -> None:
    incident_id, _ = accepted_incident(harness, team)
    near = team["near"].responder_id

    en_route = pressed(incident_id, near, "en_route")
    out = harness.feed(en_route)
    [event] = of(out, "dispatch.en_route")
    assert (event.data.channel, event.data.message_sid, event.data.reported_by) == ("app", None, "maya")
    assert event.causation_id == en_route.id and event.data.code == "4821"
    assert messages(out) == []  # the page shows what was recorded; no text confirms it

    out = harness.feed(pressed(incident_id, near, "arrived"), pressed(incident_id, near, "done"))
    assert [e.type for e in out if e.type.startswith("dispatch.")] == ["dispatch.arrived", "dispatch.completed"]
    assert of(out, "dispatch.completed")[0].data.closes_incident is True

    # the dispatcher let them go: their STATUS lists nothing, and a later OTW by text is not understood
    out = harness.reply(team["near"].phone, "STATUS")
    assert [e.data.params for e in of(out, "notification.requested")] == [{"codes": []}]
    assert messages(harness.reply(team["near"].phone, "OTW")) == [(team["near"].phone, "reply_unknown")]


def test_a_press_by_someone_not_on_the_incident_records_nothing(harness: Harness, team) -> None:
    incident_id, _ = accepted_incident(harness, team)

    out = harness.feed(
        pressed(incident_id, team["far"].responder_id, "en_route"),  # never accepted
        pressed(uuid4(), team["near"].responder_id, "arrived"),  # no such incident
    )

    assert [e.type for e in out] == []


async def test_the_phone_gets_the_link_but_the_streams_record_of_the_text_leaves_its_token_out(
    tmp_path, sandbox
) -> None:
    phone = factories.fake_phone()
    link = "http://127.0.0.1:8081/r/" + "Tk_-" * 10
    confirmation = requested(phone, "ack_confirmed", {"code": "4821", "link": link})
    settings = settings_for(tmp_path, sandbox.url)
    time = ManualTime()
    with build_notifier(settings, time.clock) as notifier:
        notifier.handle(confirmation, 1)
        await send_queue(notifier, settings, time).drain()
        (sent,) = outcomes(notifier, confirmation.data.notification_id)

    assert [m["body"] for m in sandbox.messages(phone)] == [f"Accepted 4821. Thank you - details: {link}"]
    # timelines show sms.sent to directors and the rest of the team: the link opens only its recipient's page
    assert sent.data.body == "Accepted 4821. Thank you - details: http://127.0.0.1:8081/r/..."
