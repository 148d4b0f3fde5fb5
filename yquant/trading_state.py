"""Trading state, global and per account: ACTIVE, REDUCING or HALTED.

* ACTIVE: every order the risk checks allow.
* REDUCING: only orders that reduce a position (sells up to the holding, cancels).
* HALTED: nothing but cancels and the flatten / liquidation command.

Stored in the hash ``keys.TRADING_STATE`` (field ``*`` for the global state, an account
alias for an account); a missing field is ACTIVE. The state that applies to an account is
the stricter of the global one and its own.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import redis.asyncio as aioredis

from yquant import keys

logger = logging.getLogger(__name__)

GLOBAL = "*"


class TradingState(StrEnum):
    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}


def parse_state(value: str) -> TradingState:
    try:
        return TradingState(value.strip().upper())
    except ValueError as exc:
        raise ValueError(f"unknown trading state {value!r}: use ACTIVE, REDUCING or HALTED") from exc


def stricter(first: TradingState, second: TradingState) -> TradingState:
    return first if first.severity >= second.severity else second


async def get_trading_states(client: aioredis.Redis) -> dict[str, TradingState]:
    """Every state that is set: ``{"*": ..., "<alias>": ...}``; the global one is always present."""
    raw = await client.hgetall(keys.TRADING_STATE)
    states: dict[str, TradingState] = {GLOBAL: TradingState.ACTIVE}
    for field, value in raw.items():
        try:
            states[keys.text(field)] = parse_state(keys.text(value))
        except ValueError:
            logger.error("ignoring an unknown trading state", extra={"scope": keys.text(field)})
    return states


async def get_trading_state(client: aioredis.Redis, account: str | None = None) -> TradingState:
    """The state set for ``account`` (or the global one when None), ACTIVE if unset."""
    value = await client.hget(keys.TRADING_STATE, account or GLOBAL)
    return parse_state(keys.text(value)) if value is not None else TradingState.ACTIVE


def _stored(raw: object, scope: str) -> TradingState:
    """A stored state; one that cannot be read fails closed (HALTED), never open."""
    if raw is None:
        return TradingState.ACTIVE
    try:
        return parse_state(keys.text(raw))
    except ValueError:
        logger.error("unreadable trading state treated as HALTED", extra={"scope": scope})
        return TradingState.HALTED


def effective_of(global_raw: object, account_raw: object, account: str) -> tuple[TradingState, str]:
    """The state that applies to ``account`` from the stored values of ``*`` and of the account."""
    global_state, account_state = _stored(global_raw, GLOBAL), _stored(account_raw, account)
    state = stricter(global_state, account_state)
    return state, ("global" if state is global_state and state is not TradingState.ACTIVE else "account")


def effective_in(stored: Mapping[Any, Any], account: str) -> tuple[TradingState, str]:
    """``effective_of`` on the whole hash as HGETALL returns it (bytes or str fields)."""
    return effective_of(_field(stored, GLOBAL), _field(stored, account), account)


def _field(stored: Mapping[Any, Any], name: str) -> object:
    value = stored.get(name.encode())
    return stored.get(name) if value is None else value


async def effective_trading_state(client: aioredis.Redis, account: str) -> tuple[TradingState, str]:
    """The state that applies to ``account`` and where it comes from ("global" or "account")."""
    values = await client.hmget(keys.TRADING_STATE, [GLOBAL, account])
    return effective_of(values[0], values[1], account)


async def set_trading_state(client: aioredis.Redis, state: TradingState | str, account: str | None = None) -> None:
    """Set the global state (``account`` None) or one account's state; persisted in Valkey."""
    value = state if isinstance(state, TradingState) else parse_state(state)
    await client.hset(keys.TRADING_STATE, account or GLOBAL, value.value)
    logger.warning("trading state set", extra={"scope": account or "global", "state": value.value})
