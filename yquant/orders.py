"""Order records in Valkey: one hash per ``client_order_id`` plus its state history.

Changes go through the server functions so that a state change and the event that
announces it are written together or not at all.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
import redis.asyncio as aioredis

from yquant import keys
from yquant.markets import tick_size
from yquant.messages import (
    FINAL_STATES,
    Frozen,
    Market,
    Message,
    OrderOrigin,
    OrderRevisionRefused,
    OrderState,
    OrderType,
    ReviseOrder,
    Side,
    SubmitOrder,
    utcnow,
)

# Every state change an order may make, and only these: a change to a state not listed for the
# order's current state is refused by ``yq_order_update`` (the record and the event stay as they were).
ALLOWED_TRANSITIONS: dict[OrderState, frozenset[OrderState]] = {
    # NEW -> CANCELLED: cancelled before it was sent (queued behind the account's pacing).
    OrderState.NEW: frozenset({OrderState.SUBMITTING, OrderState.REJECTED, OrderState.FAILED, OrderState.CANCELLED}),
    OrderState.SUBMITTING: frozenset({OrderState.ACCEPTED, OrderState.REJECTED, OrderState.FAILED}),
    OrderState.ACCEPTED: frozenset({OrderState.PARTIALLY_FILLED, OrderState.FILLED, OrderState.CANCELLED}),
    OrderState.PARTIALLY_FILLED: frozenset({OrderState.PARTIALLY_FILLED, OrderState.FILLED, OrderState.CANCELLED}),
    OrderState.FILLED: frozenset(),
    OrderState.CANCELLED: frozenset(),
    OrderState.REJECTED: frozenset(),
    OrderState.FAILED: frozenset(),
}


def states_into(new_state: OrderState) -> frozenset[OrderState]:
    """The states an order may be in to move to ``new_state``."""
    return frozenset(state for state, targets in ALLOWED_TRANSITIONS.items() if new_state in targets)


class OrderRecord(Frozen):
    client_order_id: str
    account: str
    market: Market
    ticker: str
    side: Side
    quantity: int
    order_type: OrderType
    limit_price: Decimal | None = None
    strategy: str
    origin: OrderOrigin
    signal_id: str | None = None
    reduce_only: bool = False
    correlation_id: str = ""
    state: OrderState
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None = None
    broker_order_id: str = ""
    broker_org_no: str = ""
    filled_quantity: int = 0
    average_price: Decimal | None = None
    fee: Decimal = Decimal(0)
    last_fill_at: datetime | None = None  # the latest fill's time (P/L replays fills in this order)
    reason: str = ""
    signal_at: datetime | None = None  # when its signal fired or arrived (freshness of a resubmission)
    resubmissions: int = 0  # times the gateway sent it again after KIS proved not to have it
    cancel_reason: str = ""  # who or what asked for a cancel; the cancellation's reason when KIS confirms it
    # The KIS order numbers a revision left behind, each with the fills it took (JSON: number ->
    # [quantity, amount]); ``broker_order_id`` is the current one (``earlier_fills``).
    prior_fills: str = ""
    last_revision: str = ""  # the id of the last ReviseOrder carried out: a redelivery is not sent again

    @property
    def remaining_quantity(self) -> int:
        return self.quantity - self.filled_quantity

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def earlier_fills(self) -> dict[str, tuple[int, Decimal]]:
        """The fills of the KIS order numbers this order had before its revisions: number ->
        (quantity, amount). KIS counts each number's fills from zero, so the order's filled
        quantity is these plus what its current number reports."""
        if not self.prior_fills:
            return {}
        data = orjson.loads(self.prior_fills)
        return {str(number): (int(qty), Decimal(str(amount))) for number, (qty, amount) in data.items()}

    @property
    def earlier_total(self) -> tuple[int, Decimal]:
        """(quantity, amount) filled under earlier KIS order numbers."""
        legs = self.earlier_fills.values()
        return sum(q for q, _ in legs), sum((a for _, a in legs), Decimal(0))


def prior_fills_value(legs: Mapping[str, tuple[int, Decimal]]) -> str:
    """``OrderRecord.prior_fills`` as stored."""
    return orjson.dumps({number: [qty, str(amount)] for number, (qty, amount) in legs.items()}).decode()


# An open order whose price or quantity may be revised (``revision_problem``); NEW and SUBMITTING
# orders have no KIS order number to revise yet.
REVISABLE_STATES = (OrderState.ACCEPTED, OrderState.PARTIALLY_FILLED)


def revision_problem(record: OrderRecord, limit_price: Decimal | None, quantity: int | None) -> str | None:
    """Why ``record`` cannot be revised to ``limit_price`` and/or ``quantity`` (its new total, fills
    included), or None when it can. KIS revises open limit orders only, on the price grid, and
    cannot raise a quantity (docs/kis-protocol.md section 4.2)."""
    if limit_price is None and quantity is None:
        return "give a new price or a new quantity"
    if record.order_type is not OrderType.LIMIT or record.limit_price is None:
        return "only a limit order can be revised"
    if record.state not in REVISABLE_STATES:
        return f"the order is {record.state.value}: only an order open at KIS can be revised"
    if limit_price is not None:
        if limit_price <= 0:
            return "the price must be positive"
        tick = tick_size(record.market, limit_price)
        if limit_price % tick != 0:
            return f"{limit_price} is not on the {record.market.value} price grid (tick {tick} at that price)"
    if quantity is not None:
        if quantity <= record.filled_quantity:
            return (
                f"the new quantity must be above the {record.filled_quantity} already filled"
                " (cancel the order to keep only the filled shares)"
            )
        if quantity > record.quantity:
            return f"KIS cannot raise an order's quantity (now {record.quantity}); place another order for more"
    new_price = record.limit_price if limit_price is None else limit_price
    new_quantity = record.quantity if quantity is None else quantity
    if new_price == record.limit_price and new_quantity == record.quantity:
        return "nothing to change: the order already has that price and quantity"
    return None


def _history_entry(state: str, note: str = "", **extra: object) -> str:
    entry: dict[str, object] = {"at": utcnow().isoformat(), "state": state}
    if note:
        entry["note"] = note
    entry.update(extra)
    return orjson.dumps(entry, default=str).decode()


def _flatten(fields: Mapping[str, object]) -> list[str]:
    flat: list[str] = []
    for name, value in fields.items():
        flat.append(name)
        flat.append("" if value is None else str(value))
    return flat


async def create_order(client: aioredis.Redis, command: SubmitOrder, maxlen: int) -> bool:
    """Record the order as NEW and append its command, once. False if it already existed."""
    return create_result(await client.fcall("yq_order_create", *create_arguments(command, maxlen)))


def create_result(result: Any) -> bool:
    """Whether a ``yq_order_create`` reply created the order (False: it existed already)."""
    return bool(result != 0)


def create_arguments(command: SubmitOrder, maxlen: int) -> list[Any]:
    """The ``yq_order_create`` arguments of ``create_order`` (to queue it with other writes:
    ``pipe.fcall("yq_order_create", *create_arguments(...))``, read by ``create_result``)."""
    now = utcnow()
    fields = {
        "client_order_id": command.client_order_id,
        "account": command.account,
        "market": command.market.value,
        "ticker": command.ticker,
        "side": command.side.value,
        "quantity": command.quantity,
        "order_type": command.order_type.value,
        "limit_price": command.limit_price,
        "strategy": command.strategy,
        "origin": command.origin,
        "signal_id": command.signal_id,
        "reduce_only": "1" if command.reduce_only else "",
        "correlation_id": command.correlation_id,
        "state": OrderState.NEW.value,
        "created_at": now.isoformat(),
        "updated_at": now.isoformat(),
        "filled_quantity": 0,
        "fee": 0,
        "signal_at": command.signal_at.isoformat() if command.signal_at else "",
        "resubmissions": 0,
    }
    return [
        5,
        keys.order(command.client_order_id),
        keys.order_history(command.client_order_id),
        keys.ORDERS_INDEX,
        keys.ORDERS_OPEN,
        keys.ORDERS,
        command.client_order_id,
        int(time.time() * 1000),
        maxlen,
        "SubmitOrder",
        command.model_dump_json(),
        _history_entry(OrderState.NEW.value, command.origin),
        *_flatten(fields),
    ]


async def update_order(
    client: aioredis.Redis,
    client_order_id: str,
    *,
    new_state: OrderState | None = None,
    only_in: Iterable[OrderState] | None = None,
    fields: Mapping[str, object] | None = None,
    event: Message | None = None,
    note: str = "",
    condition: tuple[str, str] | None = None,
    maxlen: int = 100_000,
    history: str = "",
    drop_lease: bool = False,
) -> tuple[bool, OrderState | None]:
    """Move an order to ``new_state`` if ``ALLOWED_TRANSITIONS`` allows it from the state it is in,
    or, without a new state, change its fields while it is in one of ``only_in``; emits ``event``.

    Returns (applied, state before). ``state before`` is None when the order is unknown.
    ``drop_lease``: delete the order's lease in the same step (see ``update_arguments``).
    """
    arguments = update_arguments(
        client_order_id,
        only_in=only_in,
        new_state=new_state,
        fields=fields,
        event=event,
        note=note,
        condition=condition,
        maxlen=maxlen,
        history=history,
        drop_lease=drop_lease,
    )
    return update_result(await client.fcall("yq_order_update", *arguments))


def update_arguments(
    client_order_id: str,
    *,
    new_state: OrderState | None = None,
    only_in: Iterable[OrderState] | None = None,
    fields: Mapping[str, object] | None = None,
    event: Message | None = None,
    note: str = "",
    condition: tuple[str, str] | None = None,
    maxlen: int = 100_000,
    history: str = "",
    take_lease: tuple[str, int] | None = None,
    drop_lease: bool = False,
    with_record: bool = False,
) -> list[Any]:
    """The ``yq_order_update`` arguments of ``update_order`` (to queue several changes on a pipeline:
    ``pipe.fcall("yq_order_update", *update_arguments(...))``, each result read by ``update_result``).

    A state change adds a history line with its ``note``; a field change adds one only when it
    names its ``history`` label (``REVISED``: what changed and who asked).

    ``take_lease`` (holder, ttl in ms) sets the order's lease (``keys.order_lease``) if nobody
    holds it, ``drop_lease`` deletes it, in the same step and whatever the state (``lease_result``
    says whether it was taken). ``with_record``: an applied change's reply carries the record
    as it is after the change (``record_result``), for a caller that would otherwise read it."""
    if new_state is not None:
        if only_in is not None:
            raise ValueError("a state change's preconditions come from ALLOWED_TRANSITIONS, not only_in")
        allowed: Iterable[OrderState] = states_into(new_state)
    elif only_in is not None:
        allowed = only_in
    else:
        raise ValueError("a field change names the states it applies in (only_in)")
    all_fields = dict(fields or {})
    all_fields["updated_at"] = utcnow().isoformat()
    final = new_state is not None and new_state in FINAL_STATES
    if take_lease is not None and drop_lease:
        raise ValueError("a change takes the lease or drops it, not both")
    lease: list[Any] = []
    if take_lease is not None:
        lease = ["take", take_lease[0], take_lease[1]]
    elif drop_lease:
        lease = ["drop", "", 0]
    stream = keys.event_stream(event.__class__.__name__) if event else keys.EXECUTIONS
    order_keys = [keys.order(client_order_id), keys.order_history(client_order_id), keys.ORDERS_OPEN, stream]
    if lease:
        order_keys.append(keys.order_lease(client_order_id))
    return [
        len(order_keys),
        *order_keys,
        ",".join(sorted(s.value for s in allowed)),
        condition[0] if condition else "",
        condition[1] if condition else "",
        new_state.value if new_state else "",
        maxlen,
        event.__class__.__name__ if event else "",
        event.model_dump_json() if event else "",
        _history_entry(new_state.value, note) if new_state else (_history_entry(history, note) if history else ""),
        ("1" if final else "") + ("r" if with_record else ""),
        client_order_id,
        *lease,
        *_flatten(all_fields),
    ]


async def refuse_revision(
    client: aioredis.Redis,
    record: OrderRecord,
    command: ReviseOrder,
    why: str,
    maxlen: int,
    *,
    unconfirmed: bool = False,
) -> str:
    """The revision ``command`` of ``record`` did not happen (refused by the order manager or KIS,
    or ``unconfirmed``: KIS did not answer): the order stays as it was, its reason and history say
    which revision and why, and ``OrderRevisionRefused`` tells live pages. A final order keeps its
    record as it is (its times count in the risk checks) and gets the history line only. The
    reason written."""
    outcome, label = ("unconfirmed", "REVISION UNKNOWN") if unconfirmed else ("refused", "REVISION REFUSED")
    reason = f"revision to {command.describe()} by {command.by} {outcome}: {why}"
    if record.is_final:
        await client.rpush(keys.order_history(record.client_order_id), _history_entry(label, reason))
        return reason
    event = OrderRevisionRefused(
        correlation_id=record.correlation_id or record.client_order_id,
        client_order_id=record.client_order_id,
        account=record.account,
        reason=reason,
    )
    await update_order(
        client,
        record.client_order_id,
        only_in=[s for s in OrderState if s not in FINAL_STATES],
        fields={"reason": reason},
        event=event,
        note=reason,
        history=label,
        maxlen=maxlen,
    )
    return reason


def update_result(result: Any) -> tuple[bool, OrderState | None]:
    """(applied, state before) from a ``yq_order_update`` reply."""
    code, previous = int(result[0]), result[1]
    if code == -1:
        return False, None
    return code == 1, OrderState(keys.text(previous))


def lease_result(result: Any) -> bool:
    """Whether a ``yq_order_update`` reply's ``take_lease`` took the lease (or ``drop_lease`` dropped one)."""
    return len(result) > 2 and int(result[2]) == 1


