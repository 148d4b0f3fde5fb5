"""Quote fields shared by the quotation endpoints, and the overseas ``price`` (HHDFS00000300); the
domestic ``inquire-price`` (FHKST01010100) is in ``kissim.marketdata``, as it needs the history."""

from __future__ import annotations

from decimal import Decimal

from starlette.responses import Response

from kissim import protocol as p
from kissim.fmt import fixed, rate, won
from kissim.gateway import Call
from kissim.market import QUOTE_TO_ORDER_EXCHANGE, Quote, krx_tick
from kissim.protocol import KisError, Messages


def change(quote: Quote) -> tuple[Decimal, str]:
    """(difference to the previous close, prdy_vrss_sign: 1 upper limit, 2 up, 3 flat, 4 lower limit, 5 down)."""
    diff = quote.price - quote.base
    if diff > 0:
        sign = "1" if quote.family == "KRX" and quote.price >= quote.upper else "2"
    elif diff < 0:
        sign = "4" if quote.family == "KRX" and quote.price <= quote.lower else "5"
    else:
        sign = "3"
    return diff, sign


def domestic_output(quote: Quote) -> dict[str, str]:
    diff, sign = change(quote)
    price = quote.price
    w52_high = max(quote.high, (quote.base * Decimal("1.25")).to_integral_value())
    w52_low = min(quote.low, (quote.base * Decimal("0.75")).to_integral_value())
    return {
        "iscd_stat_cls_code": "55",
        "marg_rate": "20.00",
        "rprs_mrkt_kor_name": "KOSPI",
        "bstp_kor_isnm": "시뮬레이션",
        "temp_stop_yn": "N",
        "oprc_rang_cont_yn": "N",
        "clpr_rang_cont_yn": "N",
        "crdt_able_yn": "Y",
        "grmn_rate_cls_code": "40",
        "elw_pblc_yn": "N",
        "stck_prpr": won(price),
        "prdy_vrss": won(diff),
        "prdy_vrss_sign": sign,
        "prdy_ctrt": rate(diff, quote.base),
        "acml_tr_pbmn": won(quote.turnover),
        "acml_vol": str(quote.volume),
        "prdy_vrss_vol_rate": "0.00",
        "stck_oprc": won(quote.open),
        "stck_hgpr": won(quote.high),
        "stck_lwpr": won(quote.low),
        "stck_mxpr": won(quote.upper),
        "stck_llam": won(quote.lower),
        "stck_sdpr": won(quote.base),
        "wghn_avrg_stck_prc": fixed(price, 2),
        "hts_frgn_ehrt": "0.00",
        "frgn_ntby_qty": "0",
        "pgtr_ntby_qty": "0",
        "dmrs_val": won(quote.high),
        "dmsp_val": won(quote.low),
        "cpfn": "0",
        "rstc_wdth_prc": won(quote.upper - quote.base),
        "stck_fcam": "100",
        "stck_sspr": won(price * Decimal("0.8")),
        "aspr_unit": won(krx_tick(price)),
        "hts_deal_qty_unit_val": "1",
        "lstn_stcn": "100000000",
        "hts_avls": won(price),
        "per": "10.00",
        "pbr": "1.00",
        "stac_month": "12",
        "vol_tnrt": "0.00",
        "eps": won(price / 10),
        "bps": won(price),
        "w52_hgpr": won(w52_high),
        "w52_hgpr_vrss_prpr_ctrt": rate(price - w52_high, w52_high),
        "w52_hgpr_date": "20250101",
        "w52_lwpr": won(w52_low),
        "w52_lwpr_vrss_prpr_ctrt": rate(price - w52_low, w52_low),
        "w52_lwpr_date": "20250101",
        "whol_loan_rmnd_rate": "0.00",
        "ssts_yn": "Y",
        "stck_shrn_iscd": quote.ticker,
        "fcam_cnnm": "100",
        "cpfn_cnnm": "0 억",
        "frgn_hldn_qty": "0",
        "vi_cls_code": "N",
        "ovtm_vi_cls_code": "N",
        "last_ssts_cntg_qty": "0",
        "invt_caful_yn": "N",
        "mrkt_warn_cls_code": "00",
        "short_over_yn": "N",
        "sltr_yn": "N",
    }


def overseas_output(quote: Quote, excd: str) -> dict[str, str]:
    diff, sign = change(quote)
    return {
        "rsym": f"D{excd}{quote.ticker}",
        "zdiv": "4",
        "base": fixed(quote.base, 4),
        "pvol": str(1_000_000 + quote.volume),
        "last": fixed(quote.price, 4),
        "sign": sign,
        "diff": fixed(abs(diff), 4),
        "rate": rate(diff, quote.base),
        "tvol": str(quote.volume),
        "tamt": fixed(quote.turnover, 0),
        "ordy": "매도불가",
    }


async def overseas_price(call: Call) -> Response:
    excd = call.field("EXCD").upper()
    symbol = call.field("SYMB").upper()
    if excd not in QUOTE_TO_ORDER_EXCHANGE or not symbol:
        raise KisError(Messages.BAD_EXCHANGE)
    quote = call.sim.prices.quote("US", symbol)
    return p.json_response(p.ok_body(Messages.INQUIRY_DONE, output=overseas_output(quote, excd)), tr_id=call.tr_id)
