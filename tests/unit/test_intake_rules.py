"""Intake's pure rules: contradictions, service zones, possible duplicates, the gazetteer, the v1 upcaster."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest

from services.contract.events import (
    IncidentReported,
    OverdoseDetails,
    SelfHarmRiskDetails,
    WithdrawalDetails,
    decode_event,
)
from services.intake_gateway.adapters.geocoding_gazetteer import GazetteerGeocoder, load_gazetteer, normalise
from services.intake_gateway.domain.consistency import (
    overdose_contradictions,
    self_harm_contradictions,
    withdrawal_contradictions,
)
from services.intake_gateway.domain.duplicates import DuplicateRule, RecentReport, possible_duplicates
from services.intake_gateway.domain.places import Zone, distance_m, zone_of

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def fields(contradictions) -> list[str]:
    return [c.field for c in contradictions]


def test_responsive_but_not_breathing_is_a_contradiction_but_unresponsive_and_breathing_is_not() -> None:
    assert fields(overdose_contradictions(OverdoseDetails(responsive=True, breathing=False))) == ["breathing"]
    assert overdose_contradictions(OverdoseDetails(responsive=False, breathing=True)) == []
    assert overdose_contradictions(OverdoseDetails()) == []


@pytest.mark.parametrize(
    ("details", "expected"),
    [
        ({"substance": "other", "ciwa_ar_score": 12, "cows_score": 9}, ["cows_score"]),
        ({"substance": "opioid", "ciwa_ar_score": 12}, ["ciwa_ar_score"]),
        ({"substance": "alcohol", "cows_score": 9}, ["cows_score"]),
        ({"substance": "alcohol", "ciwa_ar_score": 12}, []),
        ({"substance": "opioid", "cows_score": 9}, []),
        ({"substance": "other", "cows_score": 9}, []),
    ],
)
def test_withdrawal_scores_must_fit_the_substance_and_come_alone(details, expected) -> None:
    assert fields(withdrawal_contradictions(WithdrawalDetails(**details))) == expected


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ({"q6_ever": False, "q6_past_3_months": True}, ["q6_past_3_months"]),
        ({"q6_ever": True}, ["q6_past_3_months"]),
        ({"q2": False, "q4": True}, ["q4"]),
        ({"q2": True, "q3": False, "q4": False}, ["q5"]),
        ({"q2": True, "q3": False, "q4": False, "q5": True}, []),
        ({"q6_ever": True, "q6_past_3_months": False}, []),
    ],
)
def test_c_ssrs_skip_logic(answers, expected) -> None:
    details = SelfHarmRiskDetails(**({"q1": False, "q2": False, "q6_ever": False} | answers))
    assert fields(self_harm_contradictions(details)) == expected


def test_zones_polygon_circle_and_outside() -> None:
    square = Zone("square", polygon=((0.0, 0.0), (0.0, 1.0), (1.0, 1.0), (1.0, 0.0)))
    circle = Zone("circle", centre=(10.0, 10.0), radius_m=1000)
    assert zone_of(0.5, 0.5, [square, circle]) == "square"
    assert zone_of(10.005, 10.0, [square, circle]) == "circle"  # ~556 m north of the centre
    assert zone_of(10.01, 10.0, [square, circle]) is None  # ~1.1 km
    assert zone_of(1.5, 0.5, [square, circle]) is None
    with pytest.raises(ValueError, match="polygon"):
        Zone("bad", polygon=((0.0, 0.0), (1.0, 1.0)))


def test_duplicates_same_kind_within_200_m_and_10_minutes_both_inclusive() -> None:
    rule = DuplicateRule()
    base = (39.7431, -104.9876)
    near = RecentReport(uuid4(), "overdose", base[0] + 0.0017, base[1], T0, "1111")  # ~189 m north
    far = RecentReport(uuid4(), "overdose", base[0] + 0.0019, base[1], T0, "2222")  # ~211 m
    other_kind = RecentReport(uuid4(), "withdrawal", *base, T0, "3333")
    assert 180 < distance_m(base, (near.lat, near.lon)) < 200 < distance_m(base, (far.lat, far.lon))
    at = T0 + timedelta(minutes=10)
    found = possible_duplicates("overdose", *base, at, [near, far, other_kind], rule)
    assert [d.incident_id for d in found] == [near.incident_id] and found[0].minutes_before == 10
    assert possible_duplicates("overdose", *base, at + timedelta(seconds=1), [near], rule) == []
    assert possible_duplicates("overdose", *base, at, [near], DuplicateRule(radius_m=100)) == []


def test_only_the_nearest_duplicates_are_linked() -> None:
    crowd = [RecentReport(uuid4(), "overdose", 39.7431 + i * 0.00001, -104.9876, T0, f"{1000 + i}") for i in range(30)]
    found = possible_duplicates("overdose", 39.7431, -104.9876, T0, crowd, DuplicateRule(max_links=5))
    assert [d.short_code for d in found] == ["1000", "1001", "1002", "1003", "1004"]


def test_duplicates_are_nearest_first() -> None:
    a = RecentReport(uuid4(), "overdose", 39.7440, -104.9876, T0, "1111")
    b = RecentReport(uuid4(), "overdose", 39.7432, -104.9876, T0, "2222")
    found = possible_duplicates("overdose", 39.7431, -104.9876, T0 + timedelta(minutes=1), [a, b], DuplicateRule())
    assert [d.short_code for d in found] == ["2222", "1111"]


@pytest.fixture(scope="module")
def demo() -> GazetteerGeocoder:
    return GazetteerGeocoder(load_gazetteer(ROOT / "deploy/demo/gazetteer.json"))


def test_the_demo_gazetteer_covers_the_demo_roster(demo) -> None:
    roster = json.loads((ROOT / "deploy/demo/roster.json").read_text())
    zones = demo.gazetteer.zones
    for responder in roster["responders"]:
        home = responder["home_base"]
        assert zone_of(home["lat"], home["lon"], zones) in {"central", "north", "south"}
    rotation_zones = {z for rotation in roster["rotations"] for z in rotation["zones"]}
    assert {zone.name for zone in zones} == rotation_zones


@pytest.mark.parametrize(
    "query",
    ["Union Station", "union station", "Denver Union Station", "1701 Wynkoop Street", "1701 Wynkoop St., Denver, CO"],
)
def test_the_gazetteer_matches_names_addresses_and_aliases_exactly_after_normalising(demo, query) -> None:
    location = demo.geocode(query)
    assert (location.latitude, location.longitude) == (39.7527, -105.0001)
    assert location.raw == {"address": "1701 Wynkoop St", "place": "Union Station"}


def test_the_gazetteer_never_guesses_but_suggests(demo) -> None:
    assert demo.geocode("1701 Wynkop St") is None
    assert demo.suggest("1701 Wynkop St")[0] == "1701 Wynkoop St"
    assert demo.geocode("Nowhere In Particular") is None
    assert normalise("5th Street & Main Avenue") == "5th st and main ave"


def test_a_gazetteer_with_bad_coordinates_is_refused(tmp_path) -> None:
    path = tmp_path / "g.json"
    path.write_text(json.dumps({"zones": [], "places": [{"name": "x", "lat": 95, "lon": 0}]}))
    with pytest.raises(ValueError, match="out of range"):
        load_gazetteer(path)


def test_a_v1_incident_reported_is_upcast_to_the_current_version() -> None:
    v1 = json.loads((ROOT / "schemas/events/incident.reported.v1.json").read_text())
    assert v1["properties"]["schema_version"]["const"] == 1
    incident_id = str(uuid4())
    payload = {
        "id": str(uuid4()),
        "type": "incident.reported",
        "schema_version": 1,
        "occurred_at": "2026-11-23T09:00:00Z",
        "incident_id": incident_id,
        "producer": "intake_gateway",
        "data": {
            "incident_id": incident_id,
            "short_code": "4821",
            "kind": "overdose",
            "priority": "P1",
            "needs": ["naloxone_carrier", "ems_now"],
            "guidance": ["Call 911 now."],
            "location": {"lat": 39.7431, "lon": -104.9876, "address": "5th St & Main"},
            "reporter": {"channel": "hotline"},
            "overdose": {"ems_called": False},
        },
    }
    event = decode_event(json.dumps(payload).encode())
    assert isinstance(event, IncidentReported) and event.schema_version == 3
    assert (event.data.zone, event.data.outside_service_area, event.data.possible_duplicate_of) == (None, False, [])
    assert event.data.reported_by is None  # unknown before v3: only directors and paged responders may change it
    assert event.data.location.address == "5th St & Main" and event.data.needs == ["naloxone_carrier", "ems_now"]


def test_a_v2_incident_reported_is_upcast_to_v3_without_a_reporter_credential() -> None:
    assert '"reported_by"' not in (ROOT / "schemas/events/incident.reported.v2.json").read_text()  # published as is
    incident_id = str(uuid4())
    payload = {
        "id": str(uuid4()),
        "type": "incident.reported",
        "schema_version": 2,
        "occurred_at": "2026-11-23T09:00:00Z",
        "incident_id": incident_id,
        "producer": "intake_gateway",
        "data": {
            "incident_id": incident_id,
            "short_code": "4821",
            "kind": "overdose",
            "priority": "P1",
            "needs": ["naloxone_carrier"],
            "guidance": ["Call 911 now."],
            "location": {"lat": 39.7431, "lon": -104.9876},
            "reporter": {"channel": "hotline"},
            "zone": "central",
        },
    }
    event = decode_event(json.dumps(payload).encode())
    assert isinstance(event, IncidentReported) and event.schema_version == 3
    assert (event.data.reported_by, event.data.zone) == (None, "central")
