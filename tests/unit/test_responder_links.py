"""Signed responder links and their sessions (services/runtime/signed_links.py), the page's view of an incident
(projections/domain/responder_view.py), and the v2 progress events that say whether a text or a button spoke."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path
from uuid import uuid4

from services.contract.events import (
    DispatchAcknowledged,
    DispatchAcknowledgedData,
    DispatchOffered,
    DispatchOfferedData,
    PageReason,
    ProgressReported,
    ProgressReportedData,
    ResponderEnRoute,
    decode_event,
    new_event,
)
from services.projections.domain.responder_view import StaffContact, responder_view
from services.runtime.signed_links import TOKEN_LENGTH, ResponderLinks, link_key
from tests.factories import T0, incident_reported

LINKS = ResponderLinks(b"k" * 32, timedelta(hours=12), "https://crisis.example.org/")


def test_a_link_is_short_opaque_and_opens_for_its_responder_until_it_expires() -> None:
    incident, responder, someone_else = uuid4(), uuid4(), uuid4()

    url = LINKS.url(incident, responder, T0)
    token = url.removeprefix("https://crisis.example.org/r/")
    claim = LINKS.read(token)

    assert len(token) == TOKEN_LENGTH and token.isascii() and "=" not in token
    assert url == LINKS.url(incident, responder, T0)  # built twice (an outbox retry): the same message
    assert claim is not None and claim.incident_id == incident and claim.expires_at == T0 + timedelta(hours=12)
    assert LINKS.signed_for(claim, [someone_else, responder]) == responder
    assert LINKS.signed_for(claim, [someone_else]) is None
    assert not claim.expired(T0 + timedelta(hours=11, minutes=59)) and claim.expired(T0 + timedelta(hours=12))


def test_a_changed_token_or_another_key_opens_nothing() -> None:
    incident, responder = uuid4(), uuid4()
    token = LINKS.token(incident, responder, T0 + timedelta(hours=12))

    for changed in (token[:-1] + ("A" if token[-1] != "A" else "B"), token[:20] + token[21:] + "A"):
        claim = LINKS.read(changed)
        assert claim is None or LINKS.signed_for(claim, [responder]) is None
    later = LINKS.token(incident, responder, T0 + timedelta(days=30))
    forged = token[:22] + later[22:27] + token[27:]  # someone else's expiry bytes spliced in
    assert LINKS.signed_for(LINKS.read(forged), [responder]) is None  # type: ignore[arg-type]
    assert ResponderLinks(b"another key").signed_for(LINKS.read(token), [responder]) is None  # type: ignore[arg-type]
    assert LINKS.signed_for(LINKS.read("x" * 40), [responder]) is None  # type: ignore[arg-type]
    for garbage in ("", "%" * 40, "x" * 39 + "=", token + "A", "a b", token[:-1] + "/"):
        assert LINKS.read(garbage) is None


def test_a_link_session_opens_only_its_incident_until_it_ends() -> None:
    incident, responder = uuid4(), uuid4()
    value, session = LINKS.begin_session(responder, incident, T0 + timedelta(hours=8))

    assert LINKS.session(value, incident, T0) == session
    assert LINKS.session(value, uuid4(), T0) is None  # another incident's page
    assert LINKS.session(value, incident, T0 + timedelta(hours=8)) is None
    assert ResponderLinks(b"another key").session(value, incident, T0) is None
    body, mac = value.split(".")
    assert LINKS.session(f"{body}x.{mac}", incident, T0) is None
    assert LINKS.session(None, incident, T0) is None and LINKS.session("no-dot", incident, T0) is None
    # a link's signature is not a session's: the two keys are used for different purposes
    assert LINKS.session(LINKS.token(incident, responder, T0), incident, T0) is None


def test_the_key_is_made_once_even_by_two_services_starting_together(tmp_path: Path) -> None:
    keys: list[bytes] = []
    threads = [threading.Thread(target=lambda: keys.append(link_key("", tmp_path))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(set(keys)) == 1 and len(keys[0]) >= 32
    assert (tmp_path / "responder_link.key").stat().st_mode & 0o077 == 0
    assert [p.name for p in tmp_path.iterdir()] == ["responder_link.key"]  # no drafts left behind
    assert link_key("configured", tmp_path) == b"configured"


def test_a_progress_event_published_before_v2_reads_as_a_text() -> None:
    answer = {"incident_id": str(uuid4()), "page_id": str(uuid4()), "responder_id": str(uuid4()), "code": "4821"}
    raw = {
        "id": str(uuid4()),
        "type": "dispatch.en_route",
        "schema_version": 1,
        "occurred_at": T0.isoformat(),
        "producer": "dispatcher",
        "data": {**answer, "message_sid": "SM" + "a" * 32},
    }

    event = decode_event(json.dumps(raw).encode())

    assert isinstance(event, ResponderEnRoute) and event.schema_version == 3
    assert (event.data.channel, event.data.reported_by) == ("sms", None)


def test_the_page_shows_the_team_the_supervisor_and_a_press_still_waiting_for_the_dispatcher() -> None:
    reported = incident_reported()
    incident = reported.data.incident_id
    me, peer, boss = uuid4(), uuid4(), uuid4()
    staff = {
        me: StaffContact("Maya Okafor", "clinician", "+15550142001", boss),
        peer: StaffContact("Luis Romero", "peer_coach", "+15550142002", boss),
        boss: StaffContact("Dana Whitfield", "supervisor", "+15550142004"),
    }

    def event(cls, data):  # noqa: ANN001, ANN202
        return new_event(cls, data, event_id=uuid4(), occurred_at=T0, producer="tests", incident_id=incident)

    pages = {rid: uuid4() for rid in (me, peer)}
    offered = [
        event(
            DispatchOffered,
            DispatchOfferedData(
                incident_id=incident,
                page_id=pages[rid],
                responder_id=rid,
                responder_role=staff[rid].role,
                code="4821",
                priority="P1",
                ack_deadline=T0 + timedelta(seconds=90),
                step=1,
                reason=PageReason(on_call=True, skills_matched=[], distance_km=0.5, load=0, rule="P1"),
            ),
        )
        for rid in (me, peer)
    ]
    ack = event(
        DispatchAcknowledged,
        DispatchAcknowledgedData(
            incident_id=incident, page_id=pages[me], responder_id=me, code="4821", message_sid="SM" + "b" * 32
        ),
    )
    press = event(
        ProgressReported, ProgressReportedData(incident_id=incident, responder_id=me, stage="en_route", reported_by="m")
    )

    view = responder_view([reported, *offered, ack, press], me, staff, "open")

    assert view.me is not None and view.me.on_it and view.me.pending == {"en_route"} and view.me.times == {}
    assert [(t.name, t.stage, t.phone) for t in view.team] == [("Luis Romero", "paged", "+15550142002")]
    assert view.supervisor == staff[boss]
    assert view.guidance == ["Call 911 now."] and ("911 / EMS called", "no") in view.facts
    assert view.scene is not None and view.scene.geo_uri.startswith("geo:39.743100,-104.987600")
    director = responder_view([reported, *offered, ack], None, staff, "open")
    assert director.me is None and {t.name for t in director.team} == {"Maya Okafor", "Luis Romero"}
    assert director.supervisor == staff[boss]  # the supervisor of whoever accepted
