"""One settings mechanism: pydantic settings read from CRISIS_* environment variables, passed in explicitly."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The SMS sandbox's built-in Twilio account and auth token: public (they are in this repository), so a
# deployment that talks to the real Twilio must never accept a webhook signed with that token.
SANDBOX_ACCOUNT_SID = "AC00000000000000000000000000000000"
SANDBOX_AUTH_TOKEN = "sandbox-auth-token"


class RuntimeSettings(BaseSettings):
    """What every service needs: where the stream is and where its own state lives."""

    # a refused setting's error names the setting, never the values (they include keys and passwords)
    model_config = SettingsConfigDict(env_prefix="CRISIS_", extra="ignore", hide_input_in_errors=True)

    nats_url: str = Field(
        default="nats://127.0.0.1:14222",
        description="NATS server(s), comma separated; nats://user:password@host:port when the server requires "
        "credentials (a secret: never logged)",
    )
    stream_replicas: int = Field(default=1, ge=1, le=5, description="CRISIS stream replicas (3 in a cluster)")
    var_dir: Path = Field(default=Path("var"), description="where SQLite stores and embedded NATS data live")
    database_url: str = Field(
        default="",
        description="empty: one SQLite file per application under var_dir; postgresql://... to use PostgreSQL",
    )
    cipher_key: str = Field(
        default="", description="base64 AES key encrypting stored events (PHI at rest); empty disables"
    )
    hsts_max_age_seconds: int = Field(
        default=31536000,
        ge=0,
        description="Strict-Transport-Security max-age sent on requests that arrived over TLS; 0 sends none",
    )
    idempotency_retention_days: float = Field(
        default=30.0, gt=0, description="how long a request's Idempotency-Key answers with its first answer"
    )
    publish_deadline_seconds: float = Field(
        default=10.0,
        gt=0,
        le=60,
        description=(
            "how long a request that records something waits for the stream (while NATS is unreachable) before "
            "answering 503 (nothing recorded) or 504 (sent, outcome unknown); clients should wait longer than this"
        ),
    )
    responder_link_key: str = Field(
        default="",
        description="key signing the links to a responder's incident page (the dispatcher signs, the projections "
        "check: the same on both); empty: generated into <var_dir>/responder_link.key",
    )
    credentials_file: Path | None = Field(
        default=None,
        description="JSON file of bearer credentials (hashed tokens and roles); default <var_dir>/credentials.json",
    )

    @model_validator(mode="after")
    def _credentials_under_var_dir(self) -> RuntimeSettings:
        if self.credentials_file is None:
            self.credentials_file = self.var_dir / "credentials.json"
        return self


def store_env(settings: RuntimeSettings, application_name: str) -> dict[str, str]:
    """The eventsourcing environment for one application's store.

    What each store keeps, and why (issue 16, per-event CPU; figures from this 2-core machine):

    - Encryption at rest (``CIPHER_TOPIC``, AES-GCM) whenever a key is set, in every store: each holds PHI (the
      dispatcher's incidents and locations, the notifier's phone numbers and texts, the follow-up desk's tasks
      and notes, the projections' read models and audit log). ``aead_cipher.AeadCipher`` (OpenSSL's AES-GCM, in
      eventsourcing's ``AESCipher`` format): about 1 us to seal or open a 600-byte event, where ``AESCipher`` took
      about 53 us, 12% of the dispatcher's samples under a backlog (it opens a record's events since its snapshot).
    - Compression (``COMPRESSOR_TOPIC``, zlib) with the cipher, as before: 24 us per event, stored events at 58%
      of their size; and every stored event of an existing store is compressed, which eventsourcing reads back
      only with the compressor set, so dropping it would need a migration for a gain under 0.5%.
    - No aggregate cache (``AGGREGATE_CACHE_MAXSIZE``): tried with eventsourcing's fast-forward and deep copies
      (the only safe way: a handler that fails must not leave a changed aggregate in the cache), the deep copy of
      the follow-up desk's staff directory (the whole roster) cost what re-reading it had cost, and CPU per report
      in bench/e2e.py did not move (the four services: 133 ms without it, 132 ms with it, at 4 reports/s).
    - SQLite in WAL mode (eventsourcing sets it) with ``synchronous`` left at FULL for the live stores: a
      service acks a message after its commit, so a commit a power cut took back after its ack would be a
      message never redelivered (a page decided and lost, a text sent twice, a task gone, an audit entry of a
      read, which is not on the stream, lost). Only the projections' rebuild writes with NORMAL
      (``SqlReadModelStore.bulk_load``): everything it writes comes from the stream with its position, in whole
      batches, and it ends with a FULL commit.
    """
    env: dict[str, str]
    if settings.database_url:
        url = urlsplit(settings.database_url)
        if url.scheme not in ("postgres", "postgresql"):
            raise ValueError(f"CRISIS_DATABASE_URL must be postgresql://..., got scheme {url.scheme!r}")
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": url.path.lstrip("/") or "postgres",
            "POSTGRES_HOST": url.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(url.port or 5432),
            "POSTGRES_USER": unquote(url.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(url.password or ""),
        }
    else:
        settings.var_dir.mkdir(parents=True, exist_ok=True)
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(settings.var_dir / f"{application_name}.sqlite"),
        }
    if settings.cipher_key:
        env |= {
            "CIPHER_TOPIC": "services.runtime.aead_cipher:AeadCipher",
            "CIPHER_KEY": settings.cipher_key,
            "COMPRESSOR_TOPIC": "eventsourcing.compressor:ZlibCompressor",
        }
    return env
