"""kissim: a KIS (Korea Investment & Securities) Open API simulator.

It speaks the real protocol described in docs/kis-protocol.md (REST under the KIS paths, WebSocket
execution notices at ``/tryitout``) plus a small JSON admin API under ``/admin`` for tests and demos.
Run it with ``python -m kissim --port 18000 --mode virtual``; build it in-process with
``kissim.app.create_app(SimConfig(...))``.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
