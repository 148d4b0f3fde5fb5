"""``FCALL yq_ingest``, spelled once: a signal appended once per dedupe key (yquant/functions.lua).

Its own module, free of the bus's imports (prometheus_client among them), because the webhook,
which keeps its memory small, calls it on every alert.
"""

from __future__ import annotations

from redis.typing import EncodableT

FUNCTION = "yq_ingest"
NUMKEYS = 2


def arguments(
    dedupe_key: str, stream: str, ttl_s: int, maxlen: int, data: bytes | str, signal_id: str | None = None
) -> list[EncodableT]:
    """The keys and arguments of ``FCALL yq_ingest`` (after ``FUNCTION, NUMKEYS``) for a
    ``SignalReceived`` whose JSON is ``data``: the dedupe key set NX for ``ttl_s``, then the append.

    With ``signal_id`` the dedupe key holds it and a resend answers ``[0, first signal id]``; without,
    a resend answers 0 (yquant/functions.lua). The one place the call is spelled: the webhook, its
    journal's forwarder and the dashboard all ingest through it.
    """
    values: list[EncodableT] = [dedupe_key, stream, ttl_s, maxlen, "SignalReceived", data]
    return values if signal_id is None else [*values, signal_id]
