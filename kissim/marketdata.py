"""Market data beyond the current price, domestic and US: order books, recent trades, daily/weekly/
monthly/yearly candles, today's minute candles, the overseas price detail. Paths, tr_ids and field
names as in KIS's official samples (docs/kis-endpoints.md); every value agrees with the live quote
(``kissim.history``).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from starlette.responses import Response

from kissim import protocol as p
from kissim.fmt import fixed, names, rate, won, ymd
from kissim.gateway import Call
from kissim.history import (
    Candle,
    MinuteBar,
    aggregate,
    daily_candles,
    extremes,
    local_date,
    minute_bars,
    order_book,
)
from kissim.hours import new_york_time, now_kst, us_session_kst
from kissim.market import QUOTE_TO_ORDER_EXCHANGE, Family, Quote, family_of, instrument_name, tick_for
from kissim.protocol import KST, KisError, Messages
from kissim.quotes import change, domestic_output

DAILY_PAGE = 100
DOMESTIC_MINUTE_PAGE = 30
OVERSEAS_MINUTE_MAX = 120


def sign_of(diff: Decimal) -> str:
    return "2" if diff > 0 else ("5" if diff < 0 else "3")


def ok(call: Call, msg: p.Msg = Messages.QUOTE_DONE, **outputs: Any) -> Response:
    return p.json_response(p.ok_body(msg, **outputs), tr_id=call.tr_id)


def today(call: Call, family: Family) -> date:
    return local_date(family, now_kst(call.sim.clock))


def extra_holidays(call: Call, family: Family) -> frozenset[date]:
    return call.sim.config.krx_holidays if family == "KRX" else call.sim.config.us_holidays


def candles_of(call: Call, quote: Quote) -> list[Candle]:
    family = quote.family
    return daily_candles(call.sim.config.seed, quote, today(call, family), extra_holidays(call, family))


def domestic_quote(call: Call) -> Quote:
    market = call.field("FID_COND_MRKT_DIV_CODE").upper()
    code = call.field("FID_INPUT_ISCD")
    if market not in ("J", "NX", "UN") or family_of(code) != "KRX":
        raise KisError(Messages.BAD_REQUEST, detail=f" [{market}:{code}]")
    return call.sim.prices.quote("KRX", code[1:] if len(code) == 7 else code)


def overseas_quote(call: Call) -> tuple[str, Quote]:
    excd = call.field("EXCD").upper()
    symbol = call.field("SYMB").upper()
    if excd not in QUOTE_TO_ORDER_EXCHANGE or not symbol:
        raise KisError(Messages.BAD_EXCHANGE)
    return excd, call.sim.prices.quote("US", symbol)


def _date_field(text: str, fallback: date) -> date:
    try:
        return datetime.strptime(text.strip(), "%Y%m%d").replace(tzinfo=KST).date()
    except ValueError:
        return fallback


# --------------------------------------------------------------------------- domestic


async def asking_price(call: Call) -> Response:
    """FHKST01010200 inquire-asking-price-exp-ccn: output1 the book, output2 the expected trade."""
    quote = domestic_quote(call)
    book = order_book(quote)
    now = now_kst(call.sim.clock)
    output1: dict[str, str] = {"aspr_acpt_hour": now.strftime("%H%M%S")}
    for side, levels in (("askp", book.asks), ("bidp", book.bids)):
        for i, (price, _) in enumerate(levels, 1):
            output1[f"{side}{i}"] = won(price)
    for side, levels in (("askp", book.asks), ("bidp", book.bids)):
        for i, (_, quantity) in enumerate(levels, 1):
            output1[f"{side}_rsqn{i}"] = str(quantity)
    for side in ("askp", "bidp"):
        for i in range(1, 11):
            output1[f"{side}_rsqn_icdc{i}"] = "0"
    total_ask = sum(q for _, q in book.asks)
    total_bid = sum(q for _, q in book.bids)
    output1 |= {
        "total_askp_rsqn": str(total_ask),
        "total_bidp_rsqn": str(total_bid),
        "total_askp_rsqn_icdc": "0",
        "total_bidp_rsqn_icdc": "0",
        "ovtm_total_askp_icdc": "0",
        "ovtm_total_bidp_icdc": "0",
        "ovtm_total_askp_rsqn": "0",
        "ovtm_total_bidp_rsqn": "0",
        "ntby_aspr_rsqn": str(total_bid - total_ask),
        "new_mkop_cls_code": "20" if call.sim.market_open("KRX") else "00",
    }
    diff, sign = change(quote)
    output2 = {
        "antc_mkop_cls_code": "311" if call.sim.market_open("KRX") else "112",
        "stck_prpr": won(quote.price),
        "stck_oprc": won(quote.open),
        "stck_hgpr": won(quote.high),
        "stck_lwpr": won(quote.low),
        "stck_sdpr": won(quote.base),
        "antc_cnpr": won(quote.price),
        "antc_cntg_vrss_sign": sign,
        "antc_cntg_vrss": won(diff),
        "antc_cntg_prdy_ctrt": rate(diff, quote.base),
        "antc_vol": "0",
        "stck_shrn_iscd": quote.ticker,
        "vi_cls_code": "N",
    }
    return ok(call, output1=output1, output2=output2)


async def recent_trades(call: Call) -> Response:
    """FHKST01010300 inquire-ccnl: the latest trades (one per recorded minute), newest first."""
    quote = domestic_quote(call)
    rows = []
    for bar in minute_bars(quote, "KRX", today(call, "KRX"))[:30]:
        diff = bar.close - quote.base
        rows.append(
            {
                "stck_cntg_hour": (bar.at + timedelta(seconds=59)).strftime("%H%M%S"),
                "stck_prpr": won(bar.close),
                "prdy_vrss": won(diff),
                "prdy_vrss_sign": sign_of(diff),
                "cntg_vol": str(bar.volume),
                "tday_rltv": "100.00",
                "prdy_ctrt": rate(diff, quote.base),
            }
        )
    return ok(call, output=rows)


def _domestic_candle_row(candle: Candle, previous_close: Decimal) -> dict[str, str]:
    diff = candle.close - previous_close
    return {
        "stck_bsop_date": ymd(candle.day),
        "stck_clpr": won(candle.close),
        "stck_oprc": won(candle.open),
        "stck_hgpr": won(candle.high),
        "stck_lwpr": won(candle.low),
        "acml_vol": str(candle.volume),
        "acml_tr_pbmn": won(candle.amount),
        "flng_cls_code": "00",
        "prtt_rate": "0.00",
        "mod_yn": "N",
        "prdy_vrss_sign": sign_of(diff),
        "prdy_vrss": won(diff),
        "revl_issu_reas": "",
    }


def _with_previous(candles: list[Candle]) -> list[tuple[Candle, Decimal]]:
    """Each candle (newest first) with the close of the one before it."""
    return [(c, candles[i + 1].close if i + 1 < len(candles) else c.open) for i, c in enumerate(candles)]


async def daily_price(call: Call) -> Response:
    """FHKST01010400 inquire-daily-price: the last 30 days (weeks, months), newest first."""
    quote = domestic_quote(call)
    period = call.field("FID_PERIOD_DIV_CODE", "D").upper()
    if period not in ("D", "W", "M"):
        raise KisError(Messages.BAD_REQUEST, detail=f" [FID_PERIOD_DIV_CODE={period}]")
    candles = aggregate(candles_of(call, quote), period)[:31]
    rows = []
    for candle, previous in _with_previous(candles)[:30]:
        diff = candle.close - previous
        rows.append(
            {
                "stck_bsop_date": ymd(candle.day),
                "stck_oprc": won(candle.open),
                "stck_hgpr": won(candle.high),
                "stck_lwpr": won(candle.low),
                "stck_clpr": won(candle.close),
                "acml_vol": str(candle.volume),
                "prdy_vrss_vol_rate": "0.00",
                "prdy_vrss": won(diff),
                "prdy_vrss_sign": sign_of(diff),
                "prdy_ctrt": rate(diff, previous),
                "hts_frgn_ehrt": "0.00",
                "frgn_ntby_qty": "0",
                "flng_cls_code": "00",
                "acml_prtt_rate": "0.00",
            }
        )
    return ok(call, output=rows)


def _chart_summary(quote: Quote, candles: list[Candle]) -> dict[str, str]:
    diff, sign = change(quote)
    previous = candles[1] if len(candles) > 1 else candles[0]
    book = order_book(quote, 1)
    return {
        "prdy_vrss": won(diff),
        "prdy_vrss_sign": sign,
        "prdy_ctrt": rate(diff, quote.base),
        "stck_prdy_clpr": won(quote.base),
        "acml_vol": str(quote.volume),
        "acml_tr_pbmn": won(quote.turnover),
        "hts_kor_isnm": instrument_name("KRX", quote.ticker),
        "stck_prpr": won(quote.price),
        "stck_shrn_iscd": quote.ticker,
        "prdy_vol": str(previous.volume),
        "stck_mxpr": won(quote.upper),
        "stck_llam": won(quote.lower),
        "stck_oprc": won(quote.open),
        "stck_hgpr": won(quote.high),
        "stck_lwpr": won(quote.low),
        "stck_prdy_oprc": won(previous.open),
        "stck_prdy_hgpr": won(previous.high),
        "stck_prdy_lwpr": won(previous.low),
        "askp": won(book.asks[0][0]),
        "bidp": won(book.bids[0][0]),
        "prdy_vrss_vol": str(quote.volume - previous.volume),
        "vol_tnrt": "0.00",
        "stck_fcam": "100",
        "lstn_stcn": "100000000",
        "cpfn": "0",
        "hts_avls": won(quote.price),
        "per": "10.00",
        "eps": won(quote.price / 10),
        "pbr": "1.00",
        "itewhol_loan_rmnd_ratem": "0.00",
    }


async def daily_chart(call: Call) -> Response:
    """FHKST03010100 inquire-daily-itemchartprice: candles D/W/M/Y between FID_INPUT_DATE_1 and _2,
    newest first, at most 100 (ask again with an earlier FID_INPUT_DATE_2 for more)."""
    quote = domestic_quote(call)
    period = call.field("FID_PERIOD_DIV_CODE", "D").upper()
    if period not in ("D", "W", "M", "Y"):
        raise KisError(Messages.BAD_REQUEST, detail=f" [FID_PERIOD_DIV_CODE={period}]")
    daily = candles_of(call, quote)
    start = _date_field(call.field("FID_INPUT_DATE_1", ""), date.min)
    end = _date_field(call.field("FID_INPUT_DATE_2", ""), daily[0].day)
    folded = _with_previous(aggregate(daily, period))
    rows = [_domestic_candle_row(c, prev) for c, prev in folded if start <= c.day <= end][:DAILY_PAGE]
    return ok(call, output1=_chart_summary(quote, daily), output2=rows)


def _hhmmss(text: str) -> str:
    digits = text.strip()
    return digits if len(digits) == 6 and digits.isdigit() else ""


async def minute_chart(call: Call) -> Response:
    """FHKST03010200 inquire-time-itemchartprice: today's minute candles at or before
    FID_INPUT_HOUR_1 (HHMMSS; empty, 000000 or a time to come: the latest), 30 per answer."""
    quote = domestic_quote(call)
    day = today(call, "KRX")
    bars = minute_bars(quote, "KRX", day)
    until = _hhmmss(call.field("FID_INPUT_HOUR_1", ""))
    if until and until != "000000":
        bars = [b for b in bars if b.at.strftime("%H%M%S") <= until]
    rows = [
        {
            "stck_bsop_date": ymd(bar.at.date()),
            "stck_cntg_hour": bar.at.strftime("%H%M%S"),
            "stck_prpr": won(bar.close),
            "stck_oprc": won(bar.open),
            "stck_hgpr": won(bar.high),
            "stck_lwpr": won(bar.low),
            "cntg_vol": str(bar.volume),
            "acml_tr_pbmn": won(bar.total_amount),
        }
        for bar in bars[:DOMESTIC_MINUTE_PAGE]
    ]
    diff, sign = change(quote)
    output1 = {
        "prdy_vrss": won(diff),
        "prdy_vrss_sign": sign,
        "prdy_ctrt": rate(diff, quote.base),
        "stck_prdy_clpr": won(quote.base),
        "acml_vol": str(quote.volume),
        "acml_tr_pbmn": won(quote.turnover),
        "hts_kor_isnm": instrument_name("KRX", quote.ticker),
        "stck_prpr": won(quote.price),
    }
    return ok(call, output1=output1, output2=rows)


def year_extremes(call: Call, quote: Quote) -> dict[str, str]:
    """52-week, 250-day and this year's highs and lows from the candle history (inquire-price)."""
    candles = candles_of(call, quote)
    day = candles[0].day
    fields: dict[str, str] = {}
    windows = (
        ("w52", day - timedelta(weeks=52)),
        ("d250", candles[min(249, len(candles) - 1)].day),
        ("dryy", date(day.year, 1, 1)),
    )
    for name, since in windows:
        high, low = extremes(candles, since)
        if name == "w52":
            fields |= {
                "w52_hgpr": won(high.high),
                "w52_hgpr_vrss_prpr_ctrt": rate(quote.price - high.high, high.high),
                "w52_hgpr_date": ymd(high.day),
                "w52_lwpr": won(low.low),
                "w52_lwpr_vrss_prpr_ctrt": rate(quote.price - low.low, low.low),
                "w52_lwpr_date": ymd(low.day),
            }
        elif name == "d250":
            fields |= {
                "d250_hgpr": won(high.high),
                "d250_hgpr_date": ymd(high.day),
                "d250_hgpr_vrss_prpr_rate": rate(quote.price - high.high, high.high),
                "d250_lwpr": won(low.low),
                "d250_lwpr_date": ymd(low.day),
                "d250_lwpr_vrss_prpr_rate": rate(quote.price - low.low, low.low),
            }
        else:
            fields |= {
                "stck_dryy_hgpr": won(high.high),
                "dryy_hgpr_vrss_prpr_rate": rate(quote.price - high.high, high.high),
                "dryy_hgpr_date": ymd(high.day),
                "stck_dryy_lwpr": won(low.low),
                "dryy_lwpr_vrss_prpr_rate": rate(quote.price - low.low, low.low),
                "dryy_lwpr_date": ymd(low.day),
            }
    return fields


