"""The use case behind Twilio's keypad webhooks: a key pressed on a page call or a check-in call, and the keys a
responder presses on a call they make to the organisation's number (their incident code and a field command).

A voice call that expects an answer listens for one key (<Gather>, placed by the notifier) and Twilio posts the
key here, with what the call carried in its action URL (the prompt, the code, the notification, the language).
It becomes one ``call.keypad_pressed`` event; the dispatcher reads it as it reads the same command texted. The
event id is derived from the CallSid and the keys, and the ``RecordedWebhooks`` ledger keeps the webhook for days,
so a retry or a replay records nothing twice (as for SMS, see ``sms_webhooks``).

A call in (``/twilio/voice/incoming``) is answered with ``field_call_twiml``: it asks, in English then Spanish, for
the incident's 4-digit code and one command key (the contract's ``KEYPAD_COMMANDS["field"]``: 1 on scene, 2 I am
safe, 3 leaving the scene, 4 done) and posts them to the keypad webhook with prompt "field". Keys that are not a
code and a command are not recorded (anyone may call the number): the call says so and asks again.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode
from uuid import UUID

from twilio.twiml.voice_response import VoiceResponse

from services.contract.events import (
    CallKeypadPressed,
    CallKeypadPressedData,
    Envelope,
    KeypadPrompt,
    derived_id,
    field_code,
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

SAY_LANGUAGES = {"en": "en-US", "es": "es-MX"}
"""The voice Twilio speaks each language in."""

FIELD_CALL_SPEECH: dict[str, dict[str, str]] = {
    "prompt": {
        "en": "Enter your incident code, then 1 on scene, 2 I am safe, 3 leaving the scene, 4 done.",
        "es": "Marque el código del incidente, luego 1 en el lugar, 2 estoy a salvo, 3 me retiro, 4 terminado.",
    },
    "not_understood": {
        "en": "Not understood. Enter the 4-digit incident code, then one key.",
        "es": "No se entendió. Marque el código de 4 dígitos y luego una tecla.",
    },
    "no_keys": {"en": "No keys were pressed. Goodbye.", "es": "No se marcó ninguna tecla. Adiós."},
    "no_caller": {
        "en": "We cannot tell which phone is calling. Please send us a text message instead.",
        "es": "No sabemos qué teléfono llama. Por favor envíenos un mensaje de texto.",
    },
}
"""What a call a responder makes to the organisation says, English then Spanish (the gateway cannot know the
caller's language). The prompt names exactly the keys of ``KEYPAD_COMMANDS["field"]``."""

FIELD_GATHER_SECONDS = 10
"""How long the call waits for the next key before it gives up."""

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


def field_action_url(keypad_url: str) -> str:
    """Where a call in posts its keys: the keypad webhook, with the "field" prompt (the code is in the keys)."""
    return f"{keypad_url}?{urlencode({'prompt': 'field'})}"


def _say_both(verb: VoiceResponse, speech: dict[str, str]) -> None:
    for language, say_language in SAY_LANGUAGES.items():
        verb.say(speech[language], language=say_language)


def field_call_twiml(keypad_url: str, caller_known: bool, before: dict[str, str] | None = None) -> str:
    """The answer to a call in: a <Gather> of 5 keys (the code, then a command) posting to ``keypad_url``'s field
    prompt; ``before`` is said first (a "not understood" when asking again). A caller whose number is withheld
    is asked to text instead: keys from an unknown phone could not be matched to anyone."""
    response = VoiceResponse()
    if not caller_known:
        _say_both(response, FIELD_CALL_SPEECH["no_caller"])
        response.hangup()
        return str(response)
    gather = response.gather(
        num_digits=5, action=field_action_url(keypad_url), method="POST", timeout=FIELD_GATHER_SECONDS
    )
    if before is not None:
        _say_both(gather, before)
    _say_both(gather, FIELD_CALL_SPEECH["prompt"])
    _say_both(response, FIELD_CALL_SPEECH["no_keys"])
    return str(response)


def field_answer_twiml(understood: bool, keypad_url: str) -> str:
    """What a call in says once keys were pressed: thanks (a text confirms it), or "not understood" and the
    question again."""
    if not understood:
        return field_call_twiml(keypad_url, caller_known=True, before=FIELD_CALL_SPEECH["not_understood"])
    response = VoiceResponse()
    _say_both(response, ANSWER_SPEECH[True])
    return str(response)


class VoiceKeypad:
    """Records the keys pressed on our calls: one ``call.keypad_pressed`` per call and keys."""

    def __init__(self, publish: Publish, clock: Clock, recorded: RecordedWebhooks) -> None:
        self.publish = publish
        self.clock = clock
        self.recorded = recorded

    async def press(self, press: KeypadPress) -> Envelope | None:
        """Append the key press; None when it was recorded before. Raises ``WebhookLedgerUnavailable`` (or a
        stream error) when it cannot tell or append: Twilio's retry is then the same event."""
        if press.prompt == "field" and not press.understood:
            return None  # a call in whose keys are no code and command: nothing to record, the call asks again
        key = f"keypad.{press.call_sid}.{press.digits.translate(_KEY_SAFE)}"
        if await self.recorded.recorded(key):
            return None
        data = CallKeypadPressedData(
            call_sid=press.call_sid,
            phone=press.phone,
            digits=press.digits,
            prompt=press.prompt,
            code=field_code(press.prompt, press.digits) if press.prompt == "field" else press.code,
            notification_id=press.notification_id,
        )
        event_id = derived_id("call.keypad_pressed", press.call_sid, press.digits)
        event = new_event(CallKeypadPressed, data, event_id=event_id, occurred_at=self.clock.now(), producer=PRODUCER)
        await self.publish(event)
        await self.recorded.remember(key)
        return event
