"""KIS wire conventions: envelopes, message codes, padding, tr_id tables and JSON responses.

Every message the simulator answers with is in ``Messages`` below. Codes marked UNCERTAIN are not in
docs/kis-protocol.md; they are plausible KIS-style codes chosen for this simulator, so clients should key
their handling on ``rt_cd`` and the HTTP status, not on those codes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta, timezone
from functools import lru_cache
from typing import Any, NamedTuple

import orjson
from starlette.responses import Response

from kissim.config import SimConfig

KST = timezone(timedelta(hours=9), "KST")
MSG_WIDTH = 80
CTX_WIDTH_100 = 100
CTX_WIDTH_200 = 200


class Msg(NamedTuple):
    code: str
    text: str


class Messages:
    """Every (msg_cd, msg1) pair the simulator sends."""

    # Gateway (HTTP 500), from docs/kis-protocol.md §6
    RATE_LIMITED = Msg("EGW00201", "초당 거래건수를 초과하였습니다.")
    TOKEN_EXPIRED = Msg("EGW00123", "기간이 만료된 token 입니다.")
    TOKEN_INVALID = Msg("EGW00121", "유효하지 않은 token 입니다")
    TOKEN_THROTTLED = Msg("EGW00133", "접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회)")
    BAD_APPKEY = Msg("EGW00103", "유효하지 않은 AppKey입니다.")
    NOT_VIRTUAL_TR = Msg("EGW00213", "모의투자 TR 이 아닙니다.")  # text per kis-agent#44; code UNCERTAIN
    # Gateway, UNCERTAIN (3P code tables)
    BAD_APPSECRET = Msg("EGW00105", "유효하지 않은 AppSecret입니다.")
    BAD_CREDENTIALS_TYPE = Msg("EGW00205", "credentials_type이 유효하지 않습니다.(Bearer)")
    NOT_REAL_TR = Msg("EGW00213", "실전투자 TR 이 아닙니다.")
    ROUTING = Msg("EGW00202", "GW라우팅 중 오류가 발생했습니다.")
    SERVER_ERROR = Msg("EGW00002", "서버 에러가 발생했습니다.")
    BAD_REQUEST = Msg("EGW00101", "유효하지 않은 요청입니다.")
    NOT_FOUND = Msg("EGW00202", "GW라우팅 중 오류가 발생했습니다.")  # unknown path, HTTP 404; UNCERTAIN
    # Inquiries
    INQUIRY_DONE = Msg("KIOK0510", "조회가 완료되었습니다")
    INQUIRY_LAST = Msg("KIOK0460", "조회 되었습니다. (마지막 자료)")
    INQUIRY_MORE = Msg("KIOK0500", "조회가 계속됩니다..다음버튼을 Click 하십시오.")
    QUOTE_DONE = Msg("MCA00000", "정상처리 되었습니다!")
    # Orders accepted
    ORDER_SENT = Msg("APBK0013", "주문 전송 완료 되었습니다.")
    VIRTUAL_BUY_DONE = Msg("40600000", "모의투자 매수주문이 완료 되었습니다.")
    VIRTUAL_SELL_DONE = Msg("40590000", "모의투자 매도주문이 완료 되었습니다.")
    VIRTUAL_REVISE_DONE = Msg("40620000", "모의투자 정정주문이 완료 되었습니다.")
    VIRTUAL_CANCEL_DONE = Msg("40630000", "모의투자 취소주문이 완료 되었습니다.")
    # Order refusals (rt_cd "1" unless noted)
    VIRTUAL_MARKET_CLOSED = Msg("40580000", "모의투자 장종료 입니다.")
    MARKET_CLOSED = Msg("APBK0918", "장운영시간이 아닙니다.")  # UNCERTAIN
    VIRTUAL_NO_CASH = Msg("40250000", "모의투자 주문가능금액이 부족합니다.")
    NO_CASH = Msg("APBK0952", "주문가능금액을 초과 했습니다")
    VIRTUAL_NO_HOLDING = Msg("40240000", "모의투자 주문가능수량을 초과 했습니다.")  # UNCERTAIN
    NO_HOLDING = Msg("APBK0986", "주문가능수량을 초과 했습니다.")  # UNCERTAIN
    VIRTUAL_TICK = Msg("40070000", "모의투자 주문처리가 안되었습니다(호가단위 오류)")  # code UNCERTAIN
    TICK = Msg("APBK0504", "호가단위 오류입니다.")  # UNCERTAIN
    VIRTUAL_NOT_TRADABLE = Msg("40070000", "모의투자 주문처리가 안되었습니다(매매불가 종목)")  # code UNCERTAIN
    NOT_TRADABLE = Msg("APBK0656", "매매불가 종목입니다.")  # UNCERTAIN
    PRICE_LIMIT = Msg("APBK0509", "주문단가가 상/하한가 범위를 벗어났습니다.")  # UNCERTAIN
    BAD_QUANTITY = Msg("APBK0510", "주문수량을 확인하여 주십시요.")  # UNCERTAIN
    BAD_PRICE = Msg("APBK0511", "주문단가를 확인하여 주십시요.")  # UNCERTAIN
    REVISE_QTY_EXCEEDS = Msg("APBK1359", "정정취소수량이 주문수량보다 많습니다")  # rt_cd "7"
    NOTHING_TO_CHANGE = Msg("APBK1359", "정정/취소할 수량이 없습니다.")  # rt_cd "7"; code UNCERTAIN
    ORDER_NOT_FOUND = Msg("APBK0400", "원주문번호가 존재하지 않습니다.")  # UNCERTAIN
    BAD_ACCOUNT = Msg("OPSQ2000", "ERROR : INPUT INVALID_CHECK_ACNO")
    MISSING_FIELD = Msg("OPSQ2002", "ERROR : INPUT FIELD NOT FOUND")  # UNCERTAIN
    BAD_EXCHANGE = Msg("APBK1271", "거래소코드를 확인하여 주십시요.")  # UNCERTAIN
    # Simulator limits: not a KIS code on purpose, so nobody mistakes it for KIS behaviour.
    UNSUPPORTED = Msg("KSIM0001", "kissim 미지원 주문구분입니다.")


class KisError(Exception):
    """A refusal answered in KIS's ``rt_cd``/``msg_cd``/``msg1`` envelope."""

    def __init__(
        self, msg: Msg, *, http_status: int = 200, rt_cd: str = "1", detail: str = "", pad: bool = True
    ) -> None:
        super().__init__(f"{msg.code} {msg.text}{detail}")
        self.msg = msg
        self.http_status = http_status
        self.rt_cd = rt_cd
        self.detail = detail
        self.pad = pad

    @classmethod
    def gateway(cls, msg: Msg) -> KisError:
        """An EGW-style error: HTTP 500, unpadded message."""
        return cls(msg, http_status=500, pad=False)

    def body(self) -> dict[str, Any]:
        text = self.msg.text + self.detail
        return {"rt_cd": self.rt_cd, "msg_cd": self.msg.code, "msg1": pad_msg(text) if self.pad else text}