def pivots(candles: list[Candle]) -> dict[str, str]:
    """Yesterday's pivot point and its two resistances and supports (pvt_*)."""
    previous = candles[1] if len(candles) > 1 else candles[0]
    pivot = (previous.high + previous.low + previous.close) / 3
    spread = previous.high - previous.low
    return {
        "pvt_scnd_dmrs_prc": won(pivot + spread),
        "pvt_frst_dmrs_prc": won(2 * pivot - previous.low),
        "pvt_pont_val": won(pivot),
        "pvt_frst_dmsp_prc": won(2 * pivot - previous.high),
        "pvt_scnd_dmsp_prc": won(pivot - spread),
    }


# Every output field of FHKST01010100 in KIS's order (OT examples_llm/domestic_stock/inquire_price).
PRICE_FIELDS = names(
    "iscd_stat_cls_code marg_rate rprs_mrkt_kor_name new_hgpr_lwpr_cls_code bstp_kor_isnm temp_stop_yn "
    "oprc_rang_cont_yn clpr_rang_cont_yn crdt_able_yn grmn_rate_cls_code elw_pblc_yn stck_prpr prdy_vrss "
    "prdy_vrss_sign prdy_ctrt acml_tr_pbmn acml_vol prdy_vrss_vol_rate stck_oprc stck_hgpr stck_lwpr stck_mxpr "
    "stck_llam stck_sdpr wghn_avrg_stck_prc hts_frgn_ehrt frgn_ntby_qty pgtr_ntby_qty pvt_scnd_dmrs_prc "
    "pvt_frst_dmrs_prc pvt_pont_val pvt_frst_dmsp_prc pvt_scnd_dmsp_prc dmrs_val dmsp_val cpfn rstc_wdth_prc "
    "stck_fcam stck_sspr aspr_unit hts_deal_qty_unit_val lstn_stcn hts_avls per pbr stac_month vol_tnrt eps bps "
    "d250_hgpr d250_hgpr_date d250_hgpr_vrss_prpr_rate d250_lwpr d250_lwpr_date d250_lwpr_vrss_prpr_rate "
    "stck_dryy_hgpr dryy_hgpr_vrss_prpr_rate dryy_hgpr_date stck_dryy_lwpr dryy_lwpr_vrss_prpr_rate dryy_lwpr_date "
    "w52_hgpr w52_hgpr_vrss_prpr_ctrt w52_hgpr_date w52_lwpr w52_lwpr_vrss_prpr_ctrt w52_lwpr_date "
    "whol_loan_rmnd_rate ssts_yn stck_shrn_iscd fcam_cnnm cpfn_cnnm apprch_rate frgn_hldn_qty vi_cls_code "
    "ovtm_vi_cls_code last_ssts_cntg_qty invt_caful_yn mrkt_warn_cls_code short_over_yn sltr_yn mang_issu_cls_code"
)


