"""Log lines as JSON objects, one a line, from every library a service runs (FastStream, uvicorn, warnings,
uncaught exceptions): ``configure_logging(service)`` at the start of each service's ``__main__``.

While a stream message or an incident request is handled, every line written (in that task, or in a thread it
started with ``asyncio.to_thread``) carries its incident id, correlation id and event type, set through
:func:`log_fields`. Never a phone number, a name or a location.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import threading
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from services.contract.events import Envelope

_LOG_FIELDS: ContextVar[Mapping[str, str] | None] = ContextVar("crisis_log_fields", default=None)


@contextlib.contextmanager
def log_fields(**fields: object) -> Iterator[None]:
    """Add ``fields`` (None values left out) to every log line written inside the block, in this context."""
    current = _LOG_FIELDS.get() or {}
    token = _LOG_FIELDS.set({**current, **{k: str(v) for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _LOG_FIELDS.reset(token)


def bind_log_fields(**fields: object) -> None:
    """Add ``fields`` to the log lines of the rest of the enclosing :func:`log_fields` block (which undoes it).

    For ids learnt midway, such as a new incident's id once the report is accepted.
    """
    current = _LOG_FIELDS.get() or {}
    _LOG_FIELDS.set({**current, **{k: str(v) for k, v in fields.items() if v is not None}})


def event_log_fields(event: Envelope) -> contextlib.AbstractContextManager[None]:
    """Log fields for handling one stream event: its incident, correlation id, type and id."""
    return log_fields(
        incident_id=event.incident_id,
        correlation_id=event.correlation_id,
        event_type=event.type,
        event_id=event.id,
    )


def current_log_fields() -> Mapping[str, str]:
    return _LOG_FIELDS.get() or {}


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: ts, level, service, logger, message, the context's ids, and any exception."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(current_log_fields())
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(service: str) -> None:
    """Log INFO and above to stderr as one JSON object per line, the lines of libraries too."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLogFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    # the SDK logs request headers and bodies (phone numbers, message text) at INFO
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
    json_logs_only()


def json_logs_only() -> None:
    """Make the lines other code writes go through the root logger's handler too (the JSON one), after
    ``configure_logging`` installed it:

    - faststream's own logger writes colour-coded text through a handler of its own and does not propagate;
    - Python warnings and uncaught exceptions (in the main thread or another) are printed to stderr as text.

    uvicorn logs through the root logger when it is run with ``log_config=None`` (every service does so), and
    a FastStream broker when it is given a logger (``make_broker`` does so).
    """
    for name in ("faststream", "faststream.access", "faststream.access.nats"):
        library = logging.getLogger(name)
        for handler in list(library.handlers):
            library.removeHandler(handler)
        library.propagate = True
    logging.captureWarnings(True)
    uncaught = logging.getLogger("uncaught")

    def log_exception(kind: type[BaseException], value: BaseException, tb: Any) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, value, tb)
            return
        uncaught.critical("uncaught %s", kind.__name__, exc_info=(kind, value, tb))

    def log_thread_exception(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        thread = args.thread.name if args.thread else "?"
        uncaught.critical(
            "uncaught %s in thread %s",
            args.exc_type.__name__,
            thread,
            exc_info=(args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback),
        )

    sys.excepthook = log_exception
    threading.excepthook = log_thread_exception
