"""Store and forward: alerts accepted while Valkey could not take them, on the webhook's own disk.

When Valkey is unreachable (VM1 restarting, the private link down) the webhook still
authenticates and validates an alert, appends it here, fsyncs, and answers 202 ``spooled``.
A forwarder hands the journal to Valkey in order (the same ``yq_ingest`` call, so the dedupe
key is set there as for any alert) once it answers again; while the journal holds anything,
new alerts join its end, so the order manager sees alerts in the order they came.

Files, in ``webhook.spool_dir``:
* ``journal.jsonl``: one JSON object per alert (dedupe key, TTL, the encoded message, signal id),
  appended and fsynced before the answer;
* ``forwarded``: how many of the journal's lines Valkey already has, replaced atomically.
A crash between forwarding and recording it forwards a line again: ``yq_ingest`` finds its
dedupe key and appends nothing, so nothing is doubled. Once everything is forwarded the count
is reset before the journal is emptied, for the same reason.

Bounded by ``webhook.spool_max_alerts``; when full, alerts get 503 as without a spool.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import orjson

logger = logging.getLogger("webhook.spool")

JOURNAL = "journal.jsonl"
FORWARDED = "forwarded"


class SpoolFull(Exception):
    """The journal holds ``max_alerts`` alerts: refuse (503) rather than grow without bound."""


@dataclass(frozen=True, slots=True)
class SpooledAlert:
    dedupe_key: str
    ttl: int
    payload: bytes
    signal_id: str

    def line(self) -> bytes:
        record = {"k": self.dedupe_key, "t": self.ttl, "p": self.payload.decode(), "s": self.signal_id}
        return orjson.dumps(record) + b"\n"

    @classmethod
    def parse(cls, line: bytes) -> SpooledAlert:
        record = orjson.loads(line)
        return cls(str(record["k"]), int(record["t"]), str(record["p"]).encode(), str(record["s"]))


class Spool:
    def __init__(self, directory: Path, max_alerts: int) -> None:
        self.directory = directory
        self.max_alerts = max_alerts
        self.pending: deque[SpooledAlert] = deque()
        self.keys: dict[str, str] = {}  # dedupe key -> signal id, of what is still pending
        self._forwarded = 0  # journal lines Valkey already has
        self._lock = asyncio.Lock()
        self._loaded = False

    @property
    def journal(self) -> Path:
        return self.directory / JOURNAL

    def load(self) -> None:
        """Read what an earlier run left (idempotent). Creates the folder, so a start-up call
        also proves it is writable."""
        if self._loaded:
            return
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        lines: list[bytes] = []
        if self.journal.exists():
            raw = self.journal.read_bytes()
            # A torn last line (a crash mid-append, never answered) is dropped.
            lines = [line for line in raw.split(b"\n") if line.strip()]
            if raw and not raw.endswith(b"\n") and lines:
                lines.pop()
                self._rewrite(lines)
        forwarded_path = self.directory / FORWARDED
        done = int(forwarded_path.read_text().strip() or 0) if forwarded_path.exists() else 0
        self._forwarded = min(done, len(lines))
        for line in lines[self._forwarded :]:
            alert = SpooledAlert.parse(line)
            self.pending.append(alert)
            self.keys[alert.dedupe_key] = alert.signal_id
        self._loaded = True
        if self.pending:
            logger.warning("spooled alerts from an earlier run", extra={"count": len(self.pending)})

    def __len__(self) -> int:
        return len(self.pending)

    async def append(self, alert: SpooledAlert) -> None:
        async with self._lock:
            self.load()
            if len(self.pending) >= self.max_alerts:
                raise SpoolFull
            await asyncio.to_thread(self._append_line, alert.line())
            self.pending.append(alert)
            self.keys[alert.dedupe_key] = alert.signal_id

    async def mark_forwarded(self, alert: SpooledAlert) -> None:
        """Valkey has ``alert`` (the head of the journal)."""
        async with self._lock:
            assert self.pending
            assert self.pending[0] is alert
            self.pending.popleft()
            self.keys.pop(alert.dedupe_key, None)
            self._forwarded += 1
            if self.pending:
                await asyncio.to_thread(self._write_forwarded, self._forwarded)
            else:
                # Count first, then the journal: a crash between the two forwards again (harmless).
                await asyncio.to_thread(self._write_forwarded, 0)
                await asyncio.to_thread(self._rewrite, [])
                self._forwarded = 0

    def _append_line(self, line: bytes) -> None:
        fd = os.open(self.journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def _write_forwarded(self, count: int) -> None:
        temporary = self.directory / (FORWARDED + ".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, str(count).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, self.directory / FORWARDED)

    def _rewrite(self, lines: list[bytes]) -> None:
        temporary = self.directory / (JOURNAL + ".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, b"".join(line + b"\n" for line in lines))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, self.journal)
