"""Which voice calls ask for a key press, and what they say about the keys. Pure.

A call that expects an answer ends with a prompt ("press 1 to accept, 2 to decline") and listens for one key
(Twilio's <Gather>): the page call and the safety check-in call. Any other call (NOBODY ACCEPTED, ...) only
speaks. What each key then means is the contract's ``KEYPAD_COMMANDS`` (the gateway and the dispatcher read the
same table); the call carries what the answer needs (the prompt, the page's or incident's code, the notification
and the language) in the action URL Twilio posts the keys to, so nothing has to be looked up when they arrive.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from services.contract.events import KEYPAD_COMMANDS, KeypadPrompt

KEYPAD_CALLS: dict[str, KeypadPrompt] = {
    "voice_page": "page",  # 1 accept, 2 decline
    "checkin_call": "check_in",  # F1's missed check-in call: 1 I am safe (OK), 2 end the check-in (CLEAR)
}
"""voice template -> the key prompt its call ends with. A template not listed only speaks."""

PROMPT_SPEECH: dict[KeypadPrompt, dict[str, str]] = {
    "page": {
        "en": "To accept now, press 1. To decline, press 2.",
        "es": "Para aceptar ahora, marque 1. Para pasar, marque 2.",
    },
    "check_in": {
        "en": "If you are safe, press 1. To end the check-in, press 2.",
        "es": "Si está a salvo, marque 1. Para terminar el control, marque 2.",
    },
}
"""What a call says after its message, per prompt and language (English when a language has none)."""


@dataclass(frozen=True)
class Keypad:
    """A call listens for one key: what it asks (``prompt``), for which code, and where Twilio posts the key."""

    prompt: KeypadPrompt
    code: str | None
    notification_id: UUID
    language: str

    def action_url(self, keypad_url: str) -> str:
        """``keypad_url`` (the gateway's /twilio/voice/keypad) with what the answer needs as query parameters."""
        query = {"prompt": self.prompt, "notification_id": str(self.notification_id), "lang": self.language}
        if self.code:
            query["code"] = self.code
        return f"{keypad_url}?{urlencode(query)}"

    def speech(self) -> str:
        by_language = PROMPT_SPEECH[self.prompt]
        return by_language.get(self.language, by_language["en"])


def keypad_for(template: str, params: Mapping[str, Any], notification_id: UUID, language: str) -> Keypad | None:
    """The key prompt a call of ``template`` ends with, or None when the call only speaks."""
    prompt = KEYPAD_CALLS.get(template)
    if prompt is None:
        return None
    code = params.get("code")
    return Keypad(prompt, code if isinstance(code, str) else None, notification_id, language)


def keys_said(prompt: KeypadPrompt) -> frozenset[str]:
    """The keys a prompt names (the contract's table): the call's speech must name exactly these."""
    return frozenset(KEYPAD_COMMANDS[prompt])
