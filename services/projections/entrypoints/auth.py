"""Who is calling the projections service: a bearer token (API clients) or a session cookie (the workspace).
Both resolve to a ``Principal`` from the credentials file, checked on every request (a revoked credential, or a
session that signed out, is refused at once); roles are checked by the use cases.

Unsafe requests authenticated by the cookie must carry the session's CSRF token (a form field or the
``X-CSRF-Token`` header); bearer requests need none, since a browser never sends a bearer token on its own.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.projections.adapters.session_cookies import COOKIE_NAME, Session, WorkspaceSessions
from services.runtime.credentials import CredentialStore, Principal
from services.runtime.problems import Problem

_bearer = HTTPBearer(auto_error=False, description="a token from the credentials file, or sign in to the workspace")


@dataclass(frozen=True)
class Caller:
    principal: Principal
    session: Session | None

    def check_csrf(self, token: str | None) -> None:
        """Raises Problem(403) when a cookie-authenticated change lacks the session's CSRF token."""
        if self.session is None:
            return
        if not token or not hmac.compare_digest(token, self.session.csrf_token):
            raise Problem(403, "missing or wrong CSRF token; reload the page and try again")


class NotAuthenticated(Exception):
    """No usable token or session on an API route: answered 401 with ``WWW-Authenticate: Bearer``."""


class SignInRequired(Exception):
    """A workspace page asked for without a valid session: answered with a redirect to the sign-in page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path

    @property
    def location(self) -> str:
        return f"/workspace/sign-in?next={quote(self.next_path, safe='/')}"


async def session_of(request: Request) -> Session | None:
    """The request's live workspace session, if it has one (a store failure raises: the request is refused)."""
    sessions: WorkspaceSessions = request.app.state.sessions
    return await sessions.current(request.cookies.get(COOKIE_NAME), request.app.state.clock.now())


async def _resolve(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Caller | None:
    store: CredentialStore = request.app.state.credentials
    if credentials is not None and credentials.credentials:
        principal = store.verify_token(credentials.credentials)
        return Caller(principal, None) if principal else None
    session = await session_of(request)
    return Caller(session.principal, session) if session else None


async def api_caller(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Caller:
    """The caller of an API route; 401 problem when there is none."""
    caller = await _resolve(request, credentials)
    if caller is None:
        raise NotAuthenticated("send Authorization: Bearer <token>, or sign in to the workspace")
    return caller


async def page_caller(request: Request) -> Caller:
    """The signed-in person on a workspace page; otherwise a redirect to the sign-in page."""
    session = await session_of(request)
    if session is None:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(path)
    return Caller(session.principal, session)


ApiCaller = Annotated[Caller, Depends(api_caller)]
PageCaller = Annotated[Caller, Depends(page_caller)]