class TokenThrottled(Exception):
    """tokenP asked again too soon: EGW00133 in its own body shape, HTTP 403."""

    def body(self) -> dict[str, Any]:
        return {"error_description": Messages.TOKEN_THROTTLED.text, "error_code": Messages.TOKEN_THROTTLED.code}


def display_width(text: str) -> int:
    """Width as KIS counts it (EUC-KR bytes): non-ASCII characters take two columns."""
    return sum(1 if ord(ch) < 128 else 2 for ch in text)


@lru_cache(maxsize=256)
def pad_msg(text: str, width: int = MSG_WIDTH) -> str:
    return text + " " * max(0, width - display_width(text))


def pad_ctx(text: str, width: int = CTX_WIDTH_100) -> str:
    return text.ljust(width)


def ok_body(msg: Msg, **outputs: Any) -> dict[str, Any]:
    """Success envelope; output keys follow the envelope like KIS's order responses."""
    return {"rt_cd": "0", "msg_cd": msg.code, "msg1": pad_msg(msg.text), **outputs}


def new_gt_uid() -> str:
    return os.urandom(16).hex().upper()


def json_response(
    body: Mapping[str, Any] | list[Any], *, status: int = 200, tr_id: str = "", tr_cont: str = ""
) -> Response:
    headers = {"tr_id": tr_id, "tr_cont": tr_cont, "gt_uid": new_gt_uid()} if tr_id else None
    return Response(
        orjson.dumps(body), status_code=status, headers=headers, media_type="application/json; charset=UTF-8"
    )


