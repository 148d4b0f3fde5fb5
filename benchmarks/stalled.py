"""A stalled notification destination must not slow an alert: the paced phases again, notifier on.

The second system runs as the first (``benchmarks.__main__``) with one change: a notifier whose
only destination accepts connections and never answers (a chat service that hangs). Every fill
and refusal is then an attempt that waits out the notifier's request timeout and is retried, on
the same two cores as the alert path. ``make bench`` prints both systems' end-to-end latencies
side by side; the notifier is off the critical path if they agree within the runs' own spread.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import Any

import orjson


class StalledServer:
    """Accepts TCP connections on loopback, reads what arrives and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = int(self.sock.getsockname()[1])
        self.accepted = 0
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, name="stalled-destination", daemon=True)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            self.accepted += 1
            self.held.append(conn)  # kept open, unread: the client waits for its timeout

    def __enter__(self) -> StalledServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()

    def destinations(self) -> str:
        """``YQ_NOTIFIER__DESTINATIONS`` naming this server as a generic JSON webhook."""
        return orjson.dumps({"stalled": {"kind": "webhook", "url": f"http://127.0.0.1:{self.port}/hook"}}).decode()


def with_stalled_notifier(measure: Callable[[dict[str, str]], dict[str, Any]]) -> dict[str, Any]:
    """``measure(extra_env)`` on a system whose notifier delivers to a stalled destination."""
    with StalledServer() as server:
        result = measure({"YQ_NOTIFIER__DESTINATIONS": server.destinations(), "YQ_NOTIFIER__TIMEOUT_S": "10"})
        result["destination_connections"] = server.accepted
    return result
