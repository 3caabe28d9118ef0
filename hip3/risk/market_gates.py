"""Market risk gates: may the strategy act on this market now, and at what size?

Evaluated per market in a fixed order; the first gate that blocks decides, and only that gate's counter moves.

1. BBO_AGE: no bbo yet, or the last bbo arrived more than `max_bbo_age_ms` ago.
2. CTX_AGE: no asset context yet, or the last ctx *message* arrived more than `max_ctx_age_ms` ago. Measured
   from the message, not from the last oracle change: a closed market's unchanged oracle is fresh (A-002).
3. TIME_REGRESSION: the current bbo's exchange time is below the highest this market has shown
   (`state.bbo_exchange_ms < state.last_exchange_ms`, both kept by the feed). Not latched: the next bbo at or
   past the highest time replaces the out-of-order one and clears it.
4. MARK_MID_DIVERGENCE: the book must be valid (both sides, bid < ask); an invalid, one-sided, empty or
   crossed book is reported here whatever the threshold, since no later gate nor the detector can price it.
   Then |mark − mid| / mid in bps above the threshold blocks.
5. SPREAD_SHOCK: the spread against this market's own EWMA (the predecessor shared one across markets). Each
   bbo is sampled once, and only when gates 1–4 pass; its verdict compares it with the EWMA *before* it, so
   evaluating the same bbo again gives the same answer. The first sample seeds the EWMA. Above
   multiplier × EWMA the size is cut to multiplier × EWMA / spread; above twice that, blocked.
6. OI_CAP: open interest × mark at or above `oi_cap_fraction` of the market's streaming OI cap (perpDexs),
   when one is listed.
7. PARAMETER_CHANGE: the registry blocks the market (a spec refresh saw a change). Latched by the registry
   until an operator unblocks it. A market that vanished from meta stays here for good.
8. HALTED: the registry's current spec says delisted (or the registry no longer knows the market). The wire
   has no halt flag; a halted book shows up as an empty or one-sided bbo, which gate 4 reports first.

A threshold of 0 disables its gate (ages, divergence threshold, spread multiplier, OI fraction); absence of
data (no bbo, no ctx, invalid book) still blocks. Ages are compared in whole microseconds so that float noise
in Trio's clock (2.0 s computing as 2.0000000000000004) does not decide a boundary.

Logging is per market and gate on state changes only (A-003): one warning when a gate starts blocking a
market, one info per such gate when the market next passes every gate.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Mapping
from decimal import Decimal

import attrs
import structlog

from hip3.core.market import BPS
from hip3.market.registry import MarketRegistry
from hip3.market.state import MarketState

log = structlog.get_logger(__name__)

MS_PER_S = 1000
MICROS_PER_MS = 1000
MICROS_PER_S = 1_000_000


class RiskGate(enum.Enum):
    BBO_AGE = "bbo_age"
    CTX_AGE = "ctx_age"
    TIME_REGRESSION = "time_regression"
    MARK_MID_DIVERGENCE = "mark_mid_divergence"
    SPREAD_SHOCK = "spread_shock"
    OI_CAP = "oi_cap"
    PARAMETER_CHANGE = "parameter_change"
    HALTED = "halted"


def _non_negative(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be ≥ 0 (0 disables the gate), got {value}")


def _alpha(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0 < value <= 1:
        raise ValueError(f"{attribute.name} must be in (0, 1], got {value}")


@attrs.frozen(kw_only=True)
class RiskSettings:
    max_bbo_age_ms: float = attrs.field(default=2000.0, validator=_non_negative)
    max_ctx_age_ms: float = attrs.field(default=8000.0, validator=_non_negative)
    max_mark_mid_divergence_bps: float = attrs.field(default=50.0, validator=_non_negative)
    spread_shock_multiplier: float = attrs.field(default=3.0, validator=_non_negative)
    spread_ewma_alpha: float = attrs.field(default=0.05, validator=_alpha)
    oi_cap_fraction: float = attrs.field(default=0.95, validator=_non_negative)


@attrs.frozen
class RiskClear:
    size_factor: float  # 1.0, or below 1 when the spread is wide enough to cut size but not to block


@attrs.frozen
class RiskBlocked:
    gate: RiskGate
    reason: str


RiskVerdict = RiskClear | RiskBlocked
FULL_SIZE = RiskClear(1.0)


BboIdentity = tuple[float, Decimal | None, Decimal | None]  # receive time, bid, ask


@attrs.define
class _SpreadSample:
    """The bbo last folded into the market's spread EWMA, and the EWMA before it (what it is judged by)."""

    bbo: BboIdentity
    ewma_before_bps: float | None


