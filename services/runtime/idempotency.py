"""One way a route that records something is answered: who asks, with which Idempotency-Key, once per key.

Every route that appends an event for a caller with a bearer token (the gateway's reports, incident updates and
admin API; the workspace's follow-up and documentation commands) takes a ``Requester`` (the dependency
``requester(role)``: the caller its role admits, and the Idempotency-Key it sent) and answers through
``Requester.answer_once(request body, use case)``:

- Without a key the use case runs and its answer is sent; every id it records is new.
- With a key (scoped to the caller, the method and the path) the key is claimed in the service's idempotency
  KV bucket with a random seed (``idempotency_kv.py``), the use case records under ids derived from that seed
  (``RequestIds``) and its answer is stored. A retry with the key gets the first answer again, with its status
  and body and the header ``Idempotent-Replayed: true``, however much later (up to the bucket's retention,
  long after the stream's 300 s de-duplication window) and without running the use case, so nothing is
  appended twice. The same key with a different request is a 422; while the first request with it is still
  within its answer deadline, a 409.
- A use case's refusal becomes a problem document through the service's ``refusal`` mapping (a ``Requester``
  subclass names its own refusals). The stream's ``NotRecorded`` (503) and ``OutcomeUnknown`` (504) pass through
  to the handlers of ``install_problem_handlers``. A request that failed frees its key at once and keeps its
  seed, so a retry records under the same ids and the stream stores a re-publish once.

An app using it sets ``app.state.idempotency`` (a ``KvIdempotencyStore``) and
``app.state.answer_deadline_seconds`` (the publish deadline).
"""

# no "from __future__ import annotations": FastAPI must see the dependency's annotations as objects, and the
# one in requester() names a closure variable, which a string annotation could not be resolved to
import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, NamedTuple
from uuid import uuid4

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.runtime.credentials import Principal
from services.runtime.idempotency_kv import Claim, KeyInFlight, KeyReused, StoredAnswer
from services.runtime.problems import Problem
from services.runtime.request_ids import FRESH, RequestIds
from services.runtime.stream import ANSWER_BY, NEVER_HANDED_OVER, NotRecorded

log = logging.getLogger(__name__)

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="send the same key when retrying: the first answer is returned again, nothing is recorded twice",
    ),
]


class Answer(NamedTuple):
    status: int
    body: Any  # JSON-ready
    headers: dict[str, str] = {}  # noqa: RUF012 - a NamedTuple default, never mutated


UseCase = Callable[[RequestIds], Awaitable[Answer]]
"""Runs a use case with the ids it is to record under and says what to answer."""


@dataclass(frozen=True)
class Requester:
    """Who sent a request that records something, and the Idempotency-Key they sent (None: none)."""

    principal: Principal
    idempotency_key: str | None
    request: Request

    def refusal(self, exc: Exception) -> Problem | None:
        """The problem document a use case's refusal ``exc`` is answered with; None: not a refusal (it passes on).
        A service's subclass maps its own refusals."""
        return None

    async def answer_once(self, body: BaseModel | Mapping[str, Any], use_case: UseCase) -> JSONResponse:
        """Run ``use_case`` once per Idempotency-Key (see the module's docstring); ``body`` is what the request
        asked for (its JSON body, or its query for a DELETE), which a retry with the same key must repeat."""
        if self.idempotency_key is None:
            answer_by = ANSWER_BY.set(
                asyncio.get_running_loop().time() + self.request.app.state.answer_deadline_seconds
            )
            try:
                return _response(await self._refusals_as_problems(use_case(FRESH)))
            finally:
                ANSWER_BY.reset(answer_by)
        state = self.request.app.state
        store = state.idempotency
        scope = f"{self.principal.subject}\n{self.request.method} {self.request.url.path}\n{self.idempotency_key}"
        fingerprint = _fingerprint(body)
        deadline = asyncio.get_running_loop().time() + state.answer_deadline_seconds
        claim = await _claim(store, scope, fingerprint, deadline)
        if isinstance(claim, StoredAnswer):
            return JSONResponse(
                claim.body, status_code=claim.status, headers={**claim.headers, "Idempotent-Replayed": "true"}
            )
        # the claim lasts as long as this request may take to answer (and a margin): then a retry may take it over
        answer_by = ANSWER_BY.set(deadline)
        try:
            answer = await self._refusals_as_problems(use_case(RequestIds(claim.seed)))
        except BaseException as failure:
            await _free(store, scope, fingerprint, claim, failure)
            raise
        finally:
            ANSWER_BY.reset(answer_by)
        try:  # bounded like the rest of the request: the answer is due now, whether or not it could be kept
            remaining = max(0.2, deadline + ANSWER_MARGIN_SECONDS - asyncio.get_running_loop().time())
            await asyncio.wait_for(store.complete(scope, fingerprint, StoredAnswer(*answer), claim), remaining)
        except Exception as exc:  # noqa: BLE001 - recorded anyway; a retry after the claim ends re-runs, same ids
            log.warning("could not store an idempotent answer: %s", type(exc).__name__)
        return _response(answer)

    async def _refusals_as_problems(self, outcome: Awaitable[Answer]) -> Answer:
        """The use case's answer, or its refusal as a problem document (``refusal``). ``NotRecorded`` (503) and
        ``OutcomeUnknown`` (504) pass through to the handlers installed by ``install_problem_handlers``."""
        try:
            return await outcome
        except Exception as exc:
            problem = self.refusal(exc)
            if problem is None:
                raise
            raise problem from None


