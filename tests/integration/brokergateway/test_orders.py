"""Orders at KIS exactly once: pacing, unknown outcomes, rejections, US market orders."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from prometheus_client import REGISTRY

from brokergateway.orders import DEAD_HOLDER_AFTER_MS, LEASE_TTL_MS
from tests.integration.kissim.helpers import SimServer, base_config
from tests.replies import xrange
from yquant import keys, orders
from yquant.messages import (
    Market,
    OrderAccepted,
    OrderFailed,
    OrderRejected,
    OrderState,
    OrderType,
    Side,
    SubmitOrder,
)

from .conftest import FAST, Harness, MakeHarness, new_account
from .faults import FaultyKis


@pytest.fixture(scope="module")
def limited_sim() -> Iterator[SimServer]:
    """A real-domain simulator that enforces KIS's 18 requests per second per account."""
    server = SimServer(base_config(mode="real", rate_limit=True)).start()
    yield server
    server.stop()


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def busiest_second(stamps_ns: list[int]) -> int:
    """The most requests received in any one-second window."""
    stamps = sorted(stamps_ns)
    most, start = 0, 0
    for end, stamp in enumerate(stamps):
        while stamp - stamps[start] >= 1_000_000_000:
            start += 1
        most = max(most, end - start + 1)
    return most


async def test_burst_of_100_orders_is_paced_at_the_real_limit_without_loss_or_duplicate(
    limited_sim: SimServer, make_harness: MakeHarness
) -> None:
    limited_sim.admin("/admin/price", {"ticker": "005930", "price": "70000"})
    harness = await make_harness(limited_sim, rate_limit_per_s=None)  # the account's default: 18/s real
    # Wait for the start-up sync, so the window below sees orders and the syncs after fills only.
    await harness.until(lambda: harness.cash(), "first account sync")
    commands = [
        SubmitOrder(
            client_order_id=f"yq-burst-{index:03d}",
            account=harness.alias,
            market=Market.KRX,
            ticker="005930",
            side=Side.BUY,
            quantity=1 + index % 3,
            strategy="burst",
        )
        for index in range(100)
    ]
    for command in commands:
        assert await orders.create_order(harness.client, command, 100_000)
    accepted_before = sample("yquant_gateway_orders_total", result="accepted")
    await asyncio.gather(*(harness.gateway.handle(command) for command in commands))
    records = [await harness.state(c.client_order_id, OrderState.FILLED, timeout_s=20) for c in commands]
    assert sample("yquant_gateway_orders_total", result="accepted") - accepted_before == 100
    app = harness.alias
    assert sample("yquant_gateway_token_expires_at_seconds", app=app) > time.time() + 3600
    assert sample("yquant_gateway_ws_connected", app=app) == 1
    assert sample("yquant_gateway_kis_request_seconds_count", endpoint="order-cash") >= 100

    booked = harness.sim_orders()
    assert len(booked) == 100
    assert sorted(int(o["odno"]) for o in booked) == sorted(int(r.broker_order_id) for r in records)
    stats = limited_sim.admin("/admin/stats")
    # Pacing keeps KIS's refusals to the window's edge: on a loaded machine the simulator's own
    # queue can bunch a few sends (the client retries those; every order above is booked once).
    # Without pacing most of the burst would be refused.
    assert stats["counters"].get("rate_limited", 0) < len(commands) // 10
    # Every request the account sent (orders, syncs, polls) counts against KIS's limit.
    assert busiest_second([o["received_at_ns"] for o in booked]) <= 18
    assert all(r.filled_quantity == r.quantity and r.broker_order_id for r in records)


async def test_order_whose_answer_is_lost_but_booked_is_adopted_once(sim: SimServer, make_harness: MakeHarness) -> None:
    harness = await make_harness(sim)
    sim.admin("/admin/faults", {"drop_order_response": 1})
    command = await harness.submit(ticker="000660", quantity=2)
    record = await harness.state(command.client_order_id, OrderState.FILLED)

    [booked] = [o for o in harness.sim_orders() if o["ticker"] == "000660"]
    assert booked["response_dropped"] is True
    assert int(record.broker_order_id) == int(booked["odno"])
    accepted = [e for e in await harness.events(command.client_order_id) if isinstance(e, OrderAccepted)]
    assert [e.reconciled for e in accepted] == [True]
    history = await orders.order_history(harness.client, command.client_order_id)
    assert any(h.get("note") == "adopted after reconciliation" for h in history)


