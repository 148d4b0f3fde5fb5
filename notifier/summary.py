"""The daily summary after each market's close: per account, orders placed, fills, refusals and
denials, realised P/L, fees and equity at close against the day's start, in the market's currency.

Two summaries a day at most: KRX (Asia/Seoul, KRW) and US (NASD, NYSE, AMEX in America/New_York,
USD), each ``summary_after_close_s`` after its close on a trading day of its calendar
(yquant.markets; a holiday or a weekend has none). KRW and USD are never added: each summary
speaks one currency.

Once per market and day, across restarts: the summary is a notice on ``keys.NOTICES`` (delivered to
each destination that asks for ``summary`` by its own group, once, like every notice), appended in
one transaction with its claim ``keys.notify_summary`` (WATCH the claim, then MULTI: SET + XADD).
A crash before that EXEC leaves neither, and the next poll sends it; after it, both are there and
nothing sends it again.

A notifier that was down at the close sends the summary of the last trading day when it starts,
marked late, as long as that day is still the last one due (before the next close); an older day it
missed is not sent (its figures stay on the dashboard). A close before the notifier first watched
for closes (``keys.NOTIFY_SUMMARY_SINCE``, set once) is owed nothing: a first start, or the upgrade
that brought summaries, does not send the last day's summary late.

The figures are read from Valkey: order records (``keys.ORDERS_INDEX`` by creation time, the day's
orders and ``summary_cost_days`` before them for the holdings' average cost), realised P/L from
yquant.pnl (the one P/L kernel), denials from ``keys.DECISIONS``, the account's last sync for the
equity at close and the order manager's daily baseline (``keys.daily_equity``) for the day's start.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import orjson
import redis.asyncio as aioredis
from pydantic import ValidationError
from redis.exceptions import RedisError, WatchError

from notifier.events import money
from notifier.health import NOTICES_MAXLEN, notice_fields
from yquant import keys, pnl
from yquant.errors import MessageDecodeError
from yquant.markets import SESSIONS, is_trading_day, local_date, session_close
from yquant.messages import Market, OrderState, Signal, SignalDenied, decode
from yquant.orders import OrderRecord, parse_record
from yquant.portfolio import get_account
from yquant.settings import NotifierSettings

logger = logging.getLogger(__name__)

CLAIM_TTL_S = 10 * 86_400  # longer than any gap between two trading days


@dataclass(frozen=True)
class Venue:
    """The markets one summary covers, the calendar that decides its days and its currency."""

    name: str
    markets: frozenset[Market]
    calendar: Market
    currency: str


VENUES = (
    Venue("KRX", frozenset({Market.KRX}), Market.KRX, "KRW"),
    Venue("US", frozenset({Market.NASD, Market.NYSE, Market.AMEX}), Market.NASD, "USD"),
)


@dataclass
class AccountDay:
    account: str
    orders: int = 0
    filled: int = 0
    refused: int = 0  # rejected by the broker or failed
    denied: int = 0  # signals the order manager did not trade
    realised: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)
    unmatched: int = 0  # shares sold without a recorded buy to take their cost from
    equity: Decimal | None = None
    start: Decimal | None = None

    @property
    def active(self) -> bool:
        return bool(self.orders or self.filled or self.denied or self.unmatched or self.realised or self.fees)


@dataclass
class DaySummary:
    venue: Venue
    day: date
    late: bool
    accounts: list[AccountDay] = field(default_factory=list)


def due_day(venue: Venue, now: datetime, after_close_s: float) -> tuple[date, datetime] | None:
    """The last trading day whose summary is due at ``now`` and when it fell due."""
    day = local_date(venue.calendar, now)
    for _ in range(15):
        if is_trading_day(venue.calendar, day):
            due = session_close(venue.calendar, day) + timedelta(seconds=after_close_s)
            if due <= now:
                return day, due
        day -= timedelta(days=1)
    return None


def _bounds(venue: Venue, day: date) -> tuple[datetime, datetime]:
    zone = SESSIONS[venue.calendar].zone
    start = datetime.combine(day, time(0), zone)
    return start, start + timedelta(days=1)


def figures(
    venue: Venue,
    day: date,
    records: Iterable[OrderRecord],
    denials: Iterable[str],
    accounts: Iterable[str],
    equity: dict[str, tuple[Decimal | None, Decimal | None]],
) -> list[AccountDay]:
    """Each account's day from the records (the day's and older ones, for their cost), the accounts
    of the day's denials, and (equity at close, equity at the day's start) per account."""
    start, end = _bounds(venue, day)
    ours = [r for r in records if r.market in venue.markets and r.created_at < end]
    lines: dict[str, AccountDay] = {a: AccountDay(a) for a in accounts}

    def line(account: str) -> AccountDay:
        return lines.setdefault(account, AccountDay(account))

    for record in ours:
        if start <= record.created_at:
            line(record.account).orders += 1
            if record.state in (OrderState.REJECTED, OrderState.FAILED):
                line(record.account).refused += 1
        if record.filled_quantity > 0 and start <= record.updated_at < end:
            line(record.account).filled += 1
            line(record.account).fees += record.fee
    book = pnl.realise(ours)
    for r in book.realisations:
        if start <= r.at < end:
            line(r.account).realised += r.pnl
    today = {r.client_order_id for r in ours if r.filled_quantity > 0 and start <= r.updated_at < end}
    for u in book.unmatched:
        if u.client_order_id in today:
            line(u.account).unmatched += u.quantity
    for account in denials:
        line(account).denied += 1
    for account, (close, opening) in equity.items():
        line(account).equity, line(account).start = close, opening
    return [
        lines[a] for a in sorted(lines) if lines[a].active or lines[a].equity is not None or lines[a].start is not None
    ]


def _signed(amount: Decimal, currency: str) -> str:
    text = money(abs(amount), currency)
    return f"-{text}" if amount < 0 and text.strip("₩$0.,") else f"+{text}"


def render_summary(summary: DaySummary) -> tuple[str, str]:
    """The summary's text, English and Korean."""
    venue, cur = summary.venue, summary.venue.currency
    late_en = " — sent late: the notifier was down at the close" if summary.late else ""
    late_ko = " — 지연 발송: 장 마감 때 알림 서비스가 멈춰 있었습니다" if summary.late else ""
    en = [f"📊 {venue.name} daily summary {summary.day.isoformat()}{late_en}"]
    ko = [f"📊 {venue.name} 일일 요약 {summary.day.isoformat()}{late_ko}"]
    if not summary.accounts:
        en.append("no orders, no account synced")
        ko.append("주문 없음, 동기화된 계좌 없음")
    for a in summary.accounts:
        unmatched_en = f" ({a.unmatched} shares sold without a recorded cost)" if a.unmatched else ""
        unmatched_ko = f" (매입 기록 없는 매도 {a.unmatched}주)" if a.unmatched else ""
        who_en = "all accounts" if a.account == "*" else a.account
        who_ko = "전체 계좌" if a.account == "*" else a.account
        en_parts = [
            f"{who_en}: orders {a.orders}, filled {a.filled}, refused {a.refused}, denied {a.denied}",
            f"realised P/L {_signed(a.realised, cur)}{unmatched_en}",
            f"fees {money(a.fees, cur)}",
        ]
        ko_parts = [
            f"{who_ko}: 주문 {a.orders}건, 체결 {a.filled}건, 거부 {a.refused}건, 신호 거부 {a.denied}건",
            f"실현손익 {_signed(a.realised, cur)}{unmatched_ko}",
            f"수수료 {money(a.fees, cur)}",
        ]
        if a.equity is not None:
            if a.start is not None:
                change = _signed(a.equity - a.start, cur)
                en_parts.append(f"equity {money(a.equity, cur)} (day start {money(a.start, cur)}, {change})")
                ko_parts.append(f"평가금액 {money(a.equity, cur)} (시작 {money(a.start, cur)}, {change})")
            else:
                en_parts.append(f"equity {money(a.equity, cur)} (day start unknown)")
                ko_parts.append(f"평가금액 {money(a.equity, cur)} (시작 금액 없음)")
        en.append(" · ".join(en_parts))
        ko.append(" · ".join(ko_parts))
    return "\n".join(en), "\n".join(ko)


