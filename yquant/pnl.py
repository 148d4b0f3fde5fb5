"""Profit and loss without I/O: realised P/L from filled orders, equity and its day change per currency.

Amounts are kept per currency (``{"KRW": ..., "USD": ...}``): KRW and USD are never added
together except by ``converted``, which takes the USD/KRW rate it uses, so a page can name it.

Realised P/L follows the holding's average cost, the way a Korean broker books it: a buy moves
the holding's average cost to the weighted mean of what it held and what it bought; a sell
realises ``(sell price - average cost) x quantity`` on the shares it took off and leaves the
average cost of the rest as it was. Fills are replayed per account and ticker in the order they
happened: each order at its last fill (``last_fill_at``; its last update for records stored
before that field, which a later cancel moves). An order whose fills straddle another order's
sell of the same ticker is replayed whole at its last fill. Prices are the fills' average prices and
P/L is before fees; fees are summed on their own. A sell of more shares than the recorded buys
hold (shares bought before the system kept records, or older than the records read) has no known
cost: that part is counted as unmatched, never guessed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from yquant.messages import Position, Side
from yquant.orders import OrderRecord

ZERO = Decimal(0)
CURRENCIES = ("KRW", "USD")

Amounts = dict[str, Decimal]


def add(into: Amounts, currency: str, amount: Decimal) -> None:
    into[currency] = into.get(currency, ZERO) + amount


def total(amounts: Iterable[Mapping[str, Decimal]]) -> Amounts:
    """Per-currency sums of several per-currency amounts."""
    result: Amounts = {}
    for each in amounts:
        for currency, amount in each.items():
            add(result, currency, amount)
    return result


def ordered(amounts: Mapping[str, Decimal]) -> list[tuple[str, Decimal]]:
    """KRW first, then USD, then any other currency by name: the order the pages show them in."""
    rank = {c: i for i, c in enumerate(CURRENCIES)}
    return sorted(amounts.items(), key=lambda item: (rank.get(item[0], len(rank)), item[0]))


def converted(amounts: Mapping[str, Decimal], usdkrw: Decimal) -> Decimal:
    """The amounts in KRW, USD at ``usdkrw``. Any other currency is refused: no rate is known."""
    result = ZERO
    for currency, amount in amounts.items():
        if currency == "KRW":
            result += amount
        elif currency == "USD":
            result += amount * usdkrw
        else:
            raise ValueError(f"no rate to convert {currency} to KRW")
    return result


# --- equity ---------------------------------------------------------------------------------


def equity(cash: Mapping[str, Decimal], positions: Iterable[Position]) -> Amounts:
    """Cash plus the market value of what is held, per currency."""
    result: Amounts = dict(cash)
    for position in positions:
        add(result, position.currency, position.market_value)
    return result


def unrealised(positions: Iterable[Position]) -> Amounts:
    result: Amounts = {}
    for position in positions:
        add(result, position.currency, position.unrealized_pnl)
    return result


def change(now: Mapping[str, Decimal], before: Mapping[str, Decimal] | None) -> Amounts | None:
    """The change of each currency's amount since ``before`` (None when nothing to compare with)."""
    if before is None:
        return None
    return {currency: now.get(currency, ZERO) - before.get(currency, ZERO) for currency in {*now, *before}}


def parse_amounts(raw: object) -> Amounts | None:
    """``{"KRW": "123", "USD": "4.5"}`` as stored in a snapshot; None when it is not that."""
    if not isinstance(raw, dict):
        return None
    result: Amounts = {}
    for currency, value in raw.items():
        try:
            amount = Decimal(str(value))
        except ArithmeticError:
            return None
        if not isinstance(currency, str) or not amount.is_finite():
            return None
        result[currency] = amount
    return result


# --- realised P/L ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Realisation:
    """What one sell realised on the shares it took off a holding of known average cost."""

    client_order_id: str
    account: str
    market: str
    ticker: str
    strategy: str
    quantity: int
    average_cost: Decimal
    price: Decimal
    currency: str
    at: datetime
    fee: Decimal

    @property
    def pnl(self) -> Decimal:
        return (self.price - self.average_cost) * self.quantity

    @property
    def return_percent(self) -> Decimal:
        return (self.price / self.average_cost - 1) * 100 if self.average_cost else ZERO


