"""What a request may send, enforced before the body is read whole.

`BodyLimit` answers 413 at once when Content-Length is over the limit, and stops a body
sent without one (chunked) as soon as it passes the limit, so a huge upload never sits in
memory. Multipart parts and fields are counted by the form parser (`Limits.max_files`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    max_body: int = 20 * 1024 * 1024  # bytes per request
    max_files: int = 64  # multipart parts (and fields) per request
    max_in_flight: int = 128  # predict requests being read, decoded or computed at once


class _TooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: 413 for a body over ``max_body`` bytes."""

    def __init__(self, app, max_body: int):
        self.app, self.max_body = app, max_body

    async def _refuse(self, send) -> None:
        body = json.dumps({"error": f"request body over {self.max_body:,} bytes"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            await self._refuse(send)
            return
        seen, started = 0, False

        async def counted_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise _TooLarge
            return message

        async def tracked_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _TooLarge:
            if not started:
                await self._refuse(send)


class Admission:
    """Predict requests admitted at once; past the bound, a 503 before anything is read or
    decoded (so overload costs the server almost nothing)."""

    def __init__(self, bound: int):
        self.bound, self.count = bound, 0

    def __enter__(self) -> Admission:
        from fastapi import HTTPException

        if self.count >= self.bound:
            raise HTTPException(503, "busy: too many requests at once, try again shortly",
                                headers={"Retry-After": "1"})
        self.count += 1
        return self

    def __exit__(self, *exc: object) -> None:
        self.count -= 1


class Timing:
    """ASGI middleware: every response's route, status and latency into `Metrics`."""

    def __init__(self, app, metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began, status = time.perf_counter(), {"code": 500}

        async def noted(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noted)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.record(route, status["code"], time.perf_counter() - began)
