"""Shared fixtures: one real nats-server per session, a fresh PostgreSQL database per run."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import nats
import psycopg
import pytest
from nats.js.errors import NotFoundError

from services.runtime.nats_server import EmbeddedNatsServer
from services.runtime.stream import STREAM_NAME, ensure_stream

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNatsServer]:
    server = EmbeddedNatsServer(tmp_path_factory.mktemp("nats"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def js(nats_server: EmbeddedNatsServer) -> AsyncIterator[Any]:
    """JetStream on the session's server, with a fresh, empty CRISIS stream for the test."""
    connection = await nats.connect(nats_server.url)
    context = connection.jetstream()
    with contextlib.suppress(NotFoundError):
        await context.delete_stream(STREAM_NAME)
    await ensure_stream(context)
    yield context
    await connection.close()


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The PostgreSQL server URL; skips (or fails, with CRISIS_REQUIRE_POSTGRES) when unreachable."""
    base = os.environ.get("CRISIS_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    try:
        psycopg.connect(base, autocommit=True, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        if os.environ.get("CRISIS_REQUIRE_POSTGRES"):
            raise RuntimeError(f"PostgreSQL required but unreachable at {base}") from exc
        pytest.skip(f"PostgreSQL unreachable ({exc.__class__.__name__}); set CRISIS_TEST_POSTGRES_URL")
    return base


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh database for one test, dropped afterwards."""
    name = f"crisis_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(postgres_server)
    yield urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each store-backed test runs on SQLite and on PostgreSQL, changing only this URL."""
    if request.param == "sqlite":
        return ""
    return request.getfixturevalue("postgres_url")
