"""Log lines are one JSON object each and name the incident being handled, with no PHI added by the formatter."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from uuid import uuid4

import pytest

from services.runtime.observability import JsonLogFormatter, bind_log_fields, event_log_fields, log_fields
from tests import factories


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonLogFormatter("dispatcher"))
    logger = logging.getLogger(f"tests.json_logs.{uuid4().hex}")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, out
    logger.removeHandler(handler)


def lines(out: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_line_outside_any_message_has_the_basic_fields_only(captured) -> None:
    logger, out = captured
    logger.warning("seq %s failed (%s), will retry", 42, "OperationalError")
    [line] = lines(out)
    assert set(line) == {"ts", "level", "service", "logger", "message"}
    assert line["level"] == "WARNING" and line["service"] == "dispatcher" and line["logger"] == logger.name
    assert line["message"] == "seq 42 failed (OperationalError), will retry"
    assert line["ts"].endswith("+00:00")


def test_lines_written_while_an_event_is_handled_carry_its_ids_and_stop_after(captured) -> None:
    logger, out = captured
    event = factories.incident_reported()
    with event_log_fields(event):
        logger.info("handling")
    logger.info("after")
    handling, after = lines(out)
    assert handling["incident_id"] == str(event.incident_id)
    assert handling["correlation_id"] == str(event.correlation_id)
    assert handling["event_type"] == "incident.reported" and handling["event_id"] == str(event.id)
    assert "incident_id" not in after and "event_type" not in after


async def test_threads_started_from_the_handler_inherit_the_ids(captured) -> None:
    logger, out = captured
    incident, correlation = uuid4(), uuid4()
    with log_fields(incident_id=incident, correlation_id=correlation):
        await asyncio.to_thread(logger.info, "in the store thread")
    [line] = lines(out)
    assert (line["incident_id"], line["correlation_id"]) == (str(incident), str(correlation))


def test_an_id_learnt_midway_is_bound_until_the_block_ends(captured) -> None:
    logger, out = captured
    incident = uuid4()
    with log_fields(incident_id=None, correlation_id=None):
        logger.info("before the report is accepted")
        bind_log_fields(incident_id=incident, correlation_id=incident)
        logger.info("accepted")
    logger.info("next request")
    before, accepted, following = lines(out)
    assert "incident_id" not in before
    assert accepted["incident_id"] == str(incident) and accepted["correlation_id"] == str(incident)
    assert "incident_id" not in following


def test_exceptions_stay_inside_the_one_json_line(captured) -> None:
    logger, out = captured
    try:
        raise ValueError("store gone")
    except ValueError:
        logger.exception("seq 7 raised")
    assert len(out.getvalue().splitlines()) == 1
    [line] = lines(out)
    assert line["level"] == "ERROR" and "ValueError: store gone" in line["exception"]
