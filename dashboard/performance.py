"""Performance: daily equity snapshots, the equity curve, return, drawdown, win rate, CSV exports.

A snapshot is taken once per KRX trading day at ``snapshot_time`` (dashboard time zone) and
stored in ``keys.EQUITY_SNAPSHOTS`` scored by the day's midnight, so retaking a day replaces
it; ``keys.equity_snapshot_taken(day)`` (SET NX) makes one dashboard take it, however many run.
A snapshot is of the close: an account whose last sync is older than the day's KRX close (a
gateway down all afternoon) is named in ``stale_accounts`` and the claim is kept as ``stale``,
so the day's snapshot is taken again once every account has synced since the close.
Realised P/L, win rate and the trades export come from ``yquant.pnl`` (average cost), as on
every page.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from dashboard.data import Reader
from dashboard.views import Totals, to_decimal
from yquant import keys, pnl, runtime
from yquant.markets import is_trading_day, session_close
from yquant.messages import Market
from yquant.orders import OrderRecord

logger = logging.getLogger(__name__)

CHECK_INTERVAL_S = 60.0
ZERO = Decimal(0)


CLAIM_TAKEN = b"1"
CLAIM_STALE = b"stale"


def synced_since(synced_at: str, moment: datetime) -> bool:
    try:
        synced = datetime.fromisoformat(synced_at)
    except ValueError:
        return False
    if synced.tzinfo is None:
        synced = synced.replace(tzinfo=UTC)
    return synced >= moment


def stale_accounts(totals: Totals, day: date) -> list[str]:
    """The accounts whose last sync is older than ``day``'s KRX close: their equity is not the close's."""
    close = session_close(Market.KRX, day)
    return [a.alias for a in totals.accounts if not synced_since(a.synced_at, close)]


def snapshot_of(totals: Totals, day: date, now: datetime) -> dict[str, Any]:
    return {
        "date": day.isoformat(),
        "taken_at": now.astimezone(UTC).isoformat(),
        "fx_usdkrw": str(totals.fx.rate),
        "fx_source": totals.fx.source,
        "equity_krw": str(totals.equity_krw),
        "accounts": {a.alias: str(a.equity_krw) for a in totals.accounts},
        # Per account and currency, unconverted: tomorrow's day P/L is the change of each.
        "equity": {a.alias: {c: str(v) for c, v in a.equity.items()} for a in totals.accounts},
        "cash": {c: str(v) for c, v in totals.cash.items()},
        "stale_accounts": stale_accounts(totals, day),
    }


async def store_snapshot(client: aioredis.Redis, snapshot: dict[str, Any], tz: ZoneInfo) -> None:
    """Replace the day's snapshot (scored by its midnight in ``tz``)."""
    midnight = datetime.combine(date.fromisoformat(snapshot["date"]), time(0), tz).timestamp()
    async with client.pipeline(transaction=True) as pipe:
        pipe.zremrangebyscore(keys.EQUITY_SNAPSHOTS, midnight, midnight)
        pipe.zadd(keys.EQUITY_SNAPSHOTS, {orjson.dumps(snapshot): midnight})
        await pipe.execute()


async def take_snapshot(reader: Reader, tz: ZoneInfo, now: datetime | None = None) -> dict[str, Any] | None:
    now = now or datetime.now(UTC)
    totals, _ = await reader.portfolio(tz)
    if not totals.accounts:
        return None
    snapshot = snapshot_of(totals, now.astimezone(tz).date(), now)
    await store_snapshot(reader.client, snapshot, tz)
    return snapshot


def snapshot_due(now: datetime, tz: ZoneInfo, at: str) -> date | None:
    """Today's date (in ``tz``) once it is a KRX trading day past ``at`` (HH:MM), else None."""
    local = now.astimezone(tz)
    hour, minute = (int(part) for part in at.split(":"))
    if local.time() < time(hour, minute):
        return None
    if not is_trading_day(Market.KRX, local.date()):
        return None
    return local.date()


async def snapshot_if_due(reader: Reader, tz: ZoneInfo, at: str, now: datetime) -> dict[str, Any] | None:
    """Take the day's snapshot once it is due and no dashboard has taken it; the snapshot or None.

    The day is claimed (SET NX) before the read, so two dashboards never both take it; a claim
    that took nothing, because no account has synced yet or Valkey failed mid-way, is given back,
    so the next check tries again instead of leaving the day without a snapshot (and tomorrow
    without a day P/L). A snapshot with stale accounts leaves the claim ``stale``: a later check
    that finds every account synced since the close takes the day again (SET XX GET makes one
    dashboard do it), replacing the stale one.
    """
    day = snapshot_due(now, tz, at)
    if day is None:
        return None
    claim = keys.equity_snapshot_taken(day.isoformat())
    if not await reader.client.set(claim, CLAIM_TAKEN, nx=True, ex=4 * 86_400):
        if await reader.client.get(claim) != CLAIM_STALE or not await _all_synced_since_close(reader, day):
            return None
        if await reader.client.set(claim, CLAIM_TAKEN, xx=True, get=True, ex=4 * 86_400) != CLAIM_STALE:
            return None  # another dashboard took it again first
    snapshot: dict[str, Any] | None = None
    try:
        snapshot = await take_snapshot(reader, tz, now)
    finally:
        with contextlib.suppress(RedisError, OSError):
            if snapshot is None:
                await reader.client.delete(claim)
            elif snapshot["stale_accounts"]:
                await reader.client.set(claim, CLAIM_STALE, xx=True, ex=4 * 86_400)
    return snapshot


async def _all_synced_since_close(reader: Reader, day: date) -> bool:
    close = session_close(Market.KRX, day)
    synced = await reader.synced_at()
    return bool(synced) and all(synced_since(at, close) for at in synced.values())


