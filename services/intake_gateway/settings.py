from __future__ import annotations

from pydantic import Field

from services.runtime.settings import RuntimeSettings


class GatewaySettings(RuntimeSettings):
    gateway_host: str = Field(default="127.0.0.1", description="address the gateway listens on")
    gateway_port: int = Field(default=8080, description="gateway HTTP port")
    gateway_public_url: str = Field(
        default="http://127.0.0.1:8080",
        description="the gateway's URL as Twilio calls it; X-Twilio-Signature is checked against it",
    )
    twilio_auth_token: str = Field(default="sandbox-auth-token", description="Twilio auth token (secret)")
    max_request_bytes: int = Field(default=64 * 1024, ge=1024, description="largest request body accepted")
