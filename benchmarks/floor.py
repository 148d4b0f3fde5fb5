"""The floor: the cheapest pipeline of yQuant's shape, measured in the same run as the system.

ASGI POST -> XADD -> consumer group -> XADD -> consumer group -> HTTP POST to a raw server.
Each stage is its own process, so its CPU per alert is the floor for the matching service.
Run one stage with ``python -m benchmarks.floor STAGE VALKEY_URL PORT``.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from typing import Any

import redis.asyncio as aredis

IN_STREAM, OUT_STREAM, GROUP = "floor:signals", "floor:orders", "floor"


async def ingress(valkey_url: str, port: int) -> None:
    import uvicorn

    client = aredis.Redis.from_url(valkey_url)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        await client.xadd(IN_STREAM, {"body": body})
        await send({"type": "http.response.start", "status": 202, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    await uvicorn.Server(config).serve()


async def relay(valkey_url: str, source: str, sink: str | None, sink_port: int) -> None:
    import httpx

    client = aredis.Redis.from_url(valkey_url)
    try:
        await client.xgroup_create(source, GROUP, id="0", mkstream=True)
    except aredis.ResponseError:
        pass
    http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{sink_port}")
    while True:
        replies: Any = await client.xreadgroup(GROUP, "c", {source: ">"}, count=64, block=1000)
        for _, entries in replies:
            for entry_id, fields in entries:
                if sink is not None:
                    await client.xadd(sink, fields)
                else:
                    await http.post("/order", content=fields[b"body"])
                await client.xack(source, GROUP, entry_id)


async def raw_sink(port: int, counter_file: str) -> None:
    count = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal count
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            count += 1
            with open(counter_file, "w") as handle_file:
                handle_file.write(str(count))
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            await writer.drain()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    await server.serve_forever()


def stage_main(stage: str, valkey_url: str, port: int, extra: str) -> None:
    if stage == "webhook":
        asyncio.run(ingress(valkey_url, port))
    elif stage == "ordermanager":
        asyncio.run(relay(valkey_url, IN_STREAM, OUT_STREAM, port))
    elif stage == "brokergateway":
        asyncio.run(relay(valkey_url, OUT_STREAM, None, port))
    else:
        asyncio.run(raw_sink(port, extra))


def start_floor(
    valkey_url: str, ingress_port: int, sink_port: int, counter_file: str
) -> dict[str, subprocess.Popen[bytes]]:
    def spawn(stage: str, port: int, extra: str = "") -> subprocess.Popen[bytes]:
        argv = [sys.executable, "-m", "benchmarks.floor", stage, valkey_url, str(port), extra]
        return subprocess.Popen(argv, env=os.environ.copy())

    return {
        "sink": spawn("sink", sink_port, counter_file),
        "webhook": spawn("webhook", ingress_port),
        "ordermanager": spawn("ordermanager", 0),
        "brokergateway": spawn("brokergateway", sink_port),
    }


def wait_count(counter_file: str, expected: int, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    seen = 0
    while time.monotonic() < deadline:
        try:
            with open(counter_file) as handle:
                seen = int(handle.read() or 0)
        except (OSError, ValueError):
            seen = seen
        if seen >= expected:
            break
        time.sleep(0.1)
    return seen


if __name__ == "__main__":
    stage_main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else "")
