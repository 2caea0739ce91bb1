"""The use case behind Twilio's keypad webhook: a key pressed on a page call or a check-in call.

A voice call that expects an answer listens for one key (<Gather>, placed by the notifier) and Twilio posts the
key here, with what the call carried in its action URL (the prompt, the code, the notification, the language).
It becomes one ``call.keypad_pressed`` event; the dispatcher reads it as it reads the same command texted. The
event id is derived from the CallSid and the keys, and the ``RecordedWebhooks`` ledger keeps the webhook for days,
so a retry or a replay records nothing twice (as for SMS, see ``sms_webhooks``).
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from services.contract.events import (
    CallKeypadPressed,
    CallKeypadPressedData,
    Envelope,
    KeypadPrompt,
    derived_id,
    keypad_command,
    new_event,
)
from services.intake_gateway.sms_webhooks import PRODUCER, Publish, RecordedWebhooks
from services.runtime.clock import Clock

ANSWER_SPEECH: dict[bool, dict[str, str]] = {
    True: {"en": "Thank you. A text message confirms it.", "es": "Gracias. Un mensaje de texto lo confirma."},
    False: {
        "en": "Not understood. Please reply to our text message instead.",
        "es": "No se entendió. Por favor responda a nuestro mensaje de texto.",
    },
}
"""What the call says once a key was pressed: whether the key meant something for the call's prompt -> language."""

_KEY_SAFE = str.maketrans({"*": "s", "#": "h"})  # KV keys take letters, digits, "-", "_", "=", "." and "/"


@dataclass(frozen=True)
class KeypadPress:
    call_sid: str
    phone: str
    digits: str
    prompt: KeypadPrompt | None = None
    code: str | None = None
    notification_id: UUID | None = None

    @property
    def understood(self) -> bool:
        """Whether the keys mean a command for the call's prompt (``KEYPAD_COMMANDS``)."""
        return keypad_command(self.prompt, self.digits) is not None


def answer_speech(understood: bool, language: str) -> str:
    by_language = ANSWER_SPEECH[understood]
    return by_language.get(language, by_language["en"])


class VoiceKeypad:
    """Records the keys pressed on our calls: one ``call.keypad_pressed`` per call and keys."""

    def __init__(self, publish: Publish, clock: Clock, recorded: RecordedWebhooks) -> None:
        self.publish = publish
        self.clock = clock
        self.recorded = recorded

    async def press(self, press: KeypadPress) -> Envelope | None:
        """Append the key press; None when it was recorded before. Raises ``WebhookLedgerUnavailable`` (or a
        stream error) when it cannot tell or append: Twilio's retry is then the same event."""
        key = f"keypad.{press.call_sid}.{press.digits.translate(_KEY_SAFE)}"
        if await self.recorded.recorded(key):
            return None
        data = CallKeypadPressedData(
            call_sid=press.call_sid,
            phone=press.phone,
            digits=press.digits,
            prompt=press.prompt,
            code=press.code,
            notification_id=press.notification_id,
        )
        event_id = derived_id("call.keypad_pressed", press.call_sid, press.digits)
        event = new_event(CallKeypadPressed, data, event_id=event_id, occurred_at=self.clock.now(), producer=PRODUCER)
        await self.publish(event)
        await self.recorded.remember(key)
        return event
