"""Faults KIS could show that the simulator does not inject itself, injected on the gateway's side of
real HTTP: the order still travels to the real simulator (or does not), only its answer or its timing
changes."""

from __future__ import annotations

import httpx

ORDER_PATH = "/trading/order-cash"
DAILY_ORDERS_PATH = "/trading/inquire-daily-ccld"


class FaultyKis(httpx.AsyncBaseTransport):
    """Real HTTP to the simulator, with one fault on the next ``times`` order POSTs.

    * ``"500_before_booking"``: the order never reaches KIS, the gateway reads HTTP 500.
    * ``"500_after_booking"``: the order is booked, the gateway reads HTTP 500.
    * ``"books_late"``: the gateway's POST times out; the order reaches KIS only after the gateway's
      first look at KIS's daily order list (so that look finds nothing and a later one must).
    """

    def __init__(self, fault: str, times: int = 1) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.fault = fault
        self.left = times
        self.held: list[httpx.Request] = []
        self.posts = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "POST" and path.endswith(ORDER_PATH):
            self.posts += 1
            if self.left > 0:
                self.left -= 1
                if self.fault == "books_late":
                    self.held.append(request)
                    raise httpx.ReadTimeout("no answer (the order is still on its way)", request=request)
                if self.fault == "500_after_booking":
                    response = await self.inner.handle_async_request(request)
                    await response.aread()
                return httpx.Response(500, content=b"", request=request)
        if path.endswith(DAILY_ORDERS_PATH) and self.held:
            response = await self.inner.handle_async_request(request)
            await response.aread()
            for late in self.held:
                booked = await self.inner.handle_async_request(late)
                await booked.aread()
            self.held.clear()
            return response
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()