async def inquire_price(call: Call) -> Response:
    """FHKST01010100 inquire-price: the live quote, with highs, lows and pivots from the history."""
    quote = domestic_quote(call)
    candles = candles_of(call, quote)
    values = domestic_output(quote) | year_extremes(call, quote) | pivots(candles)
    high_52, low_52 = extremes(candles, candles[0].day - timedelta(weeks=52))
    record = "신고가" if quote.price >= high_52.high else ("신저가" if quote.price <= low_52.low else "")
    values |= {"new_hgpr_lwpr_cls_code": record, "apprch_rate": "0.00", "mang_issu_cls_code": "N"}
    return ok(call, output={name: values[name] for name in PRICE_FIELDS})


# --------------------------------------------------------------------------- overseas


def _us_price(value: Decimal) -> str:
    return fixed(value, 4)


async def price_detail(call: Call) -> Response:
    """HHDFS76200200 price-detail."""
    excd, quote = overseas_quote(call)
    candles = candles_of(call, quote)
    high, low = extremes(candles, candles[0].day - timedelta(weeks=52))
    diff, sign = change(quote)
    rate_krw = call.sim.config.usd_krw_rate
    shares = 1_000_000_000
    output = {
        "rsym": f"D{excd}{quote.ticker}",
        "pvol": str(candles[1].volume if len(candles) > 1 else 0),
        "open": _us_price(quote.open),
        "high": _us_price(quote.high),
        "low": _us_price(quote.low),
        "last": _us_price(quote.price),
        "base": _us_price(quote.base),
        "tomv": fixed(quote.price * shares, 0),
        "pamt": fixed(candles[1].amount if len(candles) > 1 else 0, 0),
        "uplp": _us_price(quote.upper),
        "dnlp": _us_price(quote.lower),
        "h52p": _us_price(high.high),
        "h52d": ymd(high.day),
        "l52p": _us_price(low.low),
        "l52d": ymd(low.day),
        "perx": "25.00",
        "pbrx": "5.00",
        "epsx": fixed(quote.price / 25, 2),
        "bpsx": fixed(quote.price / 5, 2),
        "shar": str(shares),
        "mcap": fixed(quote.price * shares, 0),
        "curr": "USD",
        "zdiv": "4",
        "vnit": "1",
        "t_xprc": won(quote.price * rate_krw),
        "t_xdif": won(abs(diff) * rate_krw),
        "t_xrat": rate(diff, quote.base),
        "p_xprc": won(quote.base * rate_krw),
        "p_xdif": "0",
        "p_xrat": "0.00",
        "t_rate": fixed(rate_krw, 2),
        "p_rate": fixed(rate_krw, 2),
        "t_xsgn": sign,
        "p_xsng": "3",
        "e_ordyn": "매매 가능",
        "e_hogau": fixed(tick_for("US", quote.price), 4),
        "e_icod": "시뮬레이션",
        "e_parp": "0.0000",
        "tvol": str(quote.volume),
        "tamt": fixed(quote.turnover, 0),
        "etyp_nm": "",
    }
    return ok(call, Messages.INQUIRY_DONE, output=output)


