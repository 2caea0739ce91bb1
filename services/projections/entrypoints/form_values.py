"""Reading workspace form and query values: a value the workspace cannot use is an ``InvalidFormValue`` naming
its field, answered 422 (a form that can be shown again keeps what was typed: see ``documentation_form``)."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

from pydantic import ValidationError

from services.runtime.input_times import within_input_range


class InvalidFormValue(Exception):
    """A form or query value the workspace cannot use: answered 422 with a page naming the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def form_time(text: str | None, field: str, zone: tzinfo = UTC) -> datetime | None:
    """A datetime-local value (no zone) read in ``zone`` (UTC unless given; one with an offset keeps it); None when
    empty; InvalidFormValue naming ``field`` when it is not a time, or not within the years every service accepts
    (``services.runtime.input_times``)."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
        return within_input_range(moment if moment.utcoffset() is not None else moment.replace(tzinfo=zone))
    except ValueError as exc:
        raise InvalidFormValue(field, str(exc)) from None


def refusal_reason(exc: Exception) -> str:
    """A refusal in a sentence: a validation error by its first field and message, anything else as it says."""
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where, said = ".".join(str(part) for part in first["loc"]), first["msg"].removeprefix("Value error, ")
        return f"{where}: {said}" if where else said
    return str(exc)
