"""The replay exchange: the simulator's engine (matching, ledger, orders, fills) with books and oracles driven
by a recording instead of the market process.

For each recorded frame, `apply` moves the engine: a bbo frame replaces the maker quotes of its coin by the
recorded best bid and ask (one level each, recorded size), an activeAssetCtx frame sets the oracle (the engine
derives its mark as it always does). `publish` then hands the recorded frame itself to the WebSocket sessions,
so the bot parses the same bbo and activeAssetCtx payloads it would have received live. The engine's own bbo
and activeAssetCtx events are withheld (the recording is the bot's only source of those two channels); its
l2Book, trades, mids, order updates and fills pass through, so the bot's own orders are answered as in the
simulator. Apply and publish are separate so that a latency can separate them (hip3.replay.run).

Frames of coins the scenario does not list, and frames that are not bbo/activeAssetCtx, are counted, skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import attrs
import orjson

from hip3.sim.engine import SimExchange
from hip3.sim.events import AssetCtxChanged, BookChanged, SimEvent
from hip3.sim.scenario import Scenario

Listener = Callable[[SimEvent], None]


@attrs.frozen(slots=True)
class MarketFrame:
    """A recorded frame, parsed: `channel` is bbo or activeAssetCtx, `data` its payload."""

    channel: str
    coin: str
    data: dict[str, Any]


def parse_frame(text: str) -> MarketFrame | None:
    """The bbo or activeAssetCtx frame in `text`, or None for anything else."""
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(message, dict):
        return None
    channel, data = message.get("channel"), message.get("data")
    if channel not in ("bbo", "activeAssetCtx") or not isinstance(data, dict):
        return None
    coin = data.get("coin")
    return MarketFrame(channel, coin, data) if isinstance(coin, str) else None


def _level(wire: object) -> list[tuple[Decimal, Decimal]]:
    if not isinstance(wire, dict):
        return []
    return [(Decimal(str(wire["px"])), Decimal(str(wire["sz"])))]


@attrs.define
class ReplayStats:
    applied: int = 0
    published: int = 0
    skipped: int = 0  # not a bbo/activeAssetCtx frame, or a coin the scenario does not list


class ReplayExchange:
    """`ExchangeEndpoints` (info, exchange, add_listener) for the simulator's HTTP and WS transports."""

    def __init__(self, scenario: Scenario, *, wall_ms: Callable[[], int]) -> None:
        self.sim = SimExchange(scenario, wall_ms=wall_ms)
        self.stats = ReplayStats()
        self._coins = set(self.sim.coins)
        self._listeners: list[Listener] = []
        self.sim.add_listener(self._on_engine_event)

    # -- endpoints ------------------------------------------------------------------------------------

    def info(self, request: object) -> tuple[int, object]:
        return self.sim.info(request)

    def exchange(self, body: object) -> tuple[int, object]:
        return self.sim.exchange(body)

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    def _emit(self, event: SimEvent) -> None:
        for listener in list(self._listeners):
            listener(event)

    def _on_engine_event(self, event: SimEvent) -> None:
        if isinstance(event, AssetCtxChanged):
            return
        if isinstance(event, BookChanged) and event.bbo is not None:
            event = attrs.evolve(event, bbo=None)
        self._emit(event)

    # -- the recording --------------------------------------------------------------------------------

    def parse(self, text: str) -> MarketFrame | None:
        """The frame if it is one the replay uses (counted as skipped otherwise)."""
        frame = parse_frame(text)
        if frame is None or frame.coin not in self._coins:
            self.stats.skipped += 1
            return None
        return frame

    def apply(self, frame: MarketFrame) -> None:
        """Move the engine's book or oracle of the frame's coin to the recorded values."""
        if frame.channel == "bbo":
            levels = frame.data.get("bbo") or [None, None]
            self.sim.set_maker_quotes(frame.coin, _level(levels[0]), _level(levels[1]))
        else:
            ctx = frame.data.get("ctx")
            oracle = ctx.get("oraclePx") if isinstance(ctx, dict) else None
            if oracle is not None:
                self.sim.set_oracle(frame.coin, Decimal(str(oracle)))
        self.sim.on_time()
        self.stats.applied += 1

    def publish(self, frame: MarketFrame) -> None:
        """Hand the recorded frame to the WebSocket sessions subscribed to it."""
        if frame.channel == "bbo":
            _, book = self.sim.info({"type": "l2Book", "coin": frame.coin})
            self._emit(BookChanged(frame.coin, book if isinstance(book, dict) else {}, frame.data))
        else:
            self._emit(AssetCtxChanged(frame.coin, frame.data))
        self.stats.published += 1