async def overseas_asking_price(call: Call) -> Response:
    """HHDFS76200100 inquire-asking-price: output1 the quote, output2 ten levels (one on AMEX)."""
    excd, quote = overseas_quote(call)
    book = order_book(quote)
    now = now_kst(call.sim.clock)
    local = new_york_time(now)
    output1 = {
        "rsym": f"D{excd}{quote.ticker}",
        "zdiv": "4",
        "curr": "USD",
        "base": _us_price(quote.base),
        "open": _us_price(quote.open),
        "high": _us_price(quote.high),
        "low": _us_price(quote.low),
        "last": _us_price(quote.price),
        "dymd": ymd(local.date()),
        "dhms": local.strftime("%H%M%S"),
        "bvol": str(sum(q for _, q in book.bids)),
        "avol": str(sum(q for _, q in book.asks)),
        "bdvl": "0",
        "advl": "0",
        "code": quote.ticker,
        "ropen": _us_price(quote.open),
        "rhigh": _us_price(quote.high),
        "rlow": _us_price(quote.low),
        "rclose": _us_price(quote.price),
    }
    depth = 1 if excd in ("AMS", "BAA") else 10
    output2: dict[str, str] = {}
    for i in range(1, depth + 1):
        (ask, ask_qty), (bid, bid_qty) = book.asks[i - 1], book.bids[i - 1]
        output2 |= {
            f"pbid{i}": _us_price(bid),
            f"pask{i}": _us_price(ask),
            f"vbid{i}": str(bid_qty),
            f"vask{i}": str(ask_qty),
            f"dbid{i}": "0",
            f"dask{i}": "0",
        }
    output3 = {"vstm": "", "vetm": "", "csbp": "", "cshi": "", "cslo": "", "iep": "", "iev": ""}
    return ok(call, Messages.INQUIRY_DONE, output1=output1, output2=output2, output3=output3)


