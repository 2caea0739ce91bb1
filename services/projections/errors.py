"""What the projections' use cases raise instead of an answer, and the HTTP status each becomes (bootstrap's
``install_record_handlers`` maps them: a problem document on the API, a page in the workspace)."""

from __future__ import annotations

from services.runtime.credentials import Principal


class UnknownIncident(LookupError):
    """No incident with this id is known here (yet) (404, to directors only)."""


class UnknownTask(LookupError):
    """No follow-up task with this id is known here (yet) (404, to directors only)."""


class NotPermitted(PermissionError):
    """The caller's role or involvement does not admit this (403)."""


def record_refused(who: Principal) -> NotPermitted:
    """The one answer to a refused read of a record, whether it exists or not."""
    return NotPermitted(f"{who.subject} may not read this record")


class Refused(Exception):
    """The record's state does not allow this change now (409)."""


class InvalidForm(Refused):
    """A form value is not right (``field`` names it): nothing was recorded; the form is shown again as typed
    (422 on the page, 409 like any refusal on the API)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class OutcomeNotConfirmed(Exception):
    """The change was sent to the stream but not confirmed before the deadline: it may or may not be recorded
    (504)."""


class StreamUnavailable(Exception):
    """The CRISIS stream did not accept an event, and never will (503)."""