async def snapshot_loop(reader: Reader, tz: ZoneInfo, at: str, stop: asyncio.Event) -> None:
    while not stop.is_set():
        now = datetime.now(UTC)
        try:
            snapshot = await snapshot_if_due(reader, tz, at, now)
            if snapshot is not None and snapshot["stale_accounts"]:
                logger.warning(
                    "equity snapshot taken from accounts not synced since the close; taken again once they sync",
                    extra={"day": snapshot["date"], "accounts": snapshot["stale_accounts"]},
                )
            elif snapshot is not None:
                logger.info("equity snapshot taken", extra={"day": snapshot["date"]})
        except (RedisError, OSError) as exc:
            logger.warning("equity snapshot failed", extra={"error": str(exc)})
        await runtime.sleep_or_stop(stop, CHECK_INTERVAL_S)


# --- statistics ------------------------------------------------------------------------------


def win_rate(book: pnl.Book) -> Decimal | None:
    """Of the sells with a known cost, the share that sold above it (None before the first)."""
    if not book.realisations:
        return None
    return Decimal(sum(1 for r in book.realisations if r.pnl > 0)) / len(book.realisations) * 100


def equity_series(snapshots: list[dict[str, Any]]) -> list[tuple[str, Decimal]]:
    series = []
    for snapshot in snapshots:
        value = to_decimal(snapshot.get("equity_krw"))
        if value is not None:
            series.append((str(snapshot.get("date", "")), value))
    return series


def total_return(series: list[tuple[str, Decimal]]) -> Decimal | None:
    if len(series) < 2 or series[0][1] <= 0:
        return None
    return (series[-1][1] / series[0][1] - 1) * 100


def max_drawdown(series: list[tuple[str, Decimal]]) -> Decimal | None:
    """The largest fall from a peak, in percent of the peak (0 when it only rose)."""
    if len(series) < 2:
        return None
    peak = series[0][1]
    worst = ZERO
    for _, value in series:
        peak = max(peak, value)
        if peak > 0:
            worst = max(worst, (peak - value) / peak * 100)
    return worst


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    points: str  # SVG polyline points
    area: str  # SVG polygon points (the area under the line)
    low: Decimal
    high: Decimal
    first: str
    last: str


def chart(series: list[tuple[str, Decimal]], width: int = 600, height: int = 200, pad: int = 4) -> Chart | None:
    """Coordinates for a small hand-drawn SVG line chart (no library, no script)."""
    if len(series) < 2:
        return None
    values = [v for _, v in series]
    low, high = min(values), max(values)
    span = high - low or Decimal(1)
    step = Decimal(width - 2 * pad) / (len(values) - 1)
    coordinates = []
    for index, value in enumerate(values):
        x = Decimal(pad) + step * index
        y = Decimal(height - pad) - (value - low) / span * (height - 2 * pad)
        coordinates.append(f"{x:.1f},{y:.1f}")
    points = " ".join(coordinates)
    area = f"{pad},{height - pad} {points} {width - pad},{height - pad}"
    return Chart(width, height, points, area, low, high, series[0][0], series[-1][0])


# --- CSV ----------------------------------------------------------------------------------


def _cell(value: object) -> str:
    """A spreadsheet must not read a cell as a formula (CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _is_number(text) else text


def _is_number(text: str) -> bool:
    return to_decimal(text) is not None


def to_csv(header: list[str], rows: Iterable[Iterable[object]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    return buffer.getvalue()


def _plain(value: Decimal) -> str:
    """A number as a spreadsheet reads it: ``105000``, ``19.4``, never ``1.05E+5``."""
    text = format(value.quantize(Decimal("0.0001")), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def trades_csv(records: list[OrderRecord]) -> str:
    """Every order that filled, oldest fill first, with what each sell realised at the average
    cost of the holding (``yquant.pnl``); a sell without a recorded buy leaves it empty."""
    book = pnl.realise(records)
    realised = {r.client_order_id: r for r in book.realisations}
    unmatched = {u.client_order_id: u.quantity for u in book.unmatched}
    header = [
        "filled_at",
        "created_at",
        "account",
        "market",
        "ticker",
        "side",
        "quantity",
        "filled_quantity",
        "average_price",
        "currency",
        "fee",
        "average_cost",
        "realised_pnl",
        "unmatched_quantity",
        "strategy",
        "origin",
        "state",
        "client_order_id",
        "broker_order_id",
    ]
    rows = []
    for r in pnl.fill_order(records):
        sold = realised.get(r.client_order_id)
        rows.append(
            [
                r.updated_at.isoformat(),
                r.created_at.isoformat(),
                r.account,
                r.market.value,
                r.ticker,
                r.side.value,
                r.quantity,
                r.filled_quantity,
                r.average_price,
                r.market.currency,
                r.fee,
                _plain(sold.average_cost) if sold else "",
                _plain(sold.pnl) if sold else "",
                unmatched.get(r.client_order_id, ""),
                r.strategy,
                r.origin,
                r.state.value,
                r.client_order_id,
                r.broker_order_id,
            ]
        )
    return to_csv(header, rows)


def snapshots_csv(snapshots: list[dict[str, Any]]) -> str:
    header = ["date", "taken_at", "equity_krw", "fx_usdkrw", "fx_source", "accounts"]
    rows = (
        [
            s.get("date"),
            s.get("taken_at"),
            s.get("equity_krw"),
            s.get("fx_usdkrw"),
            s.get("fx_source"),
            ";".join(f"{k}={v}" for k, v in (s.get("accounts") or {}).items()),
        ]
        for s in snapshots
    )
    return to_csv(header, rows)
