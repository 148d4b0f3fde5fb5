"""Scheduled orders: what a schedule is and when it runs next. Pure functions, no I/O.

A schedule runs once (on a date) or on chosen weekdays, at a fixed time in the market's
own zone (KST for KRX, New York time for US markets, daylight saving included; or in a
``timezone`` the user chose) or a number of minutes after the market opens. Days the
exchange is closed are skipped.

Schedules saved by the dashboard (``dashboard/schedules.py``: a JSON ``data`` field with
``time_of_day``, ``days``, ``timezone``, ``side``, ``quantity_type``) are read through
``spec_from_dashboard`` so they fire the same way.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_FLOOR, Decimal
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from yquant.markets import SESSIONS, holiday_name, is_trading_day, session_open, symbol_key
from yquant.messages import Market, OrderType, SignalAction

HORIZON_DAYS = 400
WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class ScheduleKind(StrEnum):
    ONCE = "once"
    RECURRING = "recurring"


class ScheduleSpec(BaseModel):
    """What a user sets. ``quantity`` (shares) or ``amount`` (cash in the market's currency)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(default="", max_length=80)
    account: str
    market: Market
    ticker: str = Field(min_length=1, max_length=12)
    action: SignalAction = SignalAction.BUY
    quantity: int | None = Field(default=None, gt=0)
    amount: Decimal | None = Field(default=None, gt=0)
    order_type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = Field(default=None, gt=0)
    kind: ScheduleKind = ScheduleKind.RECURRING
    run_on: date | None = None  # once: the day
    weekdays: list[int] = Field(default_factory=list)  # recurring: 0 = Monday ... 6 = Sunday
    at_time: time | None = None  # wall-clock time in ``timezone`` (default: the market's zone)
    timezone: str | None = None  # e.g. "Asia/Seoul" for a US order at a Korean time
    open_offset_minutes: int | None = Field(default=None, ge=0)  # or this long after the open
    misfire_grace_s: float | None = Field(default=None, ge=0)  # None: the order manager's setting
    strategy: str = Field(default="schedule", max_length=64)  # who the position is attributed to
    enabled: bool = True

    @field_validator("ticker")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.strip().upper()

    @field_validator("weekdays")
    @classmethod
    def _weekdays(cls, value: list[int]) -> list[int]:
        if any(day < 0 or day > 6 for day in value):
            raise ValueError("weekdays are 0 (Monday) to 6 (Sunday)")
        return sorted(set(value))

    @model_validator(mode="after")
    def _check(self) -> ScheduleSpec:
        if self.action not in (SignalAction.BUY, SignalAction.SELL, SignalAction.EXIT):
            raise ValueError("a schedule buys, sells or exits")
        if self.action is not SignalAction.EXIT and (self.quantity is None) == (self.amount is None):
            raise ValueError("set exactly one of quantity (shares) or amount (cash)")
        if (self.at_time is None) == (self.open_offset_minutes is None):
            raise ValueError("set exactly one of at_time or open_offset_minutes")
        if self.at_time is not None and self.at_time.tzinfo is not None:
            raise ValueError("at_time is a wall-clock time, without a time zone (see timezone)")
        if self.timezone is not None:
            try:
                ZoneInfo(self.timezone)
            except (KeyError, ValueError) as exc:
                raise ValueError(f"unknown time zone {self.timezone!r}") from exc
            if self.at_time is None:
                raise ValueError("timezone applies to at_time; open_offset_minutes is in the market's zone")
        session = SESSIONS[self.market]
        length = (datetime.combine(date.min, session.closes) - datetime.combine(date.min, session.opens)).seconds
        if self.open_offset_minutes is not None and self.open_offset_minutes * 60 >= length:
            raise ValueError(f"open_offset_minutes must fall before the close ({length // 60} minutes)")
        if self.kind is ScheduleKind.ONCE and self.run_on is None:
            raise ValueError("a one-time schedule needs run_on")
        if self.kind is ScheduleKind.RECURRING and not self.weekdays:
            raise ValueError("a recurring schedule needs at least one weekday")
        if self.order_type is OrderType.LIMIT and self.limit_price is None:
            raise ValueError("a limit order needs limit_price")
        return self

    def describe(self) -> str:
        when = self.at_time.strftime("%H:%M") if self.at_time else f"open+{self.open_offset_minutes}min"
        days = str(self.run_on) if self.kind is ScheduleKind.ONCE else ",".join(WEEKDAY_NAMES[d] for d in self.weekdays)
        size = (
            f"{self.quantity} shares"
            if self.quantity
            else (f"{self.amount} {self.market.currency}" if self.amount else "all")
        )
        return f"{self.action.value} {size} of {symbol_key(self.market, self.ticker)} {days} {when}"


class Schedule(BaseModel):
    """A stored schedule: the spec plus what the scheduler keeps up to date."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schedule_id: str
    spec: ScheduleSpec
    created_at: datetime
    updated_at: datetime
    next_run_at: datetime | None = None  # None: finished, disabled or never runs
    last_run_at: datetime | None = None
    last_result: str = ""


def wall_zone(spec: ScheduleSpec) -> ZoneInfo:
    """The zone the schedule's days and time are read in."""
    if spec.timezone is not None and spec.at_time is not None:
        return ZoneInfo(spec.timezone)
    return SESSIONS[spec.market].zone


def occurrence_on(spec: ScheduleSpec, day: date, always_open: bool = False) -> datetime | None:
    """When the schedule runs on ``day`` of its zone (UTC), or None if it does not run that day.

    The market must be open for trading on the market's own date of that moment, unless the
    broker keeps its markets open every day (``always_open``: the simulator under ``yquant up``).
    """
    if spec.kind is ScheduleKind.ONCE and day != spec.run_on:
        return None
    if spec.kind is ScheduleKind.RECURRING and day.weekday() not in spec.weekdays:
        return None
    if spec.at_time is not None:
        moment = datetime.combine(day, spec.at_time, wall_zone(spec))
    else:
        moment = session_open(spec.market, day) + timedelta(minutes=spec.open_offset_minutes or 0)
    if not always_open and not is_trading_day(spec.market, moment.astimezone(SESSIONS[spec.market].zone).date()):
        return None
    return moment.astimezone(UTC)


def next_occurrence(spec: ScheduleSpec, after: datetime, always_open: bool = False) -> datetime | None:
    """The first run strictly after ``after``, skipping closed days; None if there is none."""
    first_day = after.astimezone(wall_zone(spec)).date() - timedelta(days=1)
    if spec.kind is ScheduleKind.ONCE:
        assert spec.run_on is not None
        moment = occurrence_on(spec, spec.run_on, always_open)
        return moment if moment is not None and moment > after else None
    for offset in range(HORIZON_DAYS):
        moment = occurrence_on(spec, first_day + timedelta(days=offset), always_open)
        if moment is not None and moment > after:
            return moment
    return None


def upcoming(spec: ScheduleSpec, after: datetime, count: int = 5, always_open: bool = False) -> list[datetime]:
    """The next ``count`` runs (a preview for the dashboard)."""
    runs: list[datetime] = []
    moment: datetime | None = after
    while moment is not None and len(runs) < count:
        moment = next_occurrence(spec, moment, always_open)
        if moment is not None:
            runs.append(moment)
    return runs


def why_never(spec: ScheduleSpec, after: datetime, always_open: bool = False) -> str:
    """A readable reason a schedule has no next run."""
    if always_open:
        return f"{spec.run_on} at that time is already past ({after.isoformat()})"
    if spec.kind is ScheduleKind.ONCE and spec.run_on is not None:
        holiday = holiday_name(spec.market, spec.run_on)
        if holiday:
            return f"{spec.run_on} is a {spec.market.value} holiday ({holiday})"
        if spec.run_on.weekday() >= 5:
            return f"{spec.run_on} is a weekend day"
        return f"{spec.run_on} at that time is already past ({after.isoformat()})"
    if all(day >= 5 for day in spec.weekdays):
        return "the market is closed on every chosen weekday"
    return f"no trading day within {HORIZON_DAYS} days"


def occurrence_key(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


DASHBOARD_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def spec_from_dashboard(data: dict[str, Any]) -> ScheduleSpec:
    """A schedule as the dashboard stores it (``dashboard/schedules.py``), as a spec."""
    market = Market(data["market"])
    quantity_type = str(data.get("quantity_type", "fixed"))
    size = Decimal(str(data["quantity"]))
    hour, minute = (int(part) for part in str(data["time_of_day"]).split(":"))
    return ScheduleSpec(
        name=str(data.get("label") or ""),
        account=str(data["account"]),
        market=market,
        ticker=str(data["ticker"]),
        action=SignalAction(str(data["side"])),
        quantity=int(size.to_integral_value(rounding=ROUND_FLOOR)) if quantity_type == "fixed" else None,
        amount=size if quantity_type != "fixed" else None,
        order_type=OrderType(str(data.get("order_type", "market"))),
        limit_price=Decimal(str(data["limit_price"])) if data.get("limit_price") else None,
        kind=ScheduleKind.RECURRING,
        weekdays=[DASHBOARD_DAYS.index(d) for d in data.get("days", []) if d in DASHBOARD_DAYS],
        at_time=time(hour, minute),
        timezone=str(data.get("timezone") or SESSIONS[market].zone.key),
        enabled=bool(data.get("enabled", True)),
    )
