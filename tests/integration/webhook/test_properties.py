"""Property-based: whatever arrives, never a 5xx, and nothing is appended unless accepted.

Hypothesis drives bodies, content types, headers and paths through the app (httpx's ASGI
transport) on the session's real Valkey. One event loop serves all examples of a test.
"""

from __future__ import annotations

import asyncio
import json
import string
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.integration.webhook.conftest import SECRET, configure
from tests.unit.webhook import tradingview
from webhook.app import create_app
from yquant import keys, valkey
from yquant.settings import Settings

DOCUMENTED = {200, 400, 401, 403, 413, 415, 422, 429}
PROPERTY_SETTINGS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class Harness:
    """The app, its Valkey client and an HTTP client, all on one event loop kept across examples."""

    def __init__(self, settings: Settings, peer: tuple[str, int]) -> None:
        self.runner = asyncio.Runner()
        self.valkey = valkey.connect(settings.valkey)
        transport = httpx.ASGITransport(app=create_app(settings, self.valkey), client=peer)
        self.http = httpx.AsyncClient(transport=transport, base_url="http://webhook")

    def post(self, path: str, content: bytes, headers: dict[str, str]) -> tuple[httpx.Response, int]:
        """The answer, and how many entries the signal stream grew by."""

        async def exchange() -> tuple[httpx.Response, int]:
            before = await self.valkey.xlen(keys.SIGNALS_WEBHOOK)
            response = await self.http.post(path, content=content, headers=headers)
            return response, await self.valkey.xlen(keys.SIGNALS_WEBHOOK) - before

        return self.runner.run(exchange())

    def close(self) -> None:
        self.runner.run(self.http.aclose())
        self.runner.run(self.valkey.aclose())
        self.runner.close()


@pytest.fixture
def harness(settings: Settings) -> Iterator[Harness]:
    configured = configure(
        settings,
        {"demo": None, "swing-kr": None, "rsi_us.v2": None},
        rate_limit_per_min=0,
        rejections_per_min=0,
        max_body_bytes=4096,
    )
    running = Harness(configured, peer=("52.89.214.238", 443))
    yield running
    running.close()


def fired(offset_s: int) -> str:
    return tradingview.timenow(datetime.now(UTC) + timedelta(seconds=offset_s))


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=24)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
numbers = (
    st.integers(min_value=-5, max_value=10**6)
    | st.decimals(allow_nan=True, allow_infinity=True, places=None).map(str)
    | st.floats(min_value=-1, max_value=1e7)
    | st.sampled_from(["", "1.5", "NaN", "1e999", "0", "-0", "  7 "])
    | json_values
)
plausible_fields: dict[str, st.SearchStrategy[Any]] = {
    "strategy": st.sampled_from(["demo", "swing-kr", " Swing-KR ", "", "bad name", "x" * 70])
    | st.sampled_from(["demo", "swing-kr"])
    | json_values,
    "ticker": st.sampled_from(["005930", "KRX:005930", "AAPL", "NASDAQ:AAPL_DL", "A005930", "12345", ""]) | json_values,
    "exchange": st.sampled_from(["KRX", "NASDAQ", "NYSE_DL", "AMEX", "LSE", ""]) | json_values,
    "action": st.sampled_from(["buy", "sell", "exit", "reverse", "cancel", "LONG", "hold"])
    | st.sampled_from(["buy", "sell"])
    | json_values,
    "quantity": numbers,
    "contracts": numbers,
    "price": numbers,
    "stop_loss": numbers,
    "takeProfit": numbers,
    "quantity_type": st.sampled_from(["fixed", "amount", "percent_of_equity", "bogus"]) | json_values,
    "orderType": st.sampled_from(["market", "limit", "stop"]) | json_values,
    "fired_at": st.integers(min_value=-200, max_value=200).map(fired)
    | st.integers(min_value=-60, max_value=0).map(fired)
    | json_values
    | st.integers(),
    "timenow": st.integers(min_value=-200, max_value=200).map(fired),
    "id": st.text(max_size=20) | json_values,
    "order_id": st.text(max_size=20),
    "market_position": st.sampled_from(["long", "flat", "short", "up"]),
    "position_size": numbers,
    "meta": json_values,
    "quantiy": json_values,
}
core_fields = ("strategy", "ticker", "action", "fired_at")
# Hypothesis favours the first element of sampled_from and small integers: weights by repetition.
usually = st.sampled_from([True, True, True, True, False])
rarely = st.sampled_from([False, False, False, False, False, True])
secrets = st.sampled_from([SECRET, SECRET, SECRET, "wrong-secret", "", None, 12345, ["test-secret"]])
valid_media_types = st.sampled_from(
    ["application/json", "text/plain; charset=utf-8", "Application/JSON;charset=UTF-8", "text/plain", ""]
)
odd_media_types = st.sampled_from(["text/html", "application/x-www-form-urlencoded"]) | st.text(
    alphabet=string.ascii_letters + string.digits + "/;=-+. ", max_size=30
)


