"""Bearer-token authentication and role checks for the gateway's routes.

Every route but ``/healthz`` and the Twilio webhooks (which are authenticated by their signature) declares
``Depends(require_role(...))``; a test walks the route table and fails for any route that does not.

FastAPI reads a request's body before it runs the route's dependencies, so ``bearer_before_body`` (the
admission of ``services.runtime.body_limit``) authenticates the caller of such a route first: without a known
token the answer is 401 and no byte of the body is read.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from uuid import uuid4

from fastapi import Depends, FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import Scope

from services.contract.events import AccessRefused, AccessRefusedData, new_event
from services.runtime.credentials import AccessRole, CredentialStore, Principal
from services.runtime.problems import PROBLEM_JSON, ProblemDocument, problem_response
from services.runtime.stream import ANSWER_BY

log = logging.getLogger(__name__)

# auto_error=False: a missing header must become our own 401 problem document, not FastAPI's default
_bearer = HTTPBearer(auto_error=False, description="a token from the credentials file (`make run` prints demo ones)")

AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ProblemDocument, "content": {PROBLEM_JSON: {}}, "description": "missing or unknown bearer token"},
    403: {"model": ProblemDocument, "content": {PROBLEM_JSON: {}}, "description": "role not allowed here"},
}
"""Add to a route's ``responses`` so the OpenAPI document lists the auth answers."""


class NotAuthenticated(HTTPException):
    """No usable bearer token: answered 401 with ``WWW-Authenticate: Bearer`` (RFC 6750).

    An ``HTTPException``, so that raised while a body is being read it reaches its handler unchanged."""

    def __init__(self, detail: str, error: str | None = None) -> None:
        super().__init__(401, detail)
        self.error = error


class NotAllowed(Exception):
    """A known caller whose role (or identity) does not admit this request: answered 403, and entered in the
    audit log as denied (an ``access.refused`` event) when the caller is named."""

    def __init__(self, detail: str, principal: Principal | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.principal = principal


AUDIT_WAIT_SECONDS = 1.0  # a refusal's audit entry may not hold its 403 back longer than this


async def audit_refusal(request: Request, principal: Principal) -> None:
    """Append the refusal for the audit log; best effort (the refusal stands either way, a failure is logged)."""
    publish = getattr(request.app.state, "publish", None)
    if publish is None:
        return
    incident_id = request.path_params.get("incident_id")
    record = ("incident", str(incident_id)) if incident_id else ("route", request.url.path)
    route = request.scope.get("route")  # the route's template (no ids in the action name)
    data = AccessRefusedData(
        subject=principal.subject,
        role=principal.role.value,
        responder_id=principal.responder_id,
        action=f"{request.method} {route.path if route else request.url.path}"[:100],
        record_type=record[0],
        record_id=record[1][:100],
    )
    clock = request.app.state.clock
    event = new_event(AccessRefused, data, event_id=uuid4(), occurred_at=clock.now(), producer="intake_gateway")
    answer_by = ANSWER_BY.set(asyncio.get_running_loop().time() + AUDIT_WAIT_SECONDS)
    try:
        await publish(event)
    except Exception as exc:  # noqa: BLE001 - logged; the 403 is the answer whatever happens here
        log.warning("could not record a refusal for the audit log: %s", type(exc).__name__)
    finally:
        ANSWER_BY.reset(answer_by)


def install_auth(app: FastAPI, credentials: CredentialStore) -> None:
    """Put ``credentials`` on ``app.state`` and answer auth failures with problem documents."""
    app.state.credentials = credentials

    @app.exception_handler(NotAuthenticated)
    async def on_not_authenticated(request: Request, exc: NotAuthenticated) -> JSONResponse:
        response = problem_response(401, exc.detail, instance=request.url.path)
        challenge = 'Bearer realm="crisis"'
        if exc.error:
            challenge += f', error="{exc.error}"'
        response.headers["WWW-Authenticate"] = challenge
        return response

    @app.exception_handler(NotAllowed)
    async def on_not_allowed(request: Request, exc: NotAllowed) -> JSONResponse:
        if exc.principal is not None:
            await audit_refusal(request, exc.principal)
        return problem_response(403, exc.detail, instance=request.url.path)


RoleDependency = Callable[..., Awaitable[Principal]]


def require_role(*roles: AccessRole) -> RoleDependency:
    """A dependency that returns the caller's Principal if its role is one of ``roles``.

    Missing or unknown token: 401. Known token, other role: 403. The returned callable carries
    ``allowed_roles`` so tests (and the OpenAPI description) can see what each route admits.
    """
    if not roles:
        raise ValueError("require_role needs at least one role")
    allowed = frozenset(roles)

    async def authenticated(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
    ) -> Principal:
        token = credentials.credentials if credentials is not None else None
        principal = authenticate(request.app.state.credentials, token, request.url.path)
        if principal.role not in allowed:
            raise NotAllowed(
                f"role {principal.role.value!r} may not do this; allowed: {', '.join(sorted(allowed))}", principal
            )
        return principal

    authenticated.allowed_roles = allowed  # type: ignore[attr-defined]
    return authenticated


def allowed_roles_of(dependency: Any) -> frozenset[AccessRole] | None:
    """The roles a ``require_role`` dependency admits, or None for any other callable."""
    return getattr(dependency, "allowed_roles", None)


def authenticate(credentials: CredentialStore, token: str | None, path: str) -> Principal:
    """The principal of a bearer ``token``; NotAuthenticated (401) when there is none or it is not known."""
    if not token:
        raise NotAuthenticated("send Authorization: Bearer <token>")
    principal = credentials.verify_token(token)
    if principal is None:
        log.info("rejected an unknown bearer token on %s", path)
        raise NotAuthenticated("the bearer token is not known", error="invalid_token")
    return principal


def bearer_before_body(scope: Scope) -> None:
    """Admission for ``RequestBodyLimit``: on a route that needs a bearer token, raises NotAuthenticated (401)
    before the body is read when the request carries no known token. Roles are checked later, by the route."""
    route = scope.get("route")
    if not isinstance(route, APIRoute) or not _needs_bearer(route.dependant):
        return
    scheme, token = get_authorization_scheme_param(Headers(scope=scope).get("authorization"))
    authenticate(scope["app"].state.credentials, token if scheme.lower() == "bearer" else None, scope["path"])


def _needs_bearer(dependant: Dependant) -> bool:
    return any(allowed_roles_of(d.call) is not None or _needs_bearer(d) for d in dependant.dependencies)
