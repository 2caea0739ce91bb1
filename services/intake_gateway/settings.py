from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import SettingsConfigDict

from services.intake_gateway.domain.duplicates import DuplicateRule
from services.intake_gateway.domain.triage import Thresholds
from services.runtime.settings import SANDBOX_ACCOUNT_SID, SANDBOX_AUTH_TOKEN, RuntimeSettings


class TriageThresholds(BaseModel):
    """Score thresholds of triage (DOMAIN.md defaults). Override one with e.g. CRISIS_TRIAGE__CIWA_SEVERE_AT=20,
    or all with CRISIS_TRIAGE='{"cows_prescriber_at": 10}'. Each "at" value is the lowest score that counts."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    ciwa_moderate_at: int = Field(default=10, ge=1, le=67, description="CIWA-Ar moderate band (ASAM 2020: 10-18)")
    ciwa_severe_at: int = Field(default=19, ge=1, le=67, description="CIWA-Ar severe: P2 urgent medical review")
    cows_mild_at: int = Field(default=5, ge=1, le=48, description="COWS mild band (5-12)")
    cows_moderate_at: int = Field(default=13, ge=1, le=48, description="COWS moderate band (13-24)")
    cows_moderately_severe_at: int = Field(default=25, ge=1, le=48, description="COWS moderately severe (25-36)")
    cows_severe_at: int = Field(default=37, ge=1, le=48, description="COWS severe (> 36)")
    cows_prescriber_at: int = Field(default=8, ge=1, le=48, description="COWS: P2 prescriber review (buprenorphine)")

    @model_validator(mode="after")
    def _ordered(self) -> TriageThresholds:
        if not self.ciwa_moderate_at < self.ciwa_severe_at:
            raise ValueError("ciwa_moderate_at must be below ciwa_severe_at")
        if not self.cows_mild_at < self.cows_moderate_at < self.cows_moderately_severe_at < self.cows_severe_at:
            raise ValueError("COWS bands must rise: mild < moderate < moderately severe < severe")
        return self

    def to_domain(self) -> Thresholds:
        return Thresholds(**self.model_dump())


class GatewaySettings(RuntimeSettings):
    # "__" reaches into nested settings: CRISIS_TRIAGE__CIWA_SEVERE_AT=20
    model_config = SettingsConfigDict(env_prefix="CRISIS_", extra="ignore", env_nested_delimiter="__")

    gateway_host: str = Field(default="127.0.0.1", description="address the gateway listens on")
    gateway_port: int = Field(default=8080, description="gateway HTTP port")
    gateway_public_url: str = Field(
        default="http://127.0.0.1:8080",
        description="the gateway's URL as Twilio calls it; X-Twilio-Signature is checked against it",
    )
    workspace_public_url: str = Field(
        default="http://127.0.0.1:8081",
        pattern=r"^https?://[^\s/]+(/\S*)?$",
        description="the projections service's URL as clients reach it (its JSON API and the director workspace); "
        "a report's answer names the incident's timeline there (timeline_url)",
    )
    twilio_auth_token: str = Field(default=SANDBOX_AUTH_TOKEN, description="Twilio auth token (secret)")
    twilio_auth_token_secondary: str = Field(
        default="",
        description="during a Twilio auth-token rotation, the other token: webhooks signed with either are accepted",
    )
    # the notifier's own two settings (same variables), read here to know whether the real Twilio is in use
    sms_provider: Literal["sandbox", "twilio"] | None = Field(
        default=None,
        description="as the notifier's: twilio (or unset with a real account SID) means the real Twilio, whose "
        "webhooks must not be accepted with the SMS sandbox's built-in auth token",
    )
    twilio_account_sid: str = Field(default=SANDBOX_ACCOUNT_SID, description="Twilio account SID (AC...)")
    phone_default_region: str = Field(
        default="US",
        pattern=r"^[A-Z]{2}$",
        description="ISO country assumed for roster phone numbers written without +country code",
    )
    calendar_horizon_days: int = Field(
        default=60, ge=1, le=730, description="how far ahead recurring iCalendar events are expanded into shifts"
    )
    max_request_bytes: int = Field(default=64 * 1024, ge=1024, description="largest request body accepted")
    # -- intake: triage, location, duplicates, idempotency -----------------------------------------------
    triage: TriageThresholds = Field(default_factory=TriageThresholds, description="triage score thresholds")
    gazetteer_file: Path = Field(
        default=Path("deploy/demo/gazetteer.json"),
        description="named places, addresses and service zones (JSON); the offline geocoder and the zones",
    )
    geocoder: Literal["gazetteer", "nominatim"] = Field(
        default="gazetteer", description="gazetteer: offline, from gazetteer_file; nominatim: geopy's Nominatim"
    )
    nominatim_domain: str = Field(default="nominatim.openstreetmap.org", description="Nominatim host[:port]")
    nominatim_scheme: Literal["https", "http"] = "https"
    nominatim_user_agent: str = Field(
        default="crisis-dispatch-intake", min_length=1, description="Nominatim's usage policy requires your own"
    )
    geocoder_min_delay_seconds: float = Field(
        default=1.0, ge=0, description="least time between geocoder requests (Nominatim's policy: 1 s)"
    )
    geocoder_timeout_seconds: float = Field(default=5.0, gt=0, description="per geocoder request")
    geocoder_cache_size: int = Field(default=4096, ge=0, description="geocoded queries kept in memory (0: none)")
    geocoder_max_retries: int = Field(default=2, ge=0, le=5, description="retries of a failed geocoder request")
    duplicate_radius_m: float = Field(default=200.0, gt=0, le=5000, description="possible duplicates: how close")
    duplicate_window_minutes: float = Field(
        default=10.0, gt=0, le=720, description="possible duplicates: how recent (at most 12 h)"
    )
    twilio_webhook_retention_days: float = Field(
        default=30.0,
        gt=0,
        description="how long a Twilio webhook (its MessageSid, and status) is remembered: a replay records nothing",
    )

    @model_validator(mode="after")
    def _no_sandbox_token_with_the_real_twilio(self) -> GatewaySettings:
        """The sandbox's token is public: with it, anyone could sign a webhook (a forged acknowledgement)."""
        real_twilio = self.sms_provider == "twilio" or (
            self.sms_provider is None and self.twilio_account_sid != SANDBOX_ACCOUNT_SID
        )
        if real_twilio and SANDBOX_AUTH_TOKEN in (self.twilio_auth_token, self.twilio_auth_token_secondary):
            raise ValueError(
                "refusing to start: CRISIS_TWILIO_AUTH_TOKEN (or CRISIS_TWILIO_AUTH_TOKEN_SECONDARY) is the SMS "
                "sandbox's built-in token, which anyone can sign webhooks with, while the real Twilio is configured "
                "(CRISIS_SMS_PROVIDER=twilio, or a CRISIS_TWILIO_ACCOUNT_SID of a real account): set the Twilio "
                "account's own auth token"
            )
        return self

    def duplicate_rule(self) -> DuplicateRule:
        return DuplicateRule(self.duplicate_radius_m, timedelta(minutes=self.duplicate_window_minutes))
