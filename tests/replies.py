"""Valkey replies as the tests' clients get them, typed.

redis-py types replies loosely (``bytes | str``, often ``| None``; XRANGE ids and fields may be
``None`` and the reply itself too) because a client may decode responses. The tests' clients do
not: ids, field names and values come back as ``bytes``. These helpers check that and hand the
reply on with that type, so a test reads ``fields[b"data"]`` without guessing.
"""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.typing import EncodableT

Fields = dict[bytes, bytes]
Entry = tuple[bytes, Fields]


def as_bytes(value: object) -> bytes:
    """``value``, a reply the client left undecoded (fails the test if it is ``None`` or text)."""
    assert isinstance(value, bytes), f"expected bytes (an undecoded reply), got {value!r}"
    return value


async def xrange(client: aioredis.Redis, stream: str) -> list[Entry]:
    """Every entry of ``stream``, oldest first (``XRANGE stream - +``)."""
    reply = await client.xrange(stream)
    return [
        (as_bytes(entry_id), {as_bytes(name): as_bytes(value) for name, value in (fields or {}).items()})
        for entry_id, fields in reply or []
    ]


def encodable(fields: Fields) -> dict[EncodableT, EncodableT]:
    """``fields`` as ``XADD`` takes them (its parameter is a dict of any encodable key and value)."""
    return {name: value for name, value in fields.items()}
