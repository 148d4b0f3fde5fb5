"""Actions go to Valkey only: manual orders as signals, cancels, trading state, limits, schedules."""

from __future__ import annotations

import asyncio
import re
from decimal import Decimal

import httpx
import orjson
import pytest
import redis.asyncio as aioredis
from fastapi import FastAPI

from tests.integration.dashboard.conftest import BASE_URL, csrf_of, form_token, login
from tests.integration.dashboard.seed import seed_all
from tests.order_paths import walk_to
from tests.replies import as_bytes, xrange
from yquant import keys, orders
from yquant.messages import (
    CancelOrder,
    Market,
    OrderState,
    OrderType,
    ReviseOrder,
    Side,
    SignalReceived,
    SubmitOrder,
    decode,
)


async def _signed_in(http: httpx.AsyncClient) -> str:
    await login(http)
    return await csrf_of(http)


async def test_manual_order_is_confirmed_then_sent_once_as_a_dashboard_signal(
    http: httpx.AsyncClient, redis_client: aioredis.Redis
) -> None:
    await seed_all(redis_client)
    token = await _signed_in(http)
    form = {
        "csrf_token": token,
        "account": "main",
        "market": "KRX",
        "ticker": "005930",
        "side": "buy",
        "sizing": "quantity",
        "value": "3",
        "order_type": "limit",
        "limit_price": "70123",
    }
    preview = await http.post("/order/preview", data=form)
    assert preview.status_code == 200
    assert "Confirm buy" in preview.text
    assert "70,100" in preview.text  # the limit price rounded down to the KRX tick (100 KRW)
    assert await redis_client.xlen(keys.SIGNALS_DASHBOARD) == 0  # nothing is sent before the confirmation
    confirm = {
        name: form_token(preview.text, name)
        for name in ("nonce", "account", "market", "ticker", "side", "quantity", "order_type", "limit_price")
    }
    sent = await http.post("/order/submit", data={**confirm, "csrf_token": token})
    assert sent.status_code == 303
    assert sent.headers["location"].startswith("/orders?sent=dash-")
    again = await http.post("/order/submit", data={**confirm, "csrf_token": token})  # double submit
    assert again.status_code == 303
    entries = await xrange(redis_client, keys.SIGNALS_DASHBOARD)
    assert len(entries) == 1
    message = decode(entries[0][1][b"data"])
    assert isinstance(message, SignalReceived)
    signal = message.signal
    assert (signal.source, signal.account, signal.ticker, signal.action.value) == ("dashboard", "main", "005930", "buy")
    assert signal.quantity == 3
    assert str(signal.price) == "70100"
    assert signal.fired_at is not None
    audit = [orjson.loads(f[b"data"]) for _, f in await xrange(redis_client, keys.AUDIT_LOG)]
    assert [a["user"] for a in audit if a["action"] == "manual_order"] == ["alice", "alice"]
    page = await http.get(sent.headers["location"])
    assert "waiting for the order manager" in page.text


async def test_amount_without_a_quote_asks_for_a_quantity_or_a_limit(
    http: httpx.AsyncClient, redis_client: aioredis.Redis
) -> None:
    await seed_all(redis_client)
    token = await _signed_in(http)
    form = {
        "csrf_token": token,
        "account": "main",
        "market": "KRX",
        "ticker": "005930",
        "side": "buy",
        "sizing": "amount",
        "value": "1000000",
        "order_type": "market",
    }
    response = await http.post("/order/preview", data=form)
    assert response.status_code == 422
    assert "No quote available" in response.text
    limit = await http.post("/order/preview", data={**form, "order_type": "limit", "limit_price": "74000"})
    assert limit.status_code == 200
    assert "BUY 13 × 005930" in limit.text


async def test_cancel_appends_a_cancel_order_command_to_the_cancel_stream(
    http: httpx.AsyncClient, redis_client: aioredis.Redis
) -> None:
    await seed_all(redis_client)
    token = await _signed_in(http)
    commands_before = await redis_client.xlen(keys.ORDERS)
    response = await http.post(
        "/orders/yq-seed00000000000000002/cancel", headers={"X-CSRF-Token": token, "X-Requested-With": "fetch"}
    )
    assert response.status_code == 200
    [(_id, fields)] = await xrange(redis_client, keys.CANCELS)
    assert fields[b"type"] == b"CancelOrder"
    command = decode(fields[b"data"])
    assert isinstance(command, CancelOrder)
    assert (command.client_order_id, command.reason) == (
        "yq-seed00000000000000002",
        "cancelled on the dashboard by alice",
    )
    assert await redis_client.xlen(keys.ORDERS) == commands_before  # never the order manager's stream
    final = await http.post("/orders/yq-seed00000000000000000/cancel", headers={"X-CSRF-Token": token})
    assert final.status_code == 409  # already filled


