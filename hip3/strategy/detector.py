"""The dislocation detector: does one market's book lag its oracle by more than it costs to take the quote?

Per evaluation of a market (only the market whose frame arrived is evaluated), in this order; the first check
that fails ends it and is counted in `Detector.stats`:

1. A valid two-sided book and a positive oracle, else `no_quote`.
2. Bookkeeping: a new oracle update (by `state.oracle_updates`) goes into the market's `OracleHistory` at
   `state.oracle_changed_at`; `state.baseline_ewma_bps` takes this evaluation's sample (step 5), whether or
   not the correction is on, so the record always shows the market's usual gap.
3. Raw edge, in bps of the oracle: buy `(oracle − ask)/oracle`, sell `(bid − oracle)/oracle`. A valid book
   has at most one positive side; none → `below_threshold`.
4. Threshold: the market's configured `threshold_bps`, else fee + slippage + min_edge, where fee is the
   market's effective taker fee (`fee_bps[coin]`, default `taker_fee_bps`) cut by 90 % when the market's spec
   says growth mode (see `hip3.strategy.fees`). `raw − threshold < 0` → `below_threshold`.
5. Structural baseline (when `baseline_tracking` is on; until the market has `baseline_min_samples` samples
   *before* this one it stays silent, `baseline_learning`): the baseline b is the market's EWMA of `(oracle
   − mid)/oracle` in bps, so b > 0 means the mid usually sits below the oracle. The edge measured above the
   usual gap is `raw − b` for a buy and `raw + b` for a sell, and must reach `threshold +
   min_edge_above_baseline_bps`, else `below_baseline`. The plain threshold of step 4 still applies: a
   baseline can make a signal harder, never easier (a bid at the oracle is not a stale quote just because
   the market usually trades below it). `net_edge_bps` is the margin over the binding condition: `min(raw −
   threshold, corrected − threshold − min_edge_above_baseline)` when the baseline applies, else `raw −
   threshold`.
6. Filters, each on or off (their verdicts are recorded either way), over the last `oracle_window_s`:
   direction (buy only while the oracle rose, sell only while it fell) → `filter_direction`; velocity
   (|change| ≥ `min_oracle_change_bps`) → `filter_velocity`; consecutive moves in the signal's direction,
   among changes inside the window (≥ `min_consecutive_oracle_moves`) → `filter_consecutive`.
7. Sizing on the taken side (book notional = best size × best price): at or below `min_book_notional` →
   `book_too_thin`; otherwise `best_sz × sizing_alpha × liquidity`, liquidity rising linearly from 0 at
   `min_book_notional` to 1 at `normal_book_notional`, capped at `max_notional × 0.99 / best_px`, then times
   `size_factor` (the risk gates' spread-shock factor); zero → `zero_size`. Not lot-rounded: the execution
   layer floors it and raises it to the exchange minimum when cap and book allow.
8. One signal per market and side per oracle update: a second one on the same `oracle_updates` → `duplicate`.
"""

from __future__ import annotations

import enum
import math
import uuid
from collections import Counter
from collections.abc import Mapping
from decimal import Decimal

import attrs

from hip3.core.market import BPS
from hip3.core.order import Side
from hip3.market.state import MarketState
from hip3.strategy.fees import effective_taker_fee_bps
from hip3.strategy.oracle_tracker import DEFAULT_MAX_CHANGES, OracleDirection, OracleHistory, direction_of
from hip3.strategy.signal import Signal

CAP_BUFFER = Decimal("0.99")  # a size computed at the best price still fits the cap valued a little higher
_NEVER = -1  # an oracle_updates count no market has: nothing seen or signalled yet


class Outcome(enum.StrEnum):
    """What an evaluation ended with: the keys of `Detector.stats` (plus `evaluations`)."""

    SIGNAL = "signals"
    NO_QUOTE = "no_quote"
    BELOW_THRESHOLD = "below_threshold"
    BELOW_BASELINE = "below_baseline"
    BASELINE_LEARNING = "baseline_learning"
    FILTER_DIRECTION = "filter_direction"
    FILTER_VELOCITY = "filter_velocity"
    FILTER_CONSECUTIVE = "filter_consecutive"
    BOOK_TOO_THIN = "book_too_thin"
    ZERO_SIZE = "zero_size"
    DUPLICATE = "duplicate"


EVALUATIONS = "evaluations"


def _to_decimal(value: Decimal | float | int | str) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