@attrs.define
class _MarketRecord:
    """What the gates keep per market: the gates it was warned about, and its last spread sample."""

    warned: set[RiskGate] = attrs.field(factory=set)
    spread_sample: _SpreadSample | None = None


def _age_exceeds(now: float, since: float, max_ms: float) -> bool:
    return round((now - since) * MICROS_PER_S) > round(max_ms * MICROS_PER_MS)


def _stale(
    gate: RiskGate, what: str, received_at: float | None, now: float, max_ms: float
) -> RiskBlocked | None:
    """Gates 1 and 2: nothing received yet, or the last `what` came more than `max_ms` ago (0: no limit)."""
    if received_at is None:
        return RiskBlocked(gate, f"no {what} yet")
    if max_ms and _age_exceeds(now, received_at, max_ms):
        age_ms = (now - received_at) * MS_PER_S
        return RiskBlocked(gate, f"last {what} {age_ms:.0f} ms ago (max {max_ms:g} ms)")
    return None


def _invalid_book_reason(state: MarketState) -> str | None:
    if state.bid_px is None and state.ask_px is None:
        return "invalid bbo: empty book"
    if state.bid_px is None:
        return "invalid bbo: no bid"
    if state.ask_px is None:
        return "invalid bbo: no ask"
    if state.bid_px >= state.ask_px:
        return f"invalid bbo: crossed or locked (bid {state.bid_px} ≥ ask {state.ask_px})"
    return None


