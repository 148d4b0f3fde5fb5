"""Exit rules per position: stop-loss, take-profit and trailing stop, evaluated on quotes.

A rule is created when a buy fills (from the strategy's percentages and the alert's
``stopLoss`` / ``takeProfit`` prices) or set from the dashboard, and stored per position
in ``keys.exit_rules(account)``. Each rule has an id; the marker
``keys.exit_triggered(account, rule_id)`` makes it trigger once, whatever the number of
order managers. Positions are long only (KIS cash accounts).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import redis.asyncio as aioredis
from pydantic import model_validator

from yquant import keys
from yquant.markets import symbol_key
from yquant.messages import Frozen, Market

HUNDRED = Decimal(100)


class ExitRule(Frozen):
    rule_id: str
    account: str
    market: Market
    ticker: str
    strategy: str  # who owns the position: a strategy, manual or schedule
    entry_price: Decimal
    stop_loss_price: Decimal | None = None
    take_profit_price: Decimal | None = None
    trailing_percent: Decimal | None = None
    trailing_amount: Decimal | None = None
    high_water: Decimal | None = None  # highest price seen since the rule was set (trailing stop)
    created_at: datetime

    @model_validator(mode="after")
    def _check(self) -> ExitRule:
        for name in ("entry_price", "stop_loss_price", "take_profit_price", "trailing_percent", "trailing_amount"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive")
        if self.trailing_percent is not None and self.trailing_percent >= HUNDRED:
            raise ValueError("trailing_percent must be below 100")
        return self

    @property
    def position_key(self) -> str:
        return symbol_key(self.market, self.ticker)

    @property
    def trailing_stop_price(self) -> Decimal | None:
        peak = self.high_water or self.entry_price
        if self.trailing_percent is not None:
            return peak * (HUNDRED - self.trailing_percent) / HUNDRED
        if self.trailing_amount is not None:
            return peak - self.trailing_amount
        return None


@dataclass(frozen=True)
class ExitHit:
    kind: str  # stop_loss | take_profit | trailing_stop
    reason: str


def build_rule(
    *,
    account: str,
    market: Market,
    ticker: str,
    strategy: str,
    entry_price: Decimal,
    now: datetime,
    stop_loss_price: Decimal | None = None,
    stop_loss_percent: Decimal | None = None,
    take_profit_price: Decimal | None = None,
    take_profit_percent: Decimal | None = None,
    trailing_percent: Decimal | None = None,
    trailing_amount: Decimal | None = None,
) -> ExitRule | None:
    """A rule from prices or percentages of the entry price (a price wins); None if nothing is set."""
    if stop_loss_price is None and stop_loss_percent is not None:
        stop_loss_price = entry_price * (HUNDRED - stop_loss_percent) / HUNDRED
    if take_profit_price is None and take_profit_percent is not None:
        take_profit_price = entry_price * (HUNDRED + take_profit_percent) / HUNDRED
    if stop_loss_price is None and take_profit_price is None and trailing_percent is None and trailing_amount is None:
        return None
    return ExitRule(
        rule_id=uuid.uuid4().hex[:16],
        account=account,
        market=market,
        ticker=ticker,
        strategy=strategy,
        entry_price=entry_price,
        stop_loss_price=stop_loss_price,
        take_profit_price=take_profit_price,
        trailing_percent=trailing_percent,
        trailing_amount=trailing_amount,
        high_water=entry_price if (trailing_percent or trailing_amount) else None,
        created_at=now,
    )


def plain(value: Decimal) -> str:
    """A price as people write it: 68000, 190.5 (never 6.8E+4)."""
    return f"{value.normalize():f}"


def evaluate(rule: ExitRule, price: Decimal) -> ExitHit | None:
    """Whether the price triggers the rule (stop-loss first, then take-profit, then trailing)."""
    if rule.stop_loss_price is not None and price <= rule.stop_loss_price:
        return ExitHit("stop_loss", f"stop-loss: price {plain(price)} at or below {plain(rule.stop_loss_price)}")
    if rule.take_profit_price is not None and price >= rule.take_profit_price:
        return ExitHit("take_profit", f"take-profit: price {plain(price)} at or above {plain(rule.take_profit_price)}")
    trailing = rule.trailing_stop_price
    if trailing is not None and price <= trailing:
        peak = rule.high_water or rule.entry_price
        return ExitHit(
            "trailing_stop", f"trailing stop: price {plain(price)} fell to {plain(trailing)} from {plain(peak)}"
        )
    return None


def raise_high_water(rule: ExitRule, price: Decimal) -> ExitRule | None:
    """The rule with a new peak, when a trailing rule sees a higher price (else None)."""
    if rule.trailing_percent is None and rule.trailing_amount is None:
        return None
    if rule.high_water is not None and price <= rule.high_water:
        return None
    return rule.model_copy(update={"high_water": price})


# --- storage -----------------------------------------------------------------------------
async def get_rules(client: aioredis.Redis, account: str) -> list[ExitRule]:
    return parse_rules(await client.hgetall(keys.exit_rules(account)))


def parse_rules(raw: Mapping[Any, Any]) -> list[ExitRule]:
    """An account's rules from an HGETALL of ``keys.exit_rules``, by position."""
    return sorted((ExitRule.model_validate_json(v) for v in raw.values()), key=lambda r: r.position_key)


async def get_rule(client: aioredis.Redis, account: str, market: Market, ticker: str) -> ExitRule | None:
    raw = await client.hget(keys.exit_rules(account), symbol_key(market, ticker))
    return ExitRule.model_validate_json(raw) if raw else None


async def put_rule(client: aioredis.Redis, rule: ExitRule) -> None:
    await client.hset(keys.exit_rules(rule.account), rule.position_key, rule.model_dump_json())


async def put_rule_if_absent(client: aioredis.Redis, rule: ExitRule) -> bool:
    return bool(await client.hsetnx(keys.exit_rules(rule.account), rule.position_key, rule.model_dump_json()))


async def update_rule(client: aioredis.Redis, rule: ExitRule) -> bool:
    """Store a changed rule only if the same rule (by id) is still in place."""
    current = await get_rule(client, rule.account, rule.market, rule.ticker)
    if current is None or current.rule_id != rule.rule_id:
        return False
    await put_rule(client, rule)
    return True


async def delete_rule(
    client: aioredis.Redis, account: str, market: Market, ticker: str, rule_id: str | None = None
) -> bool:
    """Remove the position's rule (only the given one, when ``rule_id`` is set)."""
    if rule_id is not None:
        current = await get_rule(client, account, market, ticker)
        if current is None or current.rule_id != rule_id:
            return False
    return bool(await client.hdel(keys.exit_rules(account), symbol_key(market, ticker)))
