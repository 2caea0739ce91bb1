"""VoiceCaller through Twilio's official SDK: a call whose TwiML speaks the page twice."""

from __future__ import annotations

from twilio.base.exceptions import TwilioException
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse

from services.notifier.adapters.twilio_client import provider_error
from services.notifier.messaging_provider import PermanentSmsError, PlacedCall

# Twilio's <Say> language tags for our languages.
SAY_LANGUAGES = {"en": "en-US", "es": "es-MX"}


def page_twiml(speech: str, language: str) -> str:
    """TwiML that says ``speech``, pauses, and says it again (people miss the start of a call)."""
    response = VoiceResponse()
    say_language = SAY_LANGUAGES.get(language, "en-US")
    response.say(speech, language=say_language)
    response.pause(length=1)
    response.say(speech, language=say_language)
    return str(response)


class TwilioVoiceCaller:
    def __init__(self, client: Client, *, from_number: str | None) -> None:
        self.client = client
        self.from_number = from_number

    def call(self, to: str, speech: str, language: str, *, attempt: int = 1) -> PlacedCall:
        if not self.from_number:  # a Messaging Service cannot place calls
            raise PermanentSmsError(None, "no voice from-number configured")
        try:
            call = self.client.calls.create(to=to, from_=self.from_number, twiml=page_twiml(speech, language))
        except (TwilioException, OSError) as exc:
            raise provider_error(exc) from exc
        return PlacedCall(call.sid, call.status or "queued")