@st.composite
def alerts(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly alert-shaped: the core fields usually present, the rest sometimes, any of them odd."""
    present = [name for name in core_fields if draw(usually)] + [
        name for name in plausible_fields if name not in core_fields and draw(rarely)
    ]
    return {name: draw(plausible_fields[name]) for name in present}


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, bytes, dict[str, str], bool]:
    """(path, body, headers, carries the right secret)."""
    token = draw(st.sampled_from([None, None, None, SECRET, "wrong-secret", "%2e%2e", "ünïcode"]))
    path = "/webhook" if token is None else f"/webhook/{token}"
    kind = draw(st.sampled_from(["alert", "alert", "alert", "alert", "json", "bytes", "template"]))
    body_secret: object = None
    if kind == "alert":
        alert = draw(alerts())
        body_secret = draw(secrets)
        if body_secret is not None:
            alert["secret"] = body_secret
        body = json.dumps(alert).encode()
    elif kind == "json":
        value = draw(json_values)
        body_secret = value.get("secret") if isinstance(value, dict) else None
        body = json.dumps(value).encode()
    elif kind == "bytes":
        body = draw(st.binary(max_size=5000))
    else:
        body = tradingview.templates()[draw(st.sampled_from(["strategy", "indicator"]))].encode()
    right = body_secret == SECRET if token is None else token == SECRET
    headers = {}
    content_type = draw(odd_media_types if draw(rarely) else valid_media_types)
    if content_type:
        headers["content-type"] = content_type
    for name, values in (
        ("x-forwarded-for", st.sampled_from(["52.89.214.238", "1.2.3.4, 10.0.0.1", "garbage", "::1"])),
        ("content-encoding", st.sampled_from(["identity", "gzip", "br"])),
        ("x-ssl-client-s-dn", st.text(alphabet=string.printable.strip(), max_size=40)),
    ):
        if draw(rarely):
            headers[name] = draw(values)
    return path, body, headers, right


@PROPERTY_SETTINGS
@given(request=requests())
def test_no_input_causes_a_5xx_or_an_append_unless_accepted(
    harness: Harness, request: tuple[str, bytes, dict[str, str], bool]
) -> None:
    path, body, headers, right_secret = request
    response, grown_by = harness.post(path, body, headers)
    assert response.status_code in DOCUMENTED, response.text
    answer = response.json()
    event(f"{response.status_code} {answer.get('code', answer['status'])}")
    accepted = response.status_code == 200 and answer["status"] == "accepted"
    assert grown_by == (1 if accepted else 0)
    if not right_secret:
        assert response.status_code != 200
        assert response.status_code in {401, 403, 413, 415, 422, 400}
    assert SECRET not in response.text
    assert "wrong-secret" not in response.text


VALID_TICKERS = [
    ("005930", "KRX"),
    ("KRX:000660", None),
    ("A035720", None),
    ("AAPL", "NASDAQ"),
    ("MSFT", "NASDAQ_DL"),
    ("NYSE:IBM", None),
    ("SPY", "AMEX"),
    ("BRK.B", "NYSE"),
]


@st.composite
def valid_alerts(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    ticker, exchange = draw(st.sampled_from(VALID_TICKERS))
    alert: dict[str, Any] = {
        "secret": SECRET,
        "strategy": draw(st.sampled_from(["demo", "Swing-KR", "rsi_us.v2"])),
        "ticker": draw(st.sampled_from([ticker, ticker.lower(), f" {ticker} "])),
        "action": draw(st.sampled_from(["buy", "sell", "exit", "reverse", "cancel", "Buy", "SELL"])),
        "quantity": draw(
            st.integers(min_value=1, max_value=10**6) | st.decimals(min_value=1, max_value=10**6, places=2).map(str)
        ),
        "fired_at": fired(draw(st.integers(min_value=-60, max_value=5))),
    }
    if exchange is not None:
        alert["exchange"] = exchange
    if draw(st.booleans()):
        alert["order_type"], alert["price"] = "limit", draw(st.integers(min_value=1, max_value=10**6))
    content_type = draw(st.sampled_from(["application/json", "text/plain", "text/plain; charset=utf-8"]))
    return alert, content_type


@PROPERTY_SETTINGS
@given(alert=valid_alerts())
def test_every_valid_alert_is_appended_exactly_once(harness: Harness, alert: tuple[dict[str, Any], str]) -> None:
    fields, content_type = alert
    body = json.dumps({**fields, "id": uuid.uuid4().hex}).encode()  # examples repeat; alerts must not
    first, grown_by = harness.post("/webhook", body, {"content-type": content_type})
    assert first.status_code == 200, first.text
    assert (first.json()["status"], grown_by) == ("accepted", 1)
    again, grown_by = harness.post("/webhook", body, {"content-type": content_type})
    assert (again.json()["status"], grown_by) == ("duplicate", 0)
