"""A stand-in for SimExchange's request and event surface, for testing the transports alone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hip3.sim.events import SimEvent

BOOK = {
    "coin": "xyz:TSLA",
    "time": 1,
    "levels": [[{"px": "430", "sz": "1", "n": 1}], [{"px": "431", "sz": "2", "n": 1}]],
}


class FakeExchange:
    def __init__(self) -> None:
        self.listeners: list[Callable[[SimEvent], None]] = []
        self.requests: list[tuple[str, object]] = []

    def info(self, request: object) -> tuple[int, object]:
        self.requests.append(("info", request))
        kind = request.get("type") if isinstance(request, dict) else None
        answers: dict[Any, tuple[int, object]] = {
            "l2Book": (200, BOOK),
            "allMids": (200, {"xyz:TSLA": "430.5"}),
            "userFills": (200, [{"coin": "xyz:TSLA", "oid": 1}]),
            "meta": (500, None),
        }
        return answers.get(kind, (422, "Failed to deserialize the JSON body into the target type"))

    def exchange(self, body: object) -> tuple[int, object]:
        self.requests.append(("exchange", body))
        return 200, {"status": "ok", "response": {"type": "default"}}

    def add_listener(self, listener: Callable[[SimEvent], None]) -> Callable[[], None]:
        self.listeners.append(listener)
        return lambda: self.listeners.remove(listener)

    def emit(self, event: SimEvent) -> None:
        for listener in list(self.listeners):
            listener(event)
