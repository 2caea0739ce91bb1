"""What the notifier needs from an SMS provider."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class SentMessage:
    message_sid: str
    status: str
    segments: int


class PermanentSmsError(Exception):
    """The provider refused the message and will refuse it again (bad number, opted out): do not retry."""

    def __init__(self, code: int | None, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class TransientSmsError(Exception):
    """Rate limited, provider error or timeout: the same send may succeed later; retry with backoff."""


class SmsSender(Protocol):
    def send(self, to: str, body: str) -> SentMessage:
        """Hand one SMS to the provider. Raises PermanentSmsError or TransientSmsError, nothing else."""
        ...
