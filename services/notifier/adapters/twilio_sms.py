"""SmsSender through Twilio's official SDK (also used against the local SMS sandbox)."""

from __future__ import annotations

from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from services.notifier.ports import PermanentSmsError, SentMessage, TransientSmsError


class TwilioSmsSender:
    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        from_number: str | None,
        messaging_service_sid: str | None = None,
        status_callback: str | None = None,
        http_client: TwilioHttpClient | None = None,
    ) -> None:
        if not (from_number or messaging_service_sid):
            raise ValueError("configure a from-number or a Messaging Service SID")
        self.client = Client(account_sid, auth_token, http_client=http_client)
        self.from_number = from_number
        self.messaging_service_sid = messaging_service_sid
        self.status_callback = status_callback

    def send(self, to: str, body: str) -> SentMessage:
        options: dict[str, str] = {"to": to, "body": body}
        if self.messaging_service_sid:
            options["messaging_service_sid"] = self.messaging_service_sid
        else:
            options["from_"] = self.from_number  # type: ignore[assignment]
        if self.status_callback:
            options["status_callback"] = self.status_callback
        try:
            message = self.client.messages.create(**options)
        except TwilioRestException as exc:
            if exc.status == 429 or exc.status >= 500:
                raise TransientSmsError(f"HTTP {exc.status} code {exc.code}") from exc
            raise PermanentSmsError(exc.code, str(exc.msg)) from exc
        except (
            TwilioException,
            OSError,
        ) as exc:  # timeouts, connection errors: the provider may be back soon
            raise TransientSmsError(type(exc).__name__) from exc
        return SentMessage(message.sid, message.status, int(message.num_segments or 1))