async def test_order_lost_before_booking_is_sent_again_once_and_trades_once(
    sim: SimServer, make_harness: MakeHarness
) -> None:
    harness = await make_harness(sim)
    resent_before = sample("yquant_gateway_resubmissions_total")
    sim.admin("/admin/faults", {"drop_before_booking": 1})
    command = await harness.submit(ticker="035720", quantity=3)
    record = await harness.state(command.client_order_id, OrderState.FILLED)

    assert record.resubmissions == 1
    [booked] = [o for o in harness.sim_orders() if o["ticker"] == "035720"]
    assert int(record.broker_order_id) == int(booked["odno"])
    assert sample("yquant_gateway_resubmissions_total") - resent_before == 1
    await harness.gateway.handle(command)  # the command delivered again: still one order at KIS
    await asyncio.sleep(0.3)
    assert len([o for o in harness.sim_orders() if o["ticker"] == "035720"]) == 1


async def test_order_kis_never_books_is_sent_at_most_twice_more_then_failed_visibly(
    sim: SimServer, make_harness: MakeHarness
) -> None:
    harness = await make_harness(sim, config=replace(FAST, resubmit_max=2))
    dropped_before = sim.admin("/admin/stats")["counters"].get("dropped_before_booking", 0)
    sim.admin("/admin/faults", {"drop_before_booking": 3})
    command = await harness.submit(ticker="051910", quantity=1)
    record = await harness.state(command.client_order_id, OrderState.FAILED, timeout_s=30)

    assert record.resubmissions == 2
    assert "after 3 attempts" in record.reason
    [event] = [e for e in await harness.events(command.client_order_id) if isinstance(e, OrderFailed)]
    assert event.reason_code == "UNCONFIRMED"
    assert sim.admin("/admin/stats")["counters"]["dropped_before_booking"] - dropped_before == 3
    assert [o for o in harness.sim_orders() if o["ticker"] == "051910"] == []


async def test_order_of_a_stale_signal_is_not_sent_again(sim: SimServer, make_harness: MakeHarness) -> None:
    harness = await make_harness(sim, config=replace(FAST, signal_max_age_s=60))
    sim.admin("/admin/faults", {"drop_before_booking": 1})
    old = datetime.now(UTC) - timedelta(seconds=61)
    command = await harness.submit(ticker="000270", quantity=1, signal_at=old)
    record = await harness.state(command.client_order_id, OrderState.FAILED)

    assert record.resubmissions == 0
    assert "old (limit 60s), so it was not sent again" in record.reason
    assert [o for o in harness.sim_orders() if o["ticker"] == "000270"] == []


async def test_http_500_before_booking_is_sent_again_and_trades_once(sim: SimServer, make_harness: MakeHarness) -> None:
    faulty = FaultyKis("500_before_booking")
    harness = await make_harness(sim, transport=faulty)
    command = await harness.submit(ticker="096770", quantity=1)
    record = await harness.state(command.client_order_id, OrderState.FILLED)

    [booked] = [o for o in harness.sim_orders() if o["ticker"] == "096770"]
    assert int(record.broker_order_id) == int(booked["odno"])
    assert (record.resubmissions, faulty.posts) == (1, 2)


async def test_http_500_after_booking_is_adopted_not_sent_again(sim: SimServer, make_harness: MakeHarness) -> None:
    faulty = FaultyKis("500_after_booking")
    harness = await make_harness(sim, transport=faulty)
    command = await harness.submit(ticker="012330", quantity=2)
    record = await harness.state(command.client_order_id, OrderState.FILLED)

    [booked] = [o for o in harness.sim_orders() if o["ticker"] == "012330"]
    assert int(record.broker_order_id) == int(booked["odno"])
    assert (record.resubmissions, faulty.posts) == (0, 1)
    accepted = [e for e in await harness.events(command.client_order_id) if isinstance(e, OrderAccepted)]
    assert [e.reconciled for e in accepted] == [True]