async def overseas_daily(call: Call) -> Response:
    """HHDFS76240000 dailyprice: GUBN 0 day, 1 week, 2 month; 100 candles ending at BYMD (empty:
    today), newest first."""
    excd, quote = overseas_quote(call)
    period = {"0": "D", "1": "W", "2": "M"}.get(call.field("GUBN", "0"))
    if period is None:
        raise KisError(Messages.BAD_REQUEST, detail=" [GUBN]")
    daily = candles_of(call, quote)
    end = _date_field(call.field("BYMD", ""), daily[0].day)
    folded = _with_previous(aggregate(daily, period))
    rows = []
    for candle, previous in [(c, prev) for c, prev in folded if c.day <= end][:DAILY_PAGE]:
        diff = candle.close - previous
        book = order_book(quote, 1)
        rows.append(
            {
                "xymd": ymd(candle.day),
                "clos": _us_price(candle.close),
                "sign": sign_of(diff),
                "diff": _us_price(abs(diff)),
                "rate": rate(diff, previous),
                "open": _us_price(candle.open),
                "high": _us_price(candle.high),
                "low": _us_price(candle.low),
                "tvol": str(candle.volume),
                "tamt": fixed(candle.amount, 0),
                "pbid": _us_price(book.bids[0][0]),
                "vbid": str(book.bids[0][1]),
                "pask": _us_price(book.asks[0][0]),
                "vask": str(book.asks[0][1]),
            }
        )
    output1 = {"rsym": f"D{excd}{quote.ticker}", "zdiv": "4", "nrec": str(len(rows))}
    return ok(call, Messages.INQUIRY_DONE, output1=output1, output2=rows)


