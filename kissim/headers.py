"""KIS's response header names: the standard ones capitalised (``Content-Type``, ``Content-Length``,
``Date``), KIS's own lowercase (``tr_id``, ``tr_cont``, ``gt_uid``).

KIS's official samples turn every lowercase response header name into a Python identifier, so a
lowercase ``content-type`` crashes them. ASGI servers and Starlette lowercase header names; this
middleware gives them KIS's spelling back. It only works where the HTTP layer writes names as given:
uvicorn's h11 protocol does, its httptools protocol lowercases them again (``kissim.__main__`` serves
with h11 for that reason).
"""

from __future__ import annotations

from email.utils import formatdate

from starlette.types import ASGIApp, Message, Receive, Scope, Send

KIS_NAMES: dict[bytes, bytes] = {
    b"content-type": b"Content-Type",
    b"content-length": b"Content-Length",
    b"transfer-encoding": b"Transfer-Encoding",
    b"connection": b"Connection",
    b"date": b"Date",
}


def kis_case(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The same headers with KIS's spelling; a ``Date`` header when there is none."""
    named = [(KIS_NAMES.get(name.lower(), name), value) for name, value in headers]
    if not any(name == b"Date" for name, _ in named):
        named.insert(0, (b"Date", formatdate(usegmt=True).encode()))
    return named


class KisHeaderCase:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_case(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": kis_case(list(message.get("headers", [])))}
            await send(message)

        await self.app(scope, receive, send_with_case)