class MarketRiskGates:
    """The market gates for every market; one instance, but every statistic and log state is per market."""

    def __init__(self, settings: RiskSettings, registry: MarketRegistry) -> None:
        self._settings = settings
        self._registry = registry
        self._counters: Counter[RiskGate] = Counter()
        self._records: dict[str, _MarketRecord] = {}
        self._oi_cap_fraction = Decimal(str(settings.oi_cap_fraction))  # once, not per market update

    @property
    def counters(self) -> Mapping[RiskGate, int]:
        return self._counters

    def blocking_gates(self, coin: str) -> tuple[str, ...]:
        """The gates that have blocked the market since it was last clear (for the dashboard)."""
        record = self._records.get(coin)
        return () if record is None else tuple(gate.value for gate in RiskGate if gate in record.warned)

    def check(self, state: MarketState, now: float) -> RiskClear | RiskBlocked:
        record = self._records.get(state.coin)
        if record is None:
            record = self._records[state.coin] = _MarketRecord()
        verdict = self._evaluate(state, now, record)
        self._count_and_log(state.coin, record, verdict)
        return verdict

    def _evaluate(self, state: MarketState, now: float, record: _MarketRecord) -> RiskVerdict:
        settings = self._settings
        blocked = (
            _stale(RiskGate.BBO_AGE, "bbo", state.bbo_received_at, now, settings.max_bbo_age_ms)
            or _stale(RiskGate.CTX_AGE, "asset context", state.ctx_received_at, now, settings.max_ctx_age_ms)
            or self._time_regression(state)
            or self._mark_mid_divergence(state)
        )
        if blocked is not None:
            return blocked
        spread_verdict = self._spread_shock(state, record)
        if isinstance(spread_verdict, RiskBlocked):
            return spread_verdict
        return self._oi_cap(state) or self._parameter_change(state) or self._halted(state) or spread_verdict

    # -- the gates, in order: each returns None when it lets the market through ----------------------------

    def _time_regression(self, state: MarketState) -> RiskBlocked | None:
        current, highest = state.bbo_exchange_ms, state.last_exchange_ms
        if current is not None and highest is not None and current < highest:
            return RiskBlocked(
                RiskGate.TIME_REGRESSION,
                f"bbo exchange time {current} ms is before {highest} ms seen earlier",
            )
        return None

    def _mark_mid_divergence(self, state: MarketState) -> RiskBlocked | None:
        invalid = _invalid_book_reason(state)
        if invalid is not None:
            return RiskBlocked(RiskGate.MARK_MID_DIVERGENCE, invalid)
        limit = self._settings.max_mark_mid_divergence_bps
        mid, mark = state.mid_px, state.mark_px
        if not limit or mid is None or mark is None:
            return None
        divergence_bps = float(abs(mark - mid) / mid) * BPS
        if divergence_bps > limit:
            return RiskBlocked(
                RiskGate.MARK_MID_DIVERGENCE,
                f"mark {mark} is {divergence_bps:.2f} bps from mid {mid} (max {limit:g} bps)",
            )
        return None

    def _spread_shock(self, state: MarketState, record: _MarketRecord) -> RiskVerdict:
        spread = state.spread_bps
        if spread is None or state.bbo_received_at is None:  # not reached: gate 4 wants a valid book
            return FULL_SIZE
        ewma_before = self._sample_spread(state, record, spread)
        multiplier = self._settings.spread_shock_multiplier
        if not multiplier or ewma_before is None:
            return FULL_SIZE
        cut_above = multiplier * ewma_before
        if spread > 2 * cut_above:
            return RiskBlocked(
                RiskGate.SPREAD_SHOCK,
                f"spread {spread:.2f} bps is above {2 * cut_above:.2f} bps (2 × {multiplier:g} × EWMA)",
            )
        if spread > cut_above:
            return RiskClear(cut_above / spread)
        return FULL_SIZE

    def _sample_spread(self, state: MarketState, record: _MarketRecord, spread: float) -> float | None:
        """Fold this bbo's spread into the EWMA once; return the EWMA it is judged by (None: the seed)."""
        # Identified by receive time and prices: two frames in one virtual instant differ in their prices.
        bbo: BboIdentity = (state.bbo_received_at or 0.0, state.bid_px, state.ask_px)
        sample = record.spread_sample
        if sample is not None and sample.bbo == bbo:
            return sample.ewma_before_bps
        before = state.spread_ewma_bps
        alpha = self._settings.spread_ewma_alpha
        state.spread_ewma_bps = spread if before is None else alpha * spread + (1 - alpha) * before
        record.spread_sample = _SpreadSample(bbo, before)
        return before

    def _oi_cap(self, state: MarketState) -> RiskBlocked | None:
        fraction = self._settings.oi_cap_fraction
        cap = self._registry.oi_cap(state.coin)
        if not fraction or cap is None or state.open_interest is None or state.mark_px is None:
            return None
        notional = state.open_interest * state.mark_px
        limit = self._oi_cap_fraction * cap
        if notional >= limit:
            return RiskBlocked(
                RiskGate.OI_CAP, f"open interest {notional} USD is at or above {limit} ({fraction:g} × {cap})"
            )
        return None

    def _parameter_change(self, state: MarketState) -> RiskBlocked | None:
        if self._is_delisted(state.coin):
            return None  # HALTED reports it
        reason = self._registry.is_blocked(state.coin)
        return None if reason is None else RiskBlocked(RiskGate.PARAMETER_CHANGE, reason)

    def _halted(self, state: MarketState) -> RiskBlocked | None:
        if self._is_delisted(state.coin):
            return RiskBlocked(RiskGate.HALTED, self._registry.is_blocked(state.coin) or "delisted")
        return None

    def _is_delisted(self, coin: str) -> bool:
        spec = self._registry.spec(coin)
        return spec is None or spec.is_delisted

    # -- counting and state-change logging ---------------------------------------------------------------

    def _count_and_log(self, coin: str, record: _MarketRecord, verdict: RiskVerdict) -> None:
        if isinstance(verdict, RiskBlocked):
            self._counters[verdict.gate] += 1
            if verdict.gate not in record.warned:
                record.warned.add(verdict.gate)
                log.warning(
                    "market gate blocking", market=coin, gate=verdict.gate.value, reason=verdict.reason
                )
        elif record.warned:
            for gate in [gate for gate in RiskGate if gate in record.warned]:
                log.info("market gate cleared", market=coin, gate=gate.value)
            record.warned.clear()
