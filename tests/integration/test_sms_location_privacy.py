"""No reporter free text reaches an SMS: a report goes through the dispatcher's paging and the notifier's
rendering (each on its own store, wired by its own bootstrap, the events crossing as stream JSON) and the
texts the responders would get are read.

Whatever the reporter typed (the address, a place name, access notes, their relation, a substance) is not
in them: a page names the scene by the organisation's gazetteer (an entry right there, else the zone) or
not at all. Generated names and words only.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from services.contract.events import (
    Envelope,
    IncidentReported,
    IncidentReportedData,
    decode_event,
    new_event,
    place_ref,
)
from services.dispatcher.bootstrap import build as build_dispatcher
from services.dispatcher.settings import DispatcherSettings
from services.notifier.bootstrap import build as build_notifier
from services.notifier.settings import NotifierSettings
from services.runtime.clock import ManualClock
from tests import dispatch_factories as f
from tests.factories import T0

ROOT = Path(__file__).resolve().parents[2]
GAZETTEER = ROOT / "deploy" / "demo" / "gazetteer.json"
UNION_STATION = (39.7527, -105.0001)  # an entry of the demo gazetteer, in zone central
SYLLABLES = ("jor", "vik", "quel", "brand", "ta", "mio", "ren", "sko", "lu", "dre", "van", "ost")


def generated_name(rng: random.Random) -> str:
    return " ".join("".join(rng.choice(SYLLABLES) for _ in range(3)).title() for _ in range(2))


def words(text: str) -> set[str]:
    return {w for w in re.findall(r"[^\W_]+", text.casefold()) if len(w) > 1}


class Pipeline:
    """The dispatcher and the notifier, built as their services build them, fed by hand."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("CRISIS_GAZETTEER_FILE", str(GAZETTEER))  # both services read the same file
        self.clock = ManualClock(T0)
        dispatcher_settings = DispatcherSettings(var_dir=tmp_path / "dispatcher", roster_seed_file=None)
        notifier_settings = NotifierSettings(var_dir=tmp_path / "notifier", sms_provider="sandbox")
        self.dispatcher = build_dispatcher(dispatcher_settings, self.clock)
        self.notifier = build_notifier(notifier_settings, self.clock)
        self.dispatcher_sequence = self.notifier_sequence = self.seen = 0

    def close(self) -> None:
        self.dispatcher.close()
        self.notifier.close()

    def dispatch(self, *events: Envelope) -> list[Envelope]:
        """Feed the dispatcher; what it published since the last call, as the stream would carry it."""
        for event in events:
            self.dispatcher_sequence += 1
            self.dispatcher.handle(decode_event(event.to_json()), self.dispatcher_sequence)
        stored = self.dispatcher.recorder.select_notifications(start=1, limit=10_000)
        published = [e for n in stored for e in self.dispatcher.outbox(self.dispatcher.mapper.to_domain_event(n))]
        fresh, self.seen = published[self.seen :], len(published)
        return [decode_event(e.to_json()) for e in fresh]

    def texts(self, requests: list[Envelope]) -> dict[str, str]:
        """Each notification request rendered by the notifier as it would be sent: phone -> text."""
        texts = {}
        for request in requests:
            self.notifier_sequence += 1
            self.notifier.handle(request, self.notifier_sequence)
            attempt = self.notifier.begin_attempt(request.data.notification_id)
            assert attempt is not None, "the notifier refused to render the request"
            texts[request.data.to] = attempt.text
        return texts


@pytest.fixture
def pipeline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    pipeline = Pipeline(tmp_path, monkeypatch)
    yield pipeline
    pipeline.close()


@pytest.fixture
def team(pipeline: Pipeline) -> dict[str, Any]:
    """A clinician (English) and a peer coach (Spanish), on call in zone central."""
    clinician = f.responder("clinician", skills=("naloxone_carrier", "licensed_clinician"), home=(39.744, -104.988))
    peer = f.responder("peer_coach", home=(39.746, -104.989), languages=("es", "en"))
    people = [clinician, peer]
    pipeline.dispatch(*(f.registered(p) for p in people), *(f.rotation([p.responder_id]) for p in people))
    return {"clinician": clinician, "peer": peer}


def report(at: tuple[float, float], relation: str | None = None, **location: Any) -> IncidentReported:
    """An overdose reported with coordinates, and whatever else the reporter typed."""
    incident_id = uuid4()
    data = IncidentReportedData.model_validate(
        {
            "incident_id": incident_id,
            "short_code": "4821",
            "kind": "overdose",
            "priority": "P1",
            "needs": ["naloxone_carrier", "ems_now"],
            "guidance": [],
            "location": {"lat": at[0], "lon": at[1], **location},
            "reporter": {"channel": "hotline", "relation": relation},
            "overdose": {"substance": "xylazine + fent"},
            "zone": "central",
        }
    )
    return new_event(
        IncidentReported, data, event_id=uuid4(), occurred_at=T0, producer="tests", incident_id=incident_id
    )


def pages(events: list[Envelope]) -> list[Envelope]:
    return [e for e in events if e.type == "notification.requested" and e.data.template == "page_offer"]


def test_a_typed_address_full_of_client_details_reaches_no_page(pipeline: Pipeline, team: dict[str, Any]) -> None:
    name = generated_name(random.Random())
    typed = {
        "address": f"{name} 34yo OD xylazine HIV+ bipolar pregnant",
        "place": f"{name}'s flat (schizoaffective, PrEP)",
        "access_notes": f"ask {name}, kids present, probation officer",
        "resolved_from": "coordinates",
    }

    relation = f"{name}'s parole officer"

    requests = pages(pipeline.dispatch(report(f.SCENE, relation, **typed)))
    texts = pipeline.texts(requests)

    assert set(texts) == {team["clinician"].phone, team["peer"].phone}
    typed_words = set().union(*(words(v) for v in [*typed.values(), relation, "xylazine + fent"]))
    for request in requests:  # not even the request on the stream carries what was typed
        assert not typed_words & words(json.dumps(request.data.params)), request.data.params
        assert request.data.params["zone"] == place_ref("central") and request.data.params["place"] is None
    for text in texts.values():
        assert not typed_words & words(text), text
    assert texts[team["clinician"].phone].startswith("P1 response needed in zone central (")
    assert texts[team["peer"].phone].startswith("P1: se necesita respuesta en la zona central (")


def test_a_page_at_a_gazetteer_place_names_it_as_the_gazetteer_does(pipeline: Pipeline, team: dict[str, Any]) -> None:
    typed = {"place": "union stn by the lockers, the guy with HIV", "resolved_from": "coordinates"}

    texts = pipeline.texts(pages(pipeline.dispatch(report(UNION_STATION, **typed))))

    assert texts[team["clinician"].phone].startswith("P1 response needed near Union Station (")
    assert texts[team["peer"].phone].startswith("P1: se necesita respuesta cerca de Union Station (")
    for text in texts.values():
        assert not (words(typed["place"]) - {"union"}) & words(text), text


def test_a_geocoders_own_name_for_a_typed_address_is_not_printed_either(
    pipeline: Pipeline, team: dict[str, Any]
) -> None:
    """An online geocoder's display name is not the organisation's vocabulary: it can name a clinic."""
    display_name = "Sunrise Harm Reduction Clinic, 1620, Quellbrand Street, Denver, Colorado, 80204"

    texts = pipeline.texts(pages(pipeline.dispatch(report(f.SCENE, address=display_name, resolved_from="address"))))

    for text in texts.values():
        assert not (words(display_name) - {"denver"}) & words(text), text
        assert "central" in text
