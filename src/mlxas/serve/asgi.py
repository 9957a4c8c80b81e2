"""The ASGI entry of ``mlxas serve``: single spectra past FastAPI's request machinery."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["PredictFastPath"]


class PredictFastPath:
    """The ASGI application: POST /predict straight to its handler, the rest to FastAPI.

    Under load the server's CPU is the limit, and FastAPI's routing, middleware and
    dependency machinery cost about as much per single-spectrum request as the spectrum's
    processing.  The single-spectrum path skips them; anything it does not answer itself
    (a bad request, an error) is handed to the FastAPI application with the body already
    read, which runs the same handler and answers as FastAPI does (422 details, 500s).
    ``/docs`` and the OpenAPI schema still describe /predict (its FastAPI route).
    """

    def __init__(self, app: Any, answer: Callable[[bytes], Awaitable[tuple[int, bytes]]]):
        self.app = app
        self._answer = answer

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] != "/predict" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        try:
            status, content = await self._answer(body)
        except Exception:  # answered by FastAPI, with its handlers
            return await self.app(scope, _replay(body), send)
        headers = [(b"content-type", b"application/json"),
                   (b"content-length", str(len(content)).encode())]  # fmt: skip
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})
        return None


def _replay(body: bytes):
    """An ASGI ``receive`` that hands over ``body`` once, then waits as a live one does."""
    sent = False

    async def receive() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # no disconnect to report: the request is complete
        return {"type": "http.disconnect"}

    return receive
