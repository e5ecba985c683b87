"""Who may use `lgdk app`: off the loopback address, only those who hold its token (the
printed URL carries it, as Jupyter's does). A request with the right `?token=` gets it as
a cookie, so the page and everything it loads afterwards need no more; any request
without it is answered 403 before any work is done."""

from __future__ import annotations

import ipaddress
import secrets

from starlette.requests import Request
from starlette.responses import JSONResponse

HEADER = "x-lgdk-token"


def is_loopback(host: str) -> bool:
    """Whether an address to listen on reaches this computer only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def new_token() -> str:
    return secrets.token_urlsafe(24)


class TokenGate:
    """ASGI middleware: HTTP requests must carry `token` (query, cookie or header)."""

    def __init__(self, app, token: str) -> None:
        self.app, self.token = app, token.encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        cookie = f"lgdk_token_{request.url.port or 80}"  # apps on other ports keep theirs
        from_query = request.query_params.get("token")
        given = from_query or request.cookies.get(cookie) or request.headers.get(HEADER)
        if not (given and secrets.compare_digest(given.encode(), self.token)):
            response = JSONResponse({"error": "this app needs its token: open the URL the "
                                     "server printed (it ends in ?token=...)"}, 403)
            await response(scope, receive, send)
            return
        if not from_query:
            await self.app(scope, receive, send)
            return

        async def send_with_cookie(message):
            if message["type"] == "http.response.start":
                value = f"{cookie}={self.token.decode()}; Path=/; HttpOnly; SameSite=Strict"
                message = {**message, "headers": [*message.get("headers", []),
                                                   (b"set-cookie", value.encode())]}
            await send(message)

        await self.app(scope, receive, send_with_cookie)
