"""Real-time price and order-book records as KIS pushes them over ``/tryitout`` (docs/kis-protocol.md §8).

Every record is a list of strings in the order of ``COLUMNS[tr_id]``, KIS's column lists (OT
``examples_llm/domestic_stock/ccnl_krx``, ``asking_price_krx``, ``ccnl_notice``,
``examples_llm/overseas_stock/delayed_ccnl``, ``ccnl_notice``; HDFSCNT0/HDFSASP0 as KIS's
specification lists them, with the leading RSYM that the samples' pandas parsing turns into the
index). Values come from the same ``Quote`` and ``history.order_book`` that the REST quotations
answer, so a frame and a REST call made at the same moment agree. Pure functions: ``kissim.ws``
decides when a record is due and sends it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from kissim.fmt import fixed, names, rate, won, ymd
from kissim.history import Book
from kissim.hours import new_york_time
from kissim.market import QUOTE_TO_ORDER_EXCHANGE, Family, Quote, family_of
from kissim.quotes import change

DOMESTIC_TRADES = "H0STCNT0"  # 국내주식 실시간체결가 (KRX), same tr_id on both domains
DOMESTIC_BOOK = "H0STASP0"  # 국내주식 실시간호가 (KRX)
US_TRADES = "HDFSCNT0"  # 해외주식 실시간지연체결가 (US: real time, 0 min delay)
US_BOOK = "HDFSASP0"  # 해외주식 실시간호가 (US: ten levels)
PRICE_FEEDS = frozenset({DOMESTIC_TRADES, DOMESTIC_BOOK, US_TRADES, US_BOOK})
US_BOOK_DEPTH = 10

_US_LEVEL = ("PBID", "PASK", "VBID", "VASK", "DBID", "DASK")

COLUMNS: dict[str, tuple[str, ...]] = {
    DOMESTIC_TRADES: names(
        "MKSC_SHRN_ISCD STCK_CNTG_HOUR STCK_PRPR PRDY_VRSS_SIGN PRDY_VRSS PRDY_CTRT WGHN_AVRG_STCK_PRC"
        " STCK_OPRC STCK_HGPR STCK_LWPR ASKP1 BIDP1 CNTG_VOL ACML_VOL ACML_TR_PBMN SELN_CNTG_CSNU"
        " SHNU_CNTG_CSNU NTBY_CNTG_CSNU CTTR SELN_CNTG_SMTN SHNU_CNTG_SMTN CCLD_DVSN SHNU_RATE"
        " PRDY_VOL_VRSS_ACML_VOL_RATE OPRC_HOUR OPRC_VRSS_PRPR_SIGN OPRC_VRSS_PRPR HGPR_HOUR"
        " HGPR_VRSS_PRPR_SIGN HGPR_VRSS_PRPR LWPR_HOUR LWPR_VRSS_PRPR_SIGN LWPR_VRSS_PRPR BSOP_DATE"
        " NEW_MKOP_CLS_CODE TRHT_YN ASKP_RSQN1 BIDP_RSQN1 TOTAL_ASKP_RSQN TOTAL_BIDP_RSQN VOL_TNRT"
        " PRDY_SMNS_HOUR_ACML_VOL PRDY_SMNS_HOUR_ACML_VOL_RATE HOUR_CLS_CODE MRKT_TRTM_CLS_CODE VI_STND_PRC"
    ),
    DOMESTIC_BOOK: (
        "MKSC_SHRN_ISCD",
        "BSOP_HOUR",
        "HOUR_CLS_CODE",
        *(f"ASKP{i}" for i in range(1, 11)),
        *(f"BIDP{i}" for i in range(1, 11)),
        *(f"ASKP_RSQN{i}" for i in range(1, 11)),
        *(f"BIDP_RSQN{i}" for i in range(1, 11)),
        *names(
            "TOTAL_ASKP_RSQN TOTAL_BIDP_RSQN OVTM_TOTAL_ASKP_RSQN OVTM_TOTAL_BIDP_RSQN ANTC_CNPR ANTC_CNQN"
            " ANTC_VOL ANTC_CNTG_VRSS ANTC_CNTG_VRSS_SIGN ANTC_CNTG_PRDY_CTRT ACML_VOL TOTAL_ASKP_RSQN_ICDC"
            " TOTAL_BIDP_RSQN_ICDC OVTM_TOTAL_ASKP_ICDC OVTM_TOTAL_BIDP_ICDC STCK_DEAL_CLS_CODE"
        ),
    ),
    US_TRADES: names(
        "RSYM SYMB ZDIV TYMD XYMD XHMS KYMD KHMS OPEN HIGH LOW LAST SIGN DIFF RATE PBID PASK VBID VASK"
        " EVOL TVOL TAMT BIVL ASVL STRN MTYP"
    ),
    US_BOOK: (
        *names("RSYM SYMB ZDIV XYMD XHMS KYMD KHMS BVOL AVOL BDVL ADVL"),
        *(f"{name}{i}" for i in range(1, US_BOOK_DEPTH + 1) for name in _US_LEVEL),
    ),
    # Execution notices (built in kissim.ws): the domestic one is the same on both domains' tr_ids.
    "H0STCNI0": names(
        "CUST_ID ACNT_NO ODER_NO OODER_NO SELN_BYOV_CLS RCTF_CLS ODER_KIND ODER_COND STCK_SHRN_ISCD CNTG_QTY"
        " CNTG_UNPR STCK_CNTG_HOUR RFUS_YN CNTG_YN ACPT_YN BRNC_NO ODER_QTY ACNT_NAME ORD_COND_PRC"
        " ORD_EXG_GB POPUP_YN FILLER CRDT_CLS CRDT_LOAN_DATE CNTG_ISNM40 ODER_PRC"
    ),
    "H0GSCNI0": names(
        "CUST_ID ACNT_NO ODER_NO OODER_NO SELN_BYOV_CLS RCTF_CLS ODER_KIND2 STCK_SHRN_ISCD CNTG_QTY CNTG_UNPR"
        " STCK_CNTG_HOUR RFUS_YN CNTG_YN ACPT_YN BRNC_NO ODER_QTY ACNT_NAME CNTG_ISNM ODER_COND DEBT_GB"
        " DEBT_DATE START_TM END_TM TM_DIV_TP CNTG_UNPR12"
    ),
}
COLUMNS["H0STCNI9"] = COLUMNS["H0STCNI0"]
COLUMNS["H0GSCNI9"] = COLUMNS["H0GSCNI0"]

# CCLD_DVSN of H0STCNT0: who took the other side's quote.
BUYER_INITIATED = "1"
SELLER_INITIATED = "5"


@dataclass(frozen=True)
class FeedKey:
    """What a price feed's ``tr_key`` names: the ticker, and for US keys the exchange code."""

    family: Family
    ticker: str
    excd: str = ""


