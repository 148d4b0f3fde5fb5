"""Accounts: cash per currency (KRW, USD), holdings, reservations held by open orders, day roll-over.

Pure bookkeeping, no I/O. Cash moves when a fill happens (the simulator settles at once); the
"deposit" figure stays at the start-of-day value like KIS's ``dnca_tot_amt`` (D+2 settlement).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Literal

from kissim.market import CENT, Family

Currency = Literal["KRW", "USD"]
ZERO = Decimal(0)


def currency_of(family: Family) -> Currency:
    return "KRW" if family == "KRX" else "USD"


def round_money(currency: Currency, amount: Decimal) -> Decimal:
    if currency == "KRW":
        return amount.quantize(Decimal(1), rounding=ROUND_FLOOR)
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass
class CashLedger:
    """One currency: cash after today's trades, start-of-day deposit, reservations, today's flows."""

    currency: Currency
    cash: Decimal
    deposit: Decimal
    reserved: Decimal = ZERO
    buy_today: Decimal = ZERO
    sell_today: Decimal = ZERO
    fees_today: Decimal = ZERO
    buy_yesterday: Decimal = ZERO
    sell_yesterday: Decimal = ZERO
    fees_yesterday: Decimal = ZERO
    realized_today: Decimal = ZERO

    @property
    def available(self) -> Decimal:
        return self.cash - self.reserved

    def roll(self) -> None:
        self.deposit = self.cash
        self.buy_yesterday, self.sell_yesterday, self.fees_yesterday = self.buy_today, self.sell_today, self.fees_today
        self.buy_today = self.sell_today = self.fees_today = self.realized_today = ZERO


@dataclass
class Holding:
    """A position in one instrument; ``cost`` is the purchase amount of the shares still held."""

    family: Family
    ticker: str
    name: str
    exchange: str
    quantity: int = 0
    cost: Decimal = ZERO
    reserved_for_sale: int = 0
    bought_today: int = 0
    sold_today: int = 0
    bought_yesterday: int = 0
    sold_yesterday: int = 0

    @property
    def sellable(self) -> int:
        return self.quantity - self.reserved_for_sale

    @property
    def average_price(self) -> Decimal:
        return self.cost / self.quantity if self.quantity else ZERO

    def roll(self) -> None:
        self.bought_yesterday, self.sold_yesterday = self.bought_today, self.sold_today
        self.bought_today = self.sold_today = 0


@dataclass
class Account:
    """CANO (8 digits) + ACNT_PRDT_CD (2 digits), opened and funded on first use."""

    cano: str
    product_code: str
    krw: CashLedger
    usd: CashLedger
    day: date
    holdings: dict[tuple[Family, str], Holding] = field(default_factory=dict)

    @property
    def number(self) -> str:
        return self.cano + self.product_code

    def ledger(self, currency: Currency) -> CashLedger:
        return self.krw if currency == "KRW" else self.usd

    def holding(self, family: Family, ticker: str, name: str, exchange: str) -> Holding:
        key = (family, ticker)
        found = self.holdings.get(key)
        if found is None:
            found = self.holdings[key] = Holding(family, ticker, name, exchange)
        return found

    def roll_to(self, today: date) -> bool:
        """Start a new trading day; True when the day changed."""
        if today == self.day:
            return False
        self.day = today
        self.krw.roll()
        self.usd.roll()
        for key, holding in list(self.holdings.items()):
            holding.roll()
            if holding.quantity == 0 and holding.bought_yesterday == 0 and holding.sold_yesterday == 0:
                del self.holdings[key]
        return True

    def apply_buy(self, holding: Holding, quantity: int, price: Decimal, fee: Decimal) -> None:
        ledger = self.ledger(currency_of(holding.family))
        amount = price * quantity
        ledger.cash -= amount + fee
        ledger.buy_today += amount
        ledger.fees_today += fee
        holding.quantity += quantity
        holding.cost += amount
        holding.bought_today += quantity

    def apply_sell(self, holding: Holding, quantity: int, price: Decimal, fee: Decimal) -> None:
        ledger = self.ledger(currency_of(holding.family))
        amount = price * quantity
        released_cost = holding.average_price * quantity
        ledger.cash += amount - fee
        ledger.sell_today += amount
        ledger.fees_today += fee
        ledger.realized_today += amount - released_cost - fee
        holding.cost -= released_cost
        holding.quantity -= quantity
        holding.sold_today += quantity
        if holding.quantity == 0:
            holding.cost = ZERO


def open_account(cano: str, product_code: str, krw: Decimal, usd: Decimal, today: date) -> Account:
    return Account(cano, product_code, CashLedger("KRW", krw, krw), CashLedger("USD", usd, usd), today)
