"""A kissim server in a background thread and a small KIS client speaking its REST protocol."""

from __future__ import annotations

import itertools
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn

from kissim.app import create_app
from kissim.config import SimConfig
from kissim.state import Simulator

DOMESTIC = "/uapi/domestic-stock/v1"
OVERSEAS = "/uapi/overseas-stock/v1"
_accounts = itertools.count(10_000_001)


def fresh_cano() -> str:
    """A never-used CANO, so each test gets a newly funded account."""
    return f"{next(_accounts):08d}"


class SimServer:
    """``create_app(config)`` served by uvicorn on a free loopback port in a daemon thread."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.app = create_app(config)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.server = uvicorn.Server(
            uvicorn.Config(
                self.app,
                log_level="warning",
                access_log=False,
                http="h11",
                ws="websockets-sansio",
                date_header=False,
                server_header=False,
                timeout_graceful_shutdown=1,
            )
        )
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/tryitout"

    @property
    def sim(self) -> Simulator:
        sim: Simulator = self.app.state.sim
        return sim

    def start(self) -> SimServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("kissim did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()

    def admin(self, path: str, body: dict[str, Any] | None = None) -> Any:
        with httpx.Client(base_url=self.url, trust_env=False, timeout=10) as client:
            response = client.post(path, json=body or {}) if body is not None else client.get(path)
        response.raise_for_status()
        return response.json()


@dataclass
class Kis:
    """A minimal KIS REST client for one account (CANO + ACNT_PRDT_CD) and one appkey."""

    server: SimServer
    cano: str = field(default_factory=fresh_cano)
    product: str = "01"
    appkey: str = "PSTESTAPPKEY0000000000000000000001"
    appsecret: str = "test-app-secret"
    token: str = ""
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.server.url, trust_env=False, timeout=10)

    @property
    def virtual(self) -> bool:
        return self.server.config.is_virtual

    def tr(self, real_tr_id: str) -> str:
        """The tr_id for this server's domain (KIS's T/J/C -> V rule)."""
        return "V" + real_tr_id[1:] if self.virtual and real_tr_id[0] in "TJC" else real_tr_id

    def issue_token(self) -> httpx.Response:
        body = {"grant_type": "client_credentials", "appkey": self.appkey, "appsecret": self.appsecret}
        return self.http.post("/oauth2/tokenP", json=body)

    def login(self) -> Kis:
        response = self.issue_token()
        assert response.status_code == 200, response.text
        self.token = response.json()["access_token"]
        return self

    def headers(self, tr_id: str, tr_cont: str = "") -> dict[str, str]:
        return {
            "content-type": "application/json; charset=utf-8",
            "authorization": f"Bearer {self.token}",
            "appkey": self.appkey,
            "appsecret": self.appsecret,
            "tr_id": tr_id,
            "custtype": "P",
            "tr_cont": tr_cont,
        }

    def post(self, path: str, tr_id: str, body: dict[str, str], **kwargs: Any) -> httpx.Response:
        return self.http.post(path, json=body, headers=self.headers(tr_id), **kwargs)

    def get(self, path: str, tr_id: str, params: dict[str, str], tr_cont: str = "") -> httpx.Response:
        return self.http.get(path, params=params, headers=self.headers(tr_id, tr_cont))

    @property
    def acct(self) -> dict[str, str]:
        return {"CANO": self.cano, "ACNT_PRDT_CD": self.product}

    def order_cash(
        self, side: str, ticker: str, quantity: int, price: str = "0", ord_dvsn: str = "00", old: bool = False
    ) -> httpx.Response:
        codes = {("buy", False): "TTTC0012U", ("sell", False): "TTTC0011U"}
        codes |= {("buy", True): "TTTC0802U", ("sell", True): "TTTC0801U"}
        body = self.acct | {
            "PDNO": ticker,
            "ORD_DVSN": ord_dvsn,
            "ORD_QTY": str(quantity),
            "ORD_UNPR": price,
            "EXCG_ID_DVSN_CD": "KRX",
        }
        return self.post(f"{DOMESTIC}/trading/order-cash", self.tr(codes[(side, old)]), body)

    def rvsecncl(
        self, odno: str, org_no: str, cancel: bool, quantity: int = 0, price: str = "0", ord_dvsn: str = "00"
    ) -> httpx.Response:
        body = self.acct | {
            "KRX_FWDG_ORD_ORGNO": org_no,
            "ORGN_ODNO": odno,
            "ORD_DVSN": ord_dvsn,
            "RVSE_CNCL_DVSN_CD": "02" if cancel else "01",
            "ORD_QTY": str(quantity),
            "ORD_UNPR": price,
            "QTY_ALL_ORD_YN": "Y" if quantity == 0 else "N",
        }
        return self.post(f"{DOMESTIC}/trading/order-rvsecncl", self.tr("TTTC0013U"), body)

    def balance(self, tr_cont: str = "", fk: str = "", nk: str = "") -> httpx.Response:
        params = self.acct | {
            "AFHR_FLPR_YN": "N",
            "OFL_YN": "",
            "INQR_DVSN": "02",
            "UNPR_DVSN": "01",
            "FUND_STTL_ICLD_YN": "N",
            "FNCG_AMT_AUTO_RDPT_YN": "N",
            "PRCS_DVSN": "00",
            "CTX_AREA_FK100": fk,
            "CTX_AREA_NK100": nk,
        }
        return self.get(f"{DOMESTIC}/trading/inquire-balance", self.tr("TTTC8434R"), params, tr_cont)

    def daily_ccld(self, tr_cont: str = "", fk: str = "", nk: str = "", **filters: str) -> httpx.Response:
        params = self.acct | {
            "INQR_STRT_DT": "20000101",
            "INQR_END_DT": "20991231",
            "SLL_BUY_DVSN_CD": "00",
            "INQR_DVSN": "00",
            "PDNO": "",
            "CCLD_DVSN": "00",
            "ORD_GNO_BRNO": "",
            "ODNO": "",
            "INQR_DVSN_3": "00",
            "INQR_DVSN_1": "",
            "CTX_AREA_FK100": fk,
            "CTX_AREA_NK100": nk,
        }
        params |= filters
        return self.get(f"{DOMESTIC}/trading/inquire-daily-ccld", self.tr("TTTC0081R"), params, tr_cont)

    def us_order(
        self, tr_id: str, ticker: str, quantity: int, price: str, exchange: str = "NASD", ord_dvsn: str = "00"
    ) -> httpx.Response:
        body = self.acct | {
            "OVRS_EXCG_CD": exchange,
            "PDNO": ticker,
            "ORD_QTY": str(quantity),
            "OVRS_ORD_UNPR": price,
            "CTAC_TLNO": "",
            "MGCO_APTM_ODNO": "",
            "SLL_TYPE": "",
            "ORD_SVR_DVSN_CD": "0",
            "ORD_DVSN": ord_dvsn,
        }
        return self.post(f"{OVERSEAS}/trading/order", tr_id, body)

    def orders(self) -> list[dict[str, Any]]:
        mine: list[dict[str, Any]] = [
            o for o in self.server.admin("/admin/orders") if o["account"] == self.cano + self.product
        ]
        return mine

    def close(self) -> None:
        self.http.close()


def base_config(**overrides: Any) -> SimConfig:
    """Deterministic test defaults: always open, no rate limit, no token throttle, frozen prices."""
    values: dict[str, Any] = {
        "mode": "real",
        "always_open": True,
        "rate_limit": False,
        "token_throttle_seconds": 0.0,
        "price_step_seconds": 0.0,
        "ws_ping_interval_seconds": 0.0,
    }
    values.update(overrides)
    return SimConfig(**values)


class SimProcess:
    """``python -m kissim`` as a child process on a free port (``url``, ``config`` and ``admin`` like
    ``SimServer``, so ``Kis`` works with either)."""

    def __init__(self, *args: str, mode: str = "real") -> None:
        self.args = list(args)
        self.config = SimConfig(mode="real" if mode == "real" else "virtual")
        self.process: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self) -> SimProcess:
        command = [sys.executable, "-m", "kissim", "--port", "0", "--mode", self.config.mode, *self.args]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        match = re.fullmatch(r"kissim listening on (http://127\.0\.0\.1:\d+) mode=\w+", line)
        if match is None:
            self.process.kill()
            _, err = self.process.communicate(timeout=10)
            raise RuntimeError(f"kissim did not start: {line!r} {err!r}")
        self.url = match.group(1)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout=20)
        if self.process.stdout is not None:
            self.process.stdout.close()
        if self.process.stderr is not None:
            self.process.stderr.close()
        return code

    def admin(self, path: str, body: dict[str, Any] | None = None) -> Any:
        with httpx.Client(base_url=self.url, trust_env=False, timeout=10) as client:
            response = client.post(path, json=body or {}) if body is not None else client.get(path)
        response.raise_for_status()
        return response.json()
