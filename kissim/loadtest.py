"""Order throughput against a running kissim on loopback: ``python -m kissim.loadtest``.

    python -m kissim --port 18999 --mode real --no-rate-limit --always-open --krw 100000000000
    python -m kissim.loadtest --port 18999 --orders 4000 --concurrency 4 --client httpx
    python -m kissim.loadtest --port 18999 --orders 6000 --concurrency 16 --client raw

``httpx`` uses an httpx AsyncClient (on a slow machine the client is the bottleneck); ``raw`` writes
HTTP/1.1 over keep-alive asyncio streams, which shows what the server itself sustains. Loopback only,
bounded by ``--orders``.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import httpx
import orjson
import uvloop

PATH = "/uapi/domestic-stock/v1/trading/order-cash"
ORDER = {"CANO": "70000001", "ACNT_PRDT_CD": "01", "PDNO": "005930", "ORD_DVSN": "00", "ORD_QTY": "1"}


async def _token(base: str, appkey: str) -> str:
    async with httpx.AsyncClient(base_url=base, trust_env=False) as client:
        body = {"grant_type": "client_credentials", "appkey": appkey, "appsecret": "loadtest-secret"}
        response = await client.post("/oauth2/tokenP", json=body)
        token: str = response.json()["access_token"]
        return token


def _headers(token: str, appkey: str) -> dict[str, str]:
    return {
        "content-type": "application/json; charset=utf-8",
        "authorization": f"Bearer {token}",
        "appkey": appkey,
        "appsecret": "loadtest-secret",
        "tr_id": "TTTC0012U",
        "custtype": "P",
    }


async def run_httpx(base: str, headers: dict[str, str], body: dict[str, str], orders: int, workers: int) -> int:
    accepted = 0
    todo = iter(range(orders))
    limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30, trust_env=False) as client:

        async def worker() -> None:
            nonlocal accepted
            for _ in todo:
                response = await client.post(PATH, json=body, headers=headers)
                accepted += response.status_code == 200 and response.json()["rt_cd"] == "0"

        await asyncio.gather(*(worker() for _ in range(workers)))
    return accepted


async def run_raw(port: int, headers: dict[str, str], body: dict[str, str], orders: int, workers: int) -> int:
    payload = orjson.dumps(body)
    head = "".join(f"{key}: {value}\r\n" for key, value in headers.items())
    request = (
        f"POST {PATH} HTTP/1.1\r\nhost: 127.0.0.1\r\n{head}content-length: {len(payload)}\r\n\r\n".encode() + payload
    )
    accepted = 0

    async def connection(count: int) -> None:
        nonlocal accepted
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(count):
            writer.write(request)
            header = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1]) for line in header.split(b"\r\n") if line.lower().startswith(b"content-length")
            )
            accepted += b'"rt_cd":"0"' in await reader.readexactly(length)
        writer.close()
        await writer.wait_closed()

    await asyncio.gather(*(connection(orders // workers) for _ in range(workers)))
    return accepted


async def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m kissim.loadtest")
    parser.add_argument("--port", type=int, default=18999)
    parser.add_argument("--orders", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--client", choices=["httpx", "raw"], default="httpx")
    parser.add_argument("--price", default="60000", help="limit price; below the market the orders rest")
    args = parser.parse_args()
    base = f"http://127.0.0.1:{args.port}"
    appkey = f"LOADTEST{time.time_ns()}"
    headers = _headers(await _token(base, appkey), appkey)
    body = ORDER | {"ORD_UNPR": args.price}
    orders = args.orders - args.orders % args.concurrency
    started = time.perf_counter()
    if args.client == "httpx":
        accepted = await run_httpx(base, headers, body, orders, args.concurrency)
    else:
        accepted = await run_raw(args.port, headers, body, orders, args.concurrency)
    elapsed = time.perf_counter() - started
    print(f"{args.client}: {orders} orders ({accepted} accepted) in {elapsed:.2f} s = {orders / elapsed:.0f} orders/s")


if __name__ == "__main__":
    uvloop.run(main())
