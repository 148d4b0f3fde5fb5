"""The schedule form and the order manager's ``ScheduleSpec``, both ways.

Schedules are stored and fired by the order manager (``yquant.controls`` /
``yquant.schedule_store``): the dashboard only turns its form into a spec and back.
"""

from __future__ import annotations

import re
from datetime import date, time
from decimal import ROUND_FLOOR
from typing import Any

from dashboard.views import to_input_decimal, to_input_int
from yquant.messages import Market, OrderType, SignalAction
from yquant.schedules import Schedule, ScheduleKind, ScheduleSpec

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SCHEDULE_ID = re.compile(r"^sch-[0-9a-f]{8,32}$")
ZONES = ("", "Asia/Seoul", "America/New_York")  # "" = the market's own zone
FORM_FIELDS = (
    "name", "account", "market", "ticker", "action", "size_by", "size", "order_type", "limit_price",
    "kind", "run_on", "at_time", "open_offset_minutes", "timezone",
)  # fmt: skip


def blank_form(account: str) -> dict[str, Any]:
    return {
        "schedule_id": "", "name": "", "account": account, "market": "KRX", "ticker": "", "action": "buy",
        "size_by": "quantity", "size": "", "order_type": "market", "limit_price": "", "kind": "recurring",
        "run_on": "", "days": list(DAYS[:5]), "at_time": "09:05", "open_offset_minutes": "", "timezone": "",
        "enabled": True,
    }  # fmt: skip


def spec_from_form(values: dict[str, Any]) -> dict[str, Any]:
    """The spec's fields from the form (the spec validates them and says what is wrong)."""
    size = values.get("size") or None
    spec: dict[str, Any] = {
        "name": values.get("name", ""),
        "account": values.get("account", ""),
        "market": Market(values.get("market") or "KRX"),
        "ticker": values.get("ticker", ""),
        "action": SignalAction(values.get("action") or "buy"),
        "order_type": OrderType(values.get("order_type") or "market"),
        "kind": ScheduleKind(values.get("kind") or "recurring"),
        "weekdays": [DAYS.index(d) for d in values.get("days", []) if d in DAYS],
        "enabled": bool(values.get("enabled")),
    }
    if spec["action"] is not SignalAction.EXIT and size is not None:
        number = to_input_decimal(size)
        if number is None:
            raise ValueError("the size is not a number below 10^15 with at most 8 decimals")
        if values.get("size_by") == "amount":
            spec["amount"] = number
        else:
            spec["quantity"] = int(number.to_integral_value(rounding=ROUND_FLOOR))
    if spec["order_type"] is OrderType.LIMIT and values.get("limit_price"):
        price = to_input_decimal(values["limit_price"])
        if price is None:
            raise ValueError("the limit price is not a number below 10^15 with at most 8 decimals")
        spec["limit_price"] = price
    if spec["kind"] is ScheduleKind.ONCE and values.get("run_on"):
        spec["run_on"] = date.fromisoformat(str(values["run_on"]))
    if values.get("open_offset_minutes"):
        spec["open_offset_minutes"] = to_input_int(values["open_offset_minutes"])
    else:
        hour, _, minute = str(values.get("at_time") or "").partition(":")
        spec["at_time"] = time(int(hour), int(minute or 0))
        if values.get("timezone"):
            spec["timezone"] = values["timezone"]
    return spec


def form_from_schedule(schedule: Schedule) -> dict[str, Any]:
    spec: ScheduleSpec = schedule.spec
    return {
        "schedule_id": schedule.schedule_id,
        "name": spec.name,
        "account": spec.account,
        "market": spec.market.value,
        "ticker": spec.ticker,
        "action": spec.action.value,
        "size_by": "amount" if spec.amount is not None else "quantity",
        "size": str(spec.amount if spec.amount is not None else (spec.quantity or "")),
        "order_type": spec.order_type.value,
        "limit_price": str(spec.limit_price or ""),
        "kind": spec.kind.value,
        "run_on": spec.run_on.isoformat() if spec.run_on else "",
        "days": [DAYS[d] for d in spec.weekdays],
        "at_time": spec.at_time.strftime("%H:%M") if spec.at_time else "",
        "open_offset_minutes": str(spec.open_offset_minutes or ""),
        "timezone": spec.timezone or "",
        "enabled": spec.enabled,
    }
