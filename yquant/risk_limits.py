"""Risk limits: defaults from settings, overridden at runtime in Valkey (``keys.RISK_LIMITS``).

The hash maps a limit's name to its JSON value; the dashboard edits it through
``yquant.controls``. Every signal reads the limits afresh, so a change applies to
the next signal without a restart. An override that no longer validates is ignored
(and logged) rather than taking the order manager down.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

import orjson
import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from yquant import keys
from yquant.settings import Settings

logger = logging.getLogger(__name__)

CURRENCIES = ("KRW", "USD")


class RiskLimits(BaseModel):
    """The limits in force. Money limits are per currency; a missing currency is unlimited."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    allowed_symbols: list[str] = Field(default_factory=list)
    denied_symbols: list[str] = Field(default_factory=list)
    max_order_value: dict[str, Decimal] = Field(default_factory=dict)
    max_position_value: dict[str, Decimal] = Field(default_factory=dict)
    max_total_exposure: dict[str, Decimal] = Field(default_factory=dict)
    max_orders_per_minute: int = Field(default=30, ge=0)
    max_daily_loss: dict[str, Decimal] = Field(default_factory=dict)
    duplicate_window_s: float = Field(default=3.0, ge=0)
    check_cash: bool = True
    max_signal_age_s: float = Field(default=120.0, gt=0)

    @field_validator("allowed_symbols", "denied_symbols")
    @classmethod
    def _upper_symbols(cls, value: list[str]) -> list[str]:
        return [s.strip().upper() for s in value if s.strip()]

    @field_validator("max_order_value", "max_position_value", "max_total_exposure", "max_daily_loss")
    @classmethod
    def _currencies(cls, value: dict[str, Decimal]) -> dict[str, Decimal]:
        cleaned: dict[str, Decimal] = {}
        for currency, amount in value.items():
            code = currency.strip().upper()
            if code not in CURRENCIES:
                raise ValueError(f"unknown currency {currency!r}: use KRW or USD")
            if amount < 0:
                raise ValueError(f"{code} limit must not be negative")
            cleaned[code] = amount
        return cleaned


LIMIT_NAMES = tuple(RiskLimits.model_fields)


def default_limits(settings: Settings) -> RiskLimits:
    risk = settings.risk
    return RiskLimits(
        allowed_symbols=risk.allowed_symbols,
        denied_symbols=risk.denied_symbols,
        max_order_value=risk.max_order_value,
        max_position_value=risk.max_position_value,
        max_total_exposure=risk.max_total_exposure,
        max_orders_per_minute=risk.max_orders_per_minute,
        max_daily_loss=risk.max_daily_loss,
        duplicate_window_s=risk.duplicate_window_s,
        check_cash=risk.check_cash,
        max_signal_age_s=settings.ordermanager.max_signal_age_s,
    )


def _encode(value: object) -> bytes:
    return orjson.dumps(value, default=str)


async def overridden_limits(client: aioredis.Redis) -> dict[str, Any]:
    """The runtime overrides as stored (name -> decoded JSON)."""
    return decode_overrides(await client.hgetall(keys.RISK_LIMITS))


def decode_overrides(raw: Mapping[Any, Any]) -> dict[str, Any]:
    """The overrides of an HGETALL of ``keys.RISK_LIMITS`` (name -> decoded JSON)."""
    overrides: dict[str, Any] = {}
    for name, value in raw.items():
        try:
            overrides[keys.text(name)] = orjson.loads(value)
        except orjson.JSONDecodeError:
            logger.error("ignoring an undecodable risk limit override", extra={"limit": keys.text(name)})
    return overrides


async def load_limits(client: aioredis.Redis, settings: Settings) -> RiskLimits:
    """Defaults with every valid runtime override applied."""
    return limits_with(settings, await overridden_limits(client))


def limits_with(settings: Settings, overrides: Mapping[str, Any]) -> RiskLimits:
    """The settings' defaults with every valid override applied."""
    limits = default_limits(settings)
    data = limits.model_dump()
    for name, value in overrides.items():
        if name not in LIMIT_NAMES:
            logger.error("ignoring an unknown risk limit override", extra={"limit": name})
            continue
        candidate = {**data, name: value}
        try:
            RiskLimits.model_validate(candidate)
        except ValidationError as exc:
            logger.error("ignoring an invalid risk limit override", extra={"limit": name, "error": str(exc)})
            continue
        data = candidate
    return RiskLimits.model_validate(data)


class LimitsReader:
    """The limits in force from an HGETALL of ``keys.RISK_LIMITS`` read with each signal.

    The stored hash is its own version: the limits are parsed again whenever what is stored
    differs in any byte from what was parsed last, so a change (through ``store_limits``, the
    console, or a hand-made HSET) applies to the very next signal, and an unchanged hash costs
    a dictionary comparison instead of a validation.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._raw: dict[Any, Any] | None = None
        self._limits: RiskLimits | None = None

    def limits(self, raw: Mapping[Any, Any]) -> RiskLimits:
        if self._limits is None or self._raw != raw:
            self._limits = limits_with(self.settings, decode_overrides(raw))
            self._raw = dict(raw)
        return self._limits


async def store_limits(client: aioredis.Redis, settings: Settings, changes: Mapping[str, object]) -> RiskLimits:
    """Validate and persist overrides; raises ValueError naming what is wrong."""
    unknown = sorted(set(changes) - set(LIMIT_NAMES))
    if unknown:
        raise ValueError(f"unknown risk limits: {', '.join(unknown)}")
    current = await load_limits(client, settings)
    try:
        updated = RiskLimits.model_validate({**current.model_dump(), **changes})
    except ValidationError as exc:
        raise ValueError(str(exc)) from exc
    if changes:
        stored = {name: _encode(updated.model_dump(mode="json")[name]) for name in changes}
        await client.hset(keys.RISK_LIMITS, mapping=stored)  # type: ignore[arg-type]
        logger.warning("risk limits changed", extra={"limits": sorted(changes)})
    return updated


async def reset_limits(client: aioredis.Redis, settings: Settings, names: Iterable[str] | None = None) -> RiskLimits:
    """Drop runtime overrides (all, or the named ones): the settings' defaults apply again."""
    if names is None:
        await client.delete(keys.RISK_LIMITS)
    else:
        chosen = list(names)
        if chosen:
            await client.hdel(keys.RISK_LIMITS, *chosen)
    return await load_limits(client, settings)
