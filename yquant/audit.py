"""The audit log: every manual action, on the dashboard or the console (who, what, when, from where).

The notifier reads it (a trading-state change reaches the trader's phone whoever made it), the
dashboard's System page lists it. A console action's address is ``console``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import redis.asyncio as aioredis

from yquant import bus, keys

AUDIT_MAXLEN = 100_000


def entry(user: str, action: str, detail: dict[str, Any], address: str) -> dict[Any, Any]:
    """The stream fields of one audit entry (so callers can add it to their own pipeline)."""
    data = {"at": datetime.now(UTC).isoformat(), "user": user, "action": action, "address": address, "detail": detail}
    return bus.envelope("DashboardAction", orjson.dumps(data, default=str))


async def record(client: aioredis.Redis, user: str, action: str, detail: dict[str, Any], address: str) -> None:
    await client.xadd(keys.AUDIT_LOG, entry(user, action, detail, address), maxlen=AUDIT_MAXLEN, approximate=True)


def parse(rows: list[Any]) -> list[dict[str, Any]]:
    """XREVRANGE rows of the audit stream as dicts (newest first)."""
    result: list[dict[str, Any]] = []
    for entry_id, fields in rows:
        try:
            data = orjson.loads(fields.get(b"data") or fields.get("data") or b"{}")
        except orjson.JSONDecodeError:
            continue
        if isinstance(data, dict):
            data["id"] = keys.text(entry_id)
            result.append(data)
    return result
