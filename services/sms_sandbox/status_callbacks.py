"""Status callbacks for the messages the sandbox accepted, delivered in the background like Twilio's.

Each message that named a StatusCallback URL gets its callbacks (queued, sent, then delivered, or
undelivered/failed with an ErrorCode) POSTed in order by a background task, signed with
``X-Twilio-Signature`` using the sandbox's auth token. A callback that is not answered with 2xx is tried
again with exponential backoff, up to ``attempts`` times. Every callback and attempt is recorded, so tests
await them through the JSON API instead of sleeping.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import httpx
from twilio.request_validator import RequestValidator

from services.sms_sandbox.store import SandboxMessageStore, StoredMessage

logger = logging.getLogger(__name__)

API_VERSION = "2010-04-01"
CALLBACK_TIMEOUT_SECONDS = 15.0


def statuses_for(message: StoredMessage) -> list[str]:
    """The statuses a message goes through, as its callbacks report them."""
    if message.status == "failed":
        return ["queued", "failed"]
    return ["queued", "sent", message.status]


class StatusCallbackSender:
    def __init__(
        self,
        store: SandboxMessageStore,
        http: httpx.AsyncClient,
        *,
        account_sid: str,
        auth_token: str,
        attempts: int,
        retry_seconds: float,
        announce: Callable[[], Awaitable[None]],
    ) -> None:
        self.store = store
        self.http = http
        self.account_sid = account_sid
        self.validator = RequestValidator(auth_token)
        self.attempts = attempts
        self.retry_seconds = retry_seconds
        self.announce = announce
        self._tasks: set[asyncio.Task[None]] = set()

    def schedule(self, message: StoredMessage) -> None:
        """Record the message's callbacks and start delivering them in order."""
        assert message.status_callback
        ids = [
            self.store.add_status_callback(
                message.sid, status, message.error_code if status == message.status else None, message.status_callback
            )
            for status in statuses_for(message)
        ]
        task = asyncio.create_task(self._deliver_all(message, ids), name=f"status-callbacks:{message.sid}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Stop delivering (at shutdown); undelivered callbacks stay recorded as unfinished."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _deliver_all(self, message: StoredMessage, callback_ids: list[int]) -> None:
        for callback_id, status in zip(callback_ids, statuses_for(message), strict=True):
            await self._deliver(message, callback_id, status)

    async def _deliver(self, message: StoredMessage, callback_id: int, status: str) -> None:
        url = message.status_callback or ""
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "From": message.from_number,
            "To": message.to_number,
            "MessageSid": message.sid,
            "SmsSid": message.sid,
            "MessageStatus": status,
            "SmsStatus": status,
        }
        if message.messaging_service_sid:
            params["MessagingServiceSid"] = message.messaging_service_sid
        if status == message.status and message.error_code is not None:
            params["ErrorCode"] = str(message.error_code)
        headers = {
            "X-Twilio-Signature": self.validator.compute_signature(url, params),
            "User-Agent": "TwilioProxy/1.1 (sms-sandbox)",
        }
        for attempt in range(1, self.attempts + 1):
            outcome: int | str
            try:
                response = await self.http.post(url, data=params, headers=headers, timeout=CALLBACK_TIMEOUT_SECONDS)
                outcome = response.status_code
                delivered = response.is_success
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                outcome, delivered = f"{type(exc).__name__}: {exc}".rstrip(": "), False
            finished = delivered or attempt == self.attempts
            self.store.record_callback_attempt(callback_id, outcome, finished)
            await self.announce()
            if finished:
                if not delivered:
                    logger.warning("status callback for %s (%s) given up: %s", message.sid, status, outcome)
                return
            await asyncio.sleep(self.retry_seconds * 2 ** (attempt - 1))
