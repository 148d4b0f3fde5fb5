"""Wire details a KIS client depends on: header name spelling, the envelope of unknown paths and
methods, the tr_ids KIS's official samples send."""

from __future__ import annotations

import socket
from collections import namedtuple

import requests

from .helpers import DOMESTIC, Kis, SimProcess, SimServer


def raw_get(port: int, target: str, headers: dict[str, str]) -> bytes:
    """One HTTP/1.1 request on a plain socket: the response head exactly as it was written."""
    lines = [f"GET {target} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return data.split(b"\r\n\r\n", 1)[0]


def header_names(head: bytes) -> list[str]:
    return [line.split(b":", 1)[0].decode() for line in head.split(b"\r\n")[1:]]


PRICE = f"{DOMESTIC}/quotations/inquire-price?FID_COND_MRKT_DIV_CODE=J&FID_INPUT_ISCD=005930"


def test_headers_when_answered_then_standard_names_capitalised_kis_names_lowercase() -> None:
    server = SimProcess("--always-open").start()  # python -m kissim, as a user runs it
    try:
        kis = Kis(server).login()  # type: ignore[arg-type]
        head = raw_get(int(server.url.rsplit(":", 1)[1]), PRICE, kis.headers("FHKST01010100"))
        kis.close()
    finally:
        server.stop()
    assert head.startswith(b"HTTP/1.1 200 ")
    names = header_names(head)
    assert {"Content-Type", "Content-Length", "Date", "tr_id", "tr_cont", "gt_uid"} <= set(names), names
    assert not [name for name in names if name.islower() and not name.isidentifier()], names


def test_headers_when_read_like_the_official_samples_then_identifiers(real_server: SimServer, real: Kis) -> None:
    """KIS's samples use requests and make a namedtuple of the lowercase header names."""
    response = requests.get(real_server.url + PRICE, headers=real.headers("FHKST01010100"), timeout=10)
    lowercase = [name for name in response.headers if name.islower()]
    header = namedtuple("header", lowercase)(**{name: response.headers[name] for name in lowercase})
    assert header.tr_id == "FHKST01010100"  # type: ignore[attr-defined]
    assert response.headers["Content-Type"].startswith("application/json")


def test_unknown_path_when_called_then_kis_envelope_404(real_server: SimServer, real: Kis) -> None:
    response = real.get(f"{DOMESTIC}/quotations/no-such-thing", "FHKST99999999", {})
    assert response.status_code == 404
    assert set(response.json()) == {"rt_cd", "msg_cd", "msg1"}
    assert response.json()["rt_cd"] == "1"
    assert response.headers["tr_id"] == "FHKST99999999"


def test_wrong_method_when_called_then_kis_envelope(real_server: SimServer, real: Kis) -> None:
    response = real.http.get(f"{DOMESTIC}/trading/order-cash", headers=real.headers("TTTC0012U"))
    assert response.status_code == 405
    body = response.json()
    assert (body["rt_cd"], body["msg_cd"]) == ("1", "EGW00101")


def test_virtual_us_sell_when_samples_tr_id_vttt1006u_then_sell(virtual_server: SimServer, virtual: Kis) -> None:
    virtual_server.admin("/admin/price", {"ticker": "QQQ", "price": "480.00", "market": "US"})
    assert virtual.us_order("VTTT1002U", "QQQ", 2, "481.00").json()["rt_cd"] == "0"
    body = virtual.us_order("VTTT1006U", "QQQ", 2, "479.00").json()
    assert (body["rt_cd"], body["msg_cd"]) == ("0", "40590000")
    assert [(o["side"], o["state"]) for o in virtual.orders()] == [("buy", "filled"), ("sell", "filled")]
