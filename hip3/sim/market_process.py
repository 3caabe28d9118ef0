"""The simulated market: per-market oracles and the market makers who quote around a lagged reference.

Pure and deterministic: no Trio, no clock. Time is milliseconds since `start()`, passed in by the caller
(hip3.sim.driver runs it on Trio's clock). Each market has its own `random.Random`, seeded from the scenario
seed and the market's wire name, so adding a market leaves the others' paths unchanged.

Every `oracle_interval_ms` each market's oracle takes a step: a Gaussian move of `volatility_bps`, plus
with probability `jump_probability` a jump of 0.5–1.5 × `jump_bps` either way, clamped to `max_oracle_move`.
The makers keep quoting around their previous reference until `quote_lag_ms` after the update, then walk to
the new oracle in steps of about `CATCH_UP_STEP_MS` over `catch_up_ms`. Right after a jump the book is
therefore stale (the ask below the oracle after an up-jump, the bid above it after a down-jump) and the
dislocation decays as the quotes catch up. Floats are used only for the random draws; every price and size
that leaves this module is a Decimal valid for the market's tick and lot rules.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from decimal import Decimal

import attrs

from hip3.core.market import BPS_DECIMAL, MarketSpec
from hip3.core.order import Side
from hip3.core.rounding import PRICE_SIG_FIGS, ZeroSizeError, round_price, round_size
from hip3.sim.scenario import MarketProcessDef, Scenario, market_spec

CATCH_UP_STEP_MS = 250  # the makers re-quote this often while walking to a new reference
Level = tuple[Decimal, Decimal]  # (price, size)


@attrs.frozen
class OracleUpdate:
    coin: str  # wire name: "xyz:TSLA" on a builder dex, "BTC" on the first dex
    oracle_px: Decimal


@attrs.frozen
class QuoteUpdate:
    """The makers' whole book for one market, best level first on each side."""

    coin: str
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]


MarketUpdate = OracleUpdate | QuoteUpdate


# --- prices on the market's tick grid ---------------------------------------------------------------------


def price_tick(price: Decimal, spec: MarketSpec) -> Decimal:
    """The price grid's step at `price`: 5 significant figures, at most `6 - szDecimals` decimals."""
    decimals = max(0, min(spec.max_price_decimals, PRICE_SIG_FIGS - 1 - price.adjusted()))
    return Decimal(1).scaleb(-decimals)


def _on_grid(price: Decimal, spec: MarketSpec) -> Decimal:
    """One spelling per price (95000, never 95000.0000), so equal books have equal reprs."""
    return price.quantize(price_tick(price, spec))


def floor_price(price: Decimal, spec: MarketSpec) -> Decimal:
    return _on_grid(round_price(price, spec, Side.SELL), spec)


def ceil_price(price: Decimal, spec: MarketSpec) -> Decimal:
    return _on_grid(round_price(price, spec, Side.BUY), spec)


def nearest_price(price: Decimal, spec: MarketSpec) -> Decimal:
    down, up = floor_price(price, spec), ceil_price(price, spec)
    return up if up - price < price - down else down


# --- one market -------------------------------------------------------------------------------------------


@attrs.define
class _Walk:
    """The makers' move to `target` (from their reference when the walk begins), in `steps` steps."""

    target: Decimal
    begin_ms: int  # the end of the quote lag
    duration_ms: int
    steps: int
    origin: Decimal | None = None  # the reference when the first step was taken
    done: int = 0

    def next_step_ms(self) -> int:
        return self.begin_ms + (self.done + 1) * self.duration_ms // self.steps

    @property
    def finished(self) -> bool:
        return self.done >= self.steps


def _new_walk(target: Decimal, oracle_ms: int, params: MarketProcessDef) -> _Walk:
    steps = max(1, math.ceil(params.catch_up_ms / CATCH_UP_STEP_MS))
    return _Walk(target, oracle_ms + params.quote_lag_ms, params.catch_up_ms, steps)