def summary_data(summary: DaySummary) -> dict[str, Any]:
    """The generic webhook's JSON of a summary: amounts as decimal strings."""

    def amount(value: Decimal | None) -> str | None:
        return None if value is None else str(value)

    return {
        "market": summary.venue.name,
        "day": summary.day.isoformat(),
        "currency": summary.venue.currency,
        "late": summary.late,
        "accounts": [
            {
                "account": a.account,
                "orders": a.orders,
                "filled": a.filled,
                "refused": a.refused,
                "denied": a.denied,
                "realised_pnl": str(a.realised),
                "fees": str(a.fees),
                "unmatched_quantity": a.unmatched,
                "equity": amount(a.equity),
                "equity_day_start": amount(a.start),
            }
            for a in summary.accounts
        ],
    }


async def _records(client: aioredis.Redis, start: datetime, end: datetime, cost_days: int) -> list[OrderRecord]:
    since = start - timedelta(days=cost_days)
    ids: Any = await client.zrangebyscore(
        keys.ORDERS_INDEX, int(since.timestamp() * 1000), f"({int(end.timestamp() * 1000)}"
    )
    async with client.pipeline(transaction=False) as pipe:
        for cid in ids:
            pipe.hgetall(keys.order(keys.text(cid)))
        rows = await pipe.execute()
    records: list[OrderRecord] = []
    for cid, row in zip(ids, rows, strict=True):
        if not row:
            continue
        try:
            records.append(parse_record(row))
        except ValidationError:  # one record no summary can read costs that order, not the summary
            logger.warning("order record not understood; left out of the summary", extra={"order": keys.text(cid)})
    return records