ANSWER_MARGIN_SECONDS = 1.0
"""Beyond the answer deadline, at most this long for keeping the answer with its key."""


def requester(
    role: Callable[..., Awaitable[Principal]], kind: type[Requester] = Requester
) -> Callable[..., Awaitable[Requester]]:
    """The dependency that gives a route its ``Requester`` (of the service's ``kind``): the caller ``role``
    admits (401/403 otherwise) and the Idempotency-Key header."""

    async def requester_with_key(
        request: Request,
        principal: Annotated[Principal, Depends(role)],
        idempotency_key: IdempotencyKey = None,
    ) -> Requester:
        return kind(principal, idempotency_key, request)

    return requester_with_key


def _fingerprint(body: BaseModel | Mapping[str, Any]) -> str:
    content = body.model_dump(mode="json") if isinstance(body, BaseModel) else dict(body)
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()


async def _claim(store: Any, scope: str, fingerprint: str, deadline: float) -> Claim | StoredAnswer:  # noqa: ANN401
    """The key for this request, or the answer already given with it. While NATS is unreachable it waits for it
    until the answer deadline, as publishing does; then nothing of the request was sent: 503."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            return await store.begin(scope, fingerprint)
        except KeyReused:
            raise Problem(422, "this Idempotency-Key was used with a different request; use a new key") from None
        except KeyInFlight:
            raise Problem(409, "a request with this Idempotency-Key is still being handled; retry shortly") from None
        except NEVER_HANDED_OVER as exc:
            if loop.time() >= deadline:
                raise NotRecorded(uuid4()) from exc
            await asyncio.sleep(0.05)
        except Exception as exc:
            log.error("idempotency store unavailable: %s", type(exc).__name__)
            raise NotRecorded(uuid4()) from exc  # nothing of this request reached the stream


async def _free(store: Any, scope: str, fingerprint: str, claim: Claim, failure: BaseException) -> None:  # noqa: ANN401
    """Let a retry run at once: a fresh claim refused before anything was sent is deleted (the key may then
    come with a corrected request); otherwise the claim is kept as retryable, with its seed."""
    refused = isinstance(failure, Problem) and failure.status < 500
    try:
        if refused and claim.fresh:
            await store.release(scope)
        else:
            await store.give_up(scope, fingerprint, claim)
    except Exception as exc:  # noqa: BLE001 - the claim then ends at its deadline
        log.warning("could not free an idempotency key: %s", type(exc).__name__)


def _response(answer: Answer) -> JSONResponse:
    return JSONResponse(answer.body, status_code=answer.status, headers=answer.headers)