@attrs.frozen(kw_only=True)
class DetectorSettings:
    """The `[detector]` settings as plain values (defaults are the config's), plus the oracle window."""

    taker_fee_bps: float = 4.0  # effective: deployer share included, growth mode not applied
    slippage_bps: float = 2.0
    min_edge_bps: float = 5.0
    sizing_alpha: Decimal = attrs.field(default=Decimal("0.10"), converter=_to_decimal)
    max_notional: Decimal = attrs.field(default=Decimal(50), converter=_to_decimal)
    # carried for the record: raising a small order to the minimum is the execution layer's job
    min_order_notional: Decimal = attrs.field(default=Decimal(11), converter=_to_decimal)
    min_book_notional: Decimal = attrs.field(default=Decimal(500), converter=_to_decimal)
    normal_book_notional: Decimal = attrs.field(default=Decimal(5000), converter=_to_decimal)
    oracle_direction_filter: bool = True
    oracle_velocity_filter: bool = False
    min_oracle_change_bps: float = 3.0
    consecutive_moves_filter: bool = True
    min_consecutive_oracle_moves: int = 2
    oracle_move_min_bps: float = 2.0
    baseline_tracking: bool = True
    baseline_alpha: float = 0.001
    baseline_min_samples: int = 100
    min_edge_above_baseline_bps: float = 0.0
    # not in config: the window the oracle filters look back over (~3 oracle changes at the 3 s cadence)
    oracle_window_s: float = 10.0
    oracle_history_size: int = DEFAULT_MAX_CHANGES

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.min_book_notional < self.normal_book_notional:
            raise ValueError(
                f"need 0 ≤ min_book_notional < normal_book_notional, got "
                f"{self.min_book_notional} and {self.normal_book_notional}"
            )
        if not 0 < self.sizing_alpha <= 1:
            raise ValueError(f"sizing_alpha must be in (0, 1], got {self.sizing_alpha}")
        if self.max_notional <= 0:
            raise ValueError(f"max_notional must be > 0, got {self.max_notional}")
        if not 0 < self.baseline_alpha <= 1:
            raise ValueError(f"baseline_alpha must be in (0, 1], got {self.baseline_alpha}")
        if self.baseline_min_samples < 1 or self.min_consecutive_oracle_moves < 1:
            raise ValueError("baseline_min_samples and min_consecutive_oracle_moves must be ≥ 1")
        if not self.oracle_window_s > 0:
            raise ValueError(f"oracle_window_s must be > 0, got {self.oracle_window_s}")


@attrs.frozen(slots=True)
class _Edge:
    side: Side
    raw_bps: float
    best_px: Decimal
    best_sz: Decimal


@attrs.frozen(slots=True)
class _Size:
    size: Decimal
    notional: Decimal  # the size at the taken side's price
    book_notional: Decimal
    liquidity: Decimal


@attrs.define(slots=True)
class _MarketMemory:
    """What the detector keeps per market besides `MarketState`."""

    oracle: OracleHistory
    seen_oracle_updates: int = _NEVER
    baseline_samples: int = 0
    signalled_update: dict[Side, int] = attrs.Factory(dict)