async def test_revise_asks_the_order_manager_and_refuses_what_kis_would_refuse(
    http: httpx.AsyncClient, redis_client: aioredis.Redis
) -> None:
    coid = "yq-revise0000000000001"
    command = SubmitOrder(
        client_order_id=coid, account="main", market=Market.KRX, ticker="005930", side=Side.BUY, quantity=10,
        order_type=OrderType.LIMIT, limit_price=Decimal(70000), strategy="manual", origin="manual",
    )  # fmt: skip
    await orders.create_order(redis_client, command, 100_000)
    await walk_to(redis_client, coid, OrderState.ACCEPTED, fields={"broker_order_id": "0000000077"})
    token = await _signed_in(http)
    page = await http.get("/orders")
    assert f'action="/orders/{coid}/revise"' in page.text
    assert 'name="limit_price" inputmode="decimal" size="9" value="70000"' in page.text
    commands_before = await redis_client.xlen(keys.ORDERS)

    forged = await http.post(f"/orders/{coid}/revise", data={"limit_price": "69900"})  # no CSRF token
    assert forged.status_code == 403
    off_grid = await http.post(f"/orders/{coid}/revise", data={"csrf_token": token, "limit_price": "69,950"})
    assert off_grid.status_code == 422
    assert "69950 is not on the KRX price grid (tick 100 at that price)." in off_grid.text
    more = await http.post(f"/orders/{coid}/revise", data={"csrf_token": token, "quantity": "11"})
    assert "KIS cannot raise an order&#39;s quantity" in more.text
    assert await redis_client.xlen(keys.REVISIONS) == 0

    sent = await http.post(
        f"/orders/{coid}/revise", data={"csrf_token": token, "limit_price": "69,900", "quantity": "10"}
    )
    assert sent.status_code == 303
    [(_id, fields)] = await xrange(redis_client, keys.REVISIONS)
    revision = decode(fields[b"data"])
    assert isinstance(revision, ReviseOrder)
    assert (revision.client_order_id, revision.limit_price, revision.quantity, revision.by) == (
        coid,
        Decimal(69900),
        None,  # unchanged: not asked for
        "alice",
    )
    assert await redis_client.xlen(keys.ORDERS) == commands_before  # the order manager passes it on
    [audited] = [
        orjson.loads(f[b"data"]) for _, f in await xrange(redis_client, keys.AUDIT_LOG)
        if orjson.loads(f[b"data"])["action"] == "revise_order"
    ]  # fmt: skip
    assert audited["user"] == "alice"
    assert audited["detail"] == {
        "client_order_id": coid, "account": "main", "ticker": "005930", "limit_price": "69900", "quantity": "",
    }  # fmt: skip


async def test_kill_switch_and_limits_are_written_and_audited(
    http: httpx.AsyncClient, redis_client: aioredis.Redis
) -> None:
    token = await _signed_in(http)
    halted = await http.post("/risk/state", data={"csrf_token": token, "scope": "*", "state": "HALTED", "back": "/"})
    assert halted.status_code == 303
    assert await redis_client.hget(keys.TRADING_STATE, "*") == b"HALTED"
    page = await http.get("/risk")
    assert "HALTED" in page.text
    limit = await http.post(
        "/risk/limits", data={"csrf_token": token, "name": "max_order_value", "value_KRW": "5000000"}
    )
    assert limit.status_code == 303
    assert orjson.loads(as_bytes(await redis_client.hget(keys.RISK_LIMITS, "max_order_value"))) == {"KRW": "5000000"}
    bad = await http.post("/risk/limits", data={"csrf_token": token, "name": "max_orders_per_minute", "value": "-3"})
    assert bad.status_code == 422
    actions = [orjson.loads(f[b"data"])["action"] for _, f in await xrange(redis_client, keys.AUDIT_LOG)]
    assert "trading_state" in actions
    assert "risk_limit" in actions


