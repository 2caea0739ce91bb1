"""The dispatch contract's changes read old events: dispatch.unfilled v3 only adds shortfalls, the alarm events
validate against their published schemas, and every service asks for a message through one builder."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from uuid import uuid4

import jsonschema
import pytest
from pydantic import ValidationError

from services.contract import schemagen
from services.contract.events import (
    AlarmRecipient,
    DispatchAlarmRaised,
    DispatchAlarmRaisedData,
    DispatchUnfilled,
    DispatchUnfilledData,
    decode_event,
    new_event,
    notification_request,
)
from tests.factories import T0

ROOT = Path(__file__).resolve().parents[2]


def unfilled(**data: object) -> dict:
    event = new_event(
        DispatchUnfilled,
        DispatchUnfilledData(incident_id=uuid4(), reason="nobody is on call", **data),
        event_id=uuid4(),
        occurred_at=T0,
        producer="dispatcher",
    )
    return json.loads(event.to_json())


@pytest.mark.parametrize("version", [1, 2, 3])
def test_an_unfilled_event_published_before_v3_reads_the_same(version: int) -> None:
    published = unfilled(shortfalls=["nobody_on_call"], step=2, rung="candidates")
    published["schema_version"] = version
    if version == 1:
        published["data"] = {k: published["data"][k] for k in ("incident_id", "reason", "shortfalls")}
    v2_schema = json.loads((ROOT / "schemas/events/dispatch.unfilled.v2.json").read_text())
    if version == 2:
        jsonschema.validate(published, v2_schema)  # what v2 consumers were promised still holds for it

    event = decode_event(json.dumps(published).encode())

    assert event.schema_version == DispatchUnfilled.VERSION and event.data.shortfalls == ["nobody_on_call"]


@pytest.mark.parametrize("shortfall", ["everyone_qualified_already_paged", "peer_steps_exhausted"])
def test_v3_adds_shortfalls_that_say_what_happened(shortfall: str) -> None:
    published = unfilled(shortfalls=[shortfall])
    schema = json.loads((ROOT / "schemas" / schemagen.schema_path("dispatch.unfilled", 3)).read_text())
    jsonschema.validate({**published, "schema_version": 3}, schema)
    assert decode_event(json.dumps(published).encode()).data.shortfalls == [shortfall]


def test_the_alarm_event_round_trips_and_matches_its_schema() -> None:
    data = DispatchAlarmRaisedData(
        incident_id=uuid4(),
        priority="P1",
        repeat=2,
        minutes_since_report=8,
        notified=[AlarmRecipient(responder_id=uuid4(), role="director")],
        voice=True,
        next_at=T0,
    )
    event = new_event(DispatchAlarmRaised, data, event_id=uuid4(), occurred_at=T0, producer="dispatcher")
    schema = json.loads((ROOT / "schemas" / schemagen.schema_path("dispatch.alarm_raised", 1)).read_text())
    jsonschema.validate(json.loads(event.to_json()), schema)
    assert decode_event(event.to_json()) == event


def test_the_one_notification_builder_refuses_what_could_never_be_sent_and_falls_back_to_english() -> None:
    common = {"notification_id": uuid4(), "to": "+15550190001", "priority": "P2", "occurred_at": T0}
    request = notification_request(
        **common,
        language="fr",
        template="task_due",
        params={"task_code": "7400", "due_in_hours": 3, "incident_code": "4821"},
        producer="projections",
        incident_id=None,
    )
    assert request.id == request.data.notification_id and request.data.language == "en"
    with pytest.raises(ValidationError):
        notification_request(
            **common, language="en", template="task_due", params={"note": "x"}, producer="x", incident_id=None
        )


def test_only_the_contract_builds_a_notification_request() -> None:
    """One builder (services/contract/messaging.py ``notification_request``) for the dispatcher and the desk."""
    builders = []
    for path in (ROOT / "services").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "NotificationRequestedData":
                builders.append(path.relative_to(ROOT).as_posix())
    assert builders == ["services/contract/messaging.py"]
