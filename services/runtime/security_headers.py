"""Security headers on every HTTP response of a service (ASGI middleware, safe for streamed responses).

Each header is a default: a route that sets its own (a print page's wider style policy, a static file's cache
lifetime) keeps it. What every response gets:

- ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``, ``Referrer-Policy: no-referrer``;
- ``Content-Security-Policy``: HTML may load only this service's own files (no inline script, no framing);
  anything else (JSON, problem documents) may load nothing. The API docs (/docs) are such a page too: Swagger UI
  is served by the service itself (``offline_docs.py``);
- ``Cache-Control: no-store``: responses carry PHI unless a route says otherwise;
- ``Strict-Transport-Security`` on requests that arrived over TLS (the ASGI scheme, or ``X-Forwarded-Proto:
  https`` from the proxy that terminated it), when ``hsts_max_age`` is above zero. Over plain HTTP browsers
  ignore it, so a local run is unaffected.
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HTML_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
DATA_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


class SecurityHeaders:
    """Adds the headers above to every HTTP response that does not set them itself."""

    def __init__(self, app: ASGIApp, *, hsts_max_age: int = 0) -> None:
        self.app = app
        self.hsts = f"max-age={hsts_max_age}; includeSubDomains" if hsts_max_age > 0 else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        over_tls = scope.get("scheme") == "https" or (
            Headers(scope=scope).get("x-forwarded-proto", "").split(",")[0].strip().lower() == "https"
        )

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                html = headers.get("content-type", "").startswith("text/html")
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("Referrer-Policy", "no-referrer")
                headers.setdefault("Content-Security-Policy", HTML_POLICY if html else DATA_POLICY)
                headers.setdefault("Cache-Control", "no-store")
                if self.hsts and over_tls:
                    headers.setdefault("Strict-Transport-Security", self.hsts)
            await send(message)

        await self.app(scope, receive, send_with_headers)
