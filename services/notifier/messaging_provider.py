"""What the notifier needs from a messaging provider (Twilio, or the local sandbox through the same SDK).

Every port method raises only PermanentSmsError or TransientSmsError; the names say what the caller
does with each: give up on the message, or try it again later.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from services.notifier.domain.voice_keypad import Keypad


@dataclass(frozen=True)
class SentMessage:
    message_sid: str
    status: str
    segments: int


@dataclass(frozen=True)
class PlacedCall:
    call_sid: str
    status: str


class PermanentSmsError(Exception):
    """The provider refused the message or call and will refuse it again (bad number, opted out): do not retry."""

    def __init__(self, code: int | None, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class TransientSmsError(Exception):
    """Rate limited (429), provider error (5xx), timeout or no connection: the same send may succeed later."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class SmsSender(Protocol):
    def send(self, to: str, body: str, *, attempt: int = 1) -> SentMessage:
        """Hand one SMS to the provider; ``attempt`` counts this call (1 for the first).

        Raises PermanentSmsError or TransientSmsError, nothing else.
        """
        ...


class VoiceCaller(Protocol):
    def call(
        self, to: str, speech: str, language: str, *, attempt: int = 1, keypad: Keypad | None = None
    ) -> PlacedCall:
        """Place one call that speaks ``speech`` in ``language`` (en or es), listening for the ``keypad``'s key
        when it has one.

        Raises PermanentSmsError or TransientSmsError, nothing else.
        """
        ...
