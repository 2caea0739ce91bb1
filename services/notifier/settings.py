from __future__ import annotations

from typing import Literal

from pydantic import Field

from services.runtime.settings import RuntimeSettings


class NotifierSettings(RuntimeSettings):
    sms_provider: Literal["sandbox", "twilio"] = Field(
        default="sandbox", description="sandbox: the local SMS sandbox; twilio: the real Twilio API"
    )
    sandbox_url: str = Field(default="http://127.0.0.1:8025", description="the SMS sandbox the notifier sends to")
    twilio_account_sid: str = Field(default="AC00000000000000000000000000000000", description="Twilio account SID")
    twilio_auth_token: str = Field(default="sandbox-auth-token", description="Twilio auth token (secret)")
    twilio_from_number: str = Field(default="+15005550006", description="E.164 number SMS are sent from")
    twilio_messaging_service_sid: str = Field(default="", description="Messaging Service SID (overrides from)")
    twilio_status_callback_url: str = Field(default="", description="public URL of the gateway's /twilio/status")
