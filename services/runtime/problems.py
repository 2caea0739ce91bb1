"""RFC 9457 problem details for every HTTP error, so clients never see a bare 500 or an HTML page."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.runtime.stream import NotRecorded, OutcomeUnknown

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger(__name__)


class Problem(Exception):
    """Raise from a route to answer with a problem document."""

    def __init__(self, status: int, detail: str, *, title: str | None = None, **extensions: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title or HTTPStatus(status).phrase
        self.detail = detail
        self.extensions = extensions


def problem_response(
    status: int, detail: str, *, title: str | None = None, instance: str | None = None, **extensions: Any
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update(extensions)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


NOT_RECORDED_DETAIL = "nothing was recorded and nothing will be: retry; call 911 if a life is at risk"
UNKNOWN_OUTCOME_DETAIL = (
    "the stream did not confirm in time whether this was recorded. Retry with the same Idempotency-Key within "
    "5 minutes: it is then recorded exactly once. Without a key, look up the record named here before sending "
    "it again; call 911 if a life is at risk"
)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(NotRecorded)
    async def on_not_recorded(request: Request, exc: NotRecorded) -> JSONResponse:
        return problem_response(503, NOT_RECORDED_DETAIL, instance=request.url.path, recorded=False)

    @app.exception_handler(OutcomeUnknown)
    async def on_outcome_unknown(request: Request, exc: OutcomeUnknown) -> JSONResponse:
        extensions: dict[str, Any] = {"recorded": "unknown", "event_id": str(exc.event_id)}
        if exc.incident_id is not None:
            extensions["incident_id"] = str(exc.incident_id)
        return problem_response(504, UNKNOWN_OUTCOME_DETAIL, instance=request.url.path, **extensions)

    @app.exception_handler(Problem)
    async def on_problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc.status, exc.detail, title=exc.title, instance=request.url.path, **exc.extensions)

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(exc.status_code, str(exc.detail), instance=request.url.path)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()]
        fields = ", ".join(e["field"] for e in errors)
        return problem_response(422, f"invalid request: {fields}", instance=request.url.path, errors=errors)

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        return problem_response(500, "unexpected error; it has been logged", instance=request.url.path)


class ProblemDocument(BaseModel):
    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ProblemDocument, "content": {PROBLEM_JSON: {}}}
    for status in (400, 403, 404, 409, 413, 422, 503, 504)
}
