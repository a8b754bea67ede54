"""What stands in front of the handlers: the API key, the body size limit, and errors that never echo input.

Keys: FEATURE_STORE_API_KEY (or FEATURE_STORE_API_KEY_FILE) in the `X-API-Key` header or as
`Authorization: Bearer KEY`, compared in constant time. `POST /extract` always needs it (without a
configured key it is refused); reads need it when one is configured. Missing: 401; wrong: 403.

Body size: an ASGI middleware refuses a body over MAX_BODY_BYTES with 413 before anything parses it,
from Content-Length when sent, else by reading the streamed chunks up to the limit first.
"""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

MAX_BODY_BYTES = 8 * 1024 * 1024  # 100,000 training rows are about 7 MB
KEY_HEADER = "x-api-key"


class KeyRefused(Exception):
    def __init__(self, status: int, message: str):
        self.status = status
        self.message = message
        super().__init__(message)


def presented_key(headers: Any) -> str | None:
    """The key a request carries: X-API-Key, or Authorization: Bearer KEY."""
    key = headers.get(KEY_HEADER)
    if key:
        return key
    scheme, _, token = (headers.get("authorization") or "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def check_key(configured: str | None, presented: str | None, *, always: bool, what: str) -> None:
    """Raise KeyRefused (401 missing, 403 wrong or not configured where `always`) unless the key is right."""
    if configured is None:
        if always:
            raise KeyRefused(
                403, f"{what} needs an API key, and the server has none: set FEATURE_STORE_API_KEY (or _FILE)"
            )
        return
    if presented is None:
        raise KeyRefused(401, f"{what} needs the API key: send it as X-API-Key or Authorization: Bearer")
    if not hmac.compare_digest(presented.encode(), configured.encode()):
        raise KeyRefused(403, f"{what}: the API key is wrong")


def key_refused_response(error: KeyRefused) -> JSONResponse:
    headers = {"www-authenticate": "Bearer"} if error.status == 401 else None
    return JSONResponse(status_code=error.status, content={"detail": {"message": error.message}}, headers=headers)


def short_errors(errors: list[dict[str, Any]], limit: int = 20) -> list[dict[str, Any]]:
    """Validation errors with their location, message and type only: never the input (which may be megabytes)."""
    return [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in errors[:limit]]


async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
    errors = error.errors()
    content: dict[str, Any] = {"detail": short_errors(errors)}
    if len(errors) > 20:
        content["more_errors"] = len(errors) - 20
    return JSONResponse(status_code=422, content=content)


def _too_large(limit: int) -> bytes:
    return (
        '{"detail":{"message":"request body over ' + f"{limit:,}" + " bytes: split it (see the request limits "
        'in the API description)"}}'
    ).encode()


class BodyLimit:
    """ASGI middleware: 413 for a body over `limit` bytes, checked before the app reads it."""

    def __init__(self, app, limit: int = MAX_BODY_BYTES):
        self.app = app
        self.limit = limit

    async def _refuse(self, send) -> None:
        body = _too_large(self.limit)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                if not value.isdigit() or int(value) > self.limit:
                    return await self._refuse(send)
        if any(name == b"content-length" for name, _ in scope.get("headers", ())):
            return await self.app(scope, receive, send)
        # streamed (chunked): read it here, at most `limit` bytes, and hand the app the whole body
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                return await self._refuse(send)
            if not message.get("more_body"):
                break
        body, replayed = b"".join(chunks), False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)
