"""KIS continuation paging: ``tr_cont`` headers and the CTX_AREA_FK/NK keys (100 or 200 characters).

Rows are given as (key, row) pairs in answer order. The NK key carries the last row's key; a request
with header ``tr_cont: N`` and that NK continues after it. The response header ``tr_cont`` is ``M``
while more rows remain and ``D`` on the last page.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from kissim.gateway import Call
from kissim.protocol import Messages, json_response, pad_ctx, pad_msg


def _start_after(call: Call, keys: list[str], nk_name: str) -> int:
    if not call.continued:
        return 0
    nk = call.fields.get(nk_name, "").strip().rstrip("^")
    if not nk:
        return 0
    last_key = nk.rsplit("^", 1)[-1]
    try:
        return keys.index(last_key) + 1
    except ValueError:
        return 0


def page(
    call: Call,
    keyed_rows: list[tuple[str, dict[str, str]]],
    size: int,
    fk: str,
    width: int,
    rows_key: str = "output1",
    names: tuple[str, str] | None = None,
    **outputs: Any,
) -> Response:
    """One page of ``keyed_rows`` as ``rows_key`` (``output1``; ``output`` for overseas inquire-ccnl)
    plus ``outputs`` (output2, output3) unchanged. ``names``: the context keys when they are not
    CTX_AREA_FK<width> / CTX_AREA_NK<width> (the calendars use CTX_AREA_FK / CTX_AREA_NK)."""
    fk_name, nk_name = names or (f"CTX_AREA_FK{width}", f"CTX_AREA_NK{width}")
    keys = [key for key, _ in keyed_rows]
    start = _start_after(call, keys, nk_name)
    chunk = keyed_rows[start : start + size]
    more = start + size < len(keyed_rows)
    nk = f"{fk}{chunk[-1][0]}^" if chunk and more else ""
    finished = Messages.INQUIRY_LAST if start > 0 else Messages.INQUIRY_DONE
    msg = Messages.INQUIRY_MORE if more else finished
    body: dict[str, Any] = {
        fk_name.lower(): pad_ctx(fk, width),
        nk_name.lower(): pad_ctx(nk, width),
        rows_key: [row for _, row in chunk],
        **outputs,
        "rt_cd": "0",
        "msg_cd": msg.code,
        "msg1": pad_msg(msg.text),
    }
    return json_response(body, tr_id=call.tr_id, tr_cont="M" if more else "D")
