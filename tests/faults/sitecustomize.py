"""Fault injection for the end-to-end tests, loaded into every child process by ``PYTHONPATH``.

Nothing of this ships: production code has no crash switch. A test sets
``YQ_FAULT_CRASH_AT`` (``after_read``: the order manager read a signal and dies before deciding;
``after_order_append``: it recorded the order, appended ``SubmitOrder`` and recorded its decision,
in one step, and dies before acknowledging the signal) and ``YQ_FAULT_MARKER`` (a file:
the fault fires once, then the restarted process runs normally). The patch is applied when the order manager imports the
module it wraps, so other processes are untouched.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

CRASH_AT = os.environ.get("YQ_FAULT_CRASH_AT", "")
MARKER = os.environ.get("YQ_FAULT_MARKER", "")


def _crash(point: str) -> None:
    marker = Path(MARKER) if MARKER else None
    if marker is not None and marker.exists():
        return
    if marker is not None:
        marker.write_text(point)
    sys.stderr.write(f"fault injection: exiting abruptly {point}\n")
    sys.stderr.flush()
    os._exit(137)


def _patch_service(module: ModuleType) -> None:
    manager = module.OrderManager
    original = manager.handle_signal

    @functools.wraps(original)
    async def handle_signal(self: Any, *args: Any, **kwargs: Any) -> Any:
        _crash("after_read")
        return await original(self, *args, **kwargs)

    manager.handle_signal = handle_signal


def _patch_decisions(module: ModuleType) -> None:
    # A signal's orders are written with its decision: in one transaction (``record_decision``), or,
    # for an order with throttles to pass, in one server function (``record_placement``).
    for name in ("record_decision", "record_placement"):
        original = getattr(module, name)

        @functools.wraps(original)
        async def crash_after(*args: Any, __original: Any = original, **kwargs: Any) -> Any:
            replies = await __original(*args, **kwargs)
            _crash("after_order_append")
            return replies

        vars(module)[name] = crash_after


PATCHES = {
    "after_read": ("ordermanager.service", _patch_service),
    "after_order_append": ("yquant.decisions", _patch_decisions),
}


class _PatchAfterImport(importlib.abc.MetaPathFinder):
    def __init__(self, name: str, patch: Any) -> None:
        self.name, self.patch = name, patch

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.name:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        loader, patch = spec.loader, self.patch

        class _Loader(importlib.abc.Loader):
            def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
                return loader.create_module(spec)

            def exec_module(self, module: ModuleType) -> None:
                loader.exec_module(module)
                patch(module)

        spec.loader = _Loader()
        return spec


if CRASH_AT in PATCHES:
    sys.meta_path.insert(0, _PatchAfterImport(*PATCHES[CRASH_AT]))
