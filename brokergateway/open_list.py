"""KIS's open-orders list of an account, one read shared by everyone who asks at the same time.

Three passes read it (kis/open_orders.py: inquire-psbl-rvsecncl or, virtual, inquire-daily-ccld's
unfilled rows; inquire-nccs for the US): the start-up check (open_at_kis.py), the fill poll
(polling.py: an order still listed is settled from it, only the others from the daily order
lists) and the reconciliation of an order whose POST outcome is unknown (reconcile.py, when the
daily list fails or does not show it). A caller that asks while a read of the same account's
segments is on its way waits for that read instead of sending its own, so the account's budget
(1 request/s on a virtual account) pays one list per pass, not one per order. Sharing an earlier
read is safe because the list only ever proves presence: an order it does not list is looked up
in the daily order lists, never concluded final or missing from the open list alone.

A virtual account's US list is asked per exchange (kis/open_orders.py), so a pass for US orders
asks only their exchanges (``us_markets``); the real domain answers for every US exchange at once.

Each read is handed to the listeners (the unowned-order count of open_at_kis.py) once, with the
segments it read whole: a virtual account's US list read for some exchanges only is left out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

from redis.exceptions import RedisError

from brokergateway.accounts import KRX, US
from brokergateway.kis.open_orders import domestic_open_orders, overseas_open_orders
from brokergateway.kis.order_list import BrokerOrderStatus
from brokergateway.worker import AccountWorker
from yquant.messages import Market
from yquant.orders import OrderRecord

logger = logging.getLogger(__name__)

OpenOrders = dict[str, list[BrokerOrderStatus]]  # segment ("KRX", "US") -> open orders at KIS
Listener = Callable[[AccountWorker, OpenOrders], Awaitable[None]]


def traded_segments(worker: AccountWorker) -> set[str]:
    return ({KRX} if Market.KRX in worker.markets else set()) | ({US} if worker.trades_us else set())


def segment_of_record(record: OrderRecord) -> str:
    return US if record.market.is_us else KRX


class OpenOrderList:
    def __init__(self) -> None:
        self.listeners: list[Listener] = []
        self._reading: dict[str, tuple[frozenset[str], frozenset[Market], asyncio.Task[OpenOrders]]] = {}

    async def read(
        self, worker: AccountWorker, segments: set[str] | None = None, us_markets: Iterable[Market] | None = None
    ) -> OpenOrders:
        """KIS's open orders of ``worker`` per segment (default: every segment it trades); the US
        segment for the exchanges of ``us_markets`` at least (default: every one it trades)."""
        traded = traded_segments(worker)
        wanted = frozenset(traded if segments is None else traded & segments)
        if not wanted:
            return {}
        exchanges = frozenset(m for m in worker.markets if m.is_us) if US in wanted else frozenset()
        if us_markets is not None and worker.kis.env != "real":
            exchanges &= frozenset(us_markets)
        current = self._reading.get(worker.alias)
        if current is not None and wanted <= current[0] and exchanges <= current[1] and not current[2].done():
            found = await asyncio.shield(current[2])
            return {segment: found[segment] for segment in wanted}
        task = asyncio.ensure_future(self._read(worker, wanted, exchanges))
        task.add_done_callback(_consume)
        self._reading[worker.alias] = (wanted, exchanges, task)
        return await asyncio.shield(task)

    async def _read(self, worker: AccountWorker, segments: frozenset[str], exchanges: frozenset[Market]) -> OpenOrders:
        found: OpenOrders = {}
        for segment in sorted(segments):
            if segment == KRX:
                found[KRX] = await domestic_open_orders(worker.kis)
            else:
                found[US] = await overseas_open_orders(worker.kis, sorted(exchanges))
        whole = {s: rows for s, rows in found.items() if s != US or exchanges >= {m for m in worker.markets if m.is_us}}
        for listener in self.listeners if whole else []:
            try:
                await listener(worker, whole)
            except (RedisError, OSError, ValueError) as exc:
                logger.warning("open orders read but not recorded", extra={"account": worker.alias, "error": str(exc)})
        return found


def _consume(task: asyncio.Task[OpenOrders]) -> None:
    """A read whose callers went away (cancelled) still ends; its error is theirs, not the loop's."""
    if not task.cancelled():
        task.exception()
