"""The import-cost probe (benchmarks/import_cost.py) and what it says of the gateway's imports."""

from __future__ import annotations

from benchmarks.import_cost import GATEWAY_STACK, HOLIDAYS, probe


def top_level(modules: list[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


def test_the_gateway_runs_without_holidays_or_cryptography_loaded() -> None:
    kib, modules = probe("import brokergateway.__main__")
    loaded = top_level(modules)
    assert {"brokergateway", "httpx", "redis", "Crypto"} <= loaded  # the probe sees what it loads
    assert "holidays" not in loaded  # the calendar check asks a child (yquant/market_days.py)
    # Notices decrypt with pycryptodome; redis-py imports cryptography's top-level package only
    # to learn that it is installed, which loads none of its OpenSSL binding.
    assert not [name for name in modules if name.startswith("cryptography.hazmat")]
    assert kib > 0


def test_a_base_statement_is_not_counted_in_the_row() -> None:
    _, alone = probe(HOLIDAYS)
    _, after = probe(HOLIDAYS, GATEWAY_STACK)
    assert "holidays" in top_level(alone)
    assert "holidays" in top_level(after)
    assert "httpx" not in top_level(after)  # loaded by the base, before the measurement