async def test_order_kis_books_late_is_adopted_not_sent_again(sim: SimServer, make_harness: MakeHarness) -> None:
    faulty = FaultyKis("books_late")
    harness = await make_harness(sim, transport=faulty)
    command = await harness.submit(ticker="028260", quantity=1)
    record = await harness.state(command.client_order_id, OrderState.FILLED)

    [booked] = [o for o in harness.sim_orders() if o["ticker"] == "028260"]
    assert int(record.broker_order_id) == int(booked["odno"])
    assert (record.resubmissions, faulty.posts) == (0, 1)
    assert len(harness.tr_ids("/inquire-daily-ccld")) >= 2  # not there at the first look, found later


async def test_gateway_killed_before_posting_sends_the_order_once_on_redelivery(
    sim: SimServer, make_harness: MakeHarness
) -> None:
    harness = await make_harness(sim)
    command = SubmitOrder(
        client_order_id="yq-crashed", account=harness.alias, market=Market.KRX, ticker="005380", side=Side.BUY,
        quantity=1, strategy="test",
    )  # fmt: skip
    await orders.create_order(harness.client, command, 100_000)
    # A gateway died after SUBMITTING, before posting: the outcome is unknown.
    await orders.update_order(harness.client, "yq-crashed", new_state=OrderState.SUBMITTING)
    await harness.gateway.handle(command)
    record = await harness.state("yq-crashed", OrderState.ACCEPTED, OrderState.FILLED)
    assert record.resubmissions == 1
    assert len([o for o in harness.sim_orders() if o["ticker"] == "005380"]) == 1


async def test_command_delivered_again_while_another_gateway_submits_it_is_left_alone(
    sim: SimServer, make_harness: MakeHarness
) -> None:
    harness = await make_harness(sim)
    command = SubmitOrder(
        client_order_id="yq-in-flight", account=harness.alias, market=Market.KRX, ticker="207940", side=Side.BUY,
        quantity=1, strategy="test",
    )  # fmt: skip
    await orders.create_order(harness.client, command, 100_000)
    await orders.update_order(harness.client, command.client_order_id, new_state=OrderState.SUBMITTING)
    await harness.client.set(keys.order_lease(command.client_order_id), "gateway-b", px=60_000)
    await harness.gateway.handle(command)  # e.g. reclaimed from a busy consumer: gateway-b is posting it
    assert (await harness.order(command.client_order_id)).state is OrderState.SUBMITTING
    assert harness.tr_ids("/inquire-daily-ccld") == []  # not even reconciled while gateway-b holds it

    await harness.client.delete(keys.order_lease(command.client_order_id))  # gateway-b died before posting
    await harness.gateway.orders.settle_abandoned(harness.gateway.workers[harness.alias], command.client_order_id)
    record = await harness.state(command.client_order_id, OrderState.ACCEPTED, OrderState.FILLED)
    assert record.resubmissions == 1
    assert len([o for o in harness.sim_orders() if o["ticker"] == "207940"]) == 1
    assert not await harness.client.exists(keys.order_lease(command.client_order_id))


async def test_forged_command_without_a_record_sends_nothing(sim: SimServer, make_harness: MakeHarness) -> None:
    harness = await make_harness(sim)
    forged = SubmitOrder(
        client_order_id="yq-forged", account=harness.alias, market=Market.KRX, ticker="000100", side=Side.BUY,
        quantity=1000, strategy="test",
    )  # fmt: skip
    await harness.gateway.handle(forged)
    assert harness.tr_ids("/order-cash") == []
    assert await orders.get_order(harness.client, "yq-forged") is None


async def test_command_fields_are_ignored_the_stored_record_is_sent(sim: SimServer, make_harness: MakeHarness) -> None:
    harness = await make_harness(sim)
    stored = SubmitOrder(
        client_order_id="yq-stored", account=harness.alias, market=Market.KRX, ticker="003550", side=Side.BUY,
        quantity=1, strategy="test",
    )  # fmt: skip
    await orders.create_order(harness.client, stored, 100_000)
    forged = stored.model_copy(update={"quantity": 500, "ticker": "000100"})
    await harness.gateway.handle(forged)
    await harness.state("yq-stored", OrderState.FILLED)
    [booked] = [o for o in harness.sim_orders() if o["ticker"] in ("003550", "000100")]
    assert (booked["ticker"], int(booked["quantity"])) == ("003550", 1)


