"""The KIS transport's retry rules, with httpx's MockTransport (no network)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from decimal import Decimal

import httpx
import pytest

from brokergateway.kis import inquiry, trading
from brokergateway.kis.client import AccountRef, KisClient
from yquant.errors import (
    BrokerProtocolError,
    BrokerRateLimited,
    BrokerTimeout,
    BrokerTransportError,
    BrokerUnreachable,
    OrderInvalid,
    TokenExpired,
)
from yquant.messages import Market, OrderType, Side

ACCOUNT = AccountRef("main", "50000001", "01", "PSappkey", "secret", "real")
OK_ORDER = {"rt_cd": "0", "msg_cd": "APBK0013", "msg1": "주문 전송 완료 되었습니다.",
            "output": {"KRX_FWDG_ORD_ORGNO": "06010", "ODNO": "0000001001", "ORD_TMD": "100000"}}  # fmt: skip
RATE_LIMITED = {"rt_cd": "1", "msg_cd": "EGW00201", "msg1": "초당 거래건수를 초과하였습니다."}
EXPIRED = {"rt_cd": "1", "msg_cd": "EGW00123", "msg1": "기간이 만료된 token 입니다."}


@dataclass
class FakeTokens:
    token: str = "t1"
    refreshed: list[str] = field(default_factory=list)

    async def get(self) -> str:
        return self.token

    async def refresh_after_expiry(self, stale_token: str) -> str:
        self.refreshed.append(stale_token)
        self.token = "t2"
        return self.token


class FreePacer:
    async def confirm(self, member: str) -> None:
        return None

    async def acquire(self) -> str:
        return "free"

    async def try_spare(self) -> str | None:
        return "free"


Script = list[Callable[[httpx.Request], httpx.Response]]
MakeClient = Callable[[Script], tuple[KisClient, list[httpx.Request], FakeTokens]]


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    clients: list[httpx.AsyncClient] = []

    def make(script: Script) -> tuple[KisClient, list[httpx.Request], FakeTokens]:
        seen: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return script[min(len(seen), len(script)) - 1](request)

        http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        clients.append(http)
        tokens = FakeTokens()
        return KisClient(ACCOUNT, http, "https://kis.test", tokens, FreePacer(), retry_delay_s=0.001), seen, tokens

    yield make
    for http in clients:
        await http.aclose()


def reply(
    status: int, body: object, headers: dict[str, str] | None = None
) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(status, json=body, headers=headers)


def fail(exc: type[httpx.RequestError]) -> Callable[[httpx.Request], httpx.Response]:
    def raise_(request: httpx.Request) -> httpx.Response:
        raise exc("injected", request=request)

    return raise_


async def order(client: KisClient) -> trading.OrderAck:
    return await trading.place_order(client, Market.KRX, "005930", Side.BUY, 1, OrderType.MARKET, None)


async def test_order_headers_and_body_follow_kis_conventions(make_client: MakeClient) -> None:
    client, seen, _ = make_client([reply(200, OK_ORDER)])
    ack = await order(client)
    assert (ack.broker_order_id, ack.broker_org_no) == ("0000001001", "06010")
    request = seen[0]
    assert request.url.path == "/uapi/domestic-stock/v1/trading/order-cash"
    assert (request.headers["tr_id"], request.headers["authorization"]) == ("TTTC0012U", "Bearer t1")
    assert (request.headers["appkey"], request.headers["custtype"]) == ("PSappkey", "P")
    assert request.content == (
        b'{"CANO":"50000001","ACNT_PRDT_CD":"01","PDNO":"005930","ORD_DVSN":"01","ORD_QTY":"1",'
        b'"ORD_UNPR":"0","EXCG_ID_DVSN_CD":"KRX"}'
    )


async def test_order_timeout_is_never_resent(make_client: MakeClient) -> None:
    client, seen, _ = make_client([fail(httpx.ReadTimeout), reply(200, OK_ORDER)])
    with pytest.raises(BrokerTimeout):
        await order(client)
    assert len(seen) == 1


async def test_order_reset_or_unknown_server_error_is_never_resent(make_client: MakeClient) -> None:
    client, seen, _ = make_client([fail(httpx.RemoteProtocolError), reply(200, OK_ORDER)])
    with pytest.raises(BrokerTransportError):
        await order(client)
    client, seen_500, _ = make_client([reply(500, {"rt_cd": "1", "msg_cd": "EGW00002", "msg1": "서버 에러"})])
    with pytest.raises(BrokerTransportError):
        await order(client)
    assert (len(seen), len(seen_500)) == (1, 1)


async def test_order_refused_before_booking_is_retried(make_client: MakeClient) -> None:
    client, seen, tokens = make_client([reply(500, RATE_LIMITED), reply(500, EXPIRED), reply(200, OK_ORDER)])
    ack = await order(client)
    assert ack.broker_order_id == "0000001001"
    assert len(seen) == 3
    assert tokens.refreshed == ["t1"]
    assert seen[2].headers["authorization"] == "Bearer t2"


async def test_order_without_a_connection_is_retried_then_unreachable(make_client: MakeClient) -> None:
    client, seen, _ = make_client([fail(httpx.ConnectError)])
    with pytest.raises(BrokerUnreachable):
        await order(client)
    assert len(seen) == 3


async def test_token_expired_twice_gives_up_after_one_reissue(make_client: MakeClient) -> None:
    client, seen, tokens = make_client([reply(500, EXPIRED)])
    with pytest.raises(TokenExpired):
        await order(client)
    assert len(seen) == 2
    assert tokens.refreshed == ["t1"]


async def test_accepted_order_without_order_number_is_a_protocol_error(make_client: MakeClient) -> None:
    client, _, _ = make_client([reply(200, {"rt_cd": "0", "msg_cd": "APBK0013", "msg1": "", "output": {}})])
    with pytest.raises(BrokerProtocolError):
        await order(client)


async def test_queries_retry_rate_limits_and_transport_failures(make_client: MakeClient) -> None:
    body = {"rt_cd": "0", "msg_cd": "MCA00000", "msg1": "", "output": {"stck_prpr": "70000"}}
    client, seen, _ = make_client([reply(500, RATE_LIMITED), fail(httpx.ReadTimeout), reply(200, body)])
    output = await inquiry.domestic_price(client, "005930")
    assert output["stck_prpr"] == "70000"
    assert [r.headers["tr_id"] for r in seen] == ["FHKST01010100"] * 3


async def test_queries_give_up_after_persistent_rate_limits(make_client: MakeClient) -> None:
    client, seen, _ = make_client([reply(500, RATE_LIMITED)])
    with pytest.raises(BrokerRateLimited):
        await inquiry.domestic_price(client, "005930")
    assert len(seen) == 5


async def test_paging_sends_tr_cont_and_context_keys_back(make_client: MakeClient) -> None:
    first = {"rt_cd": "0", "msg_cd": "KIOK0500", "msg1": "", "output1": [{"pdno": "005930"}], "output2": [{}],
             "ctx_area_fk100": "FK".ljust(100), "ctx_area_nk100": "NK1".ljust(100)}  # fmt: skip
    last = {"rt_cd": "0", "msg_cd": "KIOK0460", "msg1": "", "output1": [{"pdno": "000660"}],
            "output2": [{"dnca_tot_amt": "5"}], "ctx_area_fk100": "", "ctx_area_nk100": ""}  # fmt: skip
    client, seen, _ = make_client([reply(200, first, {"tr_cont": "M"}), reply(200, last, {"tr_cont": "D"})])
    rows, summary = await inquiry.domestic_balance(client)
    assert [r["pdno"] for r in rows] == ["005930", "000660"]
    assert summary == {"dnca_tot_amt": "5"}
    assert seen[1].headers["tr_cont"] == "N"
    assert seen[1].url.params["CTX_AREA_NK100"] == "NK1".ljust(100)


async def test_us_order_needs_a_price_and_sells_with_the_sell_code(make_client: MakeClient) -> None:
    client, seen, _ = make_client([reply(200, OK_ORDER)])
    with pytest.raises(OrderInvalid, match="limit price"):
        await trading.place_order(client, Market.NASD, "AAPL", Side.SELL, 1, OrderType.MARKET, None)
    await trading.place_order(client, Market.NYSE, "IBM", Side.SELL, 2, OrderType.LIMIT, Decimal("220.50"))
    assert seen[0].headers["tr_id"] == "TTTT1006U"
    assert b'"OVRS_EXCG_CD":"NYSE"' in seen[0].content
    assert b'"OVRS_ORD_UNPR":"220.5"' in seen[0].content
    assert b'"SLL_TYPE":"00"' in seen[0].content
