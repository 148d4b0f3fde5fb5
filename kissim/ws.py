"""WebSocket execution notices at ``/tryitout`` (docs/kis-protocol.md §8).

A client subscribes with an approval key from ``/oauth2/Approval`` to H0STCNI0 (real) / H0STCNI9
(virtual) for domestic notices, or H0GSCNI0 / H0GSCNI9 for US notices, with ``tr_key`` = its HTS ID.
It then receives notices for every account that the approval key's appkey has used on REST:
an acceptance notice (CNTG_YN=1) when an order, revision or cancel is booked and a fill notice
(CNTG_YN=2) per fill, AES-256-CBC encrypted with the key and iv of the subscribe reply, as
``1|TR_ID|001|<base64>``. Other tr_ids (price feeds) are accepted and counted but carry no data.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import secrets
import string
from dataclasses import dataclass, field
from typing import Any

import orjson
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from starlette.websockets import WebSocket, WebSocketDisconnect

from kissim.hours import now_kst
from kissim.orders import Notice, OrderKind, Side, plain
from kissim.state import Simulator

logger = logging.getLogger(__name__)

DOMESTIC_NOTICE = {"real": "H0STCNI0", "virtual": "H0STCNI9"}
US_NOTICE = {"real": "H0GSCNI0", "virtual": "H0GSCNI9"}
NOTICE_TR_IDS = frozenset({*DOMESTIC_NOTICE.values(), *US_NOTICE.values()})
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
    key: str = field(default_factory=lambda: random_text(32))
    iv: str = field(default_factory=lambda: random_text(16))


@dataclass(eq=False)
class Session:
    websocket: WebSocket
    outbox: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    appkey: str = ""
    subscriptions: dict[tuple[str, str], Subscription] = field(default_factory=dict)


def _side_code(side: Side) -> str:
    return "02" if side is Side.BUY else "01"


def _rctf(kind: OrderKind) -> str:
    return {OrderKind.NEW: "0", OrderKind.REVISE: "1", OrderKind.CANCEL: "2"}[kind]


def domestic_fields(notice: Notice, hts_id: str) -> list[str]:
    """The 26 H0STCNI0 fields in the order of docs/kis-protocol.md §8."""
    order, filled = notice.order, notice.kind == "filled"
    return [
        hts_id,
        order.account,
        order.odno,
        order.original_odno,
        _side_code(order.side),
        _rctf(order.kind),
        order.ord_dvsn,
        "0",
        order.ticker,
        str(notice.quantity),
        plain(notice.price),
        notice.at.strftime("%H%M%S"),
        "0",
        "2" if filled else "1",
        "2" if filled else "1",
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


def us_fields(notice: Notice, hts_id: str) -> list[str]:
    """The 24 H0GSCNI0 fields (OT examples_llm/overseas_stock/ccnl_notice)."""
    order, filled = notice.order, notice.kind == "filled"
    return [
        hts_id,
        order.account,
        order.odno,
        order.original_odno,
        _side_code(order.side),
        _rctf(order.kind),
        order.ord_dvsn,
        order.ticker,
        str(notice.quantity),
        plain(notice.price),
        notice.at.strftime("%H%M%S"),
        "0",
        "2" if filled else "1",
        "2" if filled else "1",
        order.org_no,
        str(order.quantity),
        "KISSIM",
        order.name,
        "0",
        "",
        "",
        "",
        "",
        "",
    ]


def control(tr_id: str, tr_key: str, rt_cd: str, msg_cd: str, msg1: str, sub: Subscription | None) -> str:
    body: dict[str, Any] = {"rt_cd": rt_cd, "msg_cd": msg_cd, "msg1": msg1}
    if sub is not None:
        body["output"] = {"iv": sub.iv, "key": sub.key}
    return orjson.dumps({"header": {"tr_id": tr_id, "tr_key": tr_key, "encrypt": "N"}, "body": body}).decode()


class NoticeHub:
    """Live WebSocket sessions; turns engine notices into encrypted frames."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.sessions: set[Session] = set()
        sim.engine.listeners.append(self.on_notice)

    def on_notice(self, notice: Notice) -> None:
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
        sub = Subscription(tr_id, tr_key)
        session.subscriptions[(tr_id, tr_key)] = sub
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
