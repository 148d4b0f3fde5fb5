"""KIS's WebSocket at ``/tryitout`` (docs/kis-protocol.md §8): execution notices and price feeds.

A client subscribes with an approval key from ``/oauth2/Approval``. Execution notices: H0STCNI0
(real) / H0STCNI9 (virtual) domestic, H0GSCNI0 / H0GSCNI9 US, ``tr_key`` = its HTS ID. It then
receives notices for every account that the approval key's appkey has used on REST: an acceptance
notice (CNTG_YN=1) when an order, revision or cancel is booked and a fill notice (CNTG_YN=2) per
fill, AES-256-CBC encrypted with the key and iv of the subscribe reply, as ``1|TR_ID|001|<base64>``.

Price feeds (``kissim.feeds``): H0STCNT0 trades and H0STASP0 order book for a KRX code, HDFSCNT0 and
HDFSASP0 for a US key such as ``DNASAAPL``, in plain text ``0|TR_ID|NNN|record^record...``. A trade
record goes out for every fill on the ticker and every move of its price (a walk step, or an admin
price); the book goes out with it. What one event-loop callback produces (an order that fills
three resting ones, a walk and a fill) leaves as one frame with NNN records, as KIS batches them.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import secrets
import string
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from starlette.websockets import WebSocket, WebSocketDisconnect

from kissim import feeds
from kissim.feeds import BUYER_INITIATED, SELLER_INITIATED, FeedKey, Tape, Trade
from kissim.fmt import fixed
from kissim.history import order_book
from kissim.hours import now_kst
from kissim.market import Family, Quote
from kissim.orders import Notice, OrderKind, Side, condition, plain
from kissim.state import Simulator

logger = logging.getLogger(__name__)

DOMESTIC_NOTICE = {"real": "H0STCNI0", "virtual": "H0STCNI9"}
US_NOTICE = {"real": "H0GSCNI0", "virtual": "H0GSCNI9"}
NOTICE_TR_IDS = frozenset({*DOMESTIC_NOTICE.values(), *US_NOTICE.values()})
MAX_RECORDS = 999  # NNN has three digits
# ODER_KIND2 of H0GSCNI0 by the order's ORD_DVSN: 1 market, 2 limit, A MOO, B LOO, C MOC, D LOC.
US_ORDER_KIND = {"00": "2", "01": "1", "31": "A", "32": "B", "33": "C", "34": "D"}
# ODER_COND of H0GSCNI0 (해외종목구분) by the order's exchange.
US_SECURITY_CLASS = {"NASD": "6", "NYSE": "7", "AMEX": "8"}
_ALPHABET = string.ascii_letters + string.digits


def random_text(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def encrypt(plaintext: str, key: str, iv: str) -> str:
    padder = padding.PKCS7(128).padder()
    data = padder.update(plaintext.encode()) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key.encode()), modes.CBC(iv.encode())).encryptor()
    return base64.b64encode(encryptor.update(data) + encryptor.finalize()).decode()


@dataclass
class Subscription:
    tr_id: str
    tr_key: str
    feed: FeedKey | None = None  # what a price feed's key names
    key: str = field(default_factory=lambda: random_text(32))
    iv: str = field(default_factory=lambda: random_text(16))


@dataclass(eq=False)
class Session:
    websocket: WebSocket
    outbox: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    appkey: str = ""
    subscriptions: dict[tuple[str, str], Subscription] = field(default_factory=dict)
    # Price records waiting for the end of this event-loop callback, per (tr_id, tr_key).
    pending: dict[tuple[str, str], list[list[str]]] = field(default_factory=dict)
    flush_due: bool = False


def _side_code(side: Side) -> str:
    return "02" if side is Side.BUY else "01"


def _rctf(kind: OrderKind) -> str:
    return {OrderKind.NEW: "0", OrderKind.REVISE: "1", OrderKind.CANCEL: "2"}[kind]


def _acceptance(notice: Notice) -> str:
    """ACPT_YN: ``2`` on a fill, ``3`` on the cancel of an IOC/FOK rest, else ``1``."""
    if notice.kind == "filled":
        return "2"
    order = notice.order
    return "3" if order.kind is OrderKind.CANCEL and condition(order.ord_dvsn) != "0" else "1"


def domestic_fields(notice: Notice, hts_id: str) -> list[str]:
    """The 26 H0STCNI0 fields (``feeds.COLUMNS``, docs/kis-protocol.md §8)."""
    order, filled = notice.order, notice.kind == "filled"
    return [
        hts_id,
        order.account,
        order.odno,
        order.original_odno,
        _side_code(order.side),
        _rctf(order.kind),
        order.ord_dvsn,
        condition(order.ord_dvsn),
        order.ticker,
        str(notice.quantity),
        plain(notice.price),
        notice.at.strftime("%H%M%S"),
        "0",
        "2" if filled else "1",
        _acceptance(notice),
        order.org_no,
        str(order.quantity),
        "KISSIM",
        "",
        "1",
        "Y",
        "",
        "10",
        "",
        order.name,
        plain(order.price),
    ]


def us_price(price: Decimal) -> str:
    """CNTG_UNPR of a US notice: nine digits with four implied decimals (148.01 -> 001480100)."""
    return f"{int((price * 10_000).to_integral_value()):09d}"


def us_fields(notice: Notice, hts_id: str) -> list[str]:
    """The 25 H0GSCNI0 fields (``feeds.COLUMNS``), codes as KIS's specification gives them."""
    order, filled = notice.order, notice.kind == "filled"
    return [
        hts_id,
        order.account,
        order.odno,
        order.original_odno,
        _side_code(order.side),
        _rctf(order.kind),
        US_ORDER_KIND.get(order.ord_dvsn, "2"),
        order.ticker,
        f"{notice.quantity:010d}",
        us_price(notice.price),
        notice.at.strftime("%H%M%S"),
        "0",
        "2" if filled else "1",
        "2" if filled else "1",
        order.org_no,
        str(order.quantity) if filled else "",  # an acceptance carries its quantity in CNTG_QTY only
        "KISSIM",
        order.name,
        US_SECURITY_CLASS.get(order.exchange, "6"),
        "10",
        "",
        "",
        "",
        "",
        fixed(notice.price, 4),
    ]