@attrs.define
class _Market:
    coin: str
    spec: MarketSpec
    params: MarketProcessDef
    rng: random.Random
    oracle: Decimal
    reference: Decimal
    quotes_live: bool  # False for delisted markets: no makers
    walks: list[_Walk] = attrs.field(factory=list)
    forced_jump_bps: float | None = None
    stopped: bool = False
    last_sent: QuoteUpdate | None = None

    def next_step_ms(self) -> int | None:
        return min((walk.next_step_ms() for walk in self.walks), default=None)

    def take_steps_due(self, now_ms: int) -> bool:
        """Apply every walk step due at or before `now_ms`; True if any was due."""
        stepped = False
        while (due := self.next_step_ms()) is not None and due <= now_ms:
            walk = min(self.walks, key=_Walk.next_step_ms)
            self._step(walk)
            stepped = True
        return stepped

    def _step(self, walk: _Walk) -> None:
        if walk.origin is None:
            walk.origin = self.reference
            # A newer walk supersedes the ones still under way: makers chase the latest oracle.
            self.walks = [w for w in self.walks if w is walk or w.begin_ms > walk.begin_ms]
        walk.done += 1
        if walk.finished:
            self.reference = walk.target
            self.walks.remove(walk)
        else:
            fraction = Decimal(walk.done) / Decimal(walk.steps)
            self.reference = nearest_price(walk.origin + (walk.target - walk.origin) * fraction, self.spec)


class MarketProcess:
    """Oracles and makers' quotes for every market of a scenario, advanced by the caller's clock."""

    def __init__(self, scenario: Scenario) -> None:
        self._interval_ms = scenario.oracle_interval_ms
        self._max_move = scenario.max_oracle_move
        self._markets: dict[str, _Market] = {}
        for dex_index, dex in enumerate(scenario.dexes):
            for meta_index, market in enumerate(dex.markets):
                spec = market_spec(market, dex.name, dex_index, meta_index)
                start_px = nearest_price(market.start_price, spec)
                self._markets[spec.name] = _Market(
                    coin=spec.name,
                    spec=spec,
                    params=market.process,
                    rng=random.Random(f"{scenario.seed}/{spec.name}"),
                    oracle=start_px,
                    reference=start_px,
                    quotes_live=not market.is_delisted,
                )
        self._next_oracle_ms = self._interval_ms
        self._started = False

    @property
    def coins(self) -> tuple[str, ...]:
        return tuple(self._markets)

    def start(self) -> list[MarketUpdate]:
        """The initial oracle and quotes of every market, at time 0."""
        if self._started:
            raise RuntimeError("MarketProcess.start() called twice")
        self._started = True
        updates: list[MarketUpdate] = []
        for market in self._markets.values():
            if not market.stopped:
                updates.append(OracleUpdate(market.coin, market.oracle))
            updates.extend(self._quotes_if_changed(market))
        return updates

    def next_event_ms(self) -> int:
        """When the next update is due, in ms since start (the next oracle update at the latest)."""
        steps = (market.next_step_ms() for market in self._markets.values())
        return min([self._next_oracle_ms, *(due for due in steps if due is not None)])

    def advance(self, now_ms: int) -> list[MarketUpdate]:
        """Every update due at or before `now_ms`, in time order; quotes only for books that changed."""
        if not self._started:
            raise RuntimeError("call MarketProcess.start() before advance()")
        updates: list[MarketUpdate] = []
        while (due_ms := self.next_event_ms()) <= now_ms:
            updates.extend(self._events_at(due_ms))
        return updates

    def oracle(self, coin: str) -> Decimal:
        return self._market(coin).oracle

    def reference(self, coin: str) -> Decimal:
        """The price the makers are quoting around now."""
        return self._market(coin).reference

    def quotes(self, coin: str) -> QuoteUpdate:
        """The makers' current book for `coin` (empty for a delisted market)."""
        return self._book(self._market(coin))

    def stop_market_data(self, coin: str, stopped: bool) -> None:
        """Fault: while stopped, the market keeps moving but no update for `coin` is emitted.

        On resumption the next oracle update is emitted as usual and the book as soon as it differs from the
        last one emitted.
        """
        self._market(coin).stopped = stopped

    def force_jump(self, coin: str, bps: float) -> None:
        """Script the next oracle move of `coin`: `bps` (signed; still clamped to the per-update cap)."""
        self._market(coin).forced_jump_bps = bps

    # --- internals ----------------------------------------------------------------------------------------

    def _market(self, coin: str) -> _Market:
        try:
            return self._markets[coin]
        except KeyError:
            raise KeyError(f"no market {coin!r}; markets: {', '.join(self._markets)}") from None

    def _events_at(self, now_ms: int) -> Iterator[MarketUpdate]:
        oracle_due = now_ms == self._next_oracle_ms
        if oracle_due:
            self._next_oracle_ms += self._interval_ms
        for market in self._markets.values():
            if oracle_due:
                self._move_oracle(market, now_ms)
                if not market.stopped:
                    yield OracleUpdate(market.coin, market.oracle)
            if market.take_steps_due(now_ms) or oracle_due:
                yield from self._quotes_if_changed(market)

    def _move_oracle(self, market: _Market, now_ms: int) -> None:
        move = self._draw_move(market)
        previous = market.oracle
        market.oracle = self._clamped_price(previous, move, market.spec)
        market.walks.append(_new_walk(market.oracle, now_ms, market.params))

    def _draw_move(self, market: _Market) -> Decimal:
        """The oracle's relative move for one update. Always four draws, so a forced jump keeps the stream."""
        params, rng = market.params, market.rng
        noise_bps = rng.gauss(0.0, params.volatility_bps)
        jumps = rng.random() < params.jump_probability
        jump_bps = params.jump_bps * (0.5 + rng.random()) * (1 if rng.random() < 0.5 else -1)
        move_bps = noise_bps + (jump_bps if jumps else 0.0)
        if market.forced_jump_bps is not None:
            move_bps, market.forced_jump_bps = market.forced_jump_bps, None
        move = Decimal(f"{move_bps:.6f}") / BPS_DECIMAL
        return max(-self._max_move, min(self._max_move, move))

    def _clamped_price(self, previous: Decimal, move: Decimal, spec: MarketSpec) -> Decimal:
        """`previous · (1 + move)` on the tick grid, rounded towards `previous` if nearest breaks the cap."""
        target = previous * (1 + move)
        price = nearest_price(target, spec)
        if abs(price - previous) > previous * self._max_move:
            price = floor_price(target, spec) if target > previous else ceil_price(target, spec)
        return price

    def _quotes_if_changed(self, market: _Market) -> Iterator[QuoteUpdate]:
        if not market.quotes_live:
            return
        book = self._book(market)
        if market.stopped or book == market.last_sent:
            return
        market.last_sent = book
        yield book

    def _book(self, market: _Market) -> QuoteUpdate:
        if not market.quotes_live:
            return QuoteUpdate(market.coin, (), ())
        center = _quoted_center(market.reference, market.params)
        bids = _side_levels(center, market.params, market.spec, Side.BUY)
        asks = _side_levels(center, market.params, market.spec, Side.SELL)
        return QuoteUpdate(market.coin, bids, asks)


