"""Exits: the time stop, mark regression and flatten, each a reduce-only Ioc sent through the flatten guard.

- Time stop: a position held `time_stop_threshold_ms` since its entry (`Position.entry_time_ms`, the exchange
  time of the opening fill, kept across resyncs and restarts: predecessor §6 item 21) is closed at the
  mark ± slippage. `run` sleeps until the earliest such moment, converting wall-clock ms to Trio time.
- Mark regression: `on_market_update` is called on every book or oracle update of a market; after
  `min_holding_time_ms` a long exits when the bid is back within `exit_threshold_bps` of the oracle, a short
  when the ask is, priced at that touch ± slippage. It is evaluated on the update itself, never on a timer.
- Flatten (hard stop, shutdown, operator): closes a market now at the mark ± slippage.

Once a market is being exited, its exit job lives until the position is flat (or the operator stops it): an
exit order that ends without flattening is re-sent with a backoff (retry_base_s doubling to retry_max_s);
every `failures_per_report` consecutive failures are reported to `flatten_failure_listeners`. An order that
made the position smaller is progress, not a failure, and is followed at once by an order for the rest.

One order per market at a time (predecessor J-004): the `FlattenGuard` is taken before an exit order is
registered and released only when that order has left the tracker's pending table, which is how the tracker
says "terminal" for every outcome (filled, rejected, cancelled, reconciled after an unknown outcome). The
tracker has no hook for an order ending, so `run` checks the in-flight exits: at once when a fill is applied
(`on_fill`, which the wiring adds to the tracker's fill listeners) and every `watch_interval_s` while any exit
is in flight. Polling only while something is in flight is simple and cannot miss an end, whatever its path.

A reduce-only order of any origin seen resting for `reduce_only_timeout_ms` is cancelled; its exit job, if
any, sends a fresh one when the cancel has ended it (predecessor §6 item 6: only a warning there).
"""

from __future__ import annotations

import enum
import functools
import math
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal

import attrs
import structlog
import trio

from hip3.core.clock import WallClock
from hip3.core.market import BPS_DECIMAL, MarketSpec
from hip3.core.order import Cloid, Side, Tif
from hip3.core.rounding import RoundingError, round_price, round_size
from hip3.execution.scheduler import CancelRequest, Scheduler, SubmitResult
from hip3.market.state import MarketState
from hip3.position.flatten import FlattenGuard
from hip3.position.model import OrderPhase, PendingOrder, Position
from hip3.position.tracker import AppliedFill, TrackerHandle
from hip3.protocol.messages import OrderState

log = structlog.get_logger(__name__)
REASON_TIME_STOP = "time_stop"
REASON_MARK_REGRESSION = "mark_regression"

FlattenFailureListener = Callable[[str, str], None]
_TrackerChore = Callable[[], Awaitable[None]]


@attrs.frozen(kw_only=True)
class ExitSettings:
    """Plain values from `time_stop` and `mark_regression` in the config, plus the retry policy."""

    time_stop_threshold_ms: int = 30_000
    reduce_only_timeout_ms: int = 60_000
    time_stop_slippage_bps: Decimal = Decimal(50)
    mark_regression_enabled: bool = True
    exit_threshold_bps: Decimal = Decimal(5)
    min_holding_time_ms: int = 1_000
    mark_regression_slippage_bps: Decimal = Decimal(50)
    retry_base_s: float = 0.5
    retry_max_s: float = 10.0
    failures_per_report: int = 3
    watch_interval_s: float = 0.05  # how often in-flight exit orders are checked for a terminal state
    recheck_s: float = 1.0  # longest sleep: positions installed by a resync fire no fill listener


class Pricing(enum.Enum):
    MARK = "mark"  # mark ± slippage: time stop, hard stop, shutdown, operator
    TOUCH = "touch"  # the touch we trade against ± slippage: mark regression


# -- arithmetic ----------------------------------------------------------------------------------------------


def slipped_limit(reference: Decimal, side: Side, slippage_bps: Decimal, spec: MarketSpec) -> Decimal:
    """`reference` moved against us by slippage (up for a buy, down for a sell), rounded aggressively."""
    slip = slippage_bps / BPS_DECIMAL
    raw = reference * (1 + slip) if side.is_buy else reference * (1 - slip)
    return round_price(raw, spec, side)


