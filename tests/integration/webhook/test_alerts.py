"""TradingView-shaped alerts against the app and a real Valkey: accepted, resent, stale, refused."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import redis.asyncio as aioredis

from tests.integration.webhook.conftest import (
    SECRET,
    WebhookClient,
    appended,
    indicator_alert,
    strategy_alert,
)
from tests.unit.webhook import tradingview
from webhook.schema import dedupe_key_of
from yquant import keys
from yquant.messages import Market, SignalAction


async def test_strategy_alert_from_the_docs_is_appended_once(
    webhook_client: WebhookClient, redis_client: aioredis.Redis
) -> None:
    body, headers = strategy_alert()
    async with webhook_client() as http:
        response = await http.post("/webhook", content=body, headers=headers)
    assert response.status_code == 200
    answer = response.json()
    assert answer["status"] == "accepted"
    [message] = await appended(redis_client)
    assert message.correlation_id == answer["signal_id"]
    signal = message.signal
    assert (signal.strategy, signal.ticker, signal.market, signal.action) == (
        "demo",
        "005930",
        Market.KRX,
        SignalAction.BUY,
    )
    assert (signal.quantity, signal.price, signal.order_id) == (Decimal(3), Decimal(71200), "Long entry")
    assert signal.signal_id == answer["signal_id"]
    assert signal.source == "webhook"


async def test_indicator_alert_from_the_docs_is_appended(
    webhook_client: WebhookClient, redis_client: aioredis.Redis
) -> None:
    body, headers = indicator_alert()
    async with webhook_client() as http:
        response = await http.post("/webhook", content=body, headers=headers)
    assert response.status_code == 200, response.text
    [message] = await appended(redis_client)
    assert (message.signal.ticker, message.signal.market, message.signal.price) == (
        "AAPL",
        Market.NASD,
        Decimal("187.44"),
    )


async def test_json_sent_as_text_plain_is_read(webhook_client: WebhookClient, redis_client: aioredis.Redis) -> None:
    body, _ = strategy_alert()
    async with webhook_client() as http:
        response = await http.post("/webhook", content=body, headers={"content-type": "text/plain; charset=utf-8"})
    assert response.json()["status"] == "accepted"
    assert len(await appended(redis_client)) == 1


async def test_resends_are_acknowledged_without_a_second_append(
    webhook_client: WebhookClient, redis_client: aioredis.Redis
) -> None:
    body, headers = strategy_alert()
    async with webhook_client() as http:
        answers = [(await http.post("/webhook", content=body, headers=headers)).json() for _ in range(4)]
    assert [answer["status"] for answer in answers] == ["accepted", "duplicate", "duplicate", "duplicate"]
    assert len({answer["signal_id"] for answer in answers}) == 1
    assert len(await appended(redis_client)) == 1
    ttl = await redis_client.ttl(keys.signal_dedupe(dedupe_key_of(answers[0]["signal_id"])))
    assert 86_000 < ttl <= 86_400


async def test_next_fill_of_the_same_strategy_is_a_new_signal(
    webhook_client: WebhookClient, redis_client: aioredis.Redis
) -> None:
    same_second = tradingview.timenow()
    entry, headers = strategy_alert(timenow=same_second)
    exit_, _ = strategy_alert(timenow=same_second, **{"strategy.order.action": "sell", "strategy.order.id": "Exit"})
    async with webhook_client() as http:
        first = await http.post("/webhook", content=entry, headers=headers)
        second = await http.post("/webhook", content=exit_, headers=headers)
    assert [first.json()["status"], second.json()["status"]] == ["accepted", "accepted"]
    assert [message.signal.action for message in await appended(redis_client)] == [SignalAction.BUY, SignalAction.SELL]


async def test_untimed_alerts_are_deduplicated_for_a_minute_only(
    webhook_client: WebhookClient, redis_client: aioredis.Redis
) -> None:
    body = {"secret": SECRET, "strategy": "demo", "ticker": "005930", "action": "buy", "quantity": 1}
    async with webhook_client() as http:
        first = await http.post("/webhook", json=body)
        again = await http.post("/webhook", json=body)
    assert [first.json()["status"], again.json()["status"]] == ["accepted", "duplicate"]
    assert 0 < await redis_client.ttl(keys.signal_dedupe(dedupe_key_of(first.json()["signal_id"]))) <= 60


@pytest.mark.parametrize(
    ("fired", "code"),
    [(timedelta(seconds=-70), "too_old"), (timedelta(days=-3), "too_old"), (timedelta(seconds=30), "in_future")],
)
async def test_stale_alert_is_refused_and_not_appended(
    webhook_client: WebhookClient, redis_client: aioredis.Redis, fired: timedelta, code: str
) -> None:
    body, headers = strategy_alert(timenow=tradingview.timenow(datetime.now(UTC) + fired))
    async with webhook_client() as http:
        response = await http.post("/webhook", content=body, headers=headers)
    assert response.status_code == 422
    assert response.json()["error"] == "stale"
    assert response.json()["code"] == code
    assert await appended(redis_client) == []


async def test_clock_skew_tolerance_accepts_a_slightly_late_or_early_alert(
    webhook_client: WebhookClient, redis_client: aioredis.Redis
) -> None:
    late, headers = strategy_alert(timenow=tradingview.timenow(datetime.now(UTC) - timedelta(seconds=62)))
    early, _ = strategy_alert(timenow=tradingview.timenow(datetime.now(UTC) + timedelta(seconds=3)))
    async with webhook_client() as http:
        assert (await http.post("/webhook", content=late, headers=headers)).status_code == 200
        assert (await http.post("/webhook", content=early, headers=headers)).status_code == 200
    assert len(await appended(redis_client)) == 2


async def test_fired_at_can_be_required(webhook_client: WebhookClient, redis_client: aioredis.Redis) -> None:
    body = {"secret": SECRET, "strategy": "demo", "ticker": "005930", "action": "buy"}
    async with webhook_client(require_fired_at=True) as http:
        response = await http.post("/webhook", json=body)
    assert (response.status_code, response.json()["code"]) == (422, "missing_fired_at")
    assert await appended(redis_client) == []


async def test_secret_in_the_path_instead_of_the_body(
    webhook_client: WebhookClient, redis_client: aioredis.Redis
) -> None:
    body, headers = strategy_alert()
    without_secret = json.dumps({k: v for k, v in json.loads(body).items() if k != "secret"})
    async with webhook_client() as http:
        accepted = await http.post(f"/webhook/{SECRET}", content=without_secret, headers=headers)
        wrong = await http.post("/webhook/guess-123", content=body, headers=headers)
    assert accepted.json()["status"] == "accepted"
    assert wrong.status_code == 401  # the path token wins over a right secret in the body
    assert "guess-123" not in wrong.text
    assert len(await appended(redis_client)) == 1


async def test_secret_in_the_path_can_be_turned_off_and_the_body_form_still_works(
    webhook_client: WebhookClient, redis_client: aioredis.Redis
) -> None:
    body, headers = strategy_alert()
    without_secret = json.dumps({k: v for k, v in json.loads(body).items() if k != "secret"})
    async with webhook_client(path_secret=False) as http:
        right = await http.post(f"/webhook/{SECRET}", content=without_secret, headers=headers)
        wrong = await http.post("/webhook/guess-123", content=without_secret, headers=headers)
        in_body = await http.post("/webhook", content=body, headers=headers)
    # A right and a wrong token get the same answer, which names the form that works.
    for refused in (right, wrong):
        assert refused.status_code == 401
        assert refused.json()["code"] == "path_secret"
        assert "message" in refused.json()["reason"]
        assert SECRET not in refused.text
    assert in_body.json()["status"] == "accepted"
    assert len(await appended(redis_client)) == 1


async def test_a_trailing_slash_is_not_redirected_so_the_secret_never_lands_in_a_location_header(
    webhook_client: WebhookClient, redis_client: aioredis.Redis
) -> None:
    body, headers = strategy_alert()
    async with webhook_client() as http:
        answers = [
            await http.post(f"/webhook/{SECRET}/", content=body, headers=headers),
            await http.post("/webhook/", content=body, headers=headers),
        ]
    for answer in answers:
        assert answer.status_code == 404
        assert "location" not in answer.headers
        assert SECRET not in answer.text
    assert await appended(redis_client) == []


async def test_per_strategy_secrets(webhook_client: WebhookClient, redis_client: aioredis.Redis) -> None:
    own, headers = strategy_alert(secret="swing-own-secret")
    with_global, _ = strategy_alert(secret=SECRET)
    spelled = own.replace('"demo"', '" Demo "')
    async with webhook_client(strategies={"demo": "swing-own-secret"}) as http:
        assert (await http.post("/webhook", content=own, headers=headers)).status_code == 200
        assert (await http.post("/webhook", content=with_global, headers=headers)).status_code == 401
        # Another spelling of the name is the same strategy: same secret, same signal.
        assert (await http.post("/webhook", content=spelled, headers=headers)).json()["status"] == "duplicate"
        spelled_global = with_global.replace('"demo"', '"DEMO"')
        assert (await http.post("/webhook", content=spelled_global, headers=headers)).status_code == 401
    assert [message.signal.strategy for message in await appended(redis_client)] == ["demo"]


@pytest.mark.parametrize(
    ("content", "content_type", "status", "code"),
    [
        (b'{"secret": "test-secret", "strategy": ', "application/json", 422, "not_json"),
        (b"buy 005930 now", "text/plain", 422, "not_json"),
        (b'["buy", "005930"]', "application/json", 422, "not_an_object"),
        (b'{"secret": "test-secret"}', "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        (b'{"secret": "test-secret"}', "application/xml", 415, "unsupported_media_type"),
        (b'{"secret": "test-secret", "pad": "' + b"x" * 5000 + b'"}', "application/json", 413, "too_large"),
        (b"", "application/json", 422, "not_json"),
    ],
)
async def test_malformed_request_gets_a_short_json_reason_and_nothing_is_appended(
    webhook_client: WebhookClient,
    redis_client: aioredis.Redis,
    content: bytes,
    content_type: str,
    status: int,
    code: str,
) -> None:
    async with webhook_client() as http:
        response = await http.post("/webhook", content=content, headers={"content-type": content_type})
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.json()["code"] == code
    assert len(response.content) < 200
    assert SECRET not in response.text
    assert await appended(redis_client) == []


async def test_body_streamed_without_length_is_cut_at_the_limit(
    webhook_client: WebhookClient, redis_client: aioredis.Redis
) -> None:
    async def endless() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b" " * 1024

    async with webhook_client() as http:
        response = await http.post("/webhook", content=endless(), headers={"content-type": "application/json"})
    assert (response.status_code, response.json()["code"]) == (413, "too_large")
    assert await appended(redis_client) == []


async def test_compressed_body_is_refused(webhook_client: WebhookClient) -> None:
    body, _ = strategy_alert()
    async with webhook_client() as http:
        response = await http.post(
            "/webhook", content=body, headers={"content-type": "application/json", "content-encoding": "gzip"}
        )
    assert response.status_code == 415


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"ticker": "12345"}, 422, "bad_ticker"),
        ({"exchange": "BINANCE"}, 422, "bad_exchange"),
        ({"action": "hold"}, 422, "bad_field"),
        ({"quantiy": 1}, 422, "unknown_field"),
        ({"order_type": "limit", "price": None}, 422, "limit_without_price"),
        ({"ticker": None}, 422, "missing_field"),
        ({"secret": None}, 401, "secret"),
        ({"secret": "Test-Secret"}, 401, "secret"),
        ({"strategy": None, "secret": "wrong"}, 401, "secret"),
    ],
)
async def test_alert_that_cannot_be_traded_is_refused_with_its_reason(
    webhook_client: WebhookClient, redis_client: aioredis.Redis, change: dict[str, object], status: int, code: str
) -> None:
    body = json.loads(strategy_alert()[0])
    body.update(change)
    body = {key: value for key, value in body.items() if value is not None}
    async with webhook_client() as http:
        response = await http.post("/webhook", json=body)
    assert (response.status_code, response.json()["code"]) == (status, code)
    assert await appended(redis_client) == []


async def test_unauthorised_caller_learns_nothing_about_the_fields(webhook_client: WebhookClient) -> None:
    async with webhook_client() as http:
        unknown_strategy = await http.post("/webhook", json={"secret": "x", "strategy": "nope", "bogus": 1})
        known_strategy = await http.post("/webhook", json={"secret": "x", "strategy": "swing-kr"})
    assert unknown_strategy.json() == known_strategy.json()
    assert unknown_strategy.json()["reason"] == "missing or wrong secret"


async def test_metrics_count_each_outcome(webhook_client: WebhookClient) -> None:
    body, headers = strategy_alert()
    stale, _ = strategy_alert(timenow="2020-01-01T00:00:00Z")
    async with webhook_client() as http:
        await http.post("/webhook", content=body, headers=headers)
        await http.post("/webhook", content=body, headers=headers)
        await http.post("/webhook", content=stale, headers=headers)
        await http.post("/webhook", content=body.replace(SECRET, "nope"), headers=headers)
        await http.post("/webhook", content=b"{", headers=headers)
        exposition = (await http.get("/metrics")).text
    for line in (
        "yquant_webhook_received_total 5.0",
        "yquant_webhook_accepted_total 1.0",
        "yquant_webhook_duplicate_total 1.0",
        'yquant_webhook_stale_total{reason="too_old"} 1.0',
        'yquant_webhook_unauthorised_total{reason="secret"} 1.0',
        'yquant_webhook_invalid_total{reason="not_json"} 1.0',
        'yquant_webhook_response_seconds_count{outcome="accepted"} 1.0',
    ):
        assert line in exposition.splitlines()
    outcomes = [
        float(line.rsplit(" ", 1)[1])
        for line in exposition.splitlines()
        if line.startswith(
            tuple(
                f"yquant_webhook_{name}_total"
                for name in ("accepted", "duplicate", "stale", "unauthorised", "invalid", "rate_limited", "unavailable")
            )
        )
    ]
    assert sum(outcomes) == 5.0  # every request in exactly one outcome


async def test_health_endpoints(webhook_client: WebhookClient) -> None:
    async with webhook_client() as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        assert (await http.get("/readyz")).json() == {"status": "ready"}
        assert (await http.get("/webhook")).status_code == 405


async def test_alert_for_an_unconfigured_strategy_is_refused_with_its_name(
    webhook_client: WebhookClient, redis_client: aioredis.Redis
) -> None:
    """The global secret is right but no strategy of that name trades: 422, nothing appended."""
    async with webhook_client() as http:  # no strategies configured: the order manager trades "demo"
        body = {"secret": SECRET, "strategy": "swing-kr", "ticker": "005930", "action": "buy", "quantity": 1}
        response = await http.post("/webhook", json=body)
        demo = await http.post("/webhook", json={**body, "strategy": "demo"})
    assert (response.status_code, response.json()["code"]) == (422, "unknown_strategy")
    assert "'swing-kr' is not configured; known: demo" in response.json()["reason"]
    assert demo.json()["status"] == "accepted"
    assert [message.signal.strategy for message in await appended(redis_client)] == ["demo"]


async def test_the_same_alert_after_the_window_is_a_new_signal(
    webhook_client: WebhookClient, redis_client: aioredis.Redis
) -> None:
    """Accepted always means a new signal (a new decision); within the window, a duplicate says so."""
    body = {"secret": SECRET, "strategy": "demo", "ticker": "005930", "action": "buy", "quantity": 1}
    async with webhook_client() as http:
        first = (await http.post("/webhook", json=body)).json()
        respelled = (await http.post("/webhook", json={**body, "quantity": 1.0})).json()
        await redis_client.delete(keys.signal_dedupe(dedupe_key_of(first["signal_id"])))  # the window ends
        later = (await http.post("/webhook", json=body)).json()
    assert [first["status"], respelled["status"], later["status"]] == ["accepted", "duplicate", "accepted"]
    assert respelled["signal_id"] == first["signal_id"]
    assert later["signal_id"] != first["signal_id"]
    assert [message.signal.signal_id for message in await appended(redis_client)] == [
        first["signal_id"],
        later["signal_id"],
    ]
