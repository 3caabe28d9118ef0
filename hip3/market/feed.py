"""The market-data feed: bbo and activeAssetCtx frames into one `MarketState` per market.

Each frame touches only its own market's state and marks that market dirty, so the cost of a frame does not
grow with the number of markets (the predecessor re-evaluated every market on every message). The signal task
takes the dirty markets and reads their latest state: a set plus an event, never a queue, so ten quotes of one
market before the signal task runs are evaluated once, on the newest (../shared/design.md, channels).

Oracle bookkeeping: a ctx message whose oracle equals the previous one refreshes `ctx_received_at` but is not
an oracle update (predecessor A-002). The first oracle seen counts as update 1, with no previous price.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import trio

from hip3.core.market import MarketSpec
from hip3.market.state import MarketState
from hip3.net.ws import WsConnection
from hip3.protocol.messages import AssetCtx, Bbo

MARKET_CHANNELS = ("bbo", "activeAssetCtx")


class DirtyMarkets:
    """Which markets changed since the signal task last looked, in first-marked order."""

    def __init__(self) -> None:
        self._coins: dict[str, None] = {}  # a dict keeps first-marked order; marking twice is a no-op
        self._marked = trio.Event()

    def __len__(self) -> int:
        return len(self._coins)

    def mark(self, coin: str) -> None:
        self._coins[coin] = None
        self._marked.set()

    async def take(self) -> list[str]:
        """Wait until at least one market is dirty; return them all and start a new, empty set."""
        if self._coins:
            await trio.lowlevel.checkpoint()
        while not self._coins:
            if self._marked.is_set():
                self._marked = trio.Event()
            await self._marked.wait()
        coins = list(self._coins)
        self._coins.clear()
        return coins


class MarketFeed:
    """The per-market states, updated frame by frame."""

    def __init__(self, specs: Mapping[str, MarketSpec]) -> None:
        self.states: Mapping[str, MarketState] = {
            coin: MarketState(coin, spec) for coin, spec in specs.items()
        }
        self.dirty = DirtyMarkets()
        self.stats: Counter[str] = Counter()

    def subscriptions(self) -> list[dict[str, str]]:
        return [{"type": channel, "coin": coin} for coin in self.states for channel in MARKET_CHANNELS]

    def apply(self, frame: Bbo | AssetCtx, received_at: float) -> None:
        """Fold one frame into its market's state and mark it dirty; unknown coins are only counted."""
        state = self.states.get(frame.coin)
        if state is None:
            self.stats["unknown_coin"] += 1
            return
        if isinstance(frame, Bbo):
            _apply_bbo(state, frame, received_at)
            self.stats["bbo"] += 1
        else:
            _apply_asset_ctx(state, frame, received_at)
            self.stats["asset_ctx"] += 1
        state.frames += 1
        self.dirty.mark(frame.coin)


def _apply_bbo(state: MarketState, bbo: Bbo, received_at: float) -> None:
    state.bid_px, state.bid_sz = (None, None) if bbo.bid is None else (bbo.bid.px, bbo.bid.sz)
    state.ask_px, state.ask_sz = (None, None) if bbo.ask is None else (bbo.ask.px, bbo.ask.sz)
    state.bbo_exchange_ms = bbo.time_ms
    state.bbo_received_at = received_at
    if state.last_exchange_ms is None or bbo.time_ms > state.last_exchange_ms:
        state.last_exchange_ms = bbo.time_ms


def _apply_asset_ctx(state: MarketState, ctx: AssetCtx, received_at: float) -> None:
    if ctx.oracle_px != state.oracle_px:
        state.previous_oracle_px = state.oracle_px
        state.oracle_px = ctx.oracle_px
        state.oracle_changed_at = received_at
        state.oracle_updates += 1
    state.mark_px = ctx.mark_px
    state.ctx_mid_px = ctx.mid_px
    state.open_interest = ctx.open_interest
    state.funding = ctx.funding
    state.ctx_received_at = received_at


async def run_feed(
    ws: WsConnection, feed: MarketFeed, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Declare bbo and activeAssetCtx for every market and apply every such frame, from the connection's
    reader, at its receive time (`WsConnection.on_frames`: no task switch between the socket and the state).

    Reports started once the subscriptions are declared (not acknowledged: wait for LIVE on `ws` for that);
    the frames are applied for as long as this task runs.
    """
    stop_applying = ws.on_frames(feed.apply, Bbo, AssetCtx)
    try:
        for subscription in feed.subscriptions():
            ws.subscribe(subscription)
        task_status.started()
        await trio.sleep_forever()
    finally:
        stop_applying()
