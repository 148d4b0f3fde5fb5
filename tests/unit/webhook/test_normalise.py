"""Tickers, exchanges, spellings and firing times as TradingView and people write them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from webhook.normalise import (
    AlertError,
    canonical_strategy,
    normalise_action,
    normalise_exchange,
    normalise_quantity_type,
    parse_fired_at,
    split_ticker,
)
from yquant.messages import Market, QuantityType, SignalAction


@pytest.mark.parametrize(
    ("ticker", "exchange", "expected"),
    [
        ("005930", "KRX", ("005930", Market.KRX)),
        ("005930", None, ("005930", Market.KRX)),
        ("KRX:005930", None, ("005930", Market.KRX)),
        ("krx:005930", "KRX", ("005930", Market.KRX)),
        (" A005930 ", None, ("005930", Market.KRX)),
        ("035720", "KOSDAQ", ("035720", Market.KRX)),
        ("0080G0", "KRX", ("0080G0", Market.KRX)),
        ("Q500001", "KRX", ("Q500001", Market.KRX)),
        ("AAPL", "NASDAQ", ("AAPL", Market.NASD)),
        ("NASDAQ:AAPL", None, ("AAPL", Market.NASD)),
        ("aapl", "nasdaq", ("AAPL", Market.NASD)),
        ("AAPL", "NASDAQ_DL", ("AAPL", Market.NASD)),
        ("NASDAQ_DL:AAPL", None, ("AAPL", Market.NASD)),
        ("AAPL_DL", "NASDAQ", ("AAPL", Market.NASD)),
        ("BRK.B", "NYSE", ("BRK.B", Market.NYSE)),
        ("SPY", "AMEX", ("SPY", Market.AMEX)),
        ("XLK", "NYSE ARCA", ("XLK", Market.AMEX)),
        ("NYSE:IBM", "NYSE", ("IBM", Market.NYSE)),
    ],
)
def test_ticker_and_exchange_are_normalised(ticker: str, exchange: str | None, expected: tuple[str, Market]) -> None:
    assert split_ticker(ticker, exchange) == expected


@pytest.mark.parametrize(
    ("ticker", "exchange", "code"),
    [
        ("AAPL", None, "bad_exchange"),
        ("AAPL", "LSE", "bad_exchange"),
        ("BINANCE:BTCUSDT", None, "bad_exchange"),
        ("NASDAQ:AAPL", "NYSE", "bad_exchange"),
        ("12345", "KRX", "bad_ticker"),
        ("0059301", "KRX", "bad_ticker"),
        ("KRX:", None, "bad_ticker"),
        ("005930", "NASDAQ", "bad_ticker"),
        ("TOO-LONG-TICKER", "NYSE", "bad_ticker"),
    ],
)
def test_untradeable_ticker_is_refused_with_a_code(ticker: str, exchange: str | None, code: str) -> None:
    with pytest.raises(AlertError) as refused:
        split_ticker(ticker, exchange)
    assert refused.value.code == code


def test_unknown_exchange_message_names_what_is_supported() -> None:
    with pytest.raises(AlertError, match="KRX, NASDAQ, NYSE or AMEX"):
        normalise_exchange("TSE")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("swing-kr", "swing-kr"), (" Swing_KR ", "swing_kr"), ("a.b", "a.b"), ("", None), ("-x", None), (7, None)],
)
def test_strategy_name_is_lower_case_or_nothing(raw: object, expected: str | None) -> None:
    assert canonical_strategy(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("buy", SignalAction.BUY),
        ("BUY", SignalAction.BUY),
        ("long", SignalAction.BUY),
        ("sell", SignalAction.SELL),
        ("short", SignalAction.SELL),
        ("exit", SignalAction.EXIT),
        ("close", SignalAction.EXIT),
        ("reverse", SignalAction.REVERSE),
        ("cancel", SignalAction.CANCEL),
    ],
)
def test_action_spellings(raw: str, expected: SignalAction) -> None:
    assert normalise_action(raw) is expected


@pytest.mark.parametrize("raw", ["hold", "", 1, None])
def test_unknown_action_is_refused(raw: object) -> None:
    with pytest.raises(ValueError, match="buy, sell, exit"):
        normalise_action(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("fixed", QuantityType.FIXED),
        ("fixed_quantity", QuantityType.FIXED),
        ("dollar_amount", QuantityType.AMOUNT),
        ("Percent_Of_Equity", QuantityType.PERCENT_EQUITY),
        ("percent_of_position", QuantityType.PERCENT_POSITION),
    ],
)
def test_quantity_type_spellings(raw: str, expected: QuantityType) -> None:
    assert normalise_quantity_type(raw) is expected


MOMENT = datetime(2026, 1, 5, 0, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    "raw",
    [
        "2026-01-05T00:15:00Z",
        "2026-01-05T09:15:00+09:00",
        "2026-01-05T00:15:00",
        " 2026-01-05T00:15:00.000Z ",
        int(MOMENT.timestamp()),
        int(MOMENT.timestamp()) * 1000,
        str(int(MOMENT.timestamp())),
        str(int(MOMENT.timestamp() * 1000)),
        float(MOMENT.timestamp()),
        Decimal(int(MOMENT.timestamp())),
    ],
)
def test_fired_at_formats_mean_the_same_moment(raw: object) -> None:
    parsed = parse_fired_at(raw)
    assert parsed == MOMENT
    assert parsed is not None
    assert parsed.tzinfo is not None
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize("raw", [None, "", "  "])
def test_absent_fired_at_is_none(raw: object) -> None:
    assert parse_fired_at(raw) is None


@pytest.mark.parametrize(
    "raw",
    [
        "yesterday",
        "{{timenow}}",
        True,
        -5,
        1e300,
        float("nan"),
        float("inf"),
        10**400,
        "9" * 16,
        "1999-12-31T23:59:59Z",
        "2100-01-01T00:00:00Z",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        ["2026-01-05T00:15:00Z"],
    ],
)
def test_unusable_fired_at_is_a_value_error_never_a_crash(raw: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message varies with the input
        parse_fired_at(raw)


def test_fired_at_keeps_the_offset_it_was_given_as_utc() -> None:
    seoul = timezone(timedelta(hours=9))
    parsed = parse_fired_at(MOMENT.astimezone(seoul).isoformat())
    assert parsed == MOMENT
    assert parsed is not None
    assert parsed.tzinfo is UTC
