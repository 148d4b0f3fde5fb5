"""WebSocket execution notices: subscribe replies, AES-256-CBC notices, PINGPONG, limits."""

from __future__ import annotations

import base64
import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from websockets.sync.client import ClientConnection, connect

from .helpers import Kis, SimServer, base_config


@pytest.fixture(scope="module")
def ws_server() -> Iterator[SimServer]:
    server = SimServer(base_config(mode="virtual", ws_ping_interval_seconds=0.3)).start()
    yield server
    server.stop()


def approval_key(kis: Kis) -> str:
    body = {"grant_type": "client_credentials", "appkey": kis.appkey, "secretkey": kis.appsecret}
    key: str = kis.http.post("/oauth2/Approval", json=body).json()["approval_key"]
    return key


def message(key: str, tr_id: str, tr_key: str, tr_type: str = "1") -> str:
    header = {"approval_key": key, "custtype": "P", "tr_type": tr_type, "content-type": "utf-8"}
    return json.dumps({"header": header, "body": {"input": {"tr_id": tr_id, "tr_key": tr_key}}})


def next_data(ws: ClientConnection) -> str:
    """The next frame that is not a PINGPONG."""
    while True:
        frame = ws.recv(timeout=5)
        assert isinstance(frame, str)
        if "PINGPONG" not in frame:
            return frame


def control(ws: ClientConnection) -> dict[str, Any]:
    reply: dict[str, Any] = json.loads(next_data(ws))
    return reply


def decrypt(payload: str, key: str, iv: str) -> str:
    decryptor = Cipher(algorithms.AES(key.encode()), modes.CBC(iv.encode())).decryptor()
    padded = decryptor.update(base64.b64decode(payload)) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return (unpadder.update(padded) + unpadder.finalize()).decode()


@pytest.fixture
def kis(ws_server: SimServer, make_kis: Callable[..., Kis]) -> Kis:
    return make_kis(ws_server, appkey=f"WSKEY{uuid.uuid4().hex}").login()


def test_notices_when_order_fills_then_acceptance_and_fill_decrypt(ws_server: SimServer, kis: Kis) -> None:
    ws_server.admin("/admin/price", {"ticker": "005930", "price": "70000"})
    kis.balance()  # the appkey has now used this account
    with connect(ws_server.ws_url) as ws:
        ws.send(message(approval_key(kis), "H0STCNI9", "myhtsid"))
        reply = control(ws)
        assert reply["header"] == {"tr_id": "H0STCNI9", "tr_key": "myhtsid", "encrypt": "N"}
        assert (reply["body"]["rt_cd"], reply["body"]["msg_cd"], reply["body"]["msg1"]) == (
            "0",
            "OPSP0000",
            "SUBSCRIBE SUCCESS",
        )
        key, iv = reply["body"]["output"]["key"], reply["body"]["output"]["iv"]
        assert (len(key), len(iv)) == (32, 16)
        odno = kis.order_cash("buy", "005930", 3, "0", ord_dvsn="01").json()["output"]["ODNO"]
        notices = []
        for _ in range(2):
            encrypted, tr_id, count, payload = next_data(ws).split("|", 3)
            assert (encrypted, tr_id, count) == ("1", "H0STCNI9", "001")
            notices.append(decrypt(payload, key, iv).split("^"))
    accepted, filled = notices
    assert len(accepted) == len(filled) == 26
    assert (accepted[0], accepted[1], accepted[2], accepted[8]) == ("myhtsid", kis.cano + "01", odno, "005930")
    assert (accepted[4], accepted[13], accepted[16]) == ("02", "1", "3")
    assert (filled[9], filled[10], filled[13], filled[24]) == ("3", "70000", "2", "삼성전자")


def test_subscribe_when_repeated_then_already_and_unsubscribe(ws_server: SimServer, kis: Kis) -> None:
    key = approval_key(kis)
    with connect(ws_server.ws_url) as ws:
        ws.send(message(key, "H0STCNI9", "htsid"))
        assert control(ws)["body"]["msg_cd"] == "OPSP0000"
        ws.send(message(key, "H0STCNI9", "htsid"))
        assert (control(ws)["body"]["rt_cd"], "OPSP0002") == ("1", "OPSP0002")
        ws.send(message(key, "H0STCNI9", "htsid", tr_type="2"))
        reply = control(ws)["body"]
        assert (reply["msg_cd"], reply["msg1"]) == ("OPSP0001", "UNSUBSCRIBE SUCCESS")


def test_subscribe_when_42nd_registration_then_max_subscribe_over(ws_server: SimServer, kis: Kis) -> None:
    key = approval_key(kis)
    with connect(ws_server.ws_url) as ws:
        for number in range(41):
            ws.send(message(key, "H0STCNT0", f"{number:06d}"))
            assert control(ws)["body"]["msg_cd"] == "OPSP0000"
        ws.send(message(key, "H0STCNT0", "999999"))
        assert control(ws)["body"]["msg_cd"] == "OPSP0008"


def test_subscribe_when_approval_key_unknown_then_refused(ws_server: SimServer) -> None:
    with connect(ws_server.ws_url) as ws:
        ws.send(message("00000000-0000-0000-0000-000000000000", "H0STCNI9", "htsid"))
        assert control(ws)["body"]["rt_cd"] != "0"


def test_pingpong_when_idle_then_sent_and_echo_or_pong_accepted(ws_server: SimServer, kis: Kis) -> None:
    with connect(ws_server.ws_url) as ws:
        frame = ws.recv(timeout=5)
        assert isinstance(frame, str)
        ping = json.loads(frame)
        assert ping["header"]["tr_id"] == "PINGPONG"
        assert len(ping["header"]["datetime"]) == 14
        ws.send(frame)  # python-kis style: echo the text
        ws.pong(frame.encode())  # official sample style: a pong control frame
        ws.send(message(approval_key(kis), "H0STCNI9", "htsid"))
        assert control(ws)["body"]["msg_cd"] == "OPSP0000"


def test_drop_notices_when_switched_on_then_nothing_sent(ws_server: SimServer, kis: Kis) -> None:
    kis.balance()
    ws_server.admin("/admin/ws", {"drop_notices": True})
    try:
        with connect(ws_server.ws_url) as ws:
            ws.send(message(approval_key(kis), "H0STCNI9", "htsid"))
            assert control(ws)["body"]["msg_cd"] == "OPSP0000"
            kis.order_cash("buy", "005930", 1, "0", ord_dvsn="01")
            deadline = time.monotonic() + 1.0
            while (left := deadline - time.monotonic()) > 0:
                with contextlib.suppress(TimeoutError):
                    assert "PINGPONG" in str(ws.recv(timeout=left))
    finally:
        ws_server.admin("/admin/ws", {"drop_notices": False})