class Detector:
    """Evaluates one market at a time; keeps per-market oracle history, baseline sample counts and dedup."""

    def __init__(
        self,
        settings: DetectorSettings,
        *,
        thresholds_bps: Mapping[str, float] = {},
        fee_bps: Mapping[str, float] = {},
    ) -> None:
        self.settings = settings
        self._thresholds_bps = dict(thresholds_bps)
        self._fee_bps = dict(fee_bps)
        self._markets: dict[str, _MarketMemory] = {}
        self.stats: Counter[str] = Counter()

    # -- public views ----------------------------------------------------------------------------------------

    def fee_bps(self, state: MarketState) -> float:
        configured = self._fee_bps.get(state.coin, self.settings.taker_fee_bps)
        return effective_taker_fee_bps(configured, growth_mode=state.spec.growth_mode)

    def threshold_bps(self, state: MarketState) -> float:
        override = self._thresholds_bps.get(state.coin)
        if override is not None:
            return override
        return self.fee_bps(state) + self.settings.slippage_bps + self.settings.min_edge_bps

    def oracle_history(self, coin: str) -> OracleHistory:
        return self._memory(coin).oracle

    def baseline_samples(self, coin: str) -> int:
        return self._memory(coin).baseline_samples

    def observe(self, state: MarketState, now: float) -> None:
        """Note a new oracle update without evaluating: for a market whose risk gates block, so its oracle
        history has no gap when they clear. The baseline is not touched (it learns from evaluations only)."""
        oracle = state.oracle_px
        if oracle is not None and oracle > 0:
            self._observe_oracle(self._memory(state.coin), state, oracle, now)

    # -- evaluation ------------------------------------------------------------------------------------------

    def evaluate(self, state: MarketState, now: float, *, size_factor: float = 1.0) -> Signal | None:
        """A signal if the market's book lags its oracle enough, else None (the reason goes to `stats`)."""
        if not math.isfinite(size_factor) or size_factor < 0:
            raise ValueError(f"size_factor must be a finite number ≥ 0, got {size_factor}")
        self.stats[EVALUATIONS] += 1
        result = self._decide(state, now, size_factor)
        if isinstance(result, Outcome):
            self.stats[result.value] += 1  # plain str keys: the stats go to logs and JSON as they are
            return None
        self.stats[Outcome.SIGNAL.value] += 1
        return result

    def _decide(self, state: MarketState, now: float, size_factor: float) -> Signal | Outcome:
        oracle = state.oracle_px
        if oracle is None or oracle <= 0 or not _has_quotes(state):
            return Outcome.NO_QUOTE
        memory = self._memory(state.coin)
        self._observe_oracle(memory, state, oracle, now)
        baseline = self._applicable_baseline(memory, state)
        self._update_baseline(memory, state, oracle)
        if self.settings.baseline_tracking and baseline is None:
            # Silent until the market's usual gap is known: before that, a structurally wide market would
            # signal on its own spread - the predecessor's observation-vs-live lesson.
            return Outcome.BASELINE_LEARNING
        edge = _taken_edge(state, oracle)
        if edge is None:
            return Outcome.BELOW_THRESHOLD
        threshold = self.threshold_bps(state)
        net_edge = self._net_edge(edge, threshold, baseline)
        if isinstance(net_edge, Outcome):
            return net_edge
        blocked, context = self._filters(memory.oracle, edge.side, now)
        if blocked is not None:
            return blocked
        sized = self._size(edge, size_factor)
        if isinstance(sized, Outcome):
            return sized
        if memory.signalled_update.get(edge.side, _NEVER) == state.oracle_updates:
            return Outcome.DUPLICATE
        memory.signalled_update[edge.side] = state.oracle_updates
        context.update(self._sizing_context(sized, size_factor, baseline is not None, memory))
        return Signal(
            id=uuid.uuid4().hex,
            coin=state.coin,
            side=edge.side,
            raw_edge_bps=edge.raw_bps,
            net_edge_bps=net_edge,
            threshold_bps=threshold,
            oracle_px=oracle,
            best_px=edge.best_px,
            best_sz=edge.best_sz,
            suggested_size=sized.size,
            baseline_bps=baseline,
            filters=context,
            detected_at=now,
            oracle_update=state.oracle_updates,
        )

    def _memory(self, coin: str) -> _MarketMemory:
        memory = self._markets.get(coin)
        if memory is None:
            history = OracleHistory(
                move_min_bps=self.settings.oracle_move_min_bps, max_changes=self.settings.oracle_history_size
            )
            memory = self._markets[coin] = _MarketMemory(history)
        return memory

    def _observe_oracle(self, memory: _MarketMemory, state: MarketState, oracle: Decimal, now: float) -> None:
        if state.oracle_updates == memory.seen_oracle_updates:
            return
        memory.seen_oracle_updates = state.oracle_updates
        at = state.oracle_changed_at if state.oracle_changed_at is not None else now
        latest = memory.oracle.latest
        if latest is not None:
            at = max(at, latest.at)  # never let an odd timestamp take the signal task down
        memory.oracle.record(at, oracle)

    # -- structural baseline ---------------------------------------------------------------------------------

    def _applicable_baseline(self, memory: _MarketMemory, state: MarketState) -> float | None:
        """The usual oracle-mid gap learned before this evaluation, if the correction applies."""
        settings = self.settings
        if not settings.baseline_tracking or memory.baseline_samples < settings.baseline_min_samples:
            return None
        return state.baseline_ewma_bps

    def _update_baseline(self, memory: _MarketMemory, state: MarketState, oracle: Decimal) -> None:
        mid = state.mid_px
        assert mid is not None  # a valid book has both sides
        sample = float((oracle - mid) / oracle) * BPS
        previous = state.baseline_ewma_bps
        if previous is None or memory.baseline_samples == 0:
            state.baseline_ewma_bps = sample
        else:
            state.baseline_ewma_bps = previous + self.settings.baseline_alpha * (sample - previous)
        memory.baseline_samples += 1

    def _net_edge(self, edge: _Edge, threshold: float, baseline: float | None) -> float | Outcome:
        over_threshold = edge.raw_bps - threshold
        if over_threshold < 0:
            return Outcome.BELOW_THRESHOLD
        if baseline is None:
            return over_threshold
        corrected = edge.raw_bps - baseline if edge.side is Side.BUY else edge.raw_bps + baseline
        over_baseline = corrected - threshold - self.settings.min_edge_above_baseline_bps
        if over_baseline < 0:
            return Outcome.BELOW_BASELINE
        return min(over_threshold, over_baseline)

    # -- filters ---------------------------------------------------------------------------------------------

    def _filters(
        self, history: OracleHistory, side: Side, now: float
    ) -> tuple[Outcome | None, dict[str, bool | float]]:
        """The first enabled filter that blocks (or None), and every filter's figures and verdict."""
        settings = self.settings
        window_start = now - settings.oracle_window_s
        wanted = OracleDirection.UP if side is Side.BUY else OracleDirection.DOWN
        change = history.change_bps(now, settings.oracle_window_s)
        moves = history.consecutive_moves(wanted, since=window_start)
        direction_ok = direction_of(change) is wanted
        velocity_ok = abs(change) >= settings.min_oracle_change_bps
        consecutive_ok = moves >= settings.min_consecutive_oracle_moves
        context: dict[str, bool | float] = {
            "oracle_change_bps": change,
            "direction_ok": direction_ok,
            "velocity_ok": velocity_ok,
            "consecutive_moves": moves,
            "consecutive_ok": consecutive_ok,
        }
        checks = (
            (settings.oracle_direction_filter, direction_ok, Outcome.FILTER_DIRECTION),
            (settings.oracle_velocity_filter, velocity_ok, Outcome.FILTER_VELOCITY),
            (settings.consecutive_moves_filter, consecutive_ok, Outcome.FILTER_CONSECUTIVE),
        )
        blocked = next((outcome for enabled, ok, outcome in checks if enabled and not ok), None)
        return blocked, context

    # -- sizing ----------------------------------------------------------------------------------------------

    def _size(self, edge: _Edge, size_factor: float) -> _Size | Outcome:
        settings = self.settings
        book_notional = edge.best_sz * edge.best_px
        if book_notional <= settings.min_book_notional:
            return Outcome.BOOK_TOO_THIN
        span = settings.normal_book_notional - settings.min_book_notional
        liquidity = min(Decimal(1), (book_notional - settings.min_book_notional) / span)
        alpha_size = edge.best_sz * settings.sizing_alpha * liquidity
        cap_size = settings.max_notional * CAP_BUFFER / edge.best_px
        size = min(alpha_size, cap_size) * _to_decimal(size_factor)
        if size <= 0:
            return Outcome.ZERO_SIZE
        return _Size(size, size * edge.best_px, book_notional, liquidity)

    def _sizing_context(
        self, sized: _Size, size_factor: float, baseline_applied: bool, memory: _MarketMemory
    ) -> dict[str, bool | float]:
        return {
            "book_notional": float(sized.book_notional),
            "liquidity_factor": float(sized.liquidity),
            "size_factor": size_factor,
            "below_min_order_notional": sized.notional < self.settings.min_order_notional,
            "baseline_applied": baseline_applied,
            "baseline_samples": memory.baseline_samples,
        }


def _has_quotes(state: MarketState) -> bool:
    """A valid (two-sided, uncrossed) book with sizes on both sides."""
    return state.bbo_valid and state.bid_sz is not None and state.ask_sz is not None


def _taken_edge(state: MarketState, oracle: Decimal) -> _Edge | None:
    """The side whose best quote is on the wrong side of the oracle, with its raw edge in bps."""
    bid, ask, bid_sz, ask_sz = state.bid_px, state.ask_px, state.bid_sz, state.ask_sz
    assert bid is not None and ask is not None and bid_sz is not None and ask_sz is not None  # _has_quotes
    if ask < oracle:
        return _Edge(Side.BUY, float((oracle - ask) / oracle) * BPS, ask, ask_sz)
    if bid > oracle:
        return _Edge(Side.SELL, float((bid - oracle) / oracle) * BPS, bid, bid_sz)
    return None