def control(tr_id: str, tr_key: str, rt_cd: str, msg_cd: str, msg1: str, sub: Subscription | None) -> str:
    body: dict[str, Any] = {"rt_cd": rt_cd, "msg_cd": msg_cd, "msg1": msg1}
    if sub is not None:
        body["output"] = {"iv": sub.iv, "key": sub.key}
    return orjson.dumps({"header": {"tr_id": tr_id, "tr_key": tr_key, "encrypt": "N"}, "body": body}).decode()


class NoticeHub:
    """Live WebSocket sessions; turns engine notices into encrypted frames and quote changes into price frames."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.sessions: set[Session] = set()
        # Tickers some session has asked a price feed for, with what their feeds have told so far.
        self.tapes: dict[tuple[Family, str], Tape] = {}
        sim.engine.listeners.append(self.on_notice)
        sim.prices.listeners.append(self.on_move)

    def on_notice(self, notice: Notice) -> None:
        self._send_notice(notice)
        if notice.kind == "filled":
            order = notice.order
            quote = self.sim.prices.quotes.get((order.family, order.ticker))
            if quote is not None:
                initiated = BUYER_INITIATED if order.side is Side.BUY else SELLER_INITIATED
                self._publish(quote, Trade(notice.price, notice.quantity, initiated))

    def on_move(self, quote: Quote) -> None:
        """The price moved without a fill here: the walk's volume since the last record (0 for an admin price)."""
        tape = self.tapes.get((quote.family, quote.ticker))
        if tape is None or tape.quote is not quote:
            return
        initiated = BUYER_INITIATED if quote.price >= tape.price else SELLER_INITIATED
        self._publish(quote, Trade(quote.price, max(quote.volume - tape.told_volume, 0), initiated))

    def _send_notice(self, notice: Notice) -> None:
        if self.sim.switches.drop_notices or not self.sessions:
            return
        mode = self.sim.config.mode
        tr_id = DOMESTIC_NOTICE[mode] if notice.order.family == "KRX" else US_NOTICE[mode]
        build = domestic_fields if notice.order.family == "KRX" else us_fields
        delay = self.sim.config.ws_notice_delay_ms / 1000
        for session in self.sessions:
            if notice.order.account not in self.sim.accounts_by_appkey.get(session.appkey, ()):
                continue
            for sub in session.subscriptions.values():
                if sub.tr_id == tr_id:
                    payload = encrypt("^".join(build(notice, sub.tr_key)), sub.key, sub.iv)
                    frame = f"1|{tr_id}|001|{payload}"
                    self.sim.counters["ws_notices"] += 1
                    if delay > 0:
                        asyncio.get_running_loop().call_later(delay, session.outbox.put_nowait, frame)
                    else:
                        session.outbox.put_nowait(frame)

    # ------------------------------------------------------------------ price feeds

    def _watch(self, feed: FeedKey) -> None:
        """Start telling ``feed``'s ticker: its tape counts from now."""
        quote = self.sim.prices.quote(feed.family, feed.ticker)
        tape = self.tapes.get((feed.family, feed.ticker))
        if tape is None or tape.quote is not quote:
            self.tapes[(feed.family, feed.ticker)] = Tape.start(quote)

    def _publish(self, quote: Quote, trade: Trade) -> None:
        """One trade on ``quote``'s ticker: a trade record and the book for every session that asked."""
        tape = self.tapes.get((quote.family, quote.ticker))
        if tape is None:
            return
        if tape.quote is not quote:  # the simulator was reset: a new day for the ticker
            tape = self.tapes[(quote.family, quote.ticker)] = Tape.start(quote)
        now = now_kst(self.sim.clock)
        tape.record(trade, now)
        ticker = (quote.family, quote.ticker)
        asking = [
            (session, sub, sub.feed)
            for session in self.sessions
            for sub in session.subscriptions.values()
            if sub.feed is not None and (sub.feed.family, sub.feed.ticker) == ticker
        ]
        if not asking:
            return
        book = order_book(quote)
        is_open = self.sim.market_open(quote.family)
        for session, sub, feed in asking:
            if sub.tr_id == feeds.DOMESTIC_TRADES:
                record = feeds.domestic_trade(quote, book, tape, trade, now, is_open)
            elif sub.tr_id == feeds.DOMESTIC_BOOK:
                record = feeds.domestic_book(quote, book, now)
            elif sub.tr_id == feeds.US_TRADES:
                record = feeds.us_trade(sub.tr_key, quote, book, tape, trade, now, is_open)
            else:
                record = feeds.us_book(sub.tr_key, feed.excd, quote, book, now)
            # A book record replaces the one still waiting: the book as it stands is what counts.
            self._queue(session, sub, record, latest_only=sub.tr_id in (feeds.DOMESTIC_BOOK, feeds.US_BOOK))

    def _queue(self, session: Session, sub: Subscription, record: list[str], *, latest_only: bool) -> None:
        key = (sub.tr_id, sub.tr_key)
        if latest_only:
            session.pending[key] = [record]
        else:
            session.pending.setdefault(key, []).append(record)
        if session.flush_due:
            return
        session.flush_due = True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._flush(session)
            return
        loop.call_soon(self._flush, session)

    def _flush(self, session: Session) -> None:
        session.flush_due = False
        pending, session.pending = session.pending, {}
        if session not in self.sessions:
            return
        for (tr_id, tr_key), records in pending.items():
            if (tr_id, tr_key) not in session.subscriptions:
                continue  # unsubscribed meanwhile
            for start in range(0, len(records), MAX_RECORDS):
                chunk = records[start : start + MAX_RECORDS]
                session.outbox.put_nowait(f"0|{tr_id}|{len(chunk):03d}|" + "^".join("^".join(r) for r in chunk))
                self.sim.counters["ws_price_frames"] += 1

    def appkey_in_use(self, appkey: str, asking: Session) -> bool:
        return any(s is not asking and s.appkey == appkey and s.subscriptions for s in self.sessions)

    def handle(self, session: Session, text: str) -> str | None:
        """Answer one client message; None for messages that need no answer (PINGPONG echoes)."""
        try:
            message = orjson.loads(text)
            header, body = message.get("header", {}), message.get("body", {})
        except (orjson.JSONDecodeError, AttributeError):
            return control("", "", "1", "OPSP9999", "JSON PARSING ERROR : invalid json", None)
        if header.get("tr_id") == "PINGPONG":
            self.sim.counters["ws_pingpong_echoes"] += 1  # a client answering the keep-alive
            return None
        inputs = body.get("input", {}) if isinstance(body, dict) else {}
        tr_id, tr_key = str(inputs.get("tr_id", "")), str(inputs.get("tr_key", ""))
        appkey = self.sim.tokens.appkey_of_approval(str(header.get("approval_key", "")))
        tr_type = str(header.get("tr_type", ""))
        if appkey is None:
            return control(tr_id, tr_key, "1", "OPSP0011", "invalid approval : NOT FOUND", None)
        if not tr_id or not tr_key:
            return control(tr_id, tr_key, "1", "OPSP9990", "JSON PARSING ERROR : tr_key not found", None)
        if tr_type not in ("1", "2"):
            return control(tr_id, tr_key, "1", "OPSP8997", "JSON PARSING ERROR : invalid tr_type", None)
        wrong_mode = tr_id in NOTICE_TR_IDS and tr_id not in (
            DOMESTIC_NOTICE[self.sim.config.mode],
            US_NOTICE[self.sim.config.mode],
        )
        if wrong_mode:
            return control(tr_id, tr_key, "1", "OPSP8991", "invalid tr_id", None)
        if self.sim.config.ws_single_session and self.appkey_in_use(appkey, session):
            return control(tr_id, tr_key, "1", "OPSP8996", "ALREADY IN USE appkey", None)
        session.appkey = appkey
        existing = session.subscriptions.get((tr_id, tr_key))
        if tr_type == "2":
            if existing is None:
                return control(tr_id, tr_key, "1", "OPSP0003", "UNSUBSCRIBE ERROR(not found!)", None)
            del session.subscriptions[(tr_id, tr_key)]
            return control(tr_id, tr_key, "0", "OPSP0001", "UNSUBSCRIBE SUCCESS", existing)
        if existing is not None:
            return control(tr_id, tr_key, "1", "OPSP0002", "ALREADY IN SUBSCRIBE", None)
        if len(session.subscriptions) >= self.sim.config.ws_max_registrations:
            return control(tr_id, tr_key, "1", "OPSP0008", "MAX SUBSCRIBE OVER", None)
        sub = Subscription(tr_id, tr_key, feeds.feed_key(tr_id, tr_key))
        session.subscriptions[(tr_id, tr_key)] = sub
        if sub.feed is not None:
            self._watch(sub.feed)
        return control(tr_id, tr_key, "0", "OPSP0000", "SUBSCRIBE SUCCESS", sub)


async def _writer(session: Session) -> None:
    while True:
        frame = await session.outbox.get()
        await session.websocket.send_text(frame)


async def _pinger(session: Session, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        stamp = now_kst().strftime("%Y%m%d%H%M%S")
        session.outbox.put_nowait(orjson.dumps({"header": {"tr_id": "PINGPONG", "datetime": stamp}}).decode())


async def tryitout(websocket: WebSocket) -> None:
    hub: NoticeHub = websocket.app.state.hub
    await websocket.accept()
    session = Session(websocket)
    hub.sessions.add(session)
    hub.sim.counters["ws_sessions"] += 1
    tasks = [asyncio.create_task(_writer(session))]
    if hub.sim.config.ws_ping_interval_seconds > 0:
        tasks.append(asyncio.create_task(_pinger(session, hub.sim.config.ws_ping_interval_seconds)))
    try:
        while True:
            text = await websocket.receive_text()
            reply = hub.handle(session, text)
            if reply is not None:
                session.outbox.put_nowait(reply)
    except WebSocketDisconnect:
        pass
    except Exception:
        logger.exception("websocket session failed")
    finally:
        hub.sessions.discard(session)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
