"""KIS WebSocket execution notices (docs/kis-protocol.md §8): one session per app key.

``NoticeFeed.run`` keeps a session alive: an approval key from ``/oauth2/Approval``,
``<ws>/tryitout``, one registration per notice feed (H0STCNI0/9 domestic, H0GSCNI0/9 US)
with ``tr_key`` = the HTS ID, AES-256-CBC decryption with the key and iv of each
subscribe reply, PINGPONG echoed, reconnection with a growing backoff. Notices can be
late or missing: the gateway keeps REST polling as the safety net.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal

import orjson
from Crypto.Cipher import AES
from Crypto.Util.Padding import unpad
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from brokergateway import metrics
from brokergateway.kis import trids
from brokergateway.kis.order_list import SIDES
from brokergateway.kis.tokens import TokenManager
from brokergateway.kis.values import dec, integer, order_number
from yquant.errors import BrokerError
from yquant.messages import Side

logger = logging.getLogger(__name__)

DOMESTIC_FIELDS = 26  # H0STCNI0 (docs/kis-protocol.md §8)
OVERSEAS_FIELDS = 25  # H0GSCNI0 since 2026-01-02 (CNTG_UNPR12 added); 24 before (docs/kis-protocol.md §8)
US_NOTICE_TR_IDS = frozenset(trids.OVERSEAS_EXECUTION_NOTICE.values())
SUBSCRIBE_TIMEOUT_S = 5.0
CLOSE_TIMEOUT_S = 2.0  # a closing handshake KIS does not answer in time ends the session anyway
IN_USE = "OPSP8996"  # another session holds this app key


@dataclass(frozen=True)
class ExecutionNotice:
    us: bool
    account_number: str  # CANO + ACNT_PRDT_CD
    broker_order_id: str  # without zero padding
    original_order_id: str
    side: Side | None
    amendment: str  # "0" order, "1" revise, "2" cancel
    ticker: str
    quantity: int  # the fill quantity (the order quantity on an acceptance notice)
    price: Decimal
    time: str  # HHMMSS
    refused: bool
    is_fill: bool

    @property
    def identity(self) -> tuple[str, str, str]:
        return (self.time, str(self.quantity), str(self.price))


def decrypt(payload: str, key: str, iv: str) -> str:
    """AES-256-CBC with the subscribe reply's key and iv (UTF-8 bytes), base64 payload, PKCS7.
    ValueError when the payload does not decrypt (its length, its padding).

    pycryptodome, not cryptography: the same cipher for 2.3 MiB of the gateway's memory instead of
    6.6 (cryptography loads its whole OpenSSL binding; `python -m benchmarks.import_cost`)."""
    cipher = AES.new(key.encode(), AES.MODE_CBC, iv=iv.encode())
    return unpad(cipher.decrypt(base64.b64decode(payload)), AES.block_size).decode()


def split_records(text: str, count: int, width: int) -> list[list[str]]:
    """``count`` records joined by ``^``: of ``width`` fields, or of whatever width divides the
    frame evenly (a layout one field shorter or longer than ours); one record otherwise."""
    fields = text.split("^")
    if count > 1 and len(fields) % count == 0:
        width = len(fields) // count
    if count > 1 and len(fields) >= count * width:
        return [fields[i * width : (i + 1) * width] for i in range(count)]
    return [fields]


def us_price(text: str) -> Decimal:
    """A US notice's CNTG_UNPR: KIS's current layout sends it as nine or more digits with four
    implied decimals (190.00 is ``001900000``); a price with a decimal point is read as written."""
    raw = text.strip()
    if raw.isdigit() and len(raw) >= 9:
        return Decimal(raw).scaleb(-4).normalize()
    return dec(raw)


def parse_notice(tr_id: str, fields: list[str]) -> ExecutionNotice | None:
    """One execution notice, or None when the record is too short to be one."""
    us = tr_id in US_NOTICE_TR_IDS
    # The US layout has no ODER_COND before the ticker, so everything after index 6 shifts by one.
    shift = 1 if us else 0
    if len(fields) < 17 - shift:
        return None
    return ExecutionNotice(
        us=us,
        account_number=fields[1].strip(),
        broker_order_id=order_number(fields[2]),
        original_order_id=order_number(fields[3]),
        side=SIDES.get(fields[4].strip()),
        amendment=fields[5].strip(),
        ticker=fields[8 - shift].strip().upper(),
        quantity=integer(fields[9 - shift]),
        price=us_price(fields[10 - shift]) if us else dec(fields[10 - shift]),
        time=fields[11 - shift].strip(),
        refused=fields[12 - shift].strip() == "1",
        is_fill=fields[13 - shift].strip() == "2",
    )


def parse_frame(frame: str, keys: dict[str, tuple[str, str]]) -> list[ExecutionNotice]:
    """Notices in a data frame ``E|TR_ID|NNN|payload`` (E=1: encrypted with ``keys[TR_ID]``)."""
    parts = frame.split("|", 3)
    if len(parts) != 4:
        return []
    encrypted, tr_id, count_text, payload = parts
    if encrypted == "1":
        secret = keys.get(tr_id)
        if secret is None:
            logger.warning("encrypted notice without a key", extra={"tr_id": tr_id})
            return []
        payload = decrypt(payload, *secret)
    width = OVERSEAS_FIELDS if tr_id in US_NOTICE_TR_IDS else DOMESTIC_FIELDS
    count = int(count_text) if count_text.isdigit() else 1
    notices = [parse_notice(tr_id, record) for record in split_records(payload, count, width)]
    return [notice for notice in notices if notice is not None]


NoticeHandler = Callable[[ExecutionNotice], Awaitable[None]]


class NoticeFeed:
    """One WebSocket session for one app key, serving every account that uses the key."""

    def __init__(
        self,
        tokens: TokenManager,
        ws_url: str,
        hts_id: str,
        tr_ids: list[str],
        handler: NoticeHandler,
        *,
        reconnect_max_s: float = 30.0,
        label: str = "",
    ) -> None:
        self.tokens = tokens
        self.url = ws_url.rstrip("/") if ws_url.rstrip("/").endswith("/tryitout") else ws_url.rstrip("/") + "/tryitout"
        self.hts_id = hts_id
        self.tr_ids = tr_ids
        self.handler = handler
        self.reconnect_max_s = reconnect_max_s
        self.label = label or tokens.label
        self.connected = False
        self.sessions = 0  # successful subscriptions, for tests and logs
        self._keys: dict[str, tuple[str, str]] = {}

    def _set_connected(self, value: bool) -> None:
        self.connected = value
        metrics.WS_CONNECTED.labels(self.label).set(1 if value else 0)

    async def run(self) -> None:
        """Keep a session subscribed until cancelled."""
        backoff = 1.0
        while True:
            delay = backoff
            try:
                delay = await self._session()
                backoff = 1.0
            except (OSError, TimeoutError, WebSocketException, BrokerError, ValueError) as exc:
                logger.warning(
                    "execution notices disconnected; REST polling covers fills",
                    extra={"app": self.label, "error": f"{exc.__class__.__name__}: {exc}"},
                )
                backoff = min(backoff * 2, self.reconnect_max_s)
            finally:
                self._set_connected(False)
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))

    async def _session(self) -> float:
        """One session; returns how long to wait before the next one (it ended without an error)."""
        approval_key = await self.tokens.approval_key()
        async with connect(
            self.url,
            open_timeout=SUBSCRIBE_TIMEOUT_S,
            close_timeout=CLOSE_TIMEOUT_S,
            ping_interval=None,
            max_size=2**20,
        ) as ws:
            for tr_id in self.tr_ids:
                refused = await self._subscribe(ws, approval_key, tr_id)
                if refused:
                    return refused
            self._set_connected(True)
            self.sessions += 1
            logger.info("execution notices subscribed", extra={"app": self.label, "feeds": self.tr_ids})
            async for message in ws:
                await self._on_message(ws, message if isinstance(message, str) else message.decode())
        return 1.0

    async def _subscribe(self, ws: ClientConnection, approval_key: str, tr_id: str) -> float:
        """Register ``tr_id``; 0 on success, else the wait before trying a new session."""
        header = {"approval_key": approval_key, "custtype": "P", "tr_type": "1", "content-type": "utf-8"}
        request = {"header": header, "body": {"input": {"tr_id": tr_id, "tr_key": self.hts_id}}}
        await ws.send(orjson.dumps(request).decode())
        async with asyncio.timeout(SUBSCRIBE_TIMEOUT_S):
            while True:
                raw = await ws.recv()
                text = raw if isinstance(raw, str) else raw.decode()
                if not text.startswith("{"):
                    await self._on_message(ws, text)
                    continue
                reply = orjson.loads(text)
                header_in = reply.get("header", {})
                if header_in.get("tr_id") == "PINGPONG":
                    await ws.send(text)
                    continue
                if header_in.get("tr_id") != tr_id:
                    continue
                body = reply.get("body", {})
                output = body.get("output") or {}
                if str(body.get("rt_cd")) == "0" and output.get("key") and output.get("iv"):
                    self._keys[tr_id] = (str(output["key"]), str(output["iv"]))
                    return 0.0
                code, message = str(body.get("msg_cd", "")), str(body.get("msg1", ""))
                logger.warning(
                    "execution notice subscription refused",
                    extra={"app": self.label, "tr_id": tr_id, "code": code, "reason": message},
                )
                # Another process holds the app key's single session: retry slowly.
                return self.reconnect_max_s if code == IN_USE else max(self.reconnect_max_s / 4, 1.0)

    async def _on_message(self, ws: ClientConnection, text: str) -> None:
        if text.startswith("{"):
            with contextlib.suppress(orjson.JSONDecodeError):
                if orjson.loads(text).get("header", {}).get("tr_id") == "PINGPONG":
                    await ws.send(text)  # KIS's samples echo it back
            return
        try:
            notices = parse_frame(text, self._keys)
        except ValueError as exc:
            logger.warning("unreadable execution notice", extra={"app": self.label, "error": str(exc)})
            return
        for notice in notices:
            try:
                await self.handler(notice)
            except Exception:
                logger.exception("execution notice handling failed", extra={"app": self.label})