def record_result(result: Any) -> OrderRecord | None:
    """The record after an applied change, from a ``yq_order_update`` reply asked ``with_record``
    (None when the change did not apply)."""
    if len(result) < 5 or int(result[0]) != 1:
        return None
    flat = result[4]
    return parse_record(dict(zip(flat[::2], flat[1::2], strict=True)))


def cancel_reason_of(result: Any) -> str:
    """The order's ``cancel_reason`` after a ``yq_order_update`` (its reply's fourth element)."""
    return keys.text(result[3]) if len(result) > 3 else ""


def parse_record(raw: Mapping[Any, Any]) -> OrderRecord:
    data = {keys.text(k): keys.text(v) for k, v in raw.items()}
    cleaned: dict[str, object] = {k: v for k, v in data.items() if v != ""}
    cleaned["reduce_only"] = data.get("reduce_only") == "1"
    return OrderRecord.model_validate(cleaned)


async def get_order(client: aioredis.Redis, client_order_id: str) -> OrderRecord | None:
    raw = await client.hgetall(keys.order(client_order_id))
    return parse_record(raw) if raw else None


async def get_orders(client: aioredis.Redis, client_order_ids: Iterable[str]) -> list[OrderRecord]:
    ids = list(client_order_ids)
    if not ids:
        return []
    async with client.pipeline(transaction=False) as pipe:
        for coid in ids:
            pipe.hgetall(keys.order(coid))
        rows = await pipe.execute()
    return [parse_record(row) for row in rows if row]


