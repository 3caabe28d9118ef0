"""The replay exchange: the simulator's engine (matching, ledger, orders, fills) with books and oracles driven
by a recording instead of the market process.

For each recorded frame, `apply` moves the engine: a bbo frame replaces the maker quotes of its coin by the
recorded best bid and ask (recorded size) with, behind each, the levels of the coin's last recorded seed that
are strictly worse; an activeAssetCtx frame sets the oracle (the engine derives its mark as it always does).
A seed (the l2Book snapshot the live bot fetched when its connection went LIVE) replaces the maker quotes by
all its levels, unless a bbo with a newer exchange time was applied already: then that bbo's top stays, with
the seed's levels behind it. Depth behind the top is therefore the last snapshot's, an approximation (the
recording has no depth updates); without seeds (older recordings) the book is the top of book only.
`publish` then hands the recorded frame itself to the WebSocket sessions,
so the bot parses the same bbo and activeAssetCtx payloads it would have received live. The engine's own bbo
and activeAssetCtx events are withheld (the recording is the bot's only source of those two channels); its
l2Book, trades, mids, order updates and fills pass through, so the bot's own orders are answered as in the
simulator. Apply and publish are separate so that a latency can separate them (hip3.replay.run).

Frames of coins the scenario does not list, and frames that are not bbo/activeAssetCtx, are counted, skipped.
Seeds are never published (the live bot fetched them over /info; the replay bot asks the engine).
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
Level = tuple[Decimal, Decimal]
SEED = "seed"  # the channel of a MarketFrame made from a recorded book seed


@attrs.frozen(slots=True)
class MarketFrame:
    """A recorded frame, parsed: `channel` is bbo, activeAssetCtx or SEED, `data` its payload (the l2Book
    answer for a seed)."""

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


def parse_seed(book: dict[str, Any]) -> MarketFrame | None:
    """The recorded l2Book answer as a SEED frame, or None if it names no coin."""
    coin = book.get("coin")
    return MarketFrame(SEED, coin, book) if isinstance(coin, str) else None


def _level(wire: object) -> Level | None:
    if not isinstance(wire, dict):
        return None
    return Decimal(str(wire["px"])), Decimal(str(wire["sz"]))


def _side(wire: object) -> list[Level]:
    levels = [_level(level) for level in wire] if isinstance(wire, list) else []
    return [level for level in levels if level is not None]


def _with_depth(top: Level | None, depth: list[Level], *, bid: bool) -> list[Level]:
    """`top`, then the levels of `depth` strictly worse than it; nothing if the side has no top."""
    if top is None:
        return []
    return [top, *(level for level in depth if (level[0] < top[0] if bid else level[0] > top[0]))]


@attrs.define
class _CoinBook:
    """What the replay knows of one coin's book: the last seed's levels and the last bbo's top."""

    bids: list[Level] = attrs.Factory(list)
    asks: list[Level] = attrs.Factory(list)
    top: tuple[Level | None, Level | None] | None = None
    top_ms: int = -1  # the exchange time of `top`


@attrs.define
class ReplayStats:
    applied: int = 0
    published: int = 0
    skipped: int = 0  # not a bbo/activeAssetCtx frame or seed, or a coin the scenario does not list
    seeds: int = 0  # recorded book seeds applied


class ReplayExchange:
    """`ExchangeEndpoints` (info, exchange, add_listener) for the simulator's HTTP and WS transports."""

    def __init__(self, scenario: Scenario, *, wall_ms: Callable[[], int]) -> None:
        self.sim = SimExchange(scenario, wall_ms=wall_ms)
        self.stats = ReplayStats()
        self._coins = set(self.sim.coins)
        self._listeners: list[Listener] = []
        self._books: dict[str, _CoinBook] = {}
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
        return self._used(parse_frame(text))

    def parse_seed(self, book: dict[str, Any]) -> MarketFrame | None:
        """The recorded book seed as a frame if the replay uses it (counted as skipped otherwise)."""
        return self._used(parse_seed(book))

    def _used(self, frame: MarketFrame | None) -> MarketFrame | None:
        if frame is None or frame.coin not in self._coins:
            self.stats.skipped += 1
            return None
        return frame

    def apply(self, frame: MarketFrame) -> None:
        """Move the engine's book or oracle of the frame's coin to the recorded values."""
        if frame.channel == "bbo":
            self._apply_bbo(frame)
        elif frame.channel == SEED:
            self._apply_seed(frame)
        else:
            ctx = frame.data.get("ctx")
            oracle = ctx.get("oraclePx") if isinstance(ctx, dict) else None
            if oracle is not None:
                self.sim.set_oracle(frame.coin, Decimal(str(oracle)))
        self.sim.on_time()
        self.stats.applied += 1

    def _apply_bbo(self, frame: MarketFrame) -> None:
        levels = frame.data.get("bbo") or [None, None]
        book = self._books.setdefault(frame.coin, _CoinBook())
        book.top, book.top_ms = (_level(levels[0]), _level(levels[1])), _time_ms(frame.data)
        self._quote(frame.coin, book)

    def _apply_seed(self, frame: MarketFrame) -> None:
        sides = frame.data.get("levels")
        bids, asks = (sides[0], sides[1]) if isinstance(sides, list) and len(sides) == 2 else ([], [])
        book = self._books.setdefault(frame.coin, _CoinBook())
        book.bids, book.asks = _side(bids), _side(asks)
        if book.top_ms <= _time_ms(frame.data):
            book.top = None  # the seed is the newest: its own best levels are the top
        self._quote(frame.coin, book)
        self.stats.seeds += 1

    def _quote(self, coin: str, book: _CoinBook) -> None:
        if book.top is None:
            self.sim.set_maker_quotes(coin, book.bids, book.asks)
            return
        bid, ask = book.top
        self.sim.set_maker_quotes(
            coin, _with_depth(bid, book.bids, bid=True), _with_depth(ask, book.asks, bid=False)
        )

    def publish(self, frame: MarketFrame) -> None:
        """Hand the recorded frame to the WebSocket sessions subscribed to it."""
        if frame.channel == SEED:
            return
        if frame.channel == "bbo":
            _, book = self.sim.info({"type": "l2Book", "coin": frame.coin})
            self._emit(BookChanged(frame.coin, book if isinstance(book, dict) else {}, frame.data))
        else:
            self._emit(AssetCtxChanged(frame.coin, frame.data))
        self.stats.published += 1


def _time_ms(data: dict[str, Any]) -> int:
    time = data.get("time")
    return time if isinstance(time, int) else -1
