"""yQuant: TradingView alerts to risk-checked orders at Korea Investment & Securities.

This package is the shared kernel: message types, stream and key names, the Valkey
bus, settings, logging and metrics helpers, and the ``yquant`` command.
"""

__version__ = "0.1.0"
