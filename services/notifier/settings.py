"""The notifier's settings: CRISIS_* environment variables, passed in explicitly."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from services.runtime.settings import SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN, RuntimeSettings


class NotifierSettings(RuntimeSettings):
    sms_provider: Literal["sandbox", "twilio"] | None = Field(
        default=None,
        description="sandbox: the local SMS sandbox; twilio: the real Twilio API; unset: twilio when real "
        "credentials are configured (an account SID other than the sandbox's, with an auth token or API key), "
        "else sandbox",
    )
    sandbox_url: str = Field(default="http://127.0.0.1:8025", description="the SMS sandbox the notifier sends to")
    twilio_account_sid: str = Field(default=SANDBOX_ACCOUNT_SID, description="Twilio account SID (AC...)")
    twilio_auth_token: str = Field(default=SANDBOX_AUTH_TOKEN, description="Twilio auth token (secret)")
    twilio_api_key_sid: str = Field(default="", description="Twilio API key SID (SK...); used instead of the token")
    twilio_api_key_secret: str = Field(default="", description="the API key's secret")
    twilio_from_number: str = Field(default="+15005550006", description="E.164 number SMS are sent from")
    twilio_messaging_service_sid: str = Field(default="", description="Messaging Service SID (overrides from)")
    twilio_voice_from_number: str = Field(
        default="", description="E.164 number voice calls come from; empty: the SMS from-number"
    )
    twilio_status_callback_url: str = Field(
        default="", description="public URL of the gateway's /twilio/status, passed on every message create"
    )
    twilio_voice_keypad_url: str = Field(
        default="",
        pattern=r"^(https?://\S+)?$",
        description="public URL of the gateway's /twilio/voice/keypad: page and check-in calls listen for a key "
        "and Twilio posts it there; empty: every call only speaks",
    )
    twilio_timeout_seconds: float = Field(default=10.0, gt=0, le=120, description="HTTP timeout per provider call")
    sms_rate_per_second: float = Field(
        default=1.0, gt=0, description="SMS per second from the sending number (long code: 1)"
    )
    sms_rate_burst: int = Field(default=1, ge=1, description="SMS that may go back to back before the rate applies")
    voice_rate_per_second: float = Field(default=1.0, gt=0, description="calls placed per second")
    sms_in_flight: int = Field(
        default=1,
        ge=1,
        le=32,
        description="provider calls (SMS and voice) under way at once; a crash sends at most this many twice. "
        "With 1, a provider answering in 200 ms caps sending at 5 per second whatever the rate",
    )
    sms_retry_max_attempts: int = Field(
        default=6, ge=1, le=100, description="provider calls per message (first included) before giving up"
    )
    sms_retry_base_delay_seconds: float = Field(default=1.0, gt=0, description="ceiling of the first retry delay")
    sms_retry_max_delay_seconds: float = Field(default=30.0, gt=0, description="largest delay between attempts")
    sms_flood_max_messages: int = Field(
        default=3, ge=1, description="SMS to one phone per flood window before lower-priority pages are bundled"
    )
    sms_flood_window_seconds: float = Field(default=60.0, gt=0, description="the per-phone flood window")
    gazetteer_file: Path | None = Field(
        default=Path("deploy/demo/gazetteer.json"),
        description="the place and zone names a page may print (the dispatcher's file); empty: none, pages "
        "give the distance only",
    )
    notifier_ops_host: str = Field(default="127.0.0.1", description="address of the ops endpoints")
    notifier_ops_port: int = Field(
        default=9102, ge=0, le=65535, description="port of /metrics, /livez and /readyz; 0 turns them off"
    )

    @field_validator("gazetteer_file", mode="before")
    @classmethod
    def _empty_means_none(cls, value: object) -> object:
        """`CRISIS_GAZETTEER_FILE=` (empty) switches the file off; it is not the current directory."""
        return None if value == "" else value

    @model_validator(mode="after")
    def _consistent(self) -> NotifierSettings:
        if self.sms_retry_max_delay_seconds < self.sms_retry_base_delay_seconds:
            raise ValueError("sms_retry_max_delay_seconds must be at least sms_retry_base_delay_seconds")
        if bool(self.twilio_api_key_sid) != bool(self.twilio_api_key_secret):
            raise ValueError("set both twilio_api_key_sid and twilio_api_key_secret, or neither")
        if not (self.twilio_from_number or self.twilio_messaging_service_sid):
            raise ValueError("set twilio_from_number or twilio_messaging_service_sid")
        return self

    @property
    def provider(self) -> Literal["sandbox", "twilio"]:
        """Where messages go: the explicit choice, else Twilio only when real credentials are configured."""
        if self.sms_provider is not None:
            return self.sms_provider
        has_secret = self.twilio_api_key_secret or self.twilio_auth_token not in ("", SANDBOX_AUTH_TOKEN)
        return "twilio" if self.twilio_account_sid != SANDBOX_ACCOUNT_SID and has_secret else "sandbox"

    @property
    def voice_from_number(self) -> str:
        return self.twilio_voice_from_number or self.twilio_from_number
