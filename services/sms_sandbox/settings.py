"""Settings of the local SMS sandbox, read from CRISIS_* environment variables and passed in explicitly."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SandboxSettings(BaseSettings):
    """Where the sandbox listens, which credentials the fake Twilio API accepts, where replies and callbacks go."""

    model_config = SettingsConfigDict(env_prefix="CRISIS_", extra="ignore", hide_input_in_errors=True)

    sandbox_port: int = Field(default=8025, ge=0, le=65535, description="port of the sandbox HTTP server")
    sandbox_host: str = Field(default="127.0.0.1", description="interface the sandbox binds to")
    var_dir: Path = Field(default=Path("var"), description="where sms-sandbox.sqlite lives")
    twilio_account_sid: str = Field(
        default="AC00000000000000000000000000000000",
        pattern=r"^AC[0-9a-f]{32}$",
        description="account SID the fake Twilio API accepts (HTTP Basic user and URL path)",
    )
    twilio_auth_token: str = Field(
        default="sandbox-auth-token",
        min_length=1,
        description="auth token the fake Twilio API accepts; also signs the inbound webhooks",
    )
    twilio_api_key_sid: str = Field(
        default="", description="an API key SID the fake Twilio API also accepts (with its secret); empty: none"
    )
    twilio_api_key_secret: str = Field(default="", description="the API key's secret")
    sandbox_callback_attempts: int = Field(
        default=5, ge=1, le=20, description="deliveries tried per status callback before giving up"
    )
    sandbox_callback_retry_seconds: float = Field(
        default=1.0, gt=0, le=60, description="first delay between status-callback deliveries (doubles each time)"
    )
    sandbox_inbound_webhook_url: str = Field(
        default="http://127.0.0.1:8080/twilio/sms",
        description="where inbound SMS typed into the sandbox are POSTed, like Twilio's messaging webhook",
    )
    sandbox_voice_webhook_url: str = Field(
        default="",
        description="where a call a phone makes to us is POSTed, like Twilio's voice webhook; empty: the inbound "
        "webhook's origin + /twilio/voice/incoming",
    )
    sandbox_org_number: str = Field(
        default="+15005550006",
        pattern=r"^\+[1-9]\d{6,14}$",
        description="the organisation's number; To of an inbound SMS from a phone nobody has texted yet",
    )

    @property
    def voice_webhook_url(self) -> str:
        """The voice webhook a call in is POSTed to (``sandbox_voice_webhook_url``, or the inbound webhook's)."""
        if self.sandbox_voice_webhook_url:
            return self.sandbox_voice_webhook_url
        parts = urlsplit(self.sandbox_inbound_webhook_url)
        return urlunsplit((parts.scheme, parts.netloc, "/twilio/voice/incoming", "", ""))
