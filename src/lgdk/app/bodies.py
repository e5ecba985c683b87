"""Request bodies of `lgdk app` bounded before any route sees them: every body but an
upload's (which streams to disk under its own limits, `lgdk.app.uploads`) is read whole,
up to a limit, and a longer one is answered 413 with a JSON error at once."""

from __future__ import annotations

from collections.abc import Callable

from starlette.responses import JSONResponse

DRAIN_LIMIT = 64 << 20  # bytes of a refused body read (and dropped) at most


def is_upload(path: str) -> bool:
    return path.endswith("/upload")


class BodyLimit:
    """ASGI middleware: request bodies of at most `limit` bytes, except on the paths
    `exempt` names."""

    def __init__(self, app, limit: int, exempt: Callable[[str], bool] = is_upload) -> None:
        self.app, self.limit, self.exempt = app, limit, exempt

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or self.exempt(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", ()))
        try:
            announced = int(headers.get(b"content-length", b"0") or 0)
        except ValueError:
            await self.refuse(scope, receive, send, "the request's Content-Length is not a "
                              "number", 400)
            return
        body, more = b"", True
        while more and len(body) <= self.limit and announced <= self.limit:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went away: nothing to answer
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if more or len(body) > self.limit:
            await drain(receive, more)  # so that a client still sending reads the answer
            await self.refuse(scope, receive, send)
            return
        await self.app(scope, replay(body, receive), send)

    async def refuse(self, scope, receive, send, text: str | None = None,
                     status: int = 413) -> None:
        text = text or (f"the request's body is over {self.limit >> 10} KB, this app's limit "
                        "(--max-body-kb); send smaller edits (a brush stroke of fewer points)")
        await JSONResponse({"error": text}, status)(scope, receive, send)


async def drain(receive, more: bool) -> None:
    """Read and drop what the client still sends, up to DRAIN_LIMIT bytes."""
    read = 0
    while more and read <= DRAIN_LIMIT:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        read += len(message.get("body", b""))
        more = message.get("more_body", False)


def replay(body: bytes, receive):
    """A `receive` that gives the body read already, then whatever the client sends next
    (its disconnect)."""
    sent = False

    async def receive_again():
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive_again
