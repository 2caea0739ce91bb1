"""Log lines are one JSON object each and name the incident being handled, with no PHI added by the formatter;
every line a service process or the embedded nats-server writes to var/logs is one JSON object."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest

from services.runtime.json_logs import JsonLogFormatter, bind_log_fields, event_log_fields, log_fields
from services.runtime.launcher import json_line
from services.runtime.nats_server import json_log_line
from tests import factories

ROOT = Path(__file__).resolve().parents[2]


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


# ---- every line a service process writes is JSON: faststream's, warnings, uncaught exceptions -------------------

SERVICE_PROCESS = """
import asyncio, sys, tempfile, threading, warnings
from pathlib import Path

from faststream.nats import JStream, PullSub

from services.runtime.json_logs import configure_logging
from services.runtime.nats_connection import make_broker
from services.runtime.nats_server import EmbeddedNatsServer
from services.runtime.settings import RuntimeSettings

configure_logging("generated-service")


async def consume_one(url: str, name: str) -> None:
    broker = make_broker(RuntimeSettings(nats_url=url))

    @broker.subscriber(f"{name}.>", stream=JStream(name, subjects=[f"{name}.>"]), durable=name,
                       pull_sub=PullSub(batch_size=1, timeout=1.0))
    async def handle(body: str) -> None:
        handled.set()

    handled = asyncio.Event()
    await broker.start()
    await broker.publish("generated", f"{name}.one")
    await asyncio.wait_for(handled.wait(), 30)
    await broker.stop()  # faststream logs its subscriber task's end


server = EmbeddedNatsServer(Path(tempfile.mkdtemp()))
server.start()
try:
    asyncio.run(consume_one(server.url, sys.argv[1]))
finally:
    server.stop()
warnings.warn("a generated warning")
thread = threading.Thread(target=lambda: 1 / 0, name="generated-thread")
thread.start()
thread.join()
raise RuntimeError("a generated crash")
"""


def test_every_line_a_service_process_writes_is_one_json_object_without_colour_codes(tmp_path) -> None:
    script = tmp_path / "service_process.py"
    script.write_text(SERVICE_PROCESS)
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(script), f"GENERATED_{uuid4().hex[:8].upper()}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "\x1b" not in output
    parsed = [json.loads(line) for line in output.splitlines()]
    assert all(isinstance(line, dict) and line["service"] == "generated-service" for line in parsed), output
    by_logger = {line["logger"]: line for line in parsed}
    assert "faststream.access.nats" in by_logger, output
    assert "a generated warning" in by_logger["py.warnings"]["message"]
    crashes = [line for line in parsed if line["logger"] == "uncaught"]
    assert [line["level"] for line in crashes] == ["CRITICAL", "CRITICAL"]
    assert "ZeroDivisionError" in crashes[0]["exception"] and "generated-thread" in crashes[0]["message"]
    assert "RuntimeError: a generated crash" in crashes[1]["exception"]


def test_nats_server_lines_become_json_objects_of_the_same_shape() -> None:
    line = json.loads(json_log_line("[4242] 2026/01/02 03:04:05.678901 [WRN] JetStream resource limits\n"))
    assert (line["level"], line["service"], line["logger"], line["message"]) == (
        "WARNING",
        "nats-server",
        "nats-server",
        "JetStream resource limits",
    )
    assert line["ts"].endswith("+00:00")
    assert json.loads(json_log_line("something else\n"))["message"] == "something else"


def test_the_launcher_keeps_json_lines_and_wraps_anything_else_without_colour_codes() -> None:
    service_line = json.dumps({"ts": "2026-01-02T03:04:05.678+00:00", "level": "INFO", "message": "ready"})
    assert json_line(service_line + "\n", "dispatcher") == service_line
    wrapped = json.loads(json_line("2026-01-02 03:04:05 \x1b[32mINFO\x1b[0m - Traceback (most recent call last):", "x"))
    assert wrapped["message"] == "2026-01-02 03:04:05 INFO - Traceback (most recent call last):"
    assert (wrapped["service"], wrapped["logger"]) == ("x", "output")
    assert "\x1b" not in json_line('{"message": "\x1b[31mred\x1b[0m"}', "x")
