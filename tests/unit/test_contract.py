"""The event contract: schema files and models agree, and bad payloads are named, not processed."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from services.contract import schemagen
from services.contract.events import EVENT_TYPES, UPCASTERS, UnreadableMessage, decode_event
from tests import factories

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


@pytest.mark.parametrize("relative", sorted(schemagen.generated_files()))
def test_schema_file_matches_its_model(relative: str) -> None:
    on_disk = json.loads((SCHEMAS / relative).read_text())
    assert on_disk == json.loads(schemagen.render(schemagen.generated_files()[relative])), (
        f"schemas/{relative} is stale: run `make schemas` (and add a schema_version if the type is published)"
    )


def test_every_event_type_has_a_schema_file_and_old_versions_stay_published() -> None:
    files = {p.relative_to(SCHEMAS).as_posix() for p in (SCHEMAS / "events").glob("*.json")}
    current = {schemagen.schema_path(t, c.VERSION) for t, c in EVENT_TYPES.items()}
    older = {schemagen.schema_path(t, v) for t, c in EVENT_TYPES.items() for v in range(1, c.VERSION)}
    assert files == current | older


def test_every_older_version_has_an_upcaster() -> None:
    for event_type, event_class in EVENT_TYPES.items():
        for version in range(1, event_class.VERSION):
            assert (event_type, version) in UPCASTERS, f"{event_type} v{version} has no upcaster"


def validator_for(event_type: str) -> jsonschema.Draft202012Validator:
    version = EVENT_TYPES[event_type].VERSION
    schema = json.loads((SCHEMAS / schemagen.schema_path(event_type, version)).read_text())
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def test_model_output_validates_against_the_schema_and_round_trips() -> None:
    phone = factories.fake_phone()
    for event in (factories.incident_reported(), factories.sms_received(phone, "Y 4821")):
        payload = json.loads(event.to_json())
        validator_for(event.type).validate(payload)
        validator_for(event.type).validate(json.loads(json.dumps(payload)))
        assert decode_event(event.to_json()) == event


def test_schema_rejects_what_the_model_rejects() -> None:
    payload = json.loads(factories.incident_reported().to_json())
    payload["data"]["location"]["lat"] = 123.0
    with pytest.raises(jsonschema.ValidationError):
        validator_for("incident.reported").validate(payload)
    with pytest.raises(UnreadableMessage, match="lat"):
        decode_event(json.dumps(payload).encode())


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"type": "incident.exploded"}', "unknown event type"),
        (b'{"type": "sms.received", "schema_version": 1}', "invalid sms.received"),
    ],
)
def test_unreadable_payloads_say_why(payload: bytes, reason: str) -> None:
    with pytest.raises(UnreadableMessage, match=reason):
        decode_event(payload)


def test_naive_timestamps_are_refused() -> None:
    payload = json.loads(factories.incident_reported().to_json())
    payload["occurred_at"] = "2026-11-23T09:00:00"
    with pytest.raises(UnreadableMessage, match="UTC"):
        decode_event(json.dumps(payload).encode())
