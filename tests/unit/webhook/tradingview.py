"""TradingView as the tests see it: the templates from docs/webhook.md, filled as TradingView fills them.

TradingView replaces each ``{{placeholder}}`` with its text and sends the result: as
``application/json`` when it parses as JSON, else as ``text/plain``.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

DOC = Path(__file__).resolve().parents[3] / "docs" / "webhook.md"
_TEMPLATE = re.compile(r"<!-- template: (?P<name>[a-z-]+) -->\s*```json\n(?P<body>.*?)\n```", re.DOTALL)
_PLACEHOLDER = re.compile(r"\{\{([^{}]+)\}\}")


def templates() -> dict[str, str]:
    """Template name -> message text, exactly as written in docs/webhook.md."""
    return {match["name"]: match["body"] for match in _TEMPLATE.finditer(DOC.read_text())}


def timenow(moment: datetime | None = None) -> str:
    """``{{timenow}}``: UTC, second precision, with a Z."""
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def strategy_fill(**overrides: str) -> dict[str, str]:
    """Placeholder values of a strategy's fill on a KRX stock."""
    values = {
        "ticker": "005930",
        "exchange": "KRX",
        "strategy.order.action": "buy",
        "strategy.order.contracts": "3",
        "strategy.order.price": "71200",
        "strategy.order.id": "Long entry",
        "strategy.order.comment": "breakout",
        "strategy.market_position": "long",
        "strategy.market_position_size": "3",
        "strategy.prev_market_position": "flat",
        "strategy.prev_market_position_size": "0",
        "strategy.position_size": "3",
        "interval": "15",
        "time": "2026-01-05T00:15:00Z",
        "timenow": timenow(),
    }
    values.update(overrides)
    return values


def indicator_fill(**overrides: str) -> dict[str, str]:
    """Placeholder values of an indicator alert on a delayed US feed."""
    values = {
        "ticker": "AAPL",
        "exchange": "NASDAQ_DL",
        "close": "187.44",
        "plot_0": "28.61",
        "interval": "60",
        "time": "2026-01-05T15:00:00Z",
        "timenow": timenow(),
    }
    values.update(overrides)
    return values


def fill(template: str, values: dict[str, str], secret: str = "YOUR-SECRET") -> str:  # noqa: S107
    """The message TradingView sends; a placeholder without a value fails the test."""
    text = _PLACEHOLDER.sub(lambda match: values[match.group(1).strip()], template)
    return text.replace("YOUR-SECRET", secret)


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def content_type(template: str) -> str:
    """TradingView's choice, made on the message as typed: JSON only if the template itself is JSON.

    Templates with bare numeric placeholders (``"contracts": {{strategy.order.contracts}}``)
    are not, so their filled, valid JSON arrives as ``text/plain``.
    """
    try:
        json.loads(template, parse_constant=_refuse_constant)
    except ValueError:
        return "text/plain; charset=utf-8"
    return "application/json; charset=utf-8"
