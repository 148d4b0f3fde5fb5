"""CPU per KIS-shaped request of the async HTTP clients the gateway could use (ADR 0012).

    python -m venv /tmp/h && /tmp/h/bin/pip install httpx==0.29.0 aiohttp uvloop orjson
    /tmp/h/bin/python benchmarks/http_clients.py [--requests 5000] [--rounds 3] [--clients httpx,aiohttp]

A raw asyncio server in a child process answers every request with an order-cash answer of KIS's
shape (its CPU is not counted); each client, in a fresh process per round, sends 200 requests to
warm up, then ``--requests`` POSTs one after another on one keep-alive connection with the
gateway's headers and body sizes, and reports its own CPU time per request (``time.process_time``)
and what importing it adds to the process (VmRSS). Stand-alone on purpose: aiohttp is not one of
the project's dependencies, so this file imports nothing of the project's.
"""

from __future__ import annotations

import argparse
import asyncio
import http.cookiejar
import importlib
import socket
import statistics
import subprocess
import sys
import time
from typing import Any

ANSWER = (
    '{"rt_cd":"0","msg_cd":"APBK0013","msg1":"주문 전송 완료 되었습니다.",'
    '"output":{"KRX_FWDG_ORD_ORGNO":"91252","ODNO":"0000117057","ORD_TMD":"121052"}}'
).encode()
HEAD = (
    "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=UTF-8\r\ntr_id: TTTC0012U\r\ntr_cont: \r\n"
    f"gt_uid: 0000220220210614121052000000\r\nContent-Length: {len(ANSWER)}\r\n\r\n"
).encode()
HEADERS = {
    "content-type": "application/json; charset=utf-8",
    "authorization": "Bearer " + "x" * 350,
    "appkey": "P" + "k" * 35,
    "appsecret": "s" * 180,
    "tr_id": "TTTC0012U",
    "custtype": "P",
}
BODY = (
    b'{"CANO":"50000001","ACNT_PRDT_CD":"01","PDNO":"005930","ORD_DVSN":"00","ORD_QTY":"1",'
    b'"ORD_UNPR":"71000","EXCG_ID_DVSN_CD":"KRX","SLL_TYPE":"","CNDT_PRIC":""}'
)
CLIENTS = ("httpx", "httpx-nocookies", "httpcore", "aiohttp")


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def serve(port: int) -> None:
    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        await reader.readexactly(int(line.split(b":")[1]))
                writer.write(HEAD + ANSWER)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(connection, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


async def send(name: str, url: str, count: int) -> float:
    """CPU seconds for ``count`` POSTs with client ``name`` (after 200 unmeasured ones)."""
    module: Any = importlib.import_module(name.removesuffix("-nocookies"))
    json: Any = importlib.import_module("orjson")

    if name.startswith("httpx"):
        limits = module.Limits(max_connections=8, max_keepalive_connections=8, keepalive_expiry=60)
        jar = NoCookies() if name.endswith("-nocookies") else None  # what the gateway's client uses
        async with module.AsyncClient(timeout=5.0, limits=limits, trust_env=False, cookies=jar) as http:

            async def one() -> None:
                response = await http.post(url, content=BODY, headers=HEADERS)
                json.loads(response.content)
                response.headers.get("tr_cont")

            return await timed(one, count)
    if name == "httpcore":
        async with module.AsyncConnectionPool(max_connections=8) as pool:

            async def one() -> None:
                response = await pool.request("POST", url, headers=list(HEADERS.items()), content=BODY)
                json.loads(response.content)

            return await timed(one, count)
    async with module.ClientSession(timeout=module.ClientTimeout(total=5.0)) as session:

        async def one() -> None:
            async with session.post(url, data=BODY, headers=HEADERS) as response:
                json.loads(await response.read())
                response.headers.get("tr_cont")

        return await timed(one, count)


class NoCookies(http.cookiejar.CookieJar):
    """A jar that keeps nothing: httpx then skips copying every answer's headers for it."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None


async def timed(one: Any, count: int) -> float:
    for _ in range(200):
        await one()
    started = time.process_time()
    for _ in range(count):
        await one()
    return time.process_time() - started


def client_main(name: str, port: int, count: int) -> None:
    uvloop: Any = importlib.import_module("uvloop")
    importlib.import_module("orjson")
    before = rss_mib()
    importlib.import_module(name.removesuffix("-nocookies"))
    imported = rss_mib() - before
    cpu = uvloop.run(send(name, f"http://127.0.0.1:{port}/uapi/domestic-stock/v1/trading/order-cash", count))
    print(f"{cpu * 1e6 / count:.1f} {imported:.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", default=",".join(CLIENTS), help="comma-separated, of " + ", ".join(CLIENTS))
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve))
        return 0
    if args.client:
        client_main(args.client, args.port, args.requests)
        return 0
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    try:
        time.sleep(1.0)
        clients = [name for name in args.clients.split(",") if name]
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in clients}
        for _ in range(args.rounds):
            for name in clients:
                command = [sys.executable, __file__, "--client", name, "--port", str(port)]
                done = subprocess.run(
                    [*command, "--requests", str(args.requests)], capture_output=True, text=True, check=True
                )
                cpu_us, imported = (float(value) for value in done.stdout.split())
                runs[name].append((cpu_us, imported))
    finally:
        server.terminate()
        server.wait(10)
    for name, values in runs.items():
        per_request = [value[0] for value in values]
        print(
            f"{name}: CPU per request median {statistics.median(per_request):.0f} us "
            f"[{min(per_request):.0f}-{max(per_request):.0f}], "
            f"import adds {statistics.median(value[1] for value in values):.1f} MiB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