async def test_business_rejection_is_an_order_rejected_with_kis_message(
    sim: SimServer, make_harness: MakeHarness
) -> None:
    harness = await make_harness(sim)
    errors_before = sample("yquant_gateway_kis_errors_total", code="APBK0986")
    command = await harness.submit(side=Side.SELL, ticker="068270", quantity=5)  # nothing to sell
    record = await harness.state(command.client_order_id, OrderState.REJECTED)
    assert "주문가능수량을 초과" in record.reason
    [event] = [e for e in await harness.events(command.client_order_id) if isinstance(e, OrderRejected)]
    assert event.reason_code == "APBK0986"
    assert event.reason == record.reason
    assert sample("yquant_gateway_kis_errors_total", code="APBK0986") - errors_before == 1


async def test_us_market_order_goes_out_as_the_limit_the_order_manager_set(
    sim: SimServer, make_harness: MakeHarness
) -> None:
    sim.admin("/admin/price", {"ticker": "MSFT", "price": "410.00", "market": "US"})
    harness = await make_harness(sim)
    command = await harness.submit(
        market=Market.NASD, ticker="MSFT", quantity=2, order_type=OrderType.MARKET, limit_price=Decimal("414.10")
    )
    record = await harness.state(command.client_order_id, OrderState.FILLED)
    [booked] = [o for o in harness.sim_orders() if o["ticker"] == "MSFT"]
    assert (booked["tr_id"], Decimal(booked["price"]), booked["ord_dvsn"]) == ("TTTT1002U", Decimal("414.10"), "00")
    assert (record.limit_price, record.average_price) == (Decimal("414.10"), Decimal(410))
    assert harness.tr_ids("/quotations/price") == []  # the gateway priced nothing


async def test_us_market_order_without_a_limit_is_not_sent_and_says_why(
    sim: SimServer, make_harness: MakeHarness
) -> None:
    harness = await make_harness(sim)
    command = await harness.submit(market=Market.NASD, ticker="MSFT", quantity=2, order_type=OrderType.MARKET)
    record = await harness.state(command.client_order_id, OrderState.FAILED)
    assert "needs a limit price" in record.reason
    assert harness.tr_ids("/overseas-stock/v1/trading/order") == []
    assert [o for o in harness.sim_orders() if o["ticker"] == "MSFT"] == []


async def test_order_for_an_unknown_account_or_market_is_rejected_without_calling_kis(
    sim: SimServer, make_harness: MakeHarness
) -> None:
    harness = await make_harness(sim, start=False)
    command = await harness.submit(account="nobody")
    record = await harness.state(command.client_order_id, OrderState.FAILED)
    assert record.reason == "account 'nobody' is not configured"
    assert harness.tr_ids("/order-cash") == []


async def test_a_command_naming_another_account_than_its_record_fails_unsent(
    sim: SimServer, make_harness: MakeHarness
) -> None:
    """The worker is picked by the command's account before the record is read (the step that
    marks the order SUBMITTING returns it); the record is what counts, so a disagreement sends
    nothing to either account."""
    accounts = {"main": new_account(), "isa": new_account(markets=["KRX"])}
    harness = await make_harness(sim, accounts=accounts, start=False)
    stored = SubmitOrder(
        client_order_id="yq-mismatch", account="isa", market=Market.KRX, ticker="005930",
        side=Side.BUY, quantity=1, strategy="test",
    )  # fmt: skip
    assert await orders.create_order(harness.client, stored, 100_000)
    await harness.gateway.handle(stored.model_copy(update={"account": "main"}))
    record = await harness.state("yq-mismatch", OrderState.FAILED)
    assert record.reason == "the command named account 'main'; the order is in account 'isa' (KRX)"
    assert record.account == "isa"
    [failed] = [e for e in await harness.events("yq-mismatch") if isinstance(e, OrderFailed)]
    assert (failed.account, failed.reason_code) == ("isa", "MISMATCH")  # told under the record's account
    assert harness.tr_ids("/order-cash") == []
    assert await harness.client.exists(keys.order_lease("yq-mismatch")) == 0


async def _abandoned(harness: Harness, ticker: str, holder: str, age_ms: int) -> SubmitOrder:
    """An order left SUBMITTING, before its POST, under a lease that ``holder`` took ``age_ms`` ago."""
    command = SubmitOrder(
        client_order_id=f"yq-left-{ticker}", account=harness.alias, market=Market.KRX, ticker=ticker,
        side=Side.BUY, quantity=1, strategy="test",
    )  # fmt: skip
    await orders.create_order(harness.client, command, 100_000)
    await orders.update_order(harness.client, command.client_order_id, new_state=OrderState.SUBMITTING)
    await harness.client.set(keys.order_lease(command.client_order_id), holder, px=LEASE_TTL_MS - age_ms)
    return command


