"""The exchange: books orders against accounts, matches them against simulated prices, emits notices.

Pure logic (no I/O, no asyncio): the HTTP layer parses requests into ``OrderRequest`` /
``AmendRequest``, calls ``submit`` / ``amend`` and maps ``OrderDenied`` to KIS's messages.
Domestic order types (ORD_DVSN, KIS's codes): 00 limit, 01 market, 03 최유리지정가 (best
counterparty limit), 04 최우선지정가 (best own-side limit), and on the real domain only 11/12 IOC/FOK
limit and 13/14 IOC/FOK market (KIS offers no IOC/FOK on the virtual domain). US orders are 00 only.
Every other code is refused as unsupported.

Matching: a market-priced order (01, 13, 14) fills at once at the current price; a marketable limit
order fills at once at the current price; other limit orders rest and fill at their limit price
when the price crosses it. 03 and 04 are priced from the order book when they are booked (best ask
= the current price, best bid = one tick below, as ``history.order_book`` builds it): 03 at the best
opposite quote (a buy at the ask, so it fills at once), 04 at the best quote of its own side (a buy
at the bid, so it rests; a sell at the ask, which in this book is the current price, so like a sell
limit there it fills at once); from then on they are limit orders at that price. IOC (11, 13) fills what
is marketable now and cancels the rest at once; FOK (12, 14) fills whole at once or is cancelled
whole. The cancelled part is a cancel record of its own, as an order-rvsecncl cancel is.
With ``partial_fills`` each match fills at most half the order (so an IOC fills half and cancels
the rest, and an FOK of more than one share is cancelled whole).

A market-priced or best-priced buy is checked against cash at the day's upper-limit price; a
best-priced one then holds only its booked price, a market-priced one holds the upper limit until
it fills (the fill settles at the fill price) or its remainder is cancelled.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal

from kissim.accounts import Account, currency_of, open_account, round_money
from kissim.config import SimConfig
from kissim.history import order_book
from kissim.hours import new_york_time
from kissim.market import Family, PriceBook, instrument_name, is_on_tick
from kissim.orders import (
    BEST_LIMIT,
    BEST_PRICED,
    FOK,
    FOK_LIMIT,
    FOK_MARKET,
    IOC,
    IOC_LIMIT,
    IOC_MARKET,
    LIMIT,
    MARKET,
    MARKET_PRICED,
    TOP_LIMIT,
    AmendRequest,
    Notice,
    Order,
    OrderDenied,
    OrderKind,
    OrderRequest,
    Refusal,
    Side,
)
from kissim.protocol import KST

VIRTUAL_DOMESTIC_ORDER_TYPES = frozenset({LIMIT, MARKET, BEST_LIMIT, TOP_LIMIT})
DOMESTIC_ORDER_TYPES = VIRTUAL_DOMESTIC_ORDER_TYPES | {IOC_LIMIT, FOK_LIMIT, IOC_MARKET, FOK_MARKET}
US_ORDER_TYPES = frozenset({LIMIT})

Listener = Callable[[Notice], None]


class Engine:
    def __init__(
        self,
        config: SimConfig,
        prices: PriceBook,
        market_open: Callable[[Family], bool],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.prices = prices
        self.market_open = market_open
        self.clock = clock
        self.listeners: list[Listener] = []
        self.reset()

    def reset(self) -> None:
        self.accounts: dict[str, Account] = {}
        self.orders: list[Order] = []
        self.by_odno: dict[int, Order] = {}
        self.resting: dict[tuple[Family, str], list[Order]] = {}
        self.next_odno = 1001
        # Bumped by every change to accounts or orders: the simulator saves its state when it moved.
        self.changes = 0
        # Positions in ``orders`` of orders changed since the state file last saved them.
        self.touched: set[int] = set()

    def _append(self, order: Order) -> None:
        order.seq = len(self.orders)
        self.orders.append(order)

    def restore_order(self, order: Order) -> None:
        """Put back an order read from the state file, in its original position."""
        self._append(order)
        if order.odno:
            self.by_odno[int(order.odno)] = order
        if order.remaining > 0:
            self.resting.setdefault((order.family, order.ticker), []).append(order)

    # ------------------------------------------------------------------ accounts and time

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), KST)

    def account(self, cano: str, product_code: str) -> Account:
        """The account, opened and funded on first use; its ledgers roll over to today."""
        number = cano + product_code
        today = self.now().date()
        found = self.accounts.get(number)
        if found is None:
            found = open_account(cano, product_code, self.config.krw, self.config.usd, today)
            self.accounts[number] = found
            self.changes += 1
        elif found.roll_to(today):
            self.changes += 1
        return found

    def session_date(self, family: Family, moment: datetime) -> date:
        return moment.date() if family == "KRX" else new_york_time(moment).date()

    def expire_day_orders(self) -> None:
        """Cancel what is left of orders whose trading day is over (KRX by KST date, US by New York date)."""
        now = self.now()
        current = {"KRX": self.session_date("KRX", now), "US": self.session_date("US", now)}
        for book in self.resting.values():
            for order in [o for o in book if o.session_date < current[o.family]]:
                self._withdraw(order, order.remaining, revised=False)

    def org_no(self, family: Family) -> str:
        if family == "US":
            return "01790"
        return "00950" if self.config.is_virtual else "06010"

    def fee_rate(self, family: Family) -> Decimal:
        return self.config.domestic_fee_rate if family == "KRX" else self.config.overseas_fee_rate

    # ------------------------------------------------------------------ new orders

    def submit(self, request: OrderRequest) -> Order:
        """Book a new order or raise ``OrderDenied`` (the refusal is logged as a rejected order)."""
        order = self._new_order(request)
        try:
            self._check_new(order)
        except OrderDenied as denied:
            order.rejected, order.reject_reason = True, denied.reason.value
            self._append(order)
            self.changes += 1
            raise
        self._book(order)
        return order

    def record_rejected(self, request: OrderRequest, reason: Refusal) -> Order:
        """Log an order the HTTP layer refused before it reached the engine."""
        order = self._new_order(request)
        order.rejected, order.reject_reason = True, reason.value
        self._append(order)
        self.changes += 1
        return order

    def _new_order(self, request: OrderRequest) -> Order:
        received = datetime.fromtimestamp(request.received_at_ns / 1e9, KST)
        return Order(
            odno="",
            org_no=self.org_no(request.family),
            cano=request.cano,
            product_code=request.product_code,
            tr_id=request.tr_id,
            family=request.family,
            exchange=request.exchange,
            ticker=request.ticker,
            name=instrument_name(request.family, request.ticker),
            side=request.side,
            ord_dvsn=request.ord_dvsn,
            quantity=request.quantity,
            price=request.price,
            received_at_ns=request.received_at_ns,
            ord_dt=received.date(),
            ord_tmd=received.strftime("%H%M%S"),
            session_date=self.session_date(request.family, received),
        )

    def _check_new(self, order: Order) -> None:
        if not self.market_open(order.family):
            raise OrderDenied(Refusal.MARKET_CLOSED)
        if order.quantity <= 0:
            raise OrderDenied(Refusal.BAD_QUANTITY)
        self._check_type_and_price(order.family, order.ticker, order.ord_dvsn, order.price)
        account = self.account(order.cano, order.product_code)
        if order.side is Side.BUY:
            order.reserve_unit = self._reserve_unit(order.family, order.ticker, order.ord_dvsn, order.price)
            need = order.reserve_unit * order.quantity
            if need > account.ledger(currency_of(order.family)).available:
                raise OrderDenied(Refusal.NO_CASH)
            order.reserved_left = need
        else:
            holding = account.holdings.get((order.family, order.ticker))
            if holding is None or holding.sellable < order.quantity:
                raise OrderDenied(Refusal.NO_HOLDING)

    def _check_type_and_price(self, family: Family, ticker: str, ord_dvsn: str, price: Decimal) -> None:
        if family == "US":
            allowed = US_ORDER_TYPES
        else:
            allowed = VIRTUAL_DOMESTIC_ORDER_TYPES if self.config.is_virtual else DOMESTIC_ORDER_TYPES
        if ord_dvsn not in allowed:
            raise OrderDenied(Refusal.UNSUPPORTED, f"(ORD_DVSN={ord_dvsn})")
        if ord_dvsn in MARKET_PRICED or ord_dvsn in BEST_PRICED:
            return  # no price of its own (ORD_UNPR "0"): whatever was sent is not used
        if price <= 0:
            raise OrderDenied(Refusal.BAD_PRICE)
        if not is_on_tick(family, price):
            raise OrderDenied(Refusal.TICK)
        quote = self.prices.quote(family, ticker)
        if family == "KRX" and not quote.lower <= price <= quote.upper:
            raise OrderDenied(Refusal.PRICE_LIMIT)

    def _reserve_unit(self, family: Family, ticker: str, ord_dvsn: str, price: Decimal) -> Decimal:
        """Cash held per share: the limit price, or the upper-limit price for an order not priced yet
        (market-priced, or best-priced before it is booked), plus fee."""
        unpriced = ord_dvsn in MARKET_PRICED or ord_dvsn in BEST_PRICED
        reference = self.prices.quote(family, ticker).upper if unpriced else price
        return reference * (1 + self.fee_rate(family))

    def _best_price(self, order: Order) -> Decimal:
        """The price a 03/04 order is booked at: the best quote opposite (03) or on its own side (04)."""
        quote = self.prices.quote(order.family, order.ticker)
        book = order_book(quote)
        wants_ask = (order.side is Side.BUY) == (order.ord_dvsn == BEST_LIMIT)
        best = book.asks[0][0] if wants_ask else book.bids[0][0]
        return best if best > 0 else quote.price  # no level beyond a price limit: the price itself

    def _price_best(self, order: Order) -> None:
        """Fix a best-priced order's price; a buy then holds only that price, not the upper limit."""
        order.price = self._best_price(order)
        if order.side is Side.BUY:
            order.reserve_unit = self._reserve_unit(order.family, order.ticker, LIMIT, order.price)
            order.reserved_left = order.reserve_unit * order.remaining

    def _book(self, order: Order) -> None:
        order.odno = f"{self.next_odno:010d}"
        self.next_odno += 1
        if order.kind is not OrderKind.CANCEL and order.ord_dvsn in BEST_PRICED:
            self._price_best(order)
        account = self.account(order.cano, order.product_code)
        if order.side is Side.BUY:
            account.ledger(currency_of(order.family)).reserved += order.reserved_left
        elif order.kind is OrderKind.NEW:
            holding = account.holding(order.family, order.ticker, order.name, order.exchange)
            holding.reserved_for_sale += order.quantity
        self._append(order)
        self.by_odno[int(order.odno)] = order
        self.changes += 1
        self._emit(order, "accepted", order.quantity, order.price)
        if order.kind is not OrderKind.CANCEL:
            self.resting.setdefault((order.family, order.ticker), []).append(order)
            if order.ord_dvsn not in FOK or self._fills_whole(order):
                self._match_incoming(order)
            if order.remaining > 0 and (order.ord_dvsn in IOC or order.ord_dvsn in FOK):
                self._cancel_rest(order)

    def _cancel_rest(self, order: Order) -> None:
        """An IOC/FOK order's unfilled rest, cancelled at once by a cancel record of its own.

        UNCERTAIN: KIS's documents give the notice flag (ACPT_YN 3, "IOC/FOK cancel") but not how the
        daily order list shows the rest; the simulator shows it as it shows an order-rvsecncl cancel.
        """
        record = self._new_order(
            OrderRequest(
                order.cano,
                order.product_code,
                order.tr_id,
                order.family,
                order.exchange,
                order.ticker,
                order.side,
                order.ord_dvsn,
                order.remaining,
                order.price,
                order.received_at_ns,
            )
        )
        record.kind, record.original_odno, record.cancelled_quantity = OrderKind.CANCEL, order.odno, order.remaining
        self._withdraw(order, order.remaining, revised=False)
        self._book(record)

    def _fills_whole(self, order: Order) -> bool:
        """Whether an order would fill entirely now (what an FOK needs)."""
        return self._marketable(order) and self._chunk(order) == order.remaining

    # ------------------------------------------------------------------ revise and cancel

    def find(self, odno: str) -> Order | None:
        return self.by_odno.get(int(odno)) if odno.strip().isdigit() else None

    def amend(self, request: AmendRequest) -> Order:
        """Revise price/type or cancel (part of) the remaining quantity; returns the new order record.

        A refused amendment is logged as a rejected order record and ``OrderDenied`` is raised.
        """
        try:
            return self._amend(request)
        except OrderDenied as denied:
            original = self.find(request.original_odno)
            record = self._new_order(
                OrderRequest(
                    request.cano,
                    request.product_code,
                    request.tr_id,
                    request.family,
                    original.exchange if original else ("KRX" if request.family == "KRX" else ""),
                    original.ticker if original else "",
                    original.side if original else Side.BUY,
                    request.ord_dvsn,
                    request.quantity or 0,
                    request.price,
                    request.received_at_ns,
                )
            )
            record.kind = OrderKind.CANCEL if request.cancel else OrderKind.REVISE
            record.original_odno = request.original_odno
            record.rejected, record.reject_reason = True, denied.reason.value
            self._append(record)
            self.changes += 1
            raise

    def _amend(self, request: AmendRequest) -> Order:
        original = self.find(request.original_odno)
        if original is None or original.account != request.cano + request.product_code:
            raise OrderDenied(Refusal.ORDER_NOT_FOUND)
        if request.org_no.strip() and request.org_no.strip() != original.org_no:
            raise OrderDenied(Refusal.ORDER_NOT_FOUND)
        if not self.market_open(original.family):
            raise OrderDenied(Refusal.MARKET_CLOSED)
        if original.remaining <= 0:
            raise OrderDenied(Refusal.NOTHING_TO_CHANGE)
        quantity = original.remaining if request.quantity is None else request.quantity
        if quantity <= 0:
            raise OrderDenied(Refusal.BAD_QUANTITY)
        if quantity > original.remaining:
            raise OrderDenied(Refusal.QTY_EXCEEDS)
        record = self._new_order(
            OrderRequest(
                request.cano,
                request.product_code,
                request.tr_id,
                original.family,
                original.exchange,
                original.ticker,
                original.side,
                request.ord_dvsn if not request.cancel else original.ord_dvsn,
                quantity,
                request.price if not request.cancel else original.price,
                request.received_at_ns,
            )
        )
        record.original_odno = original.odno
        if request.cancel:
            record.kind, record.cancelled_quantity = OrderKind.CANCEL, quantity
            self._withdraw(original, quantity, revised=False)
        else:
            record.kind = OrderKind.REVISE
            self._check_type_and_price(record.family, record.ticker, record.ord_dvsn, record.price)
            if record.side is Side.BUY:
                record.reserve_unit = self._reserve_unit(record.family, record.ticker, record.ord_dvsn, record.price)
                record.reserved_left = record.reserve_unit * quantity
                released = self._release_share(original, quantity)
                ledger = self.account(record.cano, record.product_code).ledger(currency_of(record.family))
                if record.reserved_left - released > ledger.available:
                    raise OrderDenied(Refusal.NO_CASH)
            self._withdraw(original, quantity, revised=True)
        self._book(record)
        return record

    def _release_share(self, order: Order, quantity: int) -> Decimal:
        """Reserved cash that ``quantity`` unfilled shares of a buy order hold."""
        if order.remaining == quantity:
            return order.reserved_left
        return min(order.reserved_left, order.reserve_unit * quantity)

    def _withdraw(self, order: Order, quantity: int, *, revised: bool) -> None:
        """Take ``quantity`` unfilled shares off ``order`` (cancelled, expired or moved to a revision)."""
        self.changes += 1
        self.touched.add(order.seq)
        account = self.account(order.cano, order.product_code)
        if order.side is Side.BUY:
            released = self._release_share(order, quantity)
            order.reserved_left -= released
            account.ledger(currency_of(order.family)).reserved -= released
        if revised:
            order.revised_quantity += quantity
        else:
            order.cancelled_quantity += quantity
        if order.side is Side.SELL and not revised:
            holding = account.holdings.get((order.family, order.ticker))
            if holding is not None:
                holding.reserved_for_sale -= quantity
        if order.remaining == 0:
            self._unrest(order)

    def _unrest(self, order: Order) -> None:
        book = self.resting.get((order.family, order.ticker))
        if book and order in book:
            book.remove(order)

    # ------------------------------------------------------------------ matching

    def _chunk(self, order: Order) -> int:
        if not self.config.partial_fills:
            return order.remaining
        return min(order.remaining, max(1, math.ceil(order.quantity / 2)))

    def _marketable(self, order: Order) -> bool:
        price = self.prices.quote(order.family, order.ticker).price
        if order.ord_dvsn in MARKET_PRICED:
            return True
        return order.price >= price if order.side is Side.BUY else order.price <= price

    def _match_incoming(self, order: Order) -> None:
        if self._marketable(order):
            self._fill(order, self._chunk(order), self.prices.quote(order.family, order.ticker).price)

    def match(self, family: Family, ticker: str) -> None:
        """Fill resting orders on ``ticker`` that the current price reaches."""
        book = self.resting.get((family, ticker))
        if not book:
            return
        price = self.prices.quote(family, ticker).price
        for order in list(book):
            if order.ord_dvsn in MARKET_PRICED:
                self._fill(order, self._chunk(order), price)
            elif (order.side is Side.BUY and price <= order.price) or (
                order.side is Side.SELL and price >= order.price
            ):
                self._fill(order, self._chunk(order), order.price)

    def match_all(self) -> None:
        self.expire_day_orders()
        self.prices.advance_all()
        for family, ticker in [key for key, book in self.resting.items() if book]:
            self.match(family, ticker)

    def force_fill(self, odno: str, quantity: int | None) -> Order:
        """Admin: fill (part of) a resting order at its limit price (market orders at the current price)."""
        order = self.find(odno)
        if order is None or order.remaining <= 0:
            raise OrderDenied(Refusal.NOTHING_TO_CHANGE if order else Refusal.ORDER_NOT_FOUND)
        amount = order.remaining if quantity is None else min(quantity, order.remaining)
        if amount <= 0:
            raise OrderDenied(Refusal.BAD_QUANTITY)
        market = order.ord_dvsn in MARKET_PRICED
        price = self.prices.quote(order.family, order.ticker).price if market else order.price
        self._fill(order, amount, price)
        return order

    def _fill(self, order: Order, quantity: int, price: Decimal) -> None:
        if quantity <= 0:
            return
        self.changes += 1
        self.touched.add(order.seq)
        account = self.account(order.cano, order.product_code)
        currency = currency_of(order.family)
        fee = round_money(currency, price * quantity * self.fee_rate(order.family))
        holding = account.holding(order.family, order.ticker, order.name, order.exchange)
        if order.side is Side.BUY:
            released = self._release_share(order, quantity)
            order.reserved_left -= released
            account.ledger(currency).reserved -= released
            account.apply_buy(holding, quantity, price, fee)
        else:
            holding.reserved_for_sale -= quantity
            order.released_cost += holding.average_price * quantity  # what apply_sell takes off
            account.apply_sell(holding, quantity, price, fee)
        order.filled_quantity += quantity
        order.filled_amount += price * quantity
        order.fees += fee
        self.prices.record_trade(order.family, order.ticker, quantity, price)
        if order.remaining == 0:
            self._unrest(order)
        self._emit(order, "filled", quantity, price)

    def _emit(self, order: Order, kind: str, quantity: int, price: Decimal) -> None:
        notice = Notice(order, "filled" if kind == "filled" else "accepted", quantity, price, self.now())
        for listener in self.listeners:
            listener(notice)

    # ------------------------------------------------------------------ queries

    def orders_of(self, number: str, family: Family) -> list[Order]:
        return [o for o in self.orders if o.account == number and o.family == family and not o.rejected]
