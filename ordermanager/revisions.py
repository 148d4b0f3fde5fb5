"""A person's revisions of open orders (``keys.REVISIONS``, the dashboard's Revise): checked here,
carried out by the gateway.

Pre-trade risk belongs to the order manager (ADR 0014): a buy revised to a higher price is a buy
worth more, and passes the same limits as a new buy of its new value, against the account as
read for a signal, inside the account's lock, without this order's own reservation. A revision
that passes goes on the order manager's command stream (``keys.ORDERS``) as it came; one that does
not is refused on the order itself (its reason and a history line), and nothing is sent.
Anything but a ``ReviseOrder`` on the stream is refused (dead-lettered), never executed.
"""

from __future__ import annotations

import dataclasses
import logging
from decimal import Decimal

from ordermanager import exposure, risk
from ordermanager.service import OrderManager
from yquant import keys, orders
from yquant.bus import fields_of
from yquant.errors import MessageRefused
from yquant.messages import AnyMessage, ReviseOrder, Side
from yquant.orders import OrderRecord

logger = logging.getLogger(__name__)


class Revisions:
    def __init__(self, manager: OrderManager) -> None:
        self.manager = manager
        self.client = manager.client

    async def handle(self, message: AnyMessage) -> None:
        if not isinstance(message, ReviseOrder):
            raise MessageRefused(f"{message.type} on {keys.REVISIONS}, which carries ReviseOrder only")
        record = await orders.get_order(self.client, message.client_order_id)
        if record is None:
            logger.warning("revision of an unknown order; ignored", extra={"client_order_id": message.client_order_id})
            return
        if record.account != message.account:
            await self._refuse(record, message, f"the order is in account {record.account}, not {message.account}")
            return
        async with self.manager.account_lock(record.account):
            problem = orders.revision_problem(record, message.limit_price, message.quantity)
            problem = problem or await self._risk(record, message)
            if problem is not None:
                await self._refuse(record, message, problem)
                return
            await self._pass_on(record, message)
        logger.info(
            "revision passed on", extra={"client_order_id": record.client_order_id, "revision": message.describe()}
        )

    async def _pass_on(self, record: OrderRecord, command: ReviseOrder) -> None:
        """To the gateway; a buy made dearer counts at its new price from now (``AccountView``,
        until the gateway records the revision), in the same step, so no signal meanwhile spends
        the difference."""
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.xadd(keys.ORDERS, fields_of(command), maxlen=self.manager.maxlen, approximate=True)
            price = command.limit_price
            if record.side is Side.BUY and price is not None and price > (record.limit_price or Decimal(0)):
                exposure.queue_reserve(
                    pipe, record.account, record.client_order_id, record.market.currency, price, command.id
                )
            await pipe.execute()

    async def _risk(self, record: OrderRecord, command: ReviseOrder) -> str | None:
        """Why the revision may not go, by the limits and the trading state; None when it may."""
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.RISK_LIMITS)
            self.manager.placement.reader.queue(pipe, record.account, [])
            replies = await pipe.execute()
        limits = self.manager.limits.limits(replies[0])
        read = await self.manager.placement.reader.finish(self.client, record.account, [], replies[1:])
        old_price = record.limit_price or Decimal(0)
        price = command.limit_price or old_price
        quantity = command.quantity or record.quantity
        left = quantity - record.filled_quantity
        # The account as if this order were not there: its own reservation is what it replaces.
        others = dataclasses.replace(
            read.view, orders=[o for o in read.view.orders if o.client_order_id != record.client_order_id]
        )
        state, scope = read.trading_state
        denial = risk.check_revision(
            limits,
            state,
            scope,
            side=record.side,
            currency=record.market.currency,
            price_changed=price != old_price,
            old_value=old_price * record.remaining_quantity,
            new_value=price * left,
            exposure=others.buy_exposure(record.market, record.ticker, price),
        )
        return denial.reason if denial else None

    async def _refuse(self, record: OrderRecord, command: ReviseOrder, why: str) -> None:
        reason = await orders.refuse_revision(self.client, record, command, why, self.manager.maxlen)
        logger.info("revision refused", extra={"client_order_id": record.client_order_id, "reason": reason})
