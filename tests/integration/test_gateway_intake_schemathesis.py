"""Bad input never hurts: schemathesis generates requests from the gateway's own OpenAPI document and sends
them over real HTTP to the real app on its own nats-server. No answer may be a 5xx, and every answer must
conform to the document (a declared status code, its content type, its body schema, its headers).

Each request carries a bearer token of a role the operation admits (read from its ``require_role``
dependency), so generated bodies get past authentication and reach validation and the use cases.
Bounded: 25 examples per operation, positive and negative data, no Hypothesis deadline.
"""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from services.intake_gateway.bootstrap import build
from services.intake_gateway.entrypoints.auth import allowed_roles_of
from services.intake_gateway.settings import GatewaySettings
from services.runtime.credentials import AccessRole, issue_credential
from services.runtime.nats_server import EmbeddedNatsServer
from tests.support.asgi_server import serving

TOKENS = {role: f"fuzz-{role.value}-token" for role in AccessRole}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
]


def admitted_role(route: APIRoute) -> AccessRole | None:
    pending = list(route.dependant.dependencies)
    while pending:
        dependency = pending.pop()
        roles = allowed_roles_of(dependency.call)
        if roles:
            return sorted(roles)[0]
        pending.extend(dependency.dependencies)
    return None


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    server = EmbeddedNatsServer(tmp_path_factory.mktemp("fuzz-nats"))
    server.start()
    credentials = tmp_path_factory.mktemp("fuzz-auth") / "credentials.json"
    for role, token in TOKENS.items():
        issue_credential(credentials, f"fuzz-{role.value}", role, token=token)
    app = build(GatewaySettings(nats_url=server.url, credentials_file=credentials))
    roles = {
        (method, route.path_format): admitted_role(route)
        for route in app.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    try:
        with serving(app) as url:
            yield app, url, roles
    finally:
        server.stop()


# The document is read from an app that is built but never started (building connects to nothing); the app
# under test is built the same way in the fixture. (schemathesis.pytest.from_fixture does not run on pytest 9.)
schema = schemathesis.openapi.from_dict(build(GatewaySettings()).openapi())


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture],
)
def test_no_input_gets_a_5xx_or_an_answer_outside_the_openapi_document(case, served) -> None:
    _, url, roles = served
    role = roles.get((case.method.upper(), case.path))
    headers = {"Authorization": f"Bearer {TOKENS[role]}"} if role else {}
    case.call_and_validate(base_url=url, headers=headers, checks=CHECKS, timeout=10)
