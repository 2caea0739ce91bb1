"""Writes the JSON Schemas in schemas/ from the contract models (`make schemas`).

The files are the published contract; tests fail when they and the models disagree, so a model change
is always a visible schema change (and, for a published type, a new schema_version).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from services.contract.events import EVENT_TYPES, Envelope, subject_for

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def schema_path(event_type: str, version: int) -> str:
    return f"events/{event_type}.v{version}.json"


def event_schema(event_class: type[Envelope]) -> dict[str, Any]:
    schema = event_class.model_json_schema(mode="serialization")
    schema["$schema"] = SCHEMA_DIALECT
    schema["$id"] = f"https://crisis-dispatch.example.org/schemas/{schema_path(event_class.TYPE, event_class.VERSION)}"
    schema["title"] = event_class.TYPE
    return schema


def envelope_schema() -> dict[str, Any]:
    schema = Envelope.model_json_schema(mode="serialization")
    schema["$schema"] = SCHEMA_DIALECT
    schema["$id"] = "https://crisis-dispatch.example.org/schemas/envelope.v1.json"
    schema["title"] = "envelope"
    return schema


def asyncapi_document() -> dict[str, Any]:
    channels, operations, messages = {}, {}, {}
    for event_type, event_class in EVENT_TYPES.items():
        key = event_type.replace(".", "_")
        messages[key] = {
            "name": event_type,
            "contentType": "application/json",
            "headers": {
                "type": "object",
                "properties": {"Nats-Msg-Id": {"type": "string", "format": "uuid"}},
            },
            "payload": {"$ref": f"./{schema_path(event_type, event_class.VERSION)}"},
        }
        channels[key] = {
            "address": subject_for(event_type),
            "messages": {key: {"$ref": f"#/components/messages/{key}"}},
        }
        if event_class.SUBJECT_SUFFIXES:  # published on sub-subjects (stored before they existed: on the address)
            channels[key]["address"] = f"{subject_for(event_type)}.{{outcome}}"
            channels[key]["parameters"] = {
                "outcome": {"enum": list(event_class.SUBJECT_SUFFIXES), "description": event_class.__doc__ or ""}
            }
        operations[f"publish_{key}"] = {"action": "send", "channel": {"$ref": f"#/channels/{key}"}}
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "CRISIS event stream",
            "version": "1.0.0",
            "description": (
                "Every event on the NATS JetStream stream CRISIS (subjects crisis.>). With CRISIS_PARTITIONS = P > 1,"
                " an event about an incident is on crisis.p<k>of<P>.<address without crisis.> (k: the incident id"
                " modulo P), every other event on its address."
            ),
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def generated_files() -> dict[str, dict[str, Any]]:
    files = {"envelope.v1.json": envelope_schema(), "asyncapi.json": asyncapi_document()}
    for event_class in EVENT_TYPES.values():
        files[schema_path(event_class.TYPE, event_class.VERSION)] = event_schema(event_class)
    return files


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def main(root: Path = Path("schemas")) -> None:
    for relative, document in generated_files().items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(document))
        print("wrote", path, file=sys.stderr)


if __name__ == "__main__":
    main()