def exit_size(position: Position, spec: MarketSpec) -> Decimal:
    """|position| floored to the lot; ZeroSizeError for dust below one lot."""
    return round_size(abs(position.size), spec)


def regression_gap_bps(position: Position, state: MarketState) -> Decimal | None:
    """How far the touch we would exit against still is from the oracle, in bps (≤ 0: through it)."""
    oracle = state.oracle_px
    if oracle is None or oracle <= 0:
        return None
    if position.size > 0:
        return None if state.bid_px is None else (oracle - state.bid_px) / oracle * BPS_DECIMAL
    return None if state.ask_px is None else (state.ask_px - oracle) / oracle * BPS_DECIMAL


def reference_price(state: MarketState, side: Side, pricing: Pricing) -> Decimal | None:
    """The price an exit on `side` is slipped from: the touch it hits, or the mark (with fallbacks)."""
    touch = state.ask_px if side.is_buy else state.bid_px
    ordered = (touch, state.mark_px) if pricing is Pricing.TOUCH else (state.mark_px, state.oracle_px, touch)
    return next((price for price in ordered if price is not None and price > 0), None)


# -- the exit of one market ----------------------------------------------------------------------------------


@attrs.define
class _ExitJob:
    coin: str
    reason: str
    pricing: Pricing
    backoff_s: float
    order: PendingOrder | None = None  # the exit order queued or in flight
    size_at_send: Decimal = Decimal(0)
    retry_at: float = -math.inf
    failures: int = 0  # consecutive
    stopped: bool = False


