"""What each package costs a worker's memory just by being imported.

``python -m benchmarks.import_cost`` imports each module below in a fresh interpreter (the one
running this, so the project's virtualenv) and prints the resident memory (VmRSS) it added over
a bare interpreter and how many modules came with it; median of ``--runs`` runs (3). The service
rows are each worker's entry point, which imports all it runs on (nothing is imported lazily on
the hot path); the "+" rows are what a package adds to an interpreter that already holds the
gateway's other imports, which is what it costs the gateway. ``--json`` prints the rows as JSON.

Figures depend on the interpreter and the machine; they compare packages in one run, and the
services against the packages they are made of. Modules shared by several packages count once,
for the first row that imports them when rows are summed by hand: each row here is measured
alone.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from dataclasses import asdict, dataclass

# The calendar loads holidays when first asked (yquant/markets.py): ask it once.
HOLIDAYS = "from datetime import date; from yquant import markets, messages; markets.is_trading_day(messages.Market.KRX, date(2026, 12, 25))"  # noqa: E501
PACKAGES = {
    "asyncio": "import asyncio",
    "ssl": "import ssl",
    "redis.asyncio": "import redis.asyncio",
    "pydantic": "import pydantic",
    "pydantic_settings": "import pydantic_settings",
    "httpx": "import httpx",
    "starlette": "import starlette.applications, starlette.routing",
    "fastapi": "import fastapi",
    "uvicorn": "import uvicorn",
    "prometheus_client": "import prometheus_client",
    "orjson": "import orjson",
    "websockets": "import websockets.asyncio.client",
    "pycryptodome (AES)": "from Crypto.Cipher import AES",
    "cryptography (AES)": "from cryptography.hazmat.primitives.ciphers import Cipher",
    "holidays (KRX, US)": HOLIDAYS,
}
# What a package adds to a worker that already runs on the others: the gateway's own stack first.
GATEWAY_STACK = "import asyncio, ssl, httpx, orjson, redis.asyncio, pydantic_settings, websockets.asyncio.client"
ON_GATEWAY_STACK = {
    "+ pycryptodome (AES)": "from Crypto.Cipher import AES",
    "+ cryptography (AES)": "from cryptography.hazmat.primitives.ciphers import Cipher",
    "+ holidays (KRX, US)": HOLIDAYS,
}
SERVICES = {
    "webhook": "import webhook.__main__",
    "ordermanager": "import ordermanager.__main__",
    "brokergateway": "import brokergateway.__main__",
    "dashboard": "import dashboard.__main__",
}

PROBE = """
import sys
def rss():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")
exec(sys.argv[2])
before, modules = rss(), set(sys.modules)
exec(sys.argv[1])
after = rss()
import json
print(json.dumps({"kib": after - before, "modules": sorted(set(sys.modules) - modules)}))
"""


@dataclass(frozen=True)
class Cost:
    name: str
    statement: str
    mib: float  # median VmRSS added
    modules: int  # modules the statement brought in

    def row(self) -> str:
        return f"{self.name:<22} {self.mib:>7.1f} MiB {self.modules:>5} modules   {self.statement}"


def probe(statement: str, base: str = "") -> tuple[int, list[str]]:
    """KiB of VmRSS the statement adds to a fresh interpreter that has run ``base``, and the
    modules it loads."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE, statement, base], capture_output=True, text=True, check=True, timeout=120
    )
    answer = json.loads(out.stdout)
    return int(answer["kib"]), list(answer["modules"])


def measure(name: str, statement: str, runs: int = 3, base: str = "") -> Cost:
    results = [probe(statement, base) for _ in range(runs)]
    return Cost(name, statement, statistics.median(kib for kib, _ in results) / 1024, len(results[0][1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    sections = {
        "each package alone": [measure(name, code, args.runs) for name, code in PACKAGES.items()],
        f"after {GATEWAY_STACK}": [
            measure(name, code, args.runs, GATEWAY_STACK) for name, code in ON_GATEWAY_STACK.items()
        ],
        "each worker's entry point": [measure(name, code, args.runs) for name, code in SERVICES.items()],
    }
    if args.json:
        print(json.dumps({title: [asdict(cost) for cost in costs] for title, costs in sections.items()}, indent=2))
        return 0
    print(f"import cost over a bare interpreter ({sys.version.split()[0]}), median of {args.runs} runs")
    for title, costs in sections.items():
        print(f"-- {title}")
        for cost in costs:
            print(cost.row())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
