"""SmsSender through Twilio's official SDK (also used against the local SMS sandbox)."""

from __future__ import annotations

from typing import Any

from twilio.base.exceptions import TwilioException
from twilio.rest import Client

from services.notifier.adapters.twilio_client import provider_error
from services.notifier.messaging_provider import SentMessage


class TwilioSmsSender:
    """Sends from a Messaging Service if one is configured, else from a number; every create carries the
    status-callback URL (so delivery failures come back as ``sms.status_updated``) and the attempt count."""

    def __init__(
        self,
        client: Client,
        *,
        from_number: str | None,
        messaging_service_sid: str | None = None,
        status_callback: str | None = None,
    ) -> None:
        if not (from_number or messaging_service_sid):
            raise ValueError("configure a from-number or a Messaging Service SID")
        self.client = client
        self.from_number = from_number
        self.messaging_service_sid = messaging_service_sid
        self.status_callback = status_callback

    def send(self, to: str, body: str, *, attempt: int = 1) -> SentMessage:
        options: dict[str, Any] = {"to": to, "body": body}
        if self.messaging_service_sid:
            options["messaging_service_sid"] = self.messaging_service_sid
        else:
            options["from_"] = self.from_number
        if self.status_callback:
            options["status_callback"] = self.status_callback
        # Twilio's Messages API has no idempotency key; "attempt" is its documented way to say that this
        # create repeats an earlier one, so its logs and the sandbox's inbox show a retried duplicate as one.
        options["attempt"] = attempt
        try:
            message = self.client.messages.create(**options)
        except (TwilioException, OSError) as exc:
            raise provider_error(exc) from exc
        return SentMessage(message.sid, message.status or "queued", int(message.num_segments or 1))
