"""decode_event reads a current-version payload in one pass (pydantic, straight from the bytes) and anything else
through the checked path (json, upcast, validate). Both must give the same event, and a refusal the same reason."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from services.contract.events import EVENT_TYPES, UnreadableMessage, decode_event, upcast
from tests.integration.test_projections import T0, Story, team


def checked_path(payload: bytes):
    raw = upcast(json.loads(payload))
    return EVENT_TYPES[raw["type"]].model_validate(raw)


def history() -> list:
    people = team()
    events = [person.registered() for person in people.values()]
    for index, person in enumerate(people.values()):
        story = Story(start=T0 + timedelta(minutes=index), code=f"{3000 + index}")
        events += story.full_response(person, ack=1, en_route=3, arrive=20, done=60)
    return events


def test_current_payloads_decode_to_what_the_checked_path_gives() -> None:
    events = history()
    assert len({e.type for e in events}) >= 8
    for event in events:
        decoded = decode_event(event.to_json())
        assert type(decoded) is EVENT_TYPES[event.type]
        assert decoded == event == checked_path(event.to_json())


def test_an_old_version_still_goes_through_its_upcaster() -> None:
    offered = next(e for e in history() if e.type == "dispatch.en_route")
    raw = json.loads(offered.to_json())
    raw["schema_version"] = 1
    payload = json.dumps(raw).encode()
    decoded = decode_event(payload)
    assert decoded.schema_version == type(decoded).VERSION > 1
    assert decoded == checked_path(payload)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "not JSON"),
        (b'"incident.reported"', "not a JSON object"),
        (b'{"type": 7}', "unknown event type"),
        (b'{"type": "incident.reported", "schema_version": 99}', "invalid incident.reported"),
    ],
)
def test_a_refusal_names_the_same_reason_as_before(payload: bytes, reason: str) -> None:
    with pytest.raises(UnreadableMessage, match=reason):
        decode_event(payload)
