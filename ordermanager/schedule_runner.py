"""The scheduler loop: fires due schedules by appending a SignalReceived (source ``schedule``).

* Each occurrence fires once, whatever the number of order managers: the first to
  ``SET NX`` the occurrence's marker (``keys.schedule_fired``) appends the signal.
* Misfire policy: an occurrence found later than its grace period (after downtime) is
  not fired; a denied decision (``SCHEDULE_MISSED``) says so in the decision log.
* The next run skips days the exchange is closed and is stored where the dashboard
  reads it.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import redis.asyncio as aioredis

from ordermanager import decision_log, denials
from ordermanager.clock import Clock
from ordermanager.denials import Denial
from ordermanager.metrics import SCHEDULES_FIRED
from yquant import keys, runtime, schedule_store
from yquant.bus import publish
from yquant.markets import SESSIONS
from yquant.messages import QuantityType, Signal, SignalReceived, SignalSource
from yquant.schedules import Schedule, next_occurrence, occurrence_key

logger = logging.getLogger(__name__)

MARKER_TTL_S = 30 * 86_400
BATCH = 100


def schedule_signal(schedule: Schedule, occurrence: datetime, now: datetime) -> Signal:
    spec = schedule.spec
    quantity: Decimal | None = None
    quantity_type = QuantityType.FIXED
    if spec.quantity is not None:
        quantity = Decimal(spec.quantity)
    elif spec.amount is not None:
        quantity, quantity_type = spec.amount, QuantityType.AMOUNT
    return Signal(
        signal_id=f"sched-{schedule.schedule_id}-{occurrence_key(occurrence)}",
        strategy=spec.strategy,
        ticker=spec.ticker,
        market=spec.market,
        action=spec.action,
        quantity=quantity,
        quantity_type=quantity_type,
        order_type=spec.order_type,
        price=spec.limit_price,
        fired_at=now,
        received_at=now,
        source=SignalSource.SCHEDULE,
        account=spec.account,
        comment=f"schedule {spec.name or schedule.schedule_id}: {spec.describe()}",
    )


def local_text(schedule: Schedule, moment: datetime) -> str:
    zone = SESSIONS[schedule.spec.market].zone
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


class Scheduler:
    def __init__(
        self, client: aioredis.Redis, *, clock: Clock, misfire_grace_s: float, maxlen: int, always_open: bool = False
    ) -> None:
        self.client = client
        self.clock = clock
        self.misfire_grace_s = misfire_grace_s
        self.maxlen = maxlen
        self.always_open = always_open  # every day is a trading day (the simulator)

    async def run(self, stop: asyncio.Event, interval_s: float) -> None:
        await runtime.every(stop, interval_s, self.tick, logger, "scheduler round failed; retrying next round")

    async def tick(self) -> list[str]:
        """Handle every due occurrence; returns the signal ids this instance appended."""
        now = self.clock.now()
        due: Any = await self.client.zrangebyscore(
            keys.SCHEDULES, "-inf", now.timestamp(), start=0, num=BATCH, withscores=True
        )
        fired: list[str] = []
        for member, score in due:
            signal_id = await self._handle_due(keys.text(member), datetime.fromtimestamp(float(score), UTC), now)
            if signal_id:
                fired.append(signal_id)
        return fired

    async def _handle_due(self, schedule_id: str, occurrence: datetime, now: datetime) -> str | None:
        schedule = await schedule_store.load(self.client, schedule_id)
        if schedule is None or not schedule.spec.enabled:
            await self.client.zrem(keys.SCHEDULES, schedule_id)
            return None
        grace = schedule.spec.misfire_grace_s
        grace_s = self.misfire_grace_s if grace is None else grace
        late = now - occurrence
        marker = keys.schedule_fired(schedule_id, occurrence_key(occurrence))
        if late > timedelta(seconds=grace_s):
            claimed = await self.client.set(marker, "missed", nx=True, ex=MARKER_TTL_S)
            result = None
            if claimed:
                result = await self._record_missed(schedule, occurrence, now, late, grace_s)
            upcoming = next_occurrence(
                schedule.spec, max(occurrence, now - timedelta(seconds=grace_s)), self.always_open
            )
            await schedule_store.record_run(self.client, schedule_id, next_run_at=upcoming, ran_at=None, result=result)
            return None
        claimed = await self.client.set(marker, "fired", nx=True, ex=MARKER_TTL_S)
        signal_id: str | None = None
        result = None
        if claimed:
            signal = schedule_signal(schedule, occurrence, now)
            await publish(self.client, keys.SIGNALS_INTERNAL, SignalReceived(signal=signal), self.maxlen)
            signal_id = signal.signal_id
            result = f"fired {local_text(schedule, occurrence)} as signal {signal_id}"
            SCHEDULES_FIRED.labels("fired").inc()
            logger.info("schedule fired", extra={"schedule_id": schedule_id, "signal_id": signal_id})
        upcoming = next_occurrence(schedule.spec, occurrence, self.always_open)
        await schedule_store.record_run(
            self.client, schedule_id, next_run_at=upcoming, ran_at=now if claimed else None, result=result
        )
        return signal_id

    async def _record_missed(
        self, schedule: Schedule, occurrence: datetime, now: datetime, late: timedelta, grace_s: float
    ) -> str:
        minutes = late.total_seconds() / 60
        reason = (
            f"missed the {local_text(schedule, occurrence)} run by {minutes:.0f} min "
            f"(grace {grace_s / 60:.0f} min): not fired late"
        )
        signal = schedule_signal(schedule, occurrence, now)
        await decision_log.deny(
            self.client,
            signal,
            signal.signal_id,
            schedule.spec.account,
            Denial(denials.SCHEDULE_MISSED, reason),
            self.maxlen,
        )
        SCHEDULES_FIRED.labels("missed").inc()
        logger.warning("schedule occurrence missed", extra={"schedule_id": schedule.schedule_id, "reason": reason})
        return reason
