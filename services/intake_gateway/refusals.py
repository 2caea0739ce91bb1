"""Why a gateway use case refuses a command. Each refusal is one HTTP answer (``entrypoints/idempotency.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

IncidentStatus = Literal["open", "cancelled", "completed"]


class InvalidInput(Exception):
    """Input that breaks a rule: answered 422, naming each field (a path in the request body)."""

    def __init__(self, errors: Sequence[tuple[str, str]], **extensions: object) -> None:
        super().__init__("; ".join(f"{f}: {m}" for f, m in errors))
        self.errors = list(errors)
        self.extensions = extensions


class IncidentNotFound(Exception):
    """No report with this id reached the gateway's incident state (404)."""


class NotYours(Exception):
    """The caller has no relation to the incident that lets them change it, or the incident is not known to
    them (answered 403 either way, so that a stranger cannot tell which ids exist); the refusal is audited."""


class IncidentClosed(Exception):
    """The incident was cancelled or completed: no more updates (409)."""

    def __init__(self, status: IncidentStatus) -> None:
        super().__init__(f"the incident is {status}")
        self.status = status
