"""Counts what this process sends to Valkey: requests (round trips) and commands by name.

Imported at start-up by every Python process that has this folder on PYTHONPATH (the site module
imports ``sitecustomize``) while ``YQ_TRAFFIC_DIR`` is set: ``python -m benchmarks.valkey_traffic``
starts the system that way. A request is one write to a connection that then waits for its
answer: one per command sent alone, one per pipeline, as tests/integration/ordermanager/
test_hot_path.py counts them. A server function is counted as ``FCALL <name>``. Every quarter
second the counts go to ``$YQ_TRAFFIC_DIR/<YQ_INSTANCE or program>.<pid>.json``.
"""

from __future__ import annotations

import os

if os.environ.get("YQ_TRAFFIC_DIR"):
    import collections
    import json
    import sys
    import threading
    import time
    import types
    from pathlib import Path
    from typing import Any

    _commands: collections.Counter[str] = collections.Counter()
    _where: collections.Counter[str] = collections.Counter()
    _trace = os.environ.get("YQ_TRAFFIC_WHERE") == "1"
    _ours = ("/yquant/", "/ordermanager/", "/brokergateway/", "/webhook/", "/dashboard/", "/notifier/")
    _requests = [0]
    _lock = threading.Lock()

    def _name(args: tuple[Any, ...]) -> str:
        def text(value: Any) -> str:
            return value.decode(errors="replace") if isinstance(value, bytes) else str(value)

        if not args:
            return "?"
        words = text(args[0]).split()
        name = words[0].upper() if words else "?"
        if name in ("FCALL", "FCALL_RO"):
            rest = words[1:] + [text(a) for a in args[1:2]]
            return f"{name} {rest[0]}" if rest else name
        if name in ("CLIENT", "XINFO", "FUNCTION", "CONFIG", "XGROUP", "COMMAND") and len(words) + len(args) > 1:
            sub = words[1] if len(words) > 1 else text(args[1])
            return f"{name} {sub.upper()}"
        return name

    def _caller() -> str:
        frame: types.FrameType | None = sys._getframe(2)
        while frame is not None:
            name = frame.f_code.co_filename
            if "site-packages" not in name and any(part in name for part in _ours):
                module = Path(name).parent.name + "/" + Path(name).stem
                return f"{module}.{frame.f_code.co_name}:{frame.f_lineno}"
            frame = frame.f_back
        return "?"

    def _patch(connection_class: Any, asynchronous: bool) -> None:
        pack = connection_class.pack_command
        send = connection_class.send_packed_command

        def pack_command(self: Any, *args: Any) -> Any:
            with _lock:
                _commands[_name(args)] += 1
                if _trace:
                    _where[f"{_name(args)} @ {_caller()}"] += 1
            return pack(self, *args)

        async def send_async(self: Any, command: Any, check_health: bool = True) -> None:
            with _lock:
                _requests[0] += 1
                if _trace:
                    _where[f"(round trip) @ {_caller()}"] += 1
            await send(self, command, check_health)

        def send_sync(self: Any, command: Any, check_health: bool = True) -> None:
            with _lock:
                _requests[0] += 1
                if _trace:
                    _where[f"(round trip) @ {_caller()}"] += 1
            send(self, command, check_health)

        connection_class.pack_command = pack_command
        if not asynchronous:  # the synchronous pipeline packs without pack_command
            pack_many = connection_class.pack_commands

            def pack_commands(self: Any, commands: Any) -> Any:
                commands = [tuple(c) for c in commands]
                with _lock:
                    _commands.update(_name(c) for c in commands)
                return pack_many(self, commands)

            connection_class.pack_commands = pack_commands
        connection_class.send_packed_command = send_async if asynchronous else send_sync

    def _dump(folder: Path) -> None:
        label = os.environ.get("YQ_INSTANCE") or Path(sys.argv[0]).parent.name or "python"
        target = folder / f"{label}.{os.getpid()}.json"
        while True:
            with _lock:
                data = {"requests": _requests[0], "commands": dict(_commands), "where": dict(_where)}
            scratch = target.with_suffix(".tmp")
            scratch.write_text(json.dumps(data))
            scratch.replace(target)
            time.sleep(0.25)

    try:
        import redis.asyncio.connection as _async_connection
        import redis.connection as _sync_connection
    except ImportError:  # a process without the client has nothing to count
        pass
    else:
        _patch(_async_connection.AbstractConnection, asynchronous=True)
        _patch(_sync_connection.AbstractConnection, asynchronous=False)
        _folder = Path(os.environ["YQ_TRAFFIC_DIR"])
        _folder.mkdir(parents=True, exist_ok=True)
        threading.Thread(target=_dump, args=(_folder,), daemon=True, name="valkey-traffic").start()
