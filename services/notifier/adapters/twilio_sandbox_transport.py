"""Transport for the official Twilio SDK that points it at the local SMS sandbox instead of api.twilio.com."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response


class RedirectingHttpClient(TwilioHttpClient):
    """A ``TwilioHttpClient`` that sends every request to ``base_url`` instead of Twilio's hosts.

    It exists to point the official SDK at the local SMS sandbox (``services.sms_sandbox``): the SDK
    has no base-URL setting, and a custom ``http_client`` is its supported extension point. The path and
    query the SDK built are kept; only scheme and host (plus an optional path prefix of ``base_url``)
    change. Errors are the SDK's own: ``TwilioRestException`` for an HTTP error answer, ``requests``
    exceptions when the sandbox cannot be reached.
    """

    def __init__(self, base_url: str, timeout: float = 10) -> None:
        super().__init__(timeout=timeout)
        base = urlsplit(base_url)
        if base.scheme not in ("http", "https") or not base.netloc:
            raise ValueError("base_url must be an absolute http(s) URL")
        self.base_url = base_url
        self._base = base

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        """Send the request the SDK built to the same path under ``base_url``."""
        target = urlsplit(url)
        redirected = urlunsplit(
            (
                self._base.scheme,
                self._base.netloc,
                self._base.path.rstrip("/") + target.path,
                target.query,
                "",
            )
        )
        return super().request(method, redirected, *args, **kwargs)
