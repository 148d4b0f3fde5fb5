"""Who may call: the allowlist behind a proxy, the forwarded client certificate, rate limits."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from tests.integration.webhook.conftest import TRADINGVIEW, WebhookClient, appended, configure, strategy_alert
from webhook.app import create_app
from yquant.settings import Settings

PROXY = ("127.0.0.1", 51000)
ATTACKER = "198.51.100.7"
SUBJECT = "CN=TradingView Webhooks,O=TradingView\\, Inc.,L=Westerville,ST=Ohio,C=US"
ALLOWLIST_BEHIND_PROXY = {"allowlist_enabled": True, "trusted_proxies": ["127.0.0.1"]}
CERTIFICATE_BEHIND_PROXY = {
    "require_client_cert": True,
    "trusted_proxies": ["127.0.0.1"],
    "client_cert_verify_header": "X-SSL-Client-Verify",
}


async def test_tradingview_address_passes_the_allowlist_directly(
    webhook_client: WebhookClient, redis_client: aioredis.Redis
) -> None:
    body, headers = strategy_alert()
    async with webhook_client(peer=TRADINGVIEW, allowlist_enabled=True) as http:
        response = await http.post("/webhook", content=body, headers=headers)
    assert response.status_code == 200
    assert len(await appended(redis_client)) == 1


async def test_other_address_is_refused_even_with_the_secret(
    webhook_client: WebhookClient, redis_client: aioredis.Redis
) -> None:
    body, headers = strategy_alert()
    async with webhook_client(peer=(ATTACKER, 1234), allowlist_enabled=True) as http:
        response = await http.post("/webhook", content=body, headers=headers)
    assert (response.status_code, response.json()["code"]) == (403, "source_address")
    assert await appended(redis_client) == []


async def test_behind_the_proxy_the_forwarded_address_is_checked(
    webhook_client: WebhookClient, redis_client: aioredis.Redis
) -> None:
    body, headers = strategy_alert()
    async with webhook_client(peer=PROXY, **ALLOWLIST_BEHIND_PROXY) as http:
        from_tradingview = await http.post(
            "/webhook", content=body, headers={**headers, "x-forwarded-for": TRADINGVIEW[0]}
        )
        from_elsewhere = await http.post("/webhook", content=body, headers={**headers, "x-forwarded-for": ATTACKER})
        without_header = await http.post("/webhook", content=body, headers=headers)
    assert from_tradingview.json()["status"] == "accepted"
    assert from_elsewhere.status_code == 403
    assert without_header.status_code == 403  # the proxy itself is not TradingView
    assert len(await appended(redis_client)) == 1


async def test_forged_forwarded_for_through_the_proxy_is_not_believed(webhook_client: WebhookClient) -> None:
    body, headers = strategy_alert()
    forged = {**headers, "x-forwarded-for": f"{TRADINGVIEW[0]}, {ATTACKER}"}  # nginx appended the real peer
    async with webhook_client(peer=PROXY, **ALLOWLIST_BEHIND_PROXY) as http:
        response = await http.post("/webhook", content=body, headers=forged)
    assert response.status_code == 403


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(webhook_client: WebhookClient) -> None:
    body, headers = strategy_alert()
    async with webhook_client(peer=(ATTACKER, 1234), **ALLOWLIST_BEHIND_PROXY) as http:
        response = await http.post("/webhook", content=body, headers={**headers, "x-forwarded-for": TRADINGVIEW[0]})
    assert response.status_code == 403


async def test_client_certificate_forwarded_by_the_proxy_passes(
    webhook_client: WebhookClient, redis_client: aioredis.Redis
) -> None:
    body, headers = strategy_alert()
    certificate = {"x-ssl-client-s-dn": SUBJECT, "x-ssl-client-verify": "SUCCESS"}
    async with webhook_client(peer=PROXY, **CERTIFICATE_BEHIND_PROXY) as http:
        response = await http.post("/webhook", content=body, headers={**headers, **certificate})
    assert response.status_code == 200
    assert len(await appended(redis_client)) == 1


@pytest.mark.parametrize(
    ("peer", "certificate"),
    [
        (PROXY, {}),
        (PROXY, {"x-ssl-client-s-dn": SUBJECT}),
        (PROXY, {"x-ssl-client-s-dn": SUBJECT, "x-ssl-client-verify": "FAILED:self-signed certificate"}),
        (PROXY, {"x-ssl-client-s-dn": "CN=TradingView Webhooks,O=Someone Else", "x-ssl-client-verify": "SUCCESS"}),
        ((ATTACKER, 1234), {"x-ssl-client-s-dn": SUBJECT, "x-ssl-client-verify": "SUCCESS"}),
    ],
)
async def test_missing_unverified_or_unproxied_certificate_is_refused(
    webhook_client: WebhookClient,
    redis_client: aioredis.Redis,
    peer: tuple[str, int],
    certificate: dict[str, str],
) -> None:
    body, headers = strategy_alert()
    async with webhook_client(peer=peer, **CERTIFICATE_BEHIND_PROXY) as http:
        response = await http.post("/webhook", content=body, headers={**headers, **certificate})
    assert (response.status_code, response.json()["code"]) == (403, "client_certificate")
    assert await appended(redis_client) == []


async def test_alert_rate_limit_per_source(webhook_client: WebhookClient, redis_client: aioredis.Redis) -> None:
    async with webhook_client(rate_limit_per_min=3) as http:
        statuses = []
        for index in range(5):
            body, headers = strategy_alert(**{"strategy.order.id": f"order-{index}"})
            response = await http.post("/webhook", content=body, headers=headers)
            statuses.append(response.status_code)
        assert statuses == [200, 200, 200, 429, 429]
        assert response.json()["code"] == "alerts"
        assert int(response.headers["retry-after"]) >= 1
        exposition = (await http.get("/metrics")).text
    assert 'yquant_webhook_rate_limited_total{limit="alerts"} 2.0' in exposition
    assert len(await appended(redis_client)) == 3


async def test_other_sources_keep_their_own_budget(
    webhook_client: WebhookClient, settings: Settings, redis_client: aioredis.Redis
) -> None:
    app = create_app(configure(settings, rate_limit_per_min=1), redis_client)  # one app, two callers
    first_body, headers = strategy_alert(**{"strategy.order.id": "a"})
    second_body, _ = strategy_alert(**{"strategy.order.id": "b"})
    async with webhook_client(app=app) as first, webhook_client(peer=("34.212.75.30", 443), app=app) as second:
        assert (await first.post("/webhook", content=first_body, headers=headers)).status_code == 200
        assert (await first.post("/webhook", content=second_body, headers=headers)).status_code == 429
        assert (await second.post("/webhook", content=second_body, headers=headers)).status_code == 200


async def test_strangers_garbage_does_not_use_up_the_owners_alerts(
    webhook_client: WebhookClient, redis_client: aioredis.Redis
) -> None:
    # Another TradingView user sends from the same address as ours, without our secret.
    async with webhook_client(rate_limit_per_min=5, rejections_per_min=3) as http:
        refusals = [
            (await http.post("/webhook", json={"secret": f"guess-{n}", "strategy": "swing-kr"})).status_code
            for n in range(6)
        ]
        body, headers = strategy_alert()
        ours = await http.post("/webhook", content=body, headers=headers)
        exposition = (await http.get("/metrics")).text
    assert refusals == [401, 401, 401, 429, 429, 429]
    assert ours.json()["status"] == "accepted"
    assert 'yquant_webhook_rate_limited_total{limit="rejections"} 3.0' in exposition
    assert len(await appended(redis_client)) == 1