async def _sweep(harness: Harness, command: SubmitOrder) -> None:
    worker = harness.gateway.workers[harness.alias]
    await harness.gateway.orders.settle_abandoned(worker, command.client_order_id)


async def test_a_lease_left_by_an_earlier_life_of_this_gateway_is_taken_over_at_once(
    sim: SimServer, make_harness: MakeHarness
) -> None:
    # A restarted container keeps its host name and pid, so the instance name comes back; its life does not.
    harness = await make_harness(sim)
    earlier_life = f"{harness.gateway.orders.instance}|0123456789ab"
    command = await _abandoned(harness, "000270", earlier_life, age_ms=0)
    await _sweep(harness, command)
    record = await harness.state(command.client_order_id, OrderState.ACCEPTED, OrderState.FILLED)
    assert record.resubmissions == 1
    assert len([o for o in harness.sim_orders() if o["ticker"] == "000270"]) == 1


async def test_a_lease_of_a_gateway_whose_heartbeat_is_gone_is_taken_over_once_old_enough(
    sim: SimServer, make_harness: MakeHarness
) -> None:
    harness = await make_harness(sim)
    young = await _abandoned(harness, "035720", "gateway-b|aaaaaaaaaaaa", age_ms=1_000)
    await _sweep(harness, young)  # gateway-b may not have written its first heartbeat yet
    assert (await harness.order(young.client_order_id)).state is OrderState.SUBMITTING
    assert harness.tr_ids("/inquire-daily-ccld") == []

    old = await _abandoned(harness, "051910", "gateway-c|bbbbbbbbbbbb", age_ms=DEAD_HOLDER_AFTER_MS + 1_000)
    await _sweep(harness, old)
    record = await harness.state(old.client_order_id, OrderState.ACCEPTED, OrderState.FILLED)
    assert record.resubmissions == 1
    assert len([o for o in harness.sim_orders() if o["ticker"] == "051910"]) == 1
    assert keys.text(await harness.client.get(keys.order_lease(young.client_order_id)) or b"") == (
        "gateway-b|aaaaaaaaaaaa"
    )


async def test_a_lease_of_a_gateway_that_is_alive_is_never_taken_however_old(
    sim: SimServer, make_harness: MakeHarness
) -> None:
    harness = await make_harness(sim)
    await harness.client.hset(keys.heartbeat("brokergateway", "gateway-d"), mapping={"life": "cccccccccccc"})
    command = await _abandoned(harness, "066570", "gateway-d|cccccccccccc", age_ms=DEAD_HOLDER_AFTER_MS + 5_000)
    await _sweep(harness, command)
    assert (await harness.order(command.client_order_id)).state is OrderState.SUBMITTING
    assert harness.tr_ids("/order-cash") == []

    # The same instance name restarted (another life): the old life's lease is dead.
    await harness.client.hset(keys.heartbeat("brokergateway", "gateway-d"), mapping={"life": "dddddddddddd"})
    await _sweep(harness, command)
    await harness.state(command.client_order_id, OrderState.ACCEPTED, OrderState.FILLED)
    assert len([o for o in harness.sim_orders() if o["ticker"] == "066570"]) == 1


async def test_the_order_managers_stream_carries_only_what_it_acts_on(
    sim: SimServer, make_harness: MakeHarness
) -> None:
    """A filled buy puts its fill on the executions stream and its progress (submitted, accepted)
    on the progress stream: the order manager, which reads every executions entry, wakes for the
    fill only, and live pages still see each step."""
    harness = await make_harness(sim)
    command = await harness.submit(ticker="005930", quantity=1)
    await harness.state(command.client_order_id, OrderState.FILLED)

    def of_order(entries: list[tuple[bytes, dict[bytes, bytes]]]) -> list[str]:
        return [e[b"type"].decode() for _id, e in entries if command.client_order_id.encode() in e[b"data"]]

    assert of_order(await xrange(harness.client, keys.EXECUTIONS)) == ["OrderFilled"]
    assert of_order(await xrange(harness.client, keys.PROGRESS)) == ["OrderSubmitted", "OrderAccepted"]