def _overseas_minute_row(bar: MinuteBar) -> dict[str, str]:
    local = new_york_time(bar.at)
    return {
        "tymd": ymd(local.date()),
        "xymd": ymd(local.date()),
        "xhms": local.strftime("%H%M%S"),
        "kymd": ymd(bar.at.date()),
        "khms": bar.at.strftime("%H%M%S"),
        "open": _us_price(bar.open),
        "high": _us_price(bar.high),
        "low": _us_price(bar.low),
        "last": _us_price(bar.close),
        "evol": str(bar.volume),
        "eamt": fixed(bar.amount, 0),
    }


async def overseas_minute(call: Call) -> Response:
    """HHDFS76950200 inquire-time-itemchartprice: today's NMIN-minute candles (New York date),
    newest first, NREC of them (at most 120)."""
    excd, quote = overseas_quote(call)
    span = call.field("NMIN", "1")
    count = call.field("NREC", str(OVERSEAS_MINUTE_MAX))
    if not span.isdigit() or int(span) < 1 or not count.isdigit():
        raise KisError(Messages.BAD_REQUEST, detail=" [NMIN/NREC]")
    day = today(call, "US")
    bars = minute_bars(quote, "US", day, int(span))[: min(int(count), OVERSEAS_MINUTE_MAX)]
    opens, closes = us_session_kst(day)
    output1 = {
        "rsym": f"D{excd}{quote.ticker}",
        "zdiv": "4",
        "stim": "093000",
        "etim": "160000",
        "sktm": opens.strftime("%H%M%S"),
        "ektm": closes.strftime("%H%M%S"),
        "next": "0",
        "more": "N",
        "nrec": str(len(bars)),
    }
    return ok(call, Messages.INQUIRY_DONE, output1=output1, output2=[_overseas_minute_row(b) for b in bars])
