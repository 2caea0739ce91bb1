"""The edge types: client times are bounded and read in UTC; numbers are JSON numbers; the stream still parses."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from uuid import uuid4

import pytest
from pydantic import BaseModel, ValidationError

from services.contract.events import OverdoseDetails, WithdrawalDetails, decode_event
from services.runtime.input_times import InputDate, InputDatetime, QueryDatetime, within_input_range


class Body(BaseModel):
    at: InputDatetime


class Query(BaseModel):
    at: QueryDatetime


class Day(BaseModel):
    on: InputDate


@pytest.mark.parametrize(
    ("text", "in_utc"),
    [
        ("1900-01-01T00:00:00Z", datetime(1900, 1, 1, tzinfo=UTC)),
        ("2200-12-31T23:59:59+00:00", datetime(2200, 12, 31, 23, 59, 59, tzinfo=UTC)),
        ("2026-11-23T23:30:00-07:00", datetime(2026, 11, 24, 6, 30, tzinfo=UTC)),
    ],
)
def test_times_within_the_range_come_back_in_utc(text: str, in_utc: datetime) -> None:
    value = Body.model_validate({"at": text}).at
    assert value == in_utc and value.utcoffset() == UTC.utcoffset(None)


@pytest.mark.parametrize(
    "text",
    [
        "0001-01-01T00:00:00+14:00",  # cannot be converted to UTC at all
        "9999-12-31T23:59:59-14:00",
        "1900-01-01T00:30:00+01:00",  # 1899 in UTC
        "2201-01-01T00:00:00Z",
        "2026-11-23T10:00:00",  # no offset
    ],
)
def test_times_outside_the_range_or_without_an_offset_are_refused(text: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Body.model_validate({"at": text})
    assert refused.value.errors()[0]["loc"] == ("at",)


def test_query_times_without_an_offset_are_read_as_utc_and_still_bounded() -> None:
    assert Query.model_validate({"at": "2026-11-23T10:00:00"}).at == datetime(2026, 11, 23, 10, tzinfo=UTC)
    with pytest.raises(ValidationError):
        Query.model_validate({"at": "0001-01-01T00:00:00"})


def test_dates_are_bounded_too() -> None:
    assert Day.model_validate({"on": "2026-11-02"}).on.year == 2026
    for text in ("0001-01-01", "9999-12-31"):
        with pytest.raises(ValidationError):
            Day.model_validate({"on": text})


def test_the_range_check_never_overflows() -> None:
    for moment in (datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)):
        with pytest.raises(ValueError, match="between the years"):
            within_input_range(moment)


@pytest.mark.parametrize("bad", [True, "2", 2.0])
def test_counts_are_json_integers(bad: object) -> None:
    with pytest.raises(ValidationError):
        OverdoseDetails.model_validate({"naloxone_doses_given": bad})
    with pytest.raises(ValidationError):
        OverdoseDetails.model_validate_json(json.dumps({"naloxone_doses_given": bad}))


def test_answers_are_json_booleans() -> None:
    with pytest.raises(ValidationError):
        WithdrawalDetails.model_validate({"substance": "alcohol", "seizure": "yes"})


def test_events_written_before_strict_types_still_parse() -> None:
    """As the gateway wrote them: JSON numbers (an integer latitude too) and booleans."""
    incident_id = uuid4()
    payload = {
        "id": str(uuid4()),
        "type": "incident.reported",
        "schema_version": 1,
        "occurred_at": "2026-11-23T09:00:00Z",
        "incident_id": str(incident_id),
        "producer": "intake_gateway",
        "data": {
            "incident_id": str(incident_id),
            "short_code": "4821",
            "kind": "overdose",
            "priority": "P1",
            "needs": ["naloxone_carrier"],
            "guidance": ["Call 911 now."],
            "location": {"lat": 40, "lon": -104.9876},
            "reporter": {"channel": "hotline"},
            "overdose": {"responsive": False, "breathing": True, "naloxone_doses_given": 2, "ems_called": False},
        },
    }
    event = decode_event(json.dumps(payload).encode())
    assert event.data.overdose.naloxone_doses_given == 2 and event.data.location.lat == 40.0
