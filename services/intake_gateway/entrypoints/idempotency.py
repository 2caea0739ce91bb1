"""The gateway's ``Requester``: the runtime's one idempotency scheme (``services/runtime/idempotency.py``) with
the gateway's refusals as problem documents and the caller as the access rules see it.

The Twilio webhooks are not answered here: Twilio sends no Idempotency-Key, and each webhook is keyed by its
MessageSid instead (``sms_webhooks.py``).
"""

# no "from __future__ import annotations": FastAPI must see the dependency's annotations as objects
from collections.abc import Awaitable, Callable

from services.intake_gateway.domain.access import Caller
from services.intake_gateway.domain.places import GeocoderUnavailable
from services.intake_gateway.entrypoints.auth import RoleDependency
from services.intake_gateway.refusals import IncidentClosed, IncidentNotFound, InvalidInput, NotYours
from services.runtime import idempotency
from services.runtime.idempotency import Answer
from services.runtime.problems import Problem

__all__ = ["Answer", "Requester", "requester"]


class Requester(idempotency.Requester):
    @property
    def caller(self) -> Caller:
        return Caller(self.principal.subject, self.principal.role.value, self.principal.responder_id)

    def refusal(self, exc: Exception) -> Problem | None:
        if isinstance(exc, InvalidInput):
            errors = [{"field": f"body.{name}", "message": message} for name, message in exc.errors]
            fields = ", ".join(e["field"] for e in errors)
            return Problem(422, f"invalid request: {fields}", errors=errors, **exc.extensions)
        if isinstance(exc, IncidentNotFound):
            return Problem(404, "no such incident")
        if isinstance(exc, NotYours):
            return Problem(
                403,
                "you may change only incidents you reported (intake), were paged for (responders), or any (directors)",
            )
        if isinstance(exc, IncidentClosed):
            return Problem(409, f"the incident is {exc.status}: it takes no more updates", incident_status=exc.status)
        if isinstance(exc, GeocoderUnavailable):
            return Problem(503, "the geocoder is not answering: retry, or give coordinates (lat, lon)")
        return None


def requester(role: RoleDependency) -> Callable[..., Awaitable[Requester]]:
    """The dependency that gives a gateway route its ``Requester``: the caller ``role`` admits (401/403
    otherwise) and the Idempotency-Key header."""
    return idempotency.requester(role, Requester)
