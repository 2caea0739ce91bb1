"""VoiceCaller through Twilio's official SDK: a call whose TwiML speaks the page twice.

A call that expects an answer (``domain.voice_keypad``: the page call, the check-in call) is wrapped in a
<Gather numDigits="1">: the person may press a key at any time while it speaks, and after the message it says
which keys mean what. Twilio posts the key to the gateway's ``/twilio/voice/keypad`` (``keypad_url``, with the
prompt, code, notification and language as query parameters: Twilio signs them with the rest). Without a
``keypad_url`` (not configured) every call only speaks, as before.
"""

from __future__ import annotations

from twilio.base.exceptions import TwilioException
from twilio.rest import Client
from twilio.twiml.voice_response import Gather, VoiceResponse

from services.notifier.adapters.twilio_client import provider_error
from services.notifier.domain.voice_keypad import Keypad
from services.notifier.messaging_provider import PermanentSmsError, PlacedCall

# Twilio's <Say> language tags for our languages.
SAY_LANGUAGES = {"en": "en-US", "es": "es-MX"}
GATHER_TIMEOUT_SECONDS = 8  # after the last word, how long the call waits for a key before it ends


def page_twiml(speech: str, language: str, keypad: Keypad | None = None, keypad_url: str | None = None) -> str:
    """TwiML that says ``speech``, pauses, and says it again (people miss the start of a call); with a
    ``keypad`` and a ``keypad_url``, inside a one-key <Gather> that ends with the keypad's prompt."""
    response = VoiceResponse()
    say_language = SAY_LANGUAGES.get(language, "en-US")
    if keypad is None or not keypad_url:
        _say_twice(response, speech, say_language)
        return str(response)
    action = keypad.action_url(keypad_url)
    gather = response.gather(num_digits=1, action=action, method="POST", timeout=GATHER_TIMEOUT_SECONDS)
    _say_twice(gather, speech, say_language)
    gather.say(keypad.speech(), language=say_language)
    return str(response)


def _say_twice(verb: VoiceResponse | Gather, speech: str, say_language: str) -> None:
    verb.say(speech, language=say_language)
    verb.pause(length=1)
    verb.say(speech, language=say_language)


class TwilioVoiceCaller:
    def __init__(self, client: Client, *, from_number: str | None, keypad_url: str | None = None) -> None:
        self.client = client
        self.from_number = from_number
        self.keypad_url = keypad_url

    def call(
        self, to: str, speech: str, language: str, *, attempt: int = 1, keypad: Keypad | None = None
    ) -> PlacedCall:
        if not self.from_number:  # a Messaging Service cannot place calls
            raise PermanentSmsError(None, "no voice from-number configured")
        twiml = page_twiml(speech, language, keypad, self.keypad_url)
        try:
            call = self.client.calls.create(to=to, from_=self.from_number, twiml=twiml)
        except (TwilioException, OSError) as exc:
            raise provider_error(exc) from exc
        return PlacedCall(call.sid, call.status or "queued")
