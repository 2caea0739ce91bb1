"""A seeded city for load and chaos runs: a generated roster file and report scenes inside the demo zones.

Every responder has a daily rotation of their own, so all of them are on call at once across the three demo
zones (central, north, south); one supervisor and one clinical director top the ladder. Phones are in the
fictional 555-01xx-style range the sandbox accepts; names are generated, never real.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from uuid import UUID

ZONES = ("central", "north", "south")
# the union of the demo gazetteer's zones (deploy/demo/gazetteer.json)
LAT_RANGE = (39.63, 39.82)
LON_RANGE = (-105.05, -104.91)
FRONT_LINE_ROLES = ("clinician", "peer_coach", "nurse")
SUPERVISOR_PHONE = "+15559000001"
DIRECTOR_PHONE = "+15559000002"


def responder_phone(n: int) -> str:
    return f"+1555{7000000 + n:07d}"


def _uuid(kind: int, n: int) -> str:
    return str(UUID(int=(0xC17 << 112) | (kind << 64) | n))


def write_city_roster(path: Path, responders: int, seed: int = 7) -> Path:
    """Write a roster seed file (the shape of deploy/demo/roster.json) with ``responders`` front-line people."""
    rng = random.Random(seed)
    supervisor_id, director_id = _uuid(2, 1), _uuid(2, 2)
    people = [
        {
            "responder_id": supervisor_id,
            "name": "Generated Supervisor",
            "role": "supervisor",
            "phone": SUPERVISOR_PHONE,
            "home_base": {"lat": 39.7392, "lon": -104.9903},
            "skills": ["licensed_clinician"],
            "languages": ["en"],
        },
        {
            "responder_id": director_id,
            "name": "Generated Clinical Director",
            "role": "director",
            "phone": DIRECTOR_PHONE,
            "home_base": {"lat": 39.7350, "lon": -104.9850},
            "skills": ["licensed_clinician"],
            "languages": ["en"],
        },
    ]
    for n in range(responders):
        role = FRONT_LINE_ROLES[n % len(FRONT_LINE_ROLES)]
        skills = ["naloxone_carrier"] + (["licensed_clinician"] if role == "clinician" else [])
        people.append(
            {
                "responder_id": _uuid(1, n),
                "name": f"Generated Responder {n}",
                "role": role,
                "phone": responder_phone(n),
                "home_base": {"lat": round(rng.uniform(*LAT_RANGE), 5), "lon": round(rng.uniform(*LON_RANGE), 5)},
                "skills": skills,
                "languages": ["en"],
                "supervisor_id": supervisor_id,
            }
        )
    rotations = [
        {
            "rotation_id": _uuid(3, index),
            "name": f"Generated rotation {index}",
            "zones": list(ZONES),
            "time_zone": "America/Denver",
            "handoff_time": "08:00",
            "shift": "daily",
            "start_date": "2026-01-05",
            "participants": [person["responder_id"]],
        }
        for index, person in enumerate(people)
    ]
    path.write_text(json.dumps({"responders": people, "rotations": rotations}, indent=1))
    return path


def scenes(count: int, seed: int = 11) -> list[tuple[float, float]]:
    """Report locations spread over the zones, reproducible from ``seed``."""
    rng = random.Random(seed)
    return [(round(rng.uniform(*LAT_RANGE), 5), round(rng.uniform(*LON_RANGE), 5)) for _ in range(count)]


def overdose_report(scene: tuple[float, float], n: int) -> dict:
    """A P1 report at ``scene`` (EMS already called, so no 911 prompt); generated, PHI-free."""
    return {
        "kind": "overdose",
        "location": {"lat": scene[0], "lon": scene[1], "address": f"{100 + n} Generated St"},
        "reporter": {"channel": "hotline"},
        "details": {"responsive": False, "breathing": True, "ems_called": True},
    }
