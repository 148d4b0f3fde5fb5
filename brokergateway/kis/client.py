"""The KIS REST client for one account: headers, token, pacing, error translation.

Orders are never retried here: an order whose outcome is unknown raises
``BrokerTransportError``/``BrokerTimeout`` and the caller reconciles. Queries are
retried after a rate-limit answer and once after a token expiry.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import httpx

from brokergateway.kis import trids
from brokergateway.kis.errors import check, from_transport
from brokergateway.kis.tokens import TokenManager
from brokergateway.ratelimit import RateLimiter
from yquant.errors import BrokerRateLimited, TokenExpired, TokenInvalid
from yquant.messages import Market, OrderType, Side

logger = logging.getLogger(__name__)

QUERY_RETRIES = 4


@dataclass(frozen=True)
class AccountRef:
    alias: str
    cano: str
    product_code: str
    app_key: str
    app_secret: str
    env: trids.Env


@dataclass(frozen=True)
class OrderAck:
    broker_order_id: str
    broker_org_no: str
    order_time: str
    message: str


@dataclass(frozen=True)
class Page:
    body: dict[str, Any]
    has_more: bool


class KisClient:
    def __init__(
        self,
        account: AccountRef,
        http: httpx.AsyncClient,
        base_url: str,
        tokens: TokenManager,
        limiter: RateLimiter,
        *,
        order_timeout_s: float = 5.0,
        max_in_flight: int = 8,
    ) -> None:
        self.account = account
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.tokens = tokens
        self.limiter = limiter
        self.order_timeout_s = order_timeout_s
        # Requests wait here rather than in httpcore's pool, whose wake-up scans every
        # waiting request and connection (quadratic under a burst).
        self._in_flight = asyncio.Semaphore(max_in_flight)

    # --- plumbing ---------------------------------------------------------------------
    async def _headers(self, tr_id: str, tr_cont: str = "") -> dict[str, str]:
        token = await self.tokens.get()
        return {
            "content-type": "application/json; charset=utf-8",
            "authorization": f"Bearer {token}",
            "appkey": self.account.app_key,
            "appsecret": self.account.app_secret,
            "tr_id": tr_id,
            "tr_cont": tr_cont,
            "custtype": "P",
        }

    async def _send(
        self,
        method: str,
        path: str,
        tr_id: str,
        *,
        params: dict[str, str] | None = None,
        body: dict[str, str] | None = None,
        tr_cont: str = "",
        timeout: float | None = None,
    ) -> httpx.Response:
        headers = await self._headers(tr_id, tr_cont)
        await self.limiter.acquire()
        async with self._in_flight:
            try:
                return await self.http.request(
                    method,
                    self.base_url + path,
                    params=params,
                    json=body,
                    headers=headers,
                    timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
                )
            except httpx.HTTPError as exc:
                raise from_transport(exc) from exc

    async def query(self, path: str, tr_id: str, params: dict[str, str], tr_cont: str = "") -> Page:
        """A read-only call: retried on rate limits and once on an expired token."""
        refreshed = False
        for attempt in range(QUERY_RETRIES + 1):
            response = await self._send("GET", path, tr_id, params=params, tr_cont=tr_cont)
            try:
                body = check(response)
            except BrokerRateLimited:
                if attempt == QUERY_RETRIES:
                    raise
                await asyncio.sleep(0.1 * (attempt + 1))
                continue
            except (TokenExpired, TokenInvalid):
                if refreshed:
                    raise
                refreshed = True
                await self.tokens.refresh_after_expiry(_bearer(response.request))
                continue
            more = response.headers.get("tr_cont", "") in ("F", "M")
            return Page(body, more)
        raise BrokerRateLimited("rate limited")  # pragma: no cover - loop always returns or raises

    async def command(self, path: str, tr_id: str, body: dict[str, str]) -> dict[str, Any]:
        """A state-changing call: never re-sent once it may have reached KIS.

        Rate-limit and token answers mean KIS refused it before booking, so those are
        retried; a timeout or reset propagates for reconciliation.
        """
        refreshed = False
        for attempt in range(QUERY_RETRIES + 1):
            response = await self._send("POST", path, tr_id, body=body, timeout=self.order_timeout_s)
            try:
                return check(response)
            except BrokerRateLimited:
                if attempt == QUERY_RETRIES:
                    raise
                await asyncio.sleep(0.2 * (attempt + 1))
            except (TokenExpired, TokenInvalid):
                if refreshed:
                    raise
                refreshed = True
                await self.tokens.refresh_after_expiry(_bearer(response.request))
        raise BrokerRateLimited("rate limited")  # pragma: no cover

    # --- orders -----------------------------------------------------------------------
    async def place_order(
        self,
        market: Market,
        ticker: str,
        side: Side,
        quantity: int,
        order_type: OrderType,
        price: Decimal | None,
    ) -> OrderAck:
        tr_id = trids.order_tr_id(self.account.env, market, side)
        if market is Market.KRX:
            body = {
                "CANO": self.account.cano,
                "ACNT_PRDT_CD": self.account.product_code,
                "PDNO": ticker,
                "ORD_DVSN": "01" if order_type is OrderType.MARKET else "00",
                "ORD_QTY": str(quantity),
                "ORD_UNPR": "0" if order_type is OrderType.MARKET else _plain(price),
                "EXCG_ID_DVSN_CD": "KRX",
            }
            if side is Side.SELL:
                body["SLL_TYPE"] = "01"
            path = "/uapi/domestic-stock/v1/trading/order-cash"
        else:
            if price is None:
                raise ValueError("US orders need a limit price (KIS has no US market order)")
            body = {
                "CANO": self.account.cano,
                "ACNT_PRDT_CD": self.account.product_code,
                "OVRS_EXCG_CD": trids.ORDER_EXCHANGE[market],
                "PDNO": ticker,
                "ORD_QTY": str(quantity),
                "OVRS_ORD_UNPR": _plain(price),
                "CTAC_TLNO": "",
                "MGCO_APTM_ODNO": "",
                "SLL_TYPE": "00" if side is Side.SELL else "",
                "ORD_SVR_DVSN_CD": "0",
                "ORD_DVSN": "00",
            }
            path = "/uapi/overseas-stock/v1/trading/order"
        data = await self.command(path, tr_id, body)
        output = data.get("output") or {}
        return OrderAck(
            broker_order_id=str(output.get("ODNO", "")).strip(),
            broker_org_no=str(output.get("KRX_FWDG_ORD_ORGNO", "")).strip(),
            order_time=str(output.get("ORD_TMD", "")).strip(),
            message=str(data.get("msg1", "")).strip(),
        )

    async def cancel_order(
        self, market: Market, ticker: str, broker_order_id: str, broker_org_no: str, quantity: int
    ) -> OrderAck:
        env = self.account.env
        if market is Market.KRX:
            body = {
                "CANO": self.account.cano,
                "ACNT_PRDT_CD": self.account.product_code,
                "KRX_FWDG_ORD_ORGNO": broker_org_no,
                "ORGN_ODNO": broker_order_id,
                "ORD_DVSN": "00",
                "RVSE_CNCL_DVSN_CD": "02",
                "ORD_QTY": "0",
                "ORD_UNPR": "0",
                "QTY_ALL_ORD_YN": "Y",
                "EXCG_ID_DVSN_CD": "KRX",
            }
            data = await self.command(
                "/uapi/domestic-stock/v1/trading/order-rvsecncl", trids.DOMESTIC_REVISE_CANCEL[env], body
            )
        else:
            body = {
                "CANO": self.account.cano,
                "ACNT_PRDT_CD": self.account.product_code,
                "OVRS_EXCG_CD": trids.ORDER_EXCHANGE[market],
                "PDNO": ticker,
                "ORGN_ODNO": broker_order_id,
                "RVSE_CNCL_DVSN_CD": "02",
                "ORD_QTY": str(quantity),
                "OVRS_ORD_UNPR": "0",
                "MGCO_APTM_ODNO": "",
                "ORD_SVR_DVSN_CD": "0",
            }
            data = await self.command(
                "/uapi/overseas-stock/v1/trading/order-rvsecncl", trids.OVERSEAS_REVISE_CANCEL[env], body
            )
        output = data.get("output") or {}
        return OrderAck(
            broker_order_id=str(output.get("ODNO", "")).strip(),
            broker_org_no=str(output.get("KRX_FWDG_ORD_ORGNO", "")).strip(),
            order_time=str(output.get("ORD_TMD", "")).strip(),
            message=str(data.get("msg1", "")).strip(),
        )

    # --- queries ----------------------------------------------------------------------
    async def domestic_balance(self) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        summary: dict[str, Any] = {}
        fk = nk = ""
        tr_cont = ""
        for _ in range(50):
            params = {
                "CANO": self.account.cano,
                "ACNT_PRDT_CD": self.account.product_code,
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
            page = await self.query(
                "/uapi/domestic-stock/v1/trading/inquire-balance",
                trids.DOMESTIC_BALANCE[self.account.env],
                params,
                tr_cont,
            )
            rows.extend(page.body.get("output1") or [])
            output2 = page.body.get("output2") or []
            if output2:
                summary = output2[0] if isinstance(output2, list) else output2
            if not page.has_more:
                break
            fk = str(page.body.get("ctx_area_fk100", ""))
            nk = str(page.body.get("ctx_area_nk100", ""))
            tr_cont = "N"
        return rows, summary

    async def overseas_balance(self, market: Market) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        summary: dict[str, Any] = {}
        fk = nk = ""
        tr_cont = ""
        for _ in range(50):
            params = {
                "CANO": self.account.cano,
                "ACNT_PRDT_CD": self.account.product_code,
                "OVRS_EXCG_CD": trids.ORDER_EXCHANGE[market],
                "TR_CRCY_CD": "USD",
                "CTX_AREA_FK200": fk,
                "CTX_AREA_NK200": nk,
            }
            page = await self.query(
                "/uapi/overseas-stock/v1/trading/inquire-balance",
                trids.OVERSEAS_BALANCE[self.account.env],
                params,
                tr_cont,
            )
            rows.extend(page.body.get("output1") or [])
            output2 = page.body.get("output2") or {}
            summary = output2[0] if isinstance(output2, list) and output2 else output2 or summary
            if not page.has_more:
                break
            fk = str(page.body.get("ctx_area_fk200", ""))
            nk = str(page.body.get("ctx_area_nk200", ""))
            tr_cont = "N"
        return rows, summary

    async def daily_orders(
        self,
        day: date,
        *,
        ticker: str = "",
        broker_order_id: str = "",
        side: Side | None = None,
        max_pages: int = 20,
        newest_first: bool = True,
    ) -> list[dict[str, Any]]:
        """Today's orders with their fills (inquire-daily-ccld), newest first."""
        rows: list[dict[str, Any]] = []
        async for page in self.daily_order_pages(
            day,
            ticker=ticker,
            broker_order_id=broker_order_id,
            side=side,
            max_pages=max_pages,
            newest_first=newest_first,
        ):
            rows.extend(page)
        return rows

    async def daily_order_pages(
        self,
        day: date,
        *,
        ticker: str = "",
        broker_order_id: str = "",
        side: Side | None = None,
        max_pages: int = 20,
        newest_first: bool = True,
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """inquire-daily-ccld page by page, so a caller can stop once it found what it needs."""
        fk = nk = ""
        tr_cont = ""
        stamp = day.strftime("%Y%m%d")
        for _ in range(max_pages):
            params = {
                "CANO": self.account.cano,
                "ACNT_PRDT_CD": self.account.product_code,
                "INQR_STRT_DT": stamp,
                "INQR_END_DT": stamp,
                "SLL_BUY_DVSN_CD": {None: "00", Side.SELL: "01", Side.BUY: "02"}[side],
                "PDNO": ticker,
                "ORD_GNO_BRNO": "",
                "ODNO": broker_order_id,
                "CCLD_DVSN": "00",
                "INQR_DVSN": "00" if newest_first else "01",
                "INQR_DVSN_1": "",
                "INQR_DVSN_3": "00",
                "EXCG_ID_DVSN_CD": "KRX",
                "CTX_AREA_FK100": fk,
                "CTX_AREA_NK100": nk,
            }
            page = await self.query(
                "/uapi/domestic-stock/v1/trading/inquire-daily-ccld",
                trids.DOMESTIC_DAILY_CCLD[self.account.env],
                params,
                tr_cont,
            )
            yield list(page.body.get("output1") or [])
            if not page.has_more:
                return
            fk = str(page.body.get("ctx_area_fk100", ""))
            nk = str(page.body.get("ctx_area_nk100", ""))
            tr_cont = "N"

    async def domestic_price(self, ticker: str) -> dict[str, Any]:
        page = await self.query(
            "/uapi/domestic-stock/v1/quotations/inquire-price",
            trids.DOMESTIC_PRICE,
            {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": ticker},
        )
        return dict(page.body.get("output") or {})

    async def overseas_price(self, market: Market, ticker: str) -> dict[str, Any]:
        page = await self.query(
            "/uapi/overseas-price/v1/quotations/price",
            trids.OVERSEAS_PRICE,
            {"AUTH": "", "EXCD": trids.QUOTE_EXCHANGE[market], "SYMB": ticker},
        )
        return dict(page.body.get("output") or {})


def _bearer(request: httpx.Request) -> str:
    value = str(request.headers.get("authorization", ""))
    return value.removeprefix("Bearer ").strip()


def _plain(value: Decimal | None) -> str:
    if value is None:
        return "0"
    return format(value.normalize(), "f")