def _quoted_center(reference: Decimal, params: MarketProcessDef) -> Decimal:
    """Where the makers centre their quotes: the reference, shifted by the market's structural offset."""
    if not params.quote_offset_bps:
        return reference
    return reference * (1 + Decimal(str(params.quote_offset_bps)) / 10_000)


def _side_levels(
    reference: Decimal, params: MarketProcessDef, spec: MarketSpec, side: Side
) -> tuple[Level, ...]:
    """Maker levels on one side, best first: bids rounded down, asks up, each strictly worse than the last.

    The best bid is below the reference and the best ask above it, so the book is never crossed. On a coarse
    tick grid a level may sit further out than its offset; bids stop before reaching zero.
    """
    half_spread = Decimal(str(params.spread_bps)) / 2
    step = Decimal(str(params.level_step_bps))
    levels: list[Level] = []
    inside = reference  # each level must be strictly outside this price
    for index in range(params.levels):
        offset = (half_spread + step * index) / BPS_DECIMAL
        if side is Side.BUY:
            price = _bid_price(reference * (1 - offset), inside, spec)
        else:
            price = _ask_price(reference * (1 + offset), inside, spec)
        if price is None:
            break
        levels.append((price, _level_size(params.level_notional_usd, price, spec)))
        inside = price
    return tuple(levels)


def _bid_price(target: Decimal, inside: Decimal, spec: MarketSpec) -> Decimal | None:
    below = inside - price_tick(inside, spec)
    if below <= 0:
        return None
    return floor_price(min(target, below), spec) if target > 0 else None


def _ask_price(target: Decimal, inside: Decimal, spec: MarketSpec) -> Decimal:
    return ceil_price(max(target, inside + price_tick(inside, spec)), spec)


def _level_size(notional: Decimal, price: Decimal, spec: MarketSpec) -> Decimal:
    try:
        return round_size(notional / price, spec)
    except ZeroSizeError:
        return Decimal(1).scaleb(-spec.sz_decimals)


def dislocation_bps(oracle_px: Decimal, book: QuoteUpdate) -> Decimal:
    """How far the book is through the oracle, in bps: (oracle − best ask) or (best bid − oracle), the larger.

    Positive means a taker can buy below (or sell above) the oracle; an empty side counts as no dislocation.
    """
    edges = [Decimal(0)]
    if book.asks:
        edges.append((oracle_px - book.asks[0][0]) / oracle_px * BPS_DECIMAL)
    if book.bids:
        edges.append((book.bids[0][0] - oracle_px) / oracle_px * BPS_DECIMAL)
    return max(edges)