async def test_flatten_is_confirmed_once_and_halts_first(http: httpx.AsyncClient, redis_client: aioredis.Redis) -> None:
    await seed_all(redis_client)
    token = await _signed_in(http)
    page = await http.get("/risk/flatten")
    nonce = form_token(page.text, "nonce")
    response = await http.post("/risk/flatten", data={"csrf_token": token, "nonce": nonce, "halt": "1"})
    assert response.status_code == 200
    assert "liquidation signal(s) sent" in response.text
    signals = [decode(f[b"data"]) for _, f in await xrange(redis_client, keys.SIGNALS_DASHBOARD)]
    assert signals
    assert {s.signal.source for s in signals if isinstance(s, SignalReceived)} == {"flatten"}
    assert await redis_client.hget(keys.TRADING_STATE, "*") == b"HALTED"
    again = await http.post("/risk/flatten", data={"csrf_token": token, "nonce": nonce})
    assert again.status_code == 409
    assert await redis_client.xlen(keys.SIGNALS_DASHBOARD) == len(signals)


async def test_schedule_created_edited_and_deleted(http: httpx.AsyncClient, redis_client: aioredis.Redis) -> None:
    await seed_all(redis_client)
    token = await _signed_in(http)
    form = {"csrf_token": token, "name": "monthly", "account": "main", "market": "KRX", "ticker": "069500",
            "action": "buy", "size_by": "amount", "size": "500000", "order_type": "market", "kind": "recurring",
            "at_time": "09:05", "timezone": "", "days": ["mon", "wed"], "enabled": "1"}  # fmt: skip
    created = await http.post("/schedules", data=form)
    assert created.status_code == 303, created.text
    (schedule_id,) = [as_bytes(m).decode() for m in await redis_client.smembers(keys.SCHEDULES_INDEX)]
    assert await redis_client.zscore(keys.SCHEDULES, schedule_id) is not None
    listing = await http.get("/schedules")
    assert "monthly" in listing.text
    assert "₩500,000" in listing.text
    edit = await http.get(f"/schedules/{schedule_id}/edit")
    assert 'value="500000"' in edit.text
    edited = await http.post(f"/schedules/{schedule_id}", data={**form, "enabled": "", "name": "paused"})
    assert edited.status_code == 303
    assert await redis_client.zscore(keys.SCHEDULES, schedule_id) is None  # disabled: never due
    weekend = await http.post("/schedules", data={**form, "days": ["sat", "sun"]})
    assert weekend.status_code == 422
    assert "never run" in weekend.text
    deleted = await http.post(f"/schedules/{schedule_id}/delete", data={"csrf_token": token})
    assert deleted.status_code == 303
    assert not await redis_client.exists(keys.schedule(schedule_id))
    actions = [orjson.loads(f[b"data"])["action"] for _, f in await xrange(redis_client, keys.AUDIT_LOG)]
    assert {"schedule_create", "schedule_update", "schedule_delete"} <= set(actions)


async def test_pages_show_money_in_the_right_format(http: httpx.AsyncClient, redis_client: aioredis.Redis) -> None:
    await seed_all(redis_client)
    await _signed_in(http)
    overview = (await http.get("/")).text
    assert "₩12,450,000" in overview
    assert "$3,250.55" in overview
    assert re.search(r"USD/KRW</dt><dd>1,400.00", overview)
    performance = (await http.get("/performance")).text
    assert "<polyline" in performance
    assert "Max drawdown" in performance
    csv = (await http.get("/performance/trades.csv")).text
    assert csv.splitlines()[0].startswith("filled_at,created_at,")
    assert "005930" in csv
    system = (await http.get("/system")).text
    assert "yq:stream:executions" in system
    assert "Valkey memory" in system


HOSTILE_NUMBERS = ["1e999999", "9" * 40, "1e15", "0.000000001", "NaN", "-Infinity", "1e-999999"]


