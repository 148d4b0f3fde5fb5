"""Every order event goes to exactly one stream: the order manager's (it acts on the event) or
the progress stream (nothing trades on it). A new event type that falls in neither would sit on
the executions stream acknowledged unread; one in both would be acted on nowhere."""

from __future__ import annotations

import inspect

from ordermanager.executions import ExecutionHandler
from yquant import keys, messages


def order_events() -> set[str]:
    return {
        name
        for name, cls in inspect.getmembers(messages, inspect.isclass)
        if name.startswith("Order") and issubclass(cls, messages.Message)
    }


def test_each_order_event_is_either_acted_on_or_progress() -> None:
    events = order_events()
    assert {"OrderFilled", "OrderSubmitted"} <= events
    acted_on = events & ExecutionHandler.HANDLED_TYPES
    assert acted_on | keys.PROGRESS_EVENTS == events
    assert not acted_on & keys.PROGRESS_EVENTS
    assert {name: keys.event_stream(name) for name in acted_on} == dict.fromkeys(acted_on, keys.EXECUTIONS)