def feed_key(tr_id: str, tr_key: str) -> FeedKey | None:
    """``005930`` (or ``Q500001``) for the domestic feeds; ``D``/``R`` + NAS/NYS/AMS/BAQ/BAY/BAA +
    symbol (``DNASAAPL``, ``RBAQAAPL``) for the US ones. None when the key names nothing here."""
    key = tr_key.strip()
    if tr_id in (DOMESTIC_TRADES, DOMESTIC_BOOK):
        if family_of(key) != "KRX":
            return None
        return FeedKey("KRX", key[1:] if len(key) == 7 else key)
    if tr_id in (US_TRADES, US_BOOK):
        prefix, excd, symbol = key[:1].upper(), key[1:4].upper(), key[4:].upper()
        if prefix not in ("D", "R") or excd not in QUOTE_TO_ORDER_EXCHANGE or not symbol:
            return None
        return FeedKey("US", symbol, excd)
    return None


@dataclass(frozen=True)
class Trade:
    price: Decimal
    volume: int  # 0 for a price an operator set, which no trade made
    initiated: str  # BUYER_INITIATED or SELLER_INITIATED


@dataclass
class Tape:
    """Today's trades of one ticker as the feeds have told them (counts and sides KIS sums up)."""

    quote: Quote
    told_volume: int  # the quote's cumulative volume when the last trade record went out
    price: Decimal  # the price of that trade
    open_hour: str
    high: Decimal
    low: Decimal
    high_hour: str
    low_hour: str
    buy_count: int = 0
    sell_count: int = 0
    buy_volume: int = 0
    sell_volume: int = 0

    @classmethod
    def start(cls, quote: Quote) -> Tape:
        opening = "090000" if quote.family == "KRX" else "093000"
        return cls(quote, quote.volume, quote.price, opening, quote.high, quote.low, opening, opening)

    def record(self, trade: Trade, at: datetime) -> None:
        """Count ``trade`` and note when the day's high or low moved."""
        self.told_volume = self.quote.volume
        self.price = trade.price
        if trade.volume > 0:
            if trade.initiated == BUYER_INITIATED:
                self.buy_count, self.buy_volume = self.buy_count + 1, self.buy_volume + trade.volume
            else:
                self.sell_count, self.sell_volume = self.sell_count + 1, self.sell_volume + trade.volume
        hour = at.strftime("%H%M%S")
        if self.quote.high != self.high:
            self.high, self.high_hour = self.quote.high, hour
        if self.quote.low != self.low:
            self.low, self.low_hour = self.quote.low, hour

    @property
    def strength(self) -> str:
        """체결강도: buyer-initiated volume per 100 seller-initiated."""
        return rate(Decimal(self.buy_volume), Decimal(self.sell_volume))

    @property
    def buy_rate(self) -> str:
        return rate(Decimal(self.buy_volume), Decimal(self.buy_volume + self.sell_volume))


def _change_at(quote: Quote, price: Decimal) -> tuple[Decimal, str]:
    """``quotes.change`` for a trade at ``price`` (a resting limit fills at its own price)."""
    diff = price - quote.base
    if diff > 0:
        return diff, "1" if quote.family == "KRX" and price >= quote.upper else "2"
    if diff < 0:
        return diff, "4" if quote.family == "KRX" and price <= quote.lower else "5"
    return diff, "3"