@pytest.mark.parametrize("number", HOSTILE_NUMBERS)
async def test_a_hostile_number_in_any_form_is_a_422_and_the_dashboard_stays_up(
    http: httpx.AsyncClient, redis_client: aioredis.Redis, number: str
) -> None:
    """A number no trader types (1e999999 once held the event loop for 40 s) is refused as a 4xx."""
    await seed_all(redis_client)
    token = await _signed_in(http)
    order = {"csrf_token": token, "account": "main", "market": "KRX", "ticker": "005930", "side": "buy",
             "sizing": "quantity", "value": number, "order_type": "market"}  # fmt: skip
    submit = {"csrf_token": token, "nonce": "a" * 32, "account": "main", "market": "KRX", "ticker": "005930",
              "side": "buy", "quantity": number, "order_type": "market", "limit_price": ""}  # fmt: skip
    schedule = {"csrf_token": token, "name": "n", "account": "main", "market": "KRX", "ticker": "069500",
                "action": "buy", "size_by": "quantity", "size": number, "order_type": "market",
                "kind": "recurring", "at_time": "09:05", "days": ["mon"], "enabled": "1"}  # fmt: skip
    limit_order = {**order, "value": "1", "order_type": "limit", "limit_price": number}
    answers = {
        "preview value": await http.post("/order/preview", data=order),
        "preview limit": await http.post("/order/preview", data=limit_order),
        "submit quantity": await http.post("/order/submit", data=submit),
        "limit": await http.post(
            "/risk/limits", data={"csrf_token": token, "name": "max_orders_per_minute", "value": number}
        ),
        "schedule": await http.post("/schedules", data=schedule),
    }
    assert {name: answer.status_code for name, answer in answers.items()} == dict.fromkeys(answers, 422)
    assert (await http.get("/healthz")).status_code == 200
    assert await redis_client.xlen(keys.SIGNALS_DASHBOARD) == 0


ORDER_FORM = {"account": "main", "market": "KRX", "ticker": "005930", "side": "buy", "sizing": "quantity",
              "value": "3", "order_type": "market", "limit_price": ""}  # fmt: skip
CONFIRM_FIELDS = ("nonce", "account", "market", "ticker", "side", "quantity", "order_type")  # no limit: market


async def test_an_order_without_the_servers_preview_is_not_sent(
    http: httpx.AsyncClient, app: FastAPI, redis_client: aioredis.Redis
) -> None:
    """The confirmation is issued by the server, bound to the session and to the order previewed."""
    await seed_all(redis_client)
    token = await _signed_in(http)
    preview = await http.post("/order/preview", data={**ORDER_FORM, "csrf_token": token})
    confirm = {name: form_token(preview.text, name) for name in CONFIRM_FIELDS}

    forged = await http.post("/order/submit", data={**confirm, "nonce": "b" * 32, "csrf_token": token})
    changed = await http.post("/order/submit", data={**confirm, "quantity": "300", "csrf_token": token})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as other:
        other_token = await _signed_in(other)  # the same user, another session
        elsewhere = await other.post("/order/submit", data={**confirm, "csrf_token": other_token})

    assert (forged.status_code, changed.status_code, elsewhere.status_code) == (422, 422, 422)
    assert "not issued to this session" in forged.text
    assert "differs from the one previewed" in changed.text
    assert await redis_client.xlen(keys.SIGNALS_DASHBOARD) == 0
    sent = await http.post("/order/submit", data={**confirm, "csrf_token": token})  # the real confirmation
    assert sent.status_code == 303
    assert await redis_client.xlen(keys.SIGNALS_DASHBOARD) == 1


async def test_a_flatten_without_the_servers_confirmation_page_sends_nothing(
    http: httpx.AsyncClient, redis_client: aioredis.Redis
) -> None:
    await seed_all(redis_client)
    token = await _signed_in(http)
    response = await http.post("/risk/flatten", data={"csrf_token": token, "nonce": "c" * 32, "halt": "1"})
    assert response.status_code == 422
    assert await redis_client.xlen(keys.SIGNALS_DASHBOARD) == 0
    assert await redis_client.hget(keys.TRADING_STATE, "*") != b"HALTED"


async def _append_only_file_back(client: aioredis.Redis) -> None:
    """Turning AOF on rewrites it in the background; the tests after this one need it complete."""
    for _ in range(600):
        info = await client.info("persistence")
        rewriting = info["aof_rewrite_in_progress"] or info["aof_rewrite_scheduled"]
        if info["aof_enabled"] == 1 and not rewriting and info.get("aof_last_bgrewrite_status", "ok") == "ok":
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the append-only file did not come back: {info}")


