"""The official Twilio SDK client, authenticated as configured, and what its errors mean for a retry."""

from __future__ import annotations

from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from services.notifier.messaging_provider import PermanentSmsError, TransientSmsError


def twilio_client(
    account_sid: str,
    *,
    auth_token: str = "",
    api_key_sid: str = "",
    api_key_secret: str = "",
    http_client: TwilioHttpClient | None = None,
) -> Client:
    """A client for ``account_sid``: with an API key (SID + secret) if one is given, else the auth token.

    Twilio recommends API keys for production: they can be revoked one by one without rotating the
    account's auth token, which also signs webhooks.
    """
    if api_key_sid or api_key_secret:
        if not (api_key_sid and api_key_secret):
            raise ValueError("an API key needs both its SID and its secret")
        return Client(api_key_sid, api_key_secret, account_sid=account_sid, http_client=http_client)
    if not auth_token:
        raise ValueError("configure an auth token or an API key")
    return Client(account_sid, auth_token, http_client=http_client)


def http_client(timeout_seconds: float) -> TwilioHttpClient:
    """The SDK's own transport with a timeout and no retries of its own (the notifier retries)."""
    return TwilioHttpClient(timeout=timeout_seconds)


def provider_error(exc: Exception) -> PermanentSmsError | TransientSmsError:
    """What a Twilio SDK or transport exception means for the message.

    Transient: 429, 5xx, timeouts, no connection, and 401/403 (a credentials or account problem that says
    nothing about the recipient). Permanent: any other HTTP error answer (invalid number 21211, opted out
    21610, not SMS-capable 21614, ...).
    """
    if isinstance(exc, TwilioRestException | TwilioServiceException):
        code = exc.code if isinstance(exc.code, int) else None
        # 401/403: our credentials or account, not the recipient; fixing them makes the same send work
        if exc.status in (401, 403, 429) or exc.status >= 500:
            return TransientSmsError(f"HTTP {exc.status} code {code}", code)
        detail = exc.msg if isinstance(exc, TwilioRestException) else (exc.detail or exc.title)
        return PermanentSmsError(code, f"HTTP {exc.status}: {detail}")
    if isinstance(exc, TwilioException | OSError):  # requests' timeouts and connection errors are OSErrors
        return TransientSmsError(type(exc).__name__)
    raise TypeError(f"not a provider error: {type(exc).__name__}") from exc
