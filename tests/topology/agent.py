"""A helper process inside one network namespace of the topology test.

It reads one JSON request per line on stdin and answers one JSON line on stdout, so the test
(which stays in the root namespace, outside the lab network) can open TCP connections, make
HTTP(S) requests with a cookie jar, and run Valkey commands *from* that host.
"""

from __future__ import annotations

import json
import socket
import sys
from typing import Any

import httpx
from redis import Redis
from redis.exceptions import RedisError


def tcp(request: dict[str, Any]) -> dict[str, Any]:
    try:
        with socket.create_connection((request["host"], int(request["port"])), timeout=float(request["timeout"])):
            return {"ok": True}
    except OSError as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}


def http(client: httpx.Client, request: dict[str, Any]) -> dict[str, Any]:
    extensions = {"sni_hostname": request["sni"]} if request.get("sni") else None
    try:
        response = client.request(
            request.get("method", "GET"),
            request["url"],
            headers=request.get("headers"),
            json=request.get("json"),
            data=request.get("data"),
            timeout=float(request.get("timeout", 5)),
            extensions=extensions,
        )
    except httpx.HTTPError as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return {"ok": True, "status": response.status_code, "text": response.text[:20000]}


def valkey(request: dict[str, Any]) -> dict[str, Any]:
    client = Redis.from_url(
        request["url"],
        username=request.get("username"),
        password=request.get("password"),
        socket_timeout=3,
        socket_connect_timeout=3,
        decode_responses=True,
        driver_info=None,
    )
    try:
        result = client.execute_command(*request["command"])  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
        return {"ok": True, "result": result}
    except RedisError as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    finally:
        client.close()


def main() -> None:
    client = httpx.Client(verify=False, follow_redirects=False, trust_env=False)  # noqa: S501 - Caddy's test CA
    for line in sys.stdin:
        request = json.loads(line)
        operation = request.pop("op")
        if operation == "tcp":
            answer = tcp(request)
        elif operation == "http":
            answer = http(client, request)
        elif operation == "valkey":
            answer = valkey(request)
        else:
            answer = {"ok": False, "error": f"unknown op {operation}"}
        sys.stdout.write(json.dumps(answer, default=str) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
