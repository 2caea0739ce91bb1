"""CSRF protection for forms posted without a session: the workspace's sign-in form and the SMS sandbox's inbox.

The page that shows the form sets a random token in an HttpOnly, SameSite=Strict cookie and repeats it in the
form's hidden ``csrf_token`` field; a post is accepted only when the two match ("double submit"). A page on
another site can make a browser post the form, but cannot read the token, and the browser does not send the
cookie with it. A browser that says where a request comes from (``Sec-Fetch-Site``, sent by every current
browser) is refused unless the form came from the page's own origin: that also covers a page on another port
of the same host, which is the same *site*, so the cookie would be sent. Signed-in workspace forms carry their
session's own token instead (``services/projections/entrypoints/auth.py``).
"""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

FIELD = "csrf_token"
_WELL_FORMED = re.compile(r"[A-Za-z0-9_-]{32}")
# "none": the user opened the URL themselves (typed, bookmarked); never a form posted by another page
_OWN_PAGE = {"same-origin", "none"}


@dataclass(frozen=True)
class FormTokenCookie:
    """One form family's token cookie: its name, path and lifetime (None: until the browser closes)."""

    cookie: str
    path: str = "/"
    max_age: int | None = None

    def token_for(self, request: Request) -> str:
        """The token to put in the page's forms: the browser's current one (so other open tabs keep working),
        else a new one. Set it with ``set_on``."""
        current = request.cookies.get(self.cookie, "")
        return current if _WELL_FORMED.fullmatch(current) else secrets.token_urlsafe(24)

    def set_on(self, response: Response, token: str) -> None:
        response.set_cookie(self.cookie, token, max_age=self.max_age, httponly=True, samesite="strict", path=self.path)

    def clear(self, response: Response) -> None:
        response.delete_cookie(self.cookie, path=self.path)

    def accepts(self, request: Request, submitted: str | None) -> bool:
        """Whether a posted form came from our own page: the browser does not say it came from elsewhere, and
        ``submitted`` (the form's ``csrf_token``) matches the cookie."""
        if request.headers.get("sec-fetch-site", "same-origin") not in _OWN_PAGE:
            return False
        expected = request.cookies.get(self.cookie, "")
        return bool(expected and submitted) and hmac.compare_digest(expected.encode(), (submitted or "").encode())