class Exits:
    def __init__(  # noqa: PLR0917 - the constructor the wiring was given
        self,
        tracker: TrackerHandle,
        scheduler: Scheduler,
        states: Mapping[str, MarketState],
        specs: Mapping[str, MarketSpec],
        guard: FlattenGuard,
        settings: ExitSettings,
        *,
        wall_ms: WallClock,
    ) -> None:
        self._tracker = tracker
        self._scheduler = scheduler
        self._states = states
        self._specs = specs
        self._guard = guard
        self._settings = settings
        self._wall_ms = wall_ms
        self._jobs: dict[str, _ExitJob] = {}
        self._cancels_sent: set[Cloid] = set()
        self._wake = trio.Event()
        self._chores_in, self._chores_out = trio.open_memory_channel[_TrackerChore](math.inf)
        self.flatten_failure_listeners: list[FlattenFailureListener] = []
        self.stats: Counter[str] = Counter()

    # -- triggers ------------------------------------------------------------------------------------------

    def on_market_update(self, coin: str) -> None:
        """Mark regression, on one book or oracle update of `coin`."""
        if not self._settings.mark_regression_enabled or coin in self._jobs:
            return
        position = self._tracker.position(coin)
        state = self._states.get(coin)
        if position is None or state is None:
            return
        if self._wall_ms() - position.entry_time_ms < self._settings.min_holding_time_ms:
            return
        gap = regression_gap_bps(position, state)
        if gap is not None and gap <= self._settings.exit_threshold_bps:
            self.stats["mark_regression_triggered"] += 1
            self._start(coin, REASON_MARK_REGRESSION, Pricing.TOUCH)

    def flatten(self, coin: str, reason: str) -> bool:
        """Close `coin` now at the mark ± slippage, retrying until flat. True if an order was queued now."""
        if self._tracker.position(coin) is None:
            return False
        job = self._jobs.get(coin)
        if job is None:
            return self._start(coin, reason, Pricing.MARK)
        job.reason, job.pricing, job.stopped = reason, Pricing.MARK, False
        if job.order is not None:
            return False  # the order in flight stands; a retry, if needed, is priced at the mark
        return self._send(job)

    def flatten_all(self, reason: str) -> list[str]:
        """Flatten every market with a position; returns those markets."""
        coins = sorted(self._tracker.positions)
        for coin in coins:
            self.flatten(coin, reason)
        return coins

    def stop_retrying(self, coin: str) -> bool:
        """Operator: no further exit orders for `coin`; one in flight runs its course."""
        job = self._jobs.get(coin)
        if job is None:
            return False
        job.stopped = True
        if job.order is None:
            self._finish(job, "stopped by the operator")
        return True

    def on_fill(self, _fill: AppliedFill) -> None:
        """Tracker fill listener: look at the in-flight exits and the time stops now."""
        self._wake.set()

    # -- reads -----------------------------------------------------------------------------------------------

    def is_flat(self) -> bool:
        return not self._tracker.positions

    def is_exiting(self, coin: str) -> bool:
        """An exit job exists for `coin` (also between retries, when the guard is free)."""
        return coin in self._jobs

    # -- the task --------------------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Time stops, the watch over in-flight exits, retries and rest timeouts; also the tracker chores."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._run_tracker_chores)
            task_status.started()
            while True:
                self._start_due_time_stops()
                self._supervise_jobs()
                self._cancel_stale_reduce_only()
                with trio.move_on_at(self._next_wake()):
                    await self._wake.wait()
                self._wake = trio.Event()

    async def _run_tracker_chores(self) -> None:
        """The tracker calls that must be awaited, for the synchronous paths that need them."""
        async for chore in self._chores_out:
            await chore()

    def _next_wake(self) -> float:
        now = trio.current_time()
        wakes = [now + self._settings.recheck_s]
        for coin, position in self._tracker.positions.items():
            if coin not in self._jobs:
                wakes.append(self._time_stop_due(position, now))
        for job in self._jobs.values():
            wakes.append(job.retry_at if job.order is None else now + self._settings.watch_interval_s)
        timeout_s = self._settings.reduce_only_timeout_ms / 1000
        for order in self._resting_reduce_only():
            if order.cloid not in self._cancels_sent:
                wakes.append(order.registered_at + timeout_s)
        return min(wakes)

    # -- time stop -------------------------------------------------------------------------------------------

    def _time_stop_due(self, position: Position, now: float) -> float:
        """The Trio time at which `position` reaches the threshold, from its wall-clock entry time."""
        due_ms = position.entry_time_ms + self._settings.time_stop_threshold_ms
        return now + (due_ms - self._wall_ms()) / 1000

    def _start_due_time_stops(self) -> None:
        now_ms = self._wall_ms()
        for coin, position in list(self._tracker.positions.items()):
            held_ms = now_ms - position.entry_time_ms
            if coin not in self._jobs and held_ms >= self._settings.time_stop_threshold_ms:
                self.stats["time_stop_triggered"] += 1
                log.info("time stop", coin=coin, held_ms=held_ms)
                self._start(coin, REASON_TIME_STOP, Pricing.MARK)

    # -- jobs ------------------------------------------------------------------------------------------------

    def _start(self, coin: str, reason: str, pricing: Pricing) -> bool:
        job = _ExitJob(coin, reason, pricing, backoff_s=self._settings.retry_base_s)
        self._jobs[coin] = job
        self._wake.set()
        return self._send(job)

    def _finish(self, job: _ExitJob, outcome: str) -> None:
        del self._jobs[job.coin]
        self.stats[f"exits_{outcome.split(maxsplit=1)[0]}"] += 1
        log.info("exit finished", coin=job.coin, reason=job.reason, outcome=outcome)

    def _supervise_jobs(self) -> None:
        now = trio.current_time()
        for job in list(self._jobs.values()):
            if job.order is not None:
                self._check_in_flight(job, job.order)
            elif now >= job.retry_at:
                self._send(job)

    def _check_in_flight(self, job: _ExitJob, order: PendingOrder) -> None:
        """When the exit order has left the pending table (terminal), release the guard and judge it."""
        if self._tracker.pending_by_cloid(order.cloid) is not None:
            return
        job.order = None
        self._guard.end(job.coin)
        position = self._tracker.position(job.coin)
        if position is None:
            self._finish(job, "flat")
        elif job.stopped:
            self._finish(job, "stopped by the operator")
        elif abs(position.size) < job.size_at_send:
            self.stats["exit_partial"] += 1
            job.failures, job.backoff_s, job.retry_at = 0, self._settings.retry_base_s, trio.current_time()
            self._send(job)
        else:
            self._failed(job, "exit order ended unfilled")

    def _failed(self, job: _ExitJob, why: str) -> None:
        job.failures += 1
        job.retry_at = trio.current_time() + job.backoff_s
        self.stats["exit_failures"] += 1
        log.warning("exit failed", coin=job.coin, reason=job.reason, why=why, failures=job.failures)
        job.backoff_s = min(job.backoff_s * 2, self._settings.retry_max_s)
        if job.failures % self._settings.failures_per_report == 0:
            self.stats["flatten_failures_reported"] += 1
            report = f"{job.reason}: {job.failures} exit orders in a row did not flatten ({why})"
            for listener in self.flatten_failure_listeners:
                listener(job.coin, report)

    # -- sending ---------------------------------------------------------------------------------------------

    def _send(self, job: _ExitJob) -> bool:
        """Queue one exit order for the job's market; False when none was queued (a retry is scheduled)."""
        position = self._tracker.position(job.coin)
        if position is None:
            self._finish(job, "flat")
            return False
        if self._tracker.has_pending_reduce_only(job.coin) or not self._guard.try_begin(job.coin):
            self.stats["exit_deferred_in_progress"] += 1
            job.retry_at = trio.current_time() + self._settings.retry_base_s
            return False
        order = self._build_order(job, position)
        if order is None:
            self._guard.end(job.coin)
            self._failed(job, "no valid exit order")
            return False
        self._register(order)
        result = self._scheduler.submit_reduce_only(order)
        if result is not SubmitResult.QUEUED:
            self._end_registration(order, result)
            self._guard.end(job.coin)
            self._failed(job, f"scheduler said {result.value}")
            return False
        job.order, job.size_at_send = order, abs(position.size)
        self.stats[f"exit_orders_{job.reason}"] += 1
        log.info(
            "exit order queued",
            coin=job.coin,
            reason=job.reason,
            side=order.side.value,
            size=str(order.size),
            limit_px=str(order.limit_px),
            cloid=str(order.cloid),
        )
        return True

    def _build_order(self, job: _ExitJob, position: Position) -> PendingOrder | None:
        spec, state = self._specs.get(job.coin), self._states.get(job.coin)
        if spec is None or state is None:
            log.error("no market data for an exit", coin=job.coin)
            return None
        side = position.side.opposite
        reference = reference_price(state, side, job.pricing)
        if reference is None:
            return None
        slippage = (
            self._settings.mark_regression_slippage_bps
            if job.pricing is Pricing.TOUCH
            else self._settings.time_stop_slippage_bps
        )
        try:
            size = exit_size(position, spec)
            limit_px = slipped_limit(reference, side, slippage, spec)
        except RoundingError as exc:
            log.error("exit order cannot be made valid", coin=job.coin, error=str(exc))
            return None
        return PendingOrder(
            cloid=Cloid.new(),
            coin=job.coin,
            asset=spec.key.asset_id,
            side=side,
            size=size,
            limit_px=limit_px,
            tif=Tif.IOC,
            reduce_only=True,
            registered_at=trio.current_time(),
        )

    def _register(self, order: PendingOrder) -> None:
        if not self._tracker.try_register_order(order):
            self._chores_in.send_nowait(functools.partial(self._tracker.register_actor_only, order))

    def _end_registration(self, order: PendingOrder, result: SubmitResult) -> None:
        reason = f"exit not queued: {result.value}"
        self._chores_in.send_nowait(
            functools.partial(self._tracker.order_ended, order.cloid, OrderState.REJECTED, reason)
        )

    # -- rest timeout ----------------------------------------------------------------------------------------

    def _resting_reduce_only(self) -> list[PendingOrder]:
        return [
            order
            for order in self._tracker.pending_orders()
            if order.reduce_only and order.phase is OrderPhase.RESTING
        ]

    def _cancel_stale_reduce_only(self) -> None:
        """Cancel reduce-only orders resting past the timeout; their exit job re-sends when they end."""
        now = trio.current_time()
        timeout_s = self._settings.reduce_only_timeout_ms / 1000
        still_pending = {order.cloid for order in self._tracker.pending_orders()}
        self._cancels_sent &= still_pending
        for order in self._resting_reduce_only():
            if order.cloid in self._cancels_sent or now - order.registered_at < timeout_s:
                continue
            cancel = CancelRequest(order.coin, order.asset, order.oid, order.cloid)
            if self._scheduler.submit_cancel(cancel) is SubmitResult.QUEUED:
                self._cancels_sent.add(order.cloid)
                self.stats["reduce_only_rest_timeouts"] += 1
                log.warning("reduce-only order rested too long, cancelling", coin=order.coin, oid=order.oid)
