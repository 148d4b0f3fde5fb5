"""KIS's KRX calendar against ours: the order manager decides market hours with the ``holidays``
package (yquant/markets.py); once a day the gateway asks KIS (chk-holiday, real domain only)
which of the next days KRX opens, and says where the two disagree. Our side of the comparison
comes from a short-lived child process (yquant/market_days.py): the gateway itself never loads
``holidays`` (about 13 MiB, `python -m benchmarks.import_cost`, for an answer it needs once a day).

A disagreement is logged with each date and both answers, and exported as
``yquant_gateway_calendar_disagreements{market}`` (alert ``YQuantCalendarDisagrees``): on such a
day signals are either refused as "market closed" while KRX trades, or sent to a closed market
and refused by KIS. Nothing is changed automatically. Virtual accounts cannot ask (KIS serves
the call on the real domain only); the US calendar has no KIS counterpart to check against
(countries-holiday answers settlement dates, not sessions).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime

from brokergateway import metrics
from brokergateway.kis import inquiry
from brokergateway.worker import AccountWorker
from yquant import market_days
from yquant.errors import BrokerError
from yquant.markets import local_date
from yquant.messages import Market

logger = logging.getLogger(__name__)

CHECK_INTERVAL_S = 24 * 3600.0
RETRY_AFTER_S = 3600.0  # after a failed check
DAYS_AHEAD = 30


@dataclass(frozen=True)
class Disagreement:
    day: date
    kis_open: bool
    ours_open: bool
    holiday: str | None  # the holidays package's name for the day, when it has one

    def describe(self) -> str:
        kis = "open" if self.kis_open else "closed"
        ours = "open" if self.ours_open else f"closed ({self.holiday or 'weekend'})"
        return f"{self.day.isoformat()}: KIS says {kis}, yQuant's calendar says {ours}"


def disagreements(
    kis_days: dict[date, bool], ours: dict[date, tuple[bool, str | None]] | None = None
) -> list[Disagreement]:
    """The days on which KIS's answer and ``yquant.markets`` differ; ``ours`` is our calendar's
    answer for those days (open, holiday name), computed here when not given."""
    if ours is None:
        ours = {day: market_days.answer(Market.KRX, day, 1)[day] for day in kis_days}
    found = []
    for day, kis_open in sorted(kis_days.items()):
        ours_open, holiday = ours[day]
        if ours_open != kis_open:
            found.append(Disagreement(day, kis_open, ours_open, holiday))
    return found


async def our_calendar(kis_days: dict[date, bool]) -> dict[date, tuple[bool, str | None]]:
    """Our calendar's answer for the days KIS answered, from the child process."""
    if not kis_days:
        return {}
    first, last = min(kis_days), max(kis_days)
    return await market_days.ask(Market.KRX, first, (last - first).days + 1)


class CalendarCheck:
    """Runs the check on the first real-domain account that trades KRX, at most once a day."""

    def __init__(self, workers: dict[str, AccountWorker]) -> None:
        self.worker = next(
            (w for w in workers.values() if w.kis.env == "real" and Market.KRX in w.markets),
            None,
        )
        self.next_check = 0.0  # monotonic; 0 = at the first chance
        self.last: list[Disagreement] | None = None

    def claim(self, now: float) -> bool:
        """True when a check is due; the next one is then not due before this one ends (it sets
        the next time itself) or a minute has passed."""
        if self.worker is None or now < self.next_check:
            return False
        self.next_check = now + 60.0
        return True

    async def check(self, today: date | None = None) -> list[Disagreement] | None:
        """The disagreements over the next DAYS_AHEAD days (None when KIS could not be asked or
        our calendar's child process failed; the next try is then an hour later)."""
        if self.worker is None:
            return None
        start = today or local_date(Market.KRX, datetime.now(UTC))
        try:
            kis_days = await inquiry.krx_calendar(self.worker.kis, start, DAYS_AHEAD)
        except (BrokerError, OSError) as exc:
            self.next_check = time.monotonic() + RETRY_AFTER_S
            logger.warning("KIS's KRX calendar unavailable", extra={"error": str(exc)})
            return None
        try:
            ours = await our_calendar(kis_days)
        except (OSError, ValueError) as exc:
            self.next_check = time.monotonic() + RETRY_AFTER_S
            logger.warning("KRX calendars not compared", extra={"error": str(exc)})
            return None
        self.next_check = time.monotonic() + CHECK_INTERVAL_S
        found = disagreements(kis_days, ours)
        self.last = found
        metrics.CALENDAR_DISAGREEMENTS.labels("KRX").set(len(found))
        metrics.CALENDAR_CHECKED.labels("KRX").set(time.time())
        if found:
            logger.warning(
                "KIS's KRX calendar disagrees with yQuant's on %d day(s): %s",
                len(found),
                "; ".join(d.describe() for d in found),
                extra={"days": [d.day.isoformat() for d in found]},
            )
        else:
            logger.info("KIS's KRX calendar agrees with yQuant's", extra={"days_checked": len(kis_days)})
        return found