async def _preview_and_submit(http: httpx.AsyncClient, token: str) -> httpx.Response:
    preview = await http.post("/order/preview", data={**ORDER_FORM, "csrf_token": token})
    confirm = {name: form_token(preview.text, name) for name in CONFIRM_FIELDS}
    return await http.post("/order/submit", data={**confirm, "csrf_token": token})


async def test_a_manual_order_is_reported_sent_once_valkey_has_it_on_disk(
    http: httpx.AsyncClient, redis_client: aioredis.Redis
) -> None:
    await seed_all(redis_client)
    token = await _signed_in(http)
    assert (await redis_client.config_get("appendonly"))["appendonly"] == "yes"
    waited_before = (await redis_client.info("commandstats")).get("cmdstat_waitaof", {}).get("calls", 0)
    sent = await _preview_and_submit(http, token)
    assert sent.status_code == 303
    assert "unconfirmed" not in sent.headers["location"]
    assert (await redis_client.info("commandstats"))["cmdstat_waitaof"]["calls"] == waited_before + 1
    page = await http.get(sent.headers["location"])
    assert 'id="unconfirmed-notice"' not in page.text


async def test_without_the_append_only_file_the_orders_page_says_the_order_is_not_confirmed(
    http: httpx.AsyncClient, redis_client: aioredis.Redis
) -> None:
    await seed_all(redis_client)
    token = await _signed_in(http)
    await redis_client.config_set("appendonly", "no")
    try:
        sent = await _preview_and_submit(http, token)
    finally:
        await redis_client.config_set("appendonly", "yes")
        await _append_only_file_back(redis_client)
    assert sent.status_code == 303
    assert sent.headers["location"].endswith("&unconfirmed=1")
    assert await redis_client.xlen(keys.SIGNALS_DASHBOARD) == 1  # queued all the same: never lost silently
    page = await http.get(sent.headers["location"])
    assert "did not confirm this order on disk" in page.text


async def test_the_orders_page_shows_fee_strategy_and_why_a_us_market_order_has_a_limit(
    http: httpx.AsyncClient, redis_client: aioredis.Redis
) -> None:
    await seed_all(redis_client)
    await _signed_in(http)
    page = (await http.get("/orders")).text
    aapl = page.split('data-client-order-id="yq-seed00000000000000002"', 1)[1].split("</tr>", 1)[0]
    assert 'class="us-limit"' in aapl
    assert "KIS takes no US market order" in aapl
    assert "≤ 191.90" in aapl
    assert "signal · demo" in aapl
    filled = page.split('data-client-order-id="yq-seed00000000000000000"', 1)[1].split("</tr>", 1)[0]
    assert 'data-value="107">107</td>' in filled  # the estimated fee of the fill


async def test_every_page_names_the_time_zone_its_times_are_in(
    http: httpx.AsyncClient, redis_client: aioredis.Redis
) -> None:
    await seed_all(redis_client)
    await _signed_in(http)
    for path in ("/", "/orders", "/signals", "/schedules", "/system"):
        page = (await http.get(path)).text
        assert '<span class="tz" id="time-zone"' in page, path
        assert "KST (Asia/Seoul)" in page, path  # the dashboard's default zone


async def test_a_flatten_waits_for_the_disk_once_and_says_so_when_it_cannot(
    http: httpx.AsyncClient, redis_client: aioredis.Redis
) -> None:
    await seed_all(redis_client)
    token = await _signed_in(http)
    waited = (await redis_client.info("commandstats")).get("cmdstat_waitaof", {}).get("calls", 0)
    page = await http.get("/risk/flatten")
    confirmed = await http.post("/risk/flatten", data={"csrf_token": token, "nonce": form_token(page.text, "nonce")})
    assert "liquidation signal(s) sent" in confirmed.text
    assert "did not confirm" not in confirmed.text
    assert (await redis_client.info("commandstats"))["cmdstat_waitaof"]["calls"] == waited + 1  # one for them all

    page = await http.get("/risk/flatten")  # the positions are still there: no order manager runs here
    await redis_client.config_set("appendonly", "no")
    try:
        unconfirmed = await http.post(
            "/risk/flatten", data={"csrf_token": token, "nonce": form_token(page.text, "nonce")}
        )
    finally:
        await redis_client.config_set("appendonly", "yes")
        await _append_only_file_back(redis_client)
    assert unconfirmed.status_code == 200
    assert "did not confirm them on disk" in unconfirmed.text
