"""uvicorn's HTTP protocol with a deadline for the request head.

uvicorn closes idle keep-alive connections but waits forever for a request whose headers stall
(a connection that sends ``POST /webhook HTTP/1.1`` and then nothing holds its slot for good).
This protocol closes a connection whose request head is not complete within ``header_timeout_s``
of its first byte (or of the connection, for the first request). The body has its own deadline
in the app (``webhook.body_timeout_s``, answered 408).
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


def guarded_protocol(header_timeout_s: float) -> type[HttpToolsProtocol]:
    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        _head_deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm_head_deadline()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self._head_deadline is None:
                self._arm_head_deadline()

        def on_headers_complete(self) -> None:
            self._cancel_head_deadline()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_head_deadline()
            super().connection_lost(exc)

        def _arm_head_deadline(self) -> None:
            self._head_deadline = self.loop.call_later(header_timeout_s, self._head_timed_out)

        def _cancel_head_deadline(self) -> None:
            if self._head_deadline is not None:
                self._head_deadline.cancel()
                self._head_deadline = None

        def _head_timed_out(self) -> None:
            self._head_deadline = None
            if not self.transport.is_closing():
                self.transport.close()

    return GuardedHttpToolsProtocol
