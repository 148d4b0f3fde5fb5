"""Page reads, pipelined: the dashboard may sit 30-100 ms from Valkey, so a page costs one or
two round trips (a list's ids, then its records), never one per row.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import redis.asyncio as aioredis
from pydantic import ValidationError

from dashboard.views import AccountView, Totals, parse_snapshot, resolve_fx
from yquant import audit, keys, pnl, portfolio
from yquant.messages import Position
from yquant.orders import OrderRecord, parse_record
from yquant.schedules import Schedule, ScheduleSpec
from yquant.settings import Settings
from yquant.trading_state import GLOBAL

ALIAS_CACHE_S = 10.0
HEARTBEAT_KEYS_CACHE_S = 20.0
FILLED_ORDERS_READ = 2000  # realised P/L replays at most this many recent orders (pnl: older sells are unmatched)
NOTIFY_HEALTH_CACHE_S = 5.0  # the "notifications failing" banner on every page is at most this old


def text_map(raw: dict[Any, Any] | None) -> dict[str, str]:
    return {keys.text(k): keys.text(v) for k, v in (raw or {}).items()}


def trading_states(raw: dict[Any, Any] | None) -> dict[str, str]:
    states = text_map(raw)
    states.setdefault(GLOBAL, "ACTIVE")
    return states


@dataclass
class Cached:
    value: list[str]
    at: float


class Reader:
    """Reads for the pages, with tiny process-local caches for what rarely changes."""

    def __init__(self, client: aioredis.Redis, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self._aliases: Cached | None = None
        self._heartbeat_keys: Cached | None = None
        self._notify_failing: Cached | None = None

    async def failing_notifications(self) -> list[str]:
        """Destinations whose last delivery attempt failed (the notifier's status keys), cached."""
        cached = self._notify_failing
        if cached is not None and time.monotonic() - cached.at <= NOTIFY_HEALTH_CACHE_S:
            return cached.value
        found = sorted([keys.text(k) async for k in self.client.scan_iter(match=keys.NOTIFY_STATUS_PATTERN)])
        async with self.client.pipeline(transaction=False) as pipe:
            for key in found:
                pipe.hget(key, "ok")
            flags = await pipe.execute()
        failing = [key.removeprefix(keys.notify_status("")) for key, ok in zip(found, flags, strict=True) if ok == b"0"]
        self._notify_failing = Cached(failing, time.monotonic())
        return failing

    async def aliases(self) -> list[str]:
        if self._aliases is None or time.monotonic() - self._aliases.at > ALIAS_CACHE_S:
            members = await self.client.smembers(keys.ACCOUNTS_INDEX)
            found = sorted(keys.text(m) for m in members)
            if not found:
                # Before the gateway's first sync: caching "none" would hide the first account
                # for the cache's lifetime after it arrives.
                return found
            self._aliases = Cached(found, time.monotonic())
        return self._aliases.value

    async def synced_at(self) -> dict[str, str]:
        """Each account's last sync (ISO time, "" when never), in one round trip."""
        aliases = await self.aliases()
        async with self.client.pipeline(transaction=False) as pipe:
            for alias in aliases:
                pipe.hget(keys.account(alias), "synced_at")
            results = await pipe.execute()
        return {alias: keys.text(at) if at else "" for alias, at in zip(aliases, results, strict=True)}

    # --- accounts ---------------------------------------------------------------------------
    async def portfolio(self, tz: ZoneInfo) -> tuple[Totals, dict[str, str]]:
        """Every account with its positions, the FX rate used and yesterday's equity; one round trip."""
        aliases = await self.aliases()
        midnight = datetime.now(tz).replace(hour=0, minute=0, second=0, microsecond=0)
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.TRADING_STATE)
            pipe.get(keys.FX_USDKRW)
            pipe.zrevrangebyscore(keys.EQUITY_SNAPSHOTS, f"({midnight.timestamp()}", "-inf", start=0, num=1)
            for alias in aliases:
                pipe.hgetall(keys.account(alias))
                pipe.hgetall(keys.positions(alias))
            results = await pipe.execute()
        states, fx_raw, previous = results[0], results[1], results[2]
        fx = resolve_fx(self.settings.dashboard, fx_raw)
        snapshot = parse_snapshot(previous[0]) if previous else None
        previous_equity = snapshot.get("equity", {}) if snapshot else {}
        accounts: list[AccountView] = []
        for index, alias in enumerate(aliases):
            account_raw, positions_raw = results[3 + 2 * index], results[4 + 2 * index]
            if not account_raw:
                continue
            data = text_map(account_raw)
            cash = {k: Decimal(v) for k, v in orjson.loads(data.get("cash", "{}")).items()}
            positions = sorted(
                (Position.model_validate_json(v) for v in positions_raw.values()), key=lambda p: (p.market, p.ticker)
            )
            before = pnl.parse_amounts(previous_equity.get(alias)) if isinstance(previous_equity, dict) else None
            view = AccountView(alias, cash, positions, data.get("synced_at", ""), fx, before)
            view.unowned_open_orders = portfolio.unowned_of(data)
            view.open_orders_checked_at = data.get("open_orders_checked_at", "")
            accounts.append(view)
        return Totals(accounts, fx), trading_states(states)

    # --- orders -----------------------------------------------------------------------------
    async def orders(self, limit: int = 100) -> tuple[list[OrderRecord], dict[str, str]]:
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.TRADING_STATE)
            pipe.zrevrange(keys.ORDERS_INDEX, 0, limit - 1)
            pipe.smembers(keys.ORDERS_OPEN)
            states, recent, open_ids = await pipe.execute()
        ids = [keys.text(i) for i in recent]
        ids += sorted({keys.text(i) for i in open_ids} - set(ids))
        records = await self.order_records(ids)
        records.sort(key=lambda r: r.created_at, reverse=True)
        return records, trading_states(states)

    async def order_records(self, ids: list[str]) -> list[OrderRecord]:
        if not ids:
            return []
        async with self.client.pipeline(transaction=False) as pipe:
            for client_order_id in ids:
                pipe.hgetall(keys.order(client_order_id))
            rows = await pipe.execute()
        records: list[OrderRecord] = []
        for row in rows:
            if row:
                try:
                    records.append(parse_record(row))
                except ValidationError:
                    continue
        return records

    # --- signals ----------------------------------------------------------------------------
    async def signals(self, limit: int = 200) -> tuple[list[dict[str, Any]], dict[str, str]]:
        """Decided signals from the index plus those still waiting in the stream, newest first."""
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.TRADING_STATE)
            pipe.zrevrange(keys.SIGNALS_INDEX, 0, limit - 1)
            for stream in keys.SIGNAL_STREAMS:
                pipe.xrevrange(stream, count=50)
            states, indexed, *tails = await pipe.execute()
        tail = [entry for entries in tails for entry in entries]
        ids = [keys.text(i) for i in indexed]
        waiting: dict[str, dict[str, Any]] = {}
        for _entry_id, fields in tail:
            try:
                signal = orjson.loads(fields.get(b"data", b"{}")).get("signal") or {}
            except (orjson.JSONDecodeError, AttributeError):
                continue
            if signal.get("signal_id") and signal["signal_id"] not in ids:
                waiting[signal["signal_id"]] = {
                    "signal_id": signal["signal_id"],
                    "status": "received",
                    "signal": signal,
                }
        async with self.client.pipeline(transaction=False) as pipe:
            for signal_id in ids + list(waiting):
                pipe.hgetall(keys.signal_record(signal_id))
            rows = await pipe.execute()
        result: list[dict[str, Any]] = []
        for signal_id, row in zip(ids + list(waiting), rows, strict=True):
            data = text_map(row)
            if not data:
                if signal_id in waiting:
                    result.append(waiting[signal_id])
                continue
            entry: dict[str, Any] = {"signal_id": signal_id, **data}
            entry["signal"] = (
                orjson.loads(data["signal"]) if "signal" in data else waiting.get(signal_id, {}).get("signal", {})
            )
            entry["orders"] = orjson.loads(data["orders"]) if "orders" in data else []
            result.append(entry)
        result.sort(key=lambda e: str(e["signal"].get("received_at", "")), reverse=True)
        return result, trading_states(states)

    # --- schedules --------------------------------------------------------------------------
    async def schedules(self) -> tuple[list[Schedule], dict[str, str]]:
        """The order manager's schedules, soonest first, in two round trips."""
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.TRADING_STATE)
            pipe.smembers(keys.SCHEDULES_INDEX)
            states, members = await pipe.execute()
        ids = sorted(keys.text(m) for m in members)
        async with self.client.pipeline(transaction=False) as pipe:
            for schedule_id in ids:
                pipe.hgetall(keys.schedule(schedule_id))
            rows = await pipe.execute()
        found = [s for s in (parse_schedule(i, text_map(r)) for i, r in zip(ids, rows, strict=True)) if s]
        far = datetime.max.replace(tzinfo=UTC)
        found.sort(key=lambda s: (s.next_run_at or far, s.schedule_id))
        return found, trading_states(states)

    # --- system -----------------------------------------------------------------------------
    async def heartbeat_keys(self) -> list[str]:
        if self._heartbeat_keys is None or time.monotonic() - self._heartbeat_keys.at > HEARTBEAT_KEYS_CACHE_S:
            found = [keys.text(k) async for k in self.client.scan_iter(match=keys.HEARTBEAT_PATTERN, count=10_000)]
            self._heartbeat_keys = Cached(sorted(found), time.monotonic())
        return self._heartbeat_keys.value

    async def system(self, token_keys: dict[str, str]) -> dict[str, Any]:
        beats = await self.heartbeat_keys()
        aliases = await self.aliases()
        streams = [
            *keys.SIGNAL_STREAMS,
            keys.ORDERS,
            keys.CANCELS,
            keys.REVISIONS,
            keys.EXECUTIONS,
            keys.PROGRESS,
            keys.DECISIONS,
            keys.QUERIES,
            keys.QUERIES_DASHBOARD,
            keys.DEAD_LETTERS,
        ]
        notify_keys = sorted([keys.text(k) async for k in self.client.scan_iter(match=keys.NOTIFY_STATUS_PATTERN)])
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.TRADING_STATE)
            pipe.info("memory")
            pipe.xrevrange(keys.AUDIT_LOG, count=50)
            for key in beats:
                pipe.hgetall(key)
            for stream in streams:
                pipe.xlen(stream)
                pipe.xinfo_groups(stream)
            for alias in aliases:
                pipe.hget(keys.account(alias), "synced_at")
            for key in token_keys.values():
                pipe.ttl(key)
            for key in notify_keys:
                pipe.hgetall(key)
            results = await pipe.execute(raise_on_error=False)
        states, memory, audit_rows = results[0], results[1], results[2]
        position = 3
        now = time.time()
        heartbeats = []
        for row in results[position : position + len(beats)]:
            data = text_map(row) if isinstance(row, dict) else {}
            if data:
                data["age_s"] = f"{now - float(data.get('seen_at', now)):.1f}"
                heartbeats.append(data)
        position += len(beats)
        stream_rows = []
        for stream in streams:
            length, groups = results[position], results[position + 1]
            position += 2
            for group in groups if isinstance(groups, list) else []:
                fields = {keys.text(k): keys.text(v) if isinstance(v, bytes) else v for k, v in group.items()}
                stream_rows.append({"stream": stream, "length": length, **fields})
            if not isinstance(groups, list) or not groups:
                stream_rows.append({"stream": stream, "length": length if isinstance(length, int) else 0})
        synced = {}
        for alias in aliases:
            value = results[position]
            synced[alias] = keys.text(value) if value else ""
            position += 1
        tokens = {}
        for alias in token_keys:
            ttl = results[position]
            tokens[alias] = now + ttl if isinstance(ttl, int) and ttl > 0 else None
            position += 1
        notifications = []
        for key in notify_keys:
            row = results[position]
            position += 1
            data = text_map(row) if isinstance(row, dict) else {}
            if data:
                data["destination"] = key.removeprefix(keys.notify_status(""))
                notifications.append(data)
        return {
            "notifications": notifications,
            "notifications_failing": [n["destination"] for n in notifications if n.get("ok") == "0"],
            "trading_state": trading_states(states),
            "memory": memory if isinstance(memory, dict) else {},
            "audit": audit.parse(audit_rows if isinstance(audit_rows, list) else []),
            "heartbeats": sorted(heartbeats, key=lambda b: (b.get("service", ""), b.get("instance", ""))),
            "streams": stream_rows,
            "synced": synced,
            "tokens": tokens,
        }

    # --- performance ------------------------------------------------------------------------
    async def filled_orders(self, limit: int = FILLED_ORDERS_READ) -> list[OrderRecord]:
        """The last ``limit`` orders that filled at all, oldest first: what realised P/L replays."""
        ids = await self.client.zrevrange(keys.ORDERS_INDEX, 0, limit - 1)
        records = [r for r in await self.order_records([keys.text(i) for i in ids]) if r.filled_quantity > 0]
        records.sort(key=lambda r: r.created_at)
        return records

    async def performance(
        self, limit: int = FILLED_ORDERS_READ
    ) -> tuple[list[dict[str, Any]], list[OrderRecord], dict[str, str]]:
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.TRADING_STATE)
            pipe.zrange(keys.EQUITY_SNAPSHOTS, 0, -1)
            pipe.zrevrange(keys.ORDERS_INDEX, 0, limit - 1)
            states, snapshots_raw, ids = await pipe.execute()
        snapshots = [s for s in (parse_snapshot(raw) for raw in snapshots_raw) if s]
        records = await self.order_records([keys.text(i) for i in ids])
        records.sort(key=lambda r: r.created_at)
        return snapshots, records, trading_states(states)

    async def trading_states(self) -> dict[str, str]:
        return trading_states(await self.client.hgetall(keys.TRADING_STATE))


def _time(value: str | None) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value) if value else None
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed is not None and parsed.tzinfo is None else parsed


def parse_schedule(schedule_id: str, data: dict[str, str]) -> Schedule | None:
    """A schedule hash as ``yquant.schedule_store`` writes it (``spec`` + run fields)."""
    try:
        spec = ScheduleSpec.model_validate_json(data["spec"])
    except (KeyError, ValidationError):
        return None
    now = datetime.now(UTC)
    return Schedule(
        schedule_id=schedule_id,
        spec=spec,
        created_at=_time(data.get("created_at")) or now,
        updated_at=_time(data.get("updated_at")) or now,
        next_run_at=_time(data.get("next_run_at")),
        last_run_at=_time(data.get("last_run_at")),
        last_result=data.get("last_result", ""),
    )