def plain_json(body: Any, status: int = 200) -> Response:
    """A JSON response without KIS headers (auth endpoints, admin API)."""
    return Response(orjson.dumps(body), status_code=status, media_type="application/json; charset=UTF-8")


def error_response(error: KisError, tr_id: str = "") -> Response:
    return json_response(error.body(), status=error.http_status, tr_id=tr_id)


# --------------------------------------------------------------------------- tr_id tables


@dataclass(frozen=True)
class TrSpec:
    """What a tr_id means on one endpoint: which domain it belongs to and what it does."""

    virtual: bool
    action: str


def _pair(real: str, action: str) -> dict[str, TrSpec]:
    return {real: TrSpec(False, action), "V" + real[1:]: TrSpec(True, action)}


def _table(*pairs: tuple[str, str]) -> dict[str, TrSpec]:
    table: dict[str, TrSpec] = {}
    for real, action in pairs:
        table.update(_pair(real, action))
    return table


DOMESTIC_ORDER = _table(("TTTC0011U", "sell"), ("TTTC0012U", "buy"), ("TTTC0801U", "sell"), ("TTTC0802U", "buy"))
DOMESTIC_RVSECNCL = _table(("TTTC0013U", "rvsecncl"), ("TTTC0803U", "rvsecncl"))
DOMESTIC_BALANCE = _table(("TTTC8434R", "balance"))
DOMESTIC_PSBL_ORDER = _table(("TTTC8908R", "psbl-order"))
DOMESTIC_DAILY_CCLD = _table(
    ("TTTC0081R", "daily-ccld"), ("TTTC8001R", "daily-ccld"), ("CTSC9215R", "daily-ccld"), ("CTSC9115R", "daily-ccld")
)
DOMESTIC_PRICE = {"FHKST01010100": TrSpec(False, "price")}
# The virtual US sell is VTTT1001U, not "V" + TTTT1006U (docs/kis-protocol.md §5).
# KIS's official samples build "V" + tr_id[1:] and so send VTTT1006U for it: accepted as a sell too.
OVERSEAS_ORDER = {
    "TTTT1002U": TrSpec(False, "buy"),
    "TTTT1006U": TrSpec(False, "sell"),
    "VTTT1002U": TrSpec(True, "buy"),
    "VTTT1001U": TrSpec(True, "sell"),
    "VTTT1006U": TrSpec(True, "sell"),
}
OVERSEAS_RVSECNCL = _table(("TTTT1004U", "rvsecncl"))
OVERSEAS_BALANCE = _table(("TTTS3012R", "balance"))
OVERSEAS_PRESENT_BALANCE = {"CTRP6504R": TrSpec(False, "present-balance"), "VTRP6504R": TrSpec(True, "present-balance")}
OVERSEAS_PRICE = {"HHDFS00000300": TrSpec(False, "price")}
# UNCERTAIN, docs/kis-protocol.md §5.7. The overseas order list (해외주식 주문체결내역) as in OT
# examples_llm/overseas_stock/inquire_ccnl: TTTS3035R real, VTTS3035R virtual.
OVERSEAS_CCNL = _table(("TTTS3035R", "ccnl"))
# Market data, product information, calendars, open orders, sellable and buyable amounts
# (docs/kis-endpoints.md). Real-only tr_ids (no TrSpec(True, ...)) answer EGW00213 on the virtual
# domain, as KIS's samples say these calls are not offered there.
DOMESTIC_ASKING_PRICE = {"FHKST01010200": TrSpec(False, "asking-price")}
DOMESTIC_RECENT_TRADES = {"FHKST01010300": TrSpec(False, "ccnl")}
DOMESTIC_DAILY_PRICE = {"FHKST01010400": TrSpec(False, "daily-price")}
DOMESTIC_DAILY_CHART = {"FHKST03010100": TrSpec(False, "daily-chart")}
DOMESTIC_MINUTE_CHART = {"FHKST03010200": TrSpec(False, "minute-chart")}
SEARCH_INFO = {"CTPF1604R": TrSpec(False, "search-info")}
SEARCH_STOCK_INFO = {"CTPF1002R": TrSpec(False, "search-stock-info")}
CHK_HOLIDAY = {"CTCA0903R": TrSpec(False, "chk-holiday")}
DOMESTIC_PSBL_RVSECNCL = {"TTTC0084R": TrSpec(False, "psbl-rvsecncl"), "TTTC8036R": TrSpec(False, "psbl-rvsecncl")}
DOMESTIC_PSBL_SELL = {"TTTC8408R": TrSpec(False, "psbl-sell")}
OVERSEAS_PRICE_DETAIL = {"HHDFS76200200": TrSpec(False, "price-detail")}
OVERSEAS_ASKING_PRICE = {"HHDFS76200100": TrSpec(False, "asking-price")}
OVERSEAS_DAILY_PRICE = {"HHDFS76240000": TrSpec(False, "dailyprice")}
OVERSEAS_MINUTE_CHART = {"HHDFS76950200": TrSpec(False, "minute-chart")}
OVERSEAS_SEARCH_INFO = {"CTPF1702R": TrSpec(False, "search-info")}
COUNTRIES_HOLIDAY = {"CTOS5011R": TrSpec(False, "countries-holiday")}
OVERSEAS_NCCS = _table(("TTTS3018R", "nccs"))
# Realised profit by period (profit.py): real domain only, as KIS's samples say (모의투자 미지원).
DOMESTIC_PERIOD_TRADE_PROFIT = {"TTTC8715R": TrSpec(False, "period-trade-profit")}
OVERSEAS_PERIOD_PROFIT = {"TTTS3039R": TrSpec(False, "period-profit")}
DOMESTIC_PERIOD_PROFIT = {"TTTC8708R": TrSpec(False, "period-profit")}
# The account seen whole (assets.py): real domain only, as KIS's samples offer them.
DOMESTIC_BALANCE_RLZ_PL = {"TTTC8494R": TrSpec(False, "balance-rlz-pl")}
ACCOUNT_BALANCE = {"CTRP6548R": TrSpec(False, "account-balance")}
OVERSEAS_PSAMOUNT = _table(("TTTS3007R", "psamount"))
# Quotation tr_ids are the same on both domains.
SHARED_TR_IDS = frozenset(
    {
        "FHKST01010100",
        "HHDFS00000300",
        "FHKST01010200",
        "FHKST01010300",
        "FHKST01010400",
        "FHKST03010100",
        "FHKST03010200",
        "HHDFS76240000",
    }
)


def resolve_tr(table: Mapping[str, TrSpec], tr_id: str, config: SimConfig) -> str:
    """The action a tr_id stands for on this endpoint, or the gateway error KIS would give."""
    spec = table.get(tr_id)
    if spec is None:
        # A tr_id of the other domain that exists on this endpoint is a domain mismatch.
        if tr_id and tr_id[0] in "TJC" and "V" + tr_id[1:] in table and config.is_virtual:
            raise KisError.gateway(Messages.NOT_VIRTUAL_TR)
        raise KisError.gateway(Messages.ROUTING)
    if tr_id in SHARED_TR_IDS:
        return spec.action
    if config.is_virtual and not spec.virtual:
        raise KisError.gateway(Messages.NOT_VIRTUAL_TR)
    if not config.is_virtual and spec.virtual:
        raise KisError.gateway(Messages.NOT_REAL_TR)
    return spec.action