async def _denials(client: aioredis.Redis, venue: Venue, start: datetime, end: datetime) -> list[str]:
    """The account of each of the day's denied signals on the venue's markets ("*": a signal denied
    for every account at once). The market is the signal record's; a signal whose record is gone
    counts for KRX when its ticker is all digits (KRX codes are), else for the US."""
    rows: Any = await client.xrange(
        keys.DECISIONS, f"{int(start.timestamp() * 1000)}", f"({int(end.timestamp() * 1000)}"
    )
    denied: list[SignalDenied] = []
    for _, fields in rows:
        if keys.text(fields.get(b"type", b"")) != "SignalDenied":
            continue
        try:
            message = decode(fields.get(b"data", b"{}"))
        except MessageDecodeError:
            continue
        if isinstance(message, SignalDenied):
            denied.append(message)
    ids = sorted({m.signal_id for m in denied})
    async with client.pipeline(transaction=False) as pipe:
        for signal_id in ids:
            pipe.hget(keys.signal_record(signal_id), "signal")
        raws = await pipe.execute()
    markets: dict[str, Market] = {}
    for signal_id, raw in zip(ids, raws, strict=True):
        try:
            markets[signal_id] = Signal.model_validate_json(raw).market
        except (ValueError, TypeError):
            continue
    found: list[str] = []
    for message in denied:
        market = markets.get(message.signal_id) or (Market.KRX if message.ticker.isdigit() else Market.NASD)
        if market in venue.markets:
            found.append(message.account or "*")
    return found


async def _equity(
    client: aioredis.Redis, venue: Venue, day: date, accounts: Iterable[str]
) -> dict[str, tuple[Decimal | None, Decimal | None]]:
    result: dict[str, tuple[Decimal | None, Decimal | None]] = {}
    for account in accounts:
        snapshot = await get_account(client, account)
        close = None
        if snapshot is not None:
            close = pnl.equity(snapshot.cash, snapshot.positions).get(venue.currency)
        raw = await client.hget(keys.daily_equity(account, day.isoformat()), venue.currency)
        opening = Decimal(keys.text(raw)) if raw else None
        if close is not None or opening is not None:
            result[account] = (close, opening)
    return result


async def build(client: aioredis.Redis, venue: Venue, day: date, late: bool, cost_days: int) -> DaySummary:
    start, end = _bounds(venue, day)
    records = await _records(client, start, end, cost_days)
    denials = await _denials(client, venue, start, end)
    accounts = sorted(keys.text(a) for a in await client.smembers(keys.ACCOUNTS_INDEX))
    equity = await _equity(client, venue, day, accounts)
    return DaySummary(venue, day, late, figures(venue, day, records, denials, [], equity))


async def claim_and_send(client: aioredis.Redis, summary: DaySummary) -> bool:
    """Append the summary's notice and its claim in one transaction; False if it was claimed."""
    claim = keys.notify_summary(summary.venue.name, summary.day.isoformat())
    en, ko = render_summary(summary)
    fields: Any = notice_fields("summary", en, ko, summary_data(summary))
    async with client.pipeline(transaction=True) as pipe:
        try:
            await pipe.watch(claim)
            if await pipe.exists(claim):
                await pipe.unwatch()  # type: ignore[no-untyped-call]
                return False
            pipe.multi()  # type: ignore[no-untyped-call]
            pipe.set(claim, orjson.dumps({"late": summary.late}), ex=CLAIM_TTL_S)
            pipe.xadd(keys.NOTICES, fields, maxlen=NOTICES_MAXLEN, approximate=True)
            await pipe.execute()
        except WatchError:
            return False  # another notifier claimed it between the WATCH and the EXEC
    return True


async def check_once(client: aioredis.Redis, settings: NotifierSettings, now: datetime) -> list[str]:
    """Send each venue's summary that is due and unclaimed; the claims sent (for the log)."""
    sent: list[str] = []
    await client.set(keys.NOTIFY_SUMMARY_SINCE, now.isoformat(), nx=True)
    since = datetime.fromisoformat(keys.text(await client.get(keys.NOTIFY_SUMMARY_SINCE)))
    for venue in VENUES:
        found = due_day(venue, now, settings.summary_after_close_s)
        if found is None:
            continue
        day, due = found
        if due < since or await client.exists(keys.notify_summary(venue.name, day.isoformat())):
            continue
        late = (now - due).total_seconds() > settings.summary_late_after_s
        summary = await build(client, venue, day, late, settings.summary_cost_days)
        if await claim_and_send(client, summary):
            logger.info("daily summary sent", extra={"market": venue.name, "day": day.isoformat(), "late": late})
            sent.append(f"{venue.name}:{day.isoformat()}")
    return sent


async def watch_closes(
    client: aioredis.Redis, settings: NotifierSettings, stop: asyncio.Event, clock: Callable[[], datetime]
) -> None:
    while not stop.is_set():
        try:
            await check_once(client, settings, clock())
        except (RedisError, OSError, ValueError) as exc:
            logger.warning("daily summary check failed; retrying", extra={"error": str(exc)})
        try:
            await asyncio.wait_for(stop.wait(), timeout=settings.summary_poll_s)
        except TimeoutError:
            pass