def _sign(diff: Decimal) -> str:
    return "2" if diff > 0 else ("5" if diff < 0 else "3")


def _us(value: Decimal) -> str:
    return fixed(value, 4)


def domestic_trade(quote: Quote, book: Book, tape: Tape, trade: Trade, now: datetime, open_: bool) -> list[str]:
    """One H0STCNT0 record: ``trade`` against the quote's day and book."""
    price, volume, initiated = trade.price, trade.volume, trade.initiated
    diff, sign = _change_at(quote, price)
    (ask, ask_qty), (bid, bid_qty) = book.asks[0], book.bids[0]
    return [
        quote.ticker,
        now.strftime("%H%M%S"),
        won(price),
        sign,
        won(diff),
        rate(diff, quote.base),
        fixed(price, 2),  # as inquire-price's wghn_avrg_stck_prc
        won(quote.open),
        won(quote.high),
        won(quote.low),
        won(ask),
        won(bid),
        str(volume),
        str(quote.volume),
        won(quote.turnover),
        str(tape.sell_count),
        str(tape.buy_count),
        str(tape.buy_count - tape.sell_count),
        tape.strength,
        str(tape.sell_volume),
        str(tape.buy_volume),
        initiated,
        tape.buy_rate,
        "0.00",
        tape.open_hour,
        _sign(price - quote.open),
        won(price - quote.open),
        tape.high_hour,
        _sign(price - quote.high),
        won(price - quote.high),
        tape.low_hour,
        _sign(price - quote.low),
        won(price - quote.low),
        ymd(now.date()),
        "20" if open_ else "00",
        "N",
        str(ask_qty),
        str(bid_qty),
        str(sum(q for _, q in book.asks)),
        str(sum(q for _, q in book.bids)),
        "0.00",
        "0",
        "0.00",
        "0",
        "",
        won(quote.open),
    ]


def domestic_book(quote: Quote, book: Book, now: datetime) -> list[str]:
    """One H0STASP0 record: the ten levels ``inquire-asking-price-exp-ccn`` answers, and its expected trade."""
    diff, sign = change(quote)
    return [
        quote.ticker,
        now.strftime("%H%M%S"),
        "0",
        *(won(price) for price, _ in book.asks),
        *(won(price) for price, _ in book.bids),
        *(str(quantity) for _, quantity in book.asks),
        *(str(quantity) for _, quantity in book.bids),
        str(sum(q for _, q in book.asks)),
        str(sum(q for _, q in book.bids)),
        "0",
        "0",
        won(quote.price),
        "0",
        "0",
        won(diff),
        sign,
        rate(diff, quote.base),
        str(quote.volume),
        "0",
        "0",
        "0",
        "0",
        "0",
    ]


def _us_times(now: datetime) -> tuple[str, str, str, str]:
    local = new_york_time(now)
    return ymd(local.date()), local.strftime("%H%M%S"), ymd(now.date()), now.strftime("%H%M%S")


def us_trade(rsym: str, quote: Quote, book: Book, tape: Tape, trade: Trade, now: datetime, open_: bool) -> list[str]:
    """One HDFSCNT0 record; RSYM is the subscribed key (``DNASAAPL``), prices with four decimals as ``price``."""
    diff, sign = _change_at(quote, trade.price)
    (ask, ask_qty), (bid, bid_qty) = book.asks[0], book.bids[0]
    local_day, local_time, korea_day, korea_time = _us_times(now)
    return [
        rsym,
        quote.ticker,
        "4",
        local_day,
        local_day,
        local_time,
        korea_day,
        korea_time,
        _us(quote.open),
        _us(quote.high),
        _us(quote.low),
        _us(trade.price),
        sign,
        _us(abs(diff)),
        rate(diff, quote.base),
        _us(bid),
        _us(ask),
        str(bid_qty),
        str(ask_qty),
        str(trade.volume),
        str(quote.volume),
        fixed(quote.turnover, 0),
        str(tape.sell_volume),
        str(tape.buy_volume),
        tape.strength,
        "1" if open_ else "3",
    ]


def us_book(rsym: str, excd: str, quote: Quote, book: Book, now: datetime) -> list[str]:
    """One HDFSASP0 record: the levels ``inquire-asking-price`` answers (one on AMEX, the rest zero)."""
    local_day, local_time, korea_day, korea_time = _us_times(now)
    depth = 1 if excd in ("AMS", "BAA") else US_BOOK_DEPTH
    record = [
        rsym,
        quote.ticker,
        "4",
        local_day,
        local_time,
        korea_day,
        korea_time,
        str(sum(q for _, q in book.bids)),
        str(sum(q for _, q in book.asks)),
        "0",
        "0",
    ]
    for i in range(US_BOOK_DEPTH):
        if i < depth:
            (ask, ask_qty), (bid, bid_qty) = book.asks[i], book.bids[i]
            record += [_us(bid), _us(ask), str(bid_qty), str(ask_qty), "0", "0"]
        else:
            record += ["0.0000", "0.0000", "0", "0", "0", "0"]
    return record