@dataclass
class Holding:
    quantity: int = 0
    average_cost: Decimal = ZERO


@dataclass(frozen=True)
class Unmatched:
    """Part of a sell with no recorded buy to take its cost from."""

    client_order_id: str
    account: str
    ticker: str
    strategy: str
    quantity: int


@dataclass
class Book:
    realisations: list[Realisation] = field(default_factory=list)
    unmatched: list[Unmatched] = field(default_factory=list)
    holdings: dict[tuple[str, str, str], Holding] = field(default_factory=dict)

    def realised(self, since: datetime | None = None) -> Amounts:
        """Realised P/L per currency, of the sells at or after ``since`` (all when None)."""
        result: Amounts = {}
        for r in self.realisations:
            if since is None or r.at >= since:
                add(result, r.currency, r.pnl)
        return result

    def realised_of(self, account: str, since: datetime | None = None) -> Amounts:
        result: Amounts = {}
        for r in self.realisations:
            if r.account == account and (since is None or r.at >= since):
                add(result, r.currency, r.pnl)
        return result


def fill_order(records: Iterable[OrderRecord]) -> list[OrderRecord]:
    """The orders that filled (in part or in full), in the order of their last fill."""
    filled = [r for r in records if r.filled_quantity > 0 and r.average_price is not None]
    return sorted(filled, key=lambda r: (r.last_fill_at or r.updated_at, r.created_at, r.client_order_id))


def realise(records: Iterable[OrderRecord]) -> Book:
    """Replay the filled orders against average-cost holdings (see the module's description)."""
    book = Book()
    for record in fill_order(records):
        price = record.average_price
        assert price is not None  # fill_order keeps only priced fills
        holding = book.holdings.setdefault((record.account, record.market.value, record.ticker), Holding())
        quantity = record.filled_quantity
        if record.side is Side.BUY:
            cost = holding.average_cost * holding.quantity + price * quantity
            holding.quantity += quantity
            holding.average_cost = cost / holding.quantity
            continue
        matched = min(quantity, holding.quantity)
        if matched:
            book.realisations.append(
                Realisation(
                    client_order_id=record.client_order_id,
                    account=record.account,
                    market=record.market.value,
                    ticker=record.ticker,
                    strategy=record.strategy,
                    quantity=matched,
                    average_cost=holding.average_cost,
                    price=price,
                    currency=record.market.currency,
                    at=record.updated_at,
                    fee=record.fee * matched / quantity,
                )
            )
            holding.quantity -= matched
            if holding.quantity == 0:
                holding.average_cost = ZERO
        if quantity > matched:
            book.unmatched.append(
                Unmatched(record.client_order_id, record.account, record.ticker, record.strategy, quantity - matched)
            )
    return book


@dataclass
class StrategyLine:
    """One strategy's orders, fills and realised P/L (per currency, before fees) and fees."""

    strategy: str
    orders: int = 0
    filled: int = 0  # orders with at least one fill
    realised: Amounts = field(default_factory=dict)
    fees: Amounts = field(default_factory=dict)
    sells: int = 0  # sells with a known cost
    winning: int = 0  # of those, sells above their cost
    unmatched_quantity: int = 0


def by_strategy(records: Iterable[OrderRecord], book: Book) -> list[StrategyLine]:
    """Each strategy's line, by name; a sell's P/L counts for the strategy that sent the sell."""
    lines: dict[str, StrategyLine] = {}
    for record in records:
        line = lines.setdefault(record.strategy, StrategyLine(record.strategy))
        line.orders += 1
        if record.filled_quantity > 0:
            line.filled += 1
            add(line.fees, record.market.currency, record.fee)
    for r in book.realisations:
        line = lines.setdefault(r.strategy, StrategyLine(r.strategy))
        add(line.realised, r.currency, r.pnl)
        line.sells += 1
        line.winning += 1 if r.pnl > 0 else 0
    for u in book.unmatched:
        lines.setdefault(u.strategy, StrategyLine(u.strategy)).unmatched_quantity += u.quantity
    return [lines[name] for name in sorted(lines)]
