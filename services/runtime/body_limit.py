"""The request-body gate of every HTTP service: a body is withheld until the caller is admitted, and refused
(413 problem+json) as soon as more than the limit has arrived, whether it declares its length or not.

A pure ASGI middleware that wraps ``receive``, so it counts bytes as they come off the connection: a chunked
body (no Content-Length) is cut off at the limit, never read whole first. Refusals are raised from
``receive`` as ``HTTPException`` subclasses, which FastAPI re-raises from its body parsing; the app's own
exception handlers answer them, inside every other middleware (security headers included).

A response that starts before its request body has been read to the end (a refusal, or a route that never
reads the body) carries ``Connection: close``: the server then drops the connection instead of reading and
discarding the rest of the body, however large it was. The one exception: a refused caller's body that declared
at most ``SMALL_BODY`` bytes is read and dropped first, so the refusal reaches the client whole.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_LIMIT = 64 * 1024

SMALL_BODY = 8 * 1024
"""A refused request that declared a body this small has it read (and dropped) before the refusal is sent.
Closing a connection with unread bytes in it makes the kernel reset it, and a client can then lose the answer
(a 401 turned into a connection error); a few kilobytes cost nothing to read. Larger or chunked bodies are
never read for a caller who was not admitted."""

Admission = Callable[[Scope], None]
"""Called with the request's scope before its first body byte is read; raises (an ``HTTPException``) to refuse
the request, which is then answered without reading its body."""


class BodyTooLarge(HTTPException):
    """More than the limit was declared or received: answered 413 by the app's HTTPException handler."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request bodies are limited to {limit} bytes")


class RequestBodyLimit:
    """Admits, then counts, every HTTP request body; see the module docstring."""

    def __init__(self, app: ASGIApp, *, limit: int = DEFAULT_LIMIT, admit: Admission | None = None) -> None:
        self.app = app
        self.limit = limit
        self.admit = admit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length")
        has_body = "transfer-encoding" in headers or declared not in (None, "0")
        too_long = declared is not None and (not declared.isdigit() or int(declared) > self.limit)
        finished = not has_body
        small_declared = declared is not None and declared.isdigit() and 0 < int(declared) <= SMALL_BODY
        admitted = False
        received = 0
        refusal: HTTPException | None = None

        async def limited_receive() -> Message:
            nonlocal finished, admitted, received, refusal
            if finished:  # the body was read (or there is none): what is left is the disconnect notice
                return await receive()
            if refusal is not None:  # once refused, never read on, whoever asks again
                raise refusal
            try:
                if not admitted:
                    if self.admit is not None:
                        try:
                            self.admit(scope)
                        except HTTPException:
                            if small_declared:  # read it, so the refusal is not lost to a reset connection
                                finished = await _drain(receive)
                            raise
                    admitted = True
                    if too_long:
                        raise BodyTooLarge(self.limit)
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > self.limit:
                        raise BodyTooLarge(self.limit)
                    finished = not message.get("more_body", False)
                return message
            except HTTPException as exc:
                refusal = exc
                raise

        async def closing_send(message: Message) -> None:
            if message["type"] == "http.response.start" and not finished:
                MutableHeaders(scope=message)["connection"] = "close"
            await send(message)

        await self.app(scope, limited_receive, closing_send)


async def _drain(receive: Receive) -> bool:
    """Read a (small, declared) request body to its end and drop it; True once it ended."""
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return message["type"] == "http.request"
