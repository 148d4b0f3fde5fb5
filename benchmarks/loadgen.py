"""A lean HTTP/1.1 load generator on asyncio streams (keep-alive, no pipelining).

httpx costs more CPU per request than the webhook itself; on a 2-core machine the
generator must stay out of the way of the system it measures.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass


@dataclass
class Result:
    index: int
    sent_ns: int
    status: int
    elapsed_s: float


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()

    async def post(self, path: str, body: bytes) -> int:
        assert self.reader is not None
        assert self.writer is not None
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        self.writer.write(head + body)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        if length:
            await self.reader.readexactly(length)
        return status


async def paced(host: str, port: int, path: str, bodies: list[bytes], rate_per_s: float) -> list[Result]:
    """Send at a fixed rate; a small pool of connections absorbs a slow answer."""
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    connections = [Connection(host, port) for _ in range(8)]
    for connection in connections:
        await connection.open()
        pool.put_nowait(connection)
    results: list[Result] = []

    async def one(index: int, body: bytes) -> None:
        connection = await pool.get()
        sent_ns = time.time_ns()
        started = time.perf_counter()
        status = await connection.post(path, body)
        results.append(Result(index, sent_ns, status, time.perf_counter() - started))
        pool.put_nowait(connection)

    start = time.perf_counter()
    tasks = []
    for index, body in enumerate(bodies):
        due = start + index / rate_per_s
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(index, body)))
    await asyncio.gather(*tasks)
    for connection in connections:
        await connection.close()
    return results


async def flood(host: str, port: int, path: str, bodies: list[bytes], concurrency: int) -> list[Result]:
    """Send as fast as the server answers, ``concurrency`` requests in flight."""
    queue: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
    for item in enumerate(bodies):
        queue.put_nowait(item)
    results: list[Result] = []

    async def worker() -> None:
        connection = Connection(host, port)
        await connection.open()
        try:
            while not queue.empty():
                index, body = queue.get_nowait()
                sent_ns = time.time_ns()
                started = time.perf_counter()
                status = await connection.post(path, body)
                results.append(Result(index, sent_ns, status, time.perf_counter() - started))
        finally:
            await connection.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results
