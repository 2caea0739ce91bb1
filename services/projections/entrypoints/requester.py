"""The workspace API's ``Requester``: the runtime's one idempotency scheme (``services/runtime/idempotency.py``)
with the projections' refusals (``errors.py``) as problem documents.

A command route (follow-up and documentation commands) answers through ``answer_command``: with an
Idempotency-Key, a retry gets the first answer again (``Idempotent-Replayed: true``) and records nothing twice,
for ``CRISIS_IDEMPOTENCY_RETENTION_DAYS``; without one, each request records anew (the read models then refuse
what a state no longer allows, e.g. completing a completed task, with a 409).
"""

# no "from __future__ import annotations": FastAPI must see annotations as objects
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.projections.errors import (
    NotPermitted,
    OutcomeNotConfirmed,
    Refused,
    StreamUnavailable,
    UnknownIncident,
    UnknownTask,
)
from services.runtime import idempotency
from services.runtime.credentials import Principal
from services.runtime.idempotency import Answer
from services.runtime.problems import Problem
from services.runtime.request_ids import RequestIds

Change = Callable[[Principal, RequestIds], Awaitable[int]]
"""A command as the caller, recording under the given ids; returns the event's stream sequence."""


class WorkspaceRequester(idempotency.Requester):
    def refusal(self, exc: Exception) -> Problem | None:
        if isinstance(exc, UnknownIncident):
            return Problem(404, f"no incident {exc} is known here (yet)")
        if isinstance(exc, UnknownTask):
            return Problem(404, f"no follow-up task {exc} is known here (yet)")
        if isinstance(exc, NotPermitted):
            return Problem(403, str(exc))
        if isinstance(exc, Refused):
            return Problem(409, str(exc))
        if isinstance(exc, StreamUnavailable):
            return Problem(503, str(exc), recorded=False)
        if isinstance(exc, OutcomeNotConfirmed):
            return Problem(504, str(exc), recorded="unknown")
        return None


async def answer_command(
    request: Request,
    principal: Principal,
    idempotency_key: str | None,
    body: BaseModel | dict[str, Any],
    change: Change,
) -> JSONResponse:
    """Run ``change`` once per Idempotency-Key and answer 202 with the stream sequence it was recorded at."""

    async def use_case(ids: RequestIds) -> Answer:
        return Answer(202, {"stream_sequence": await change(principal, ids)})

    return await WorkspaceRequester(principal, idempotency_key, request).answer_once(body, use_case)