async def recent_orders(client: aioredis.Redis, limit: int = 100) -> list[OrderRecord]:
    ids = await client.zrevrange(keys.ORDERS_INDEX, 0, limit - 1)
    return await get_orders(client, [keys.text(i) for i in ids])


async def open_orders(client: aioredis.Redis) -> list[OrderRecord]:
    ids = await client.smembers(keys.ORDERS_OPEN)
    return await get_orders(client, sorted(keys.text(i) for i in ids))


async def order_history(client: aioredis.Redis, client_order_id: str) -> list[dict[str, object]]:
    rows = await client.lrange(keys.order_history(client_order_id), 0, -1)
    return [orjson.loads(r) for r in rows]


class RecordCache:
    """Parsed order records kept between reads; an order is fetched again only when it changed.

    A risk check reads every open and recently settled order of the account for each
    signal. Final orders are served from memory (they never change again); the others are read
    in one pipeline and parsed again only when their ``updated_at`` changed.
    """

    # A risk check needs the open orders and those since the last account sync (seconds apart):
    # a few hundred at 100 alerts/s. Beyond that a miss only costs a re-read, so the cache stays
    # small instead of growing with every order of the day.
    def __init__(self, max_size: int = 2_000) -> None:
        self.max_size = max_size
        self._records: dict[str, tuple[str, OrderRecord]] = {}

    async def get_many(self, client: aioredis.Redis, client_order_ids: Iterable[str]) -> list[OrderRecord]:
        """The records of the ids that exist, in their order: one round trip at most (none when
        every one is final and known). An order that changed (its ``updated_at``) is parsed again."""
        ids = list(client_order_ids)
        if not ids:
            return []
        # A final order (filled, cancelled, rejected, failed) never changes again: no look-up.
        unsettled = [coid for coid in ids if coid not in self._records or not self._records[coid][1].is_final]
        if unsettled:
            async with client.pipeline(transaction=False) as pipe:
                for coid in unsettled:
                    pipe.hgetall(keys.order(coid))
                rows = await pipe.execute()
            for coid, row in zip(unsettled, rows, strict=True):
                if not row:
                    self._records.pop(coid, None)
                    continue
                stamp = keys.text(row.get(b"updated_at", row.get("updated_at", "")))
                cached = self._records.get(coid)
                if cached is None or cached[0] != stamp:
                    self._records[coid] = (stamp, parse_record(row))
            if len(self._records) > self.max_size:
                keep = set(ids)
                for coid in [c for c in self._records if c not in keep][: len(self._records) - self.max_size]:
                    del self._records[coid]
        return [self._records[coid][1] for coid in ids if coid in self._records]
