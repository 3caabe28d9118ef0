"""Entry gates: whether a new (opening) order may be sent, checked and registered in one synchronous step.

The gates run in this order and the first refusal wins (issue 5, "Entry gates"):

1. HARD_STOP: the latch is set.
2. READY: not connected, not subscribed, not synced, or the clock is skewed.
3. MARKET_NOTIONAL: |position| + pending entries + this order, all at the market's mark, over the per-market
   limit. A missing mark for this market, or for any market with a position or a pending entry, refuses here:
   exposure that cannot be valued is never taken as zero (predecessor W-005).
4. TOTAL_NOTIONAL: the same summed over every market with a position or a pending entry, plus this order.
5. CONCURRENT_POSITIONS: markets with a position or a pending entry, counting this one, over the limit.
6. FLATTEN_IN_PROGRESS: an exit is running on this market, or one of its reduce-only orders is pending.
7. HAS_POSITION: this market already has a position.
8. PENDING_ORDER: this market already has a pending order.
9. ACTION_BUDGET: consumed only once everything else passed.

When all pass, the order is registered with the tracker before `admit` returns; there is no await between the
checks and the registration, so two signals can never both see a free market (the predecessor marked the
market pending with a separate call). "Pending entry" means a pending order that is not reduce-only; pending
sizes are valued at the mark like positions, since that is what they become once filled.

Reduce-only exits do not come through here: they are not entries, and no limit, budget or readiness check
may hold an exit back. `admit` refuses to handle one.

Logging follows predecessor A-003: one warning when a gate starts blocking a market, one line when the
market's gates clear again, never one per evaluation; every refusal is counted per gate.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from decimal import Decimal
from types import MappingProxyType

import attrs
import structlog

from hip3.execution.action_budget import ActionBudget
from hip3.position.model import ZERO, PendingOrder
from hip3.position.tracker import TrackerHandle

log = structlog.get_logger(__name__)


class Gate(enum.Enum):
    HARD_STOP = "hard_stop"
    READY = "ready"
    MARKET_NOTIONAL = "market_notional"
    TOTAL_NOTIONAL = "total_notional"
    CONCURRENT_POSITIONS = "concurrent_positions"
    FLATTEN_IN_PROGRESS = "flatten_in_progress"
    HAS_POSITION = "has_position"
    PENDING_ORDER = "pending_order"
    ACTION_BUDGET = "action_budget"


@attrs.frozen
class Limits:
    max_notional_per_market: Decimal
    max_total_notional: Decimal
    max_concurrent_positions: int

    def __attrs_post_init__(self) -> None:
        if self.max_notional_per_market <= 0 or self.max_total_notional <= 0:
            raise ValueError(
                "notional limits must be positive, got "
                f"{self.max_notional_per_market} per market and {self.max_total_notional} in total"
            )
        if self.max_concurrent_positions < 1:
            raise ValueError(f"max_concurrent_positions must be ≥ 1, got {self.max_concurrent_positions}")


@attrs.frozen
class Admitted:
    order: PendingOrder
    registered_fast: (
        bool  # False: the inbox was full; the caller must `await tracker.register_actor_only(order)`
    )


@attrs.frozen
class Refused:
    gate: Gate
    reason: str


@attrs.frozen
class _MarketExposure:
    """Sizes on one market that count against the limits."""

    position: Decimal = ZERO  # |position size|
    pending: Decimal = ZERO  # sum of the sizes of pending orders that are not reduce-only

    @property
    def size(self) -> Decimal:
        return self.position + self.pending


@attrs.frozen
class Valuation:
    """Everything the notional gates compare, at the marks of one instant (see `EntryGates.value`)."""

    coin: str
    mark: Decimal
    here: _MarketExposure  # this market, before the order
    others: Decimal  # notional of every other exposed market at its mark
    exposed_markets: frozenset[str]  # markets with a position or a pending entry (this one only if so)

    @property
    def here_notional(self) -> Decimal:
        return self.here.size * self.mark


class EntryGates:
    def __init__(
        self,
        tracker: TrackerHandle,
        limits: Limits,
        *,
        marks: Callable[[str], Decimal | None],
        hard_stop: Callable[[], str | None],
        not_ready: Callable[[], str | None],
        flattening: Callable[[str], bool],
        budget: ActionBudget,
    ) -> None:
        self._tracker = tracker
        self._limits = limits
        self._marks = marks
        self._hard_stop = hard_stop
        self._not_ready = not_ready
        self._flattening = flattening
        self._budget = budget
        self._counters: dict[Gate, int] = dict.fromkeys(Gate, 0)
        self._blocking: dict[str, Gate] = {}  # market -> the gate that refused its last signal
        self.admitted_count = 0

    @property
    def counters(self) -> Mapping[Gate, int]:
        return MappingProxyType(self._counters)

    def admit(self, order: PendingOrder, valuation: Valuation | Refused | None = None) -> Admitted | Refused:
        """Run the gates for an entry; if all pass, register it with the tracker in the same step.

        `valuation`, if given, is `value(order.coin)` taken earlier in the same synchronous step (no await
        since), so the exposure is not valued twice per signal; without it the gates value it themselves.
        """
        if order.reduce_only:
            raise ValueError(
                f"{order.coin}: reduce-only orders are exits and do not go through the entry gates"
            )
        refused = self._first_refusal(order, self._valuation_of(order.coin, valuation))
        if refused is not None:
            self._note_refused(order.coin, refused)
            return refused
        registered_fast = self._tracker.try_register_order(order)
        self._note_admitted(order.coin)
        return Admitted(order, registered_fast)

    def remaining_cap(self, coin: str, valuation: Valuation | Refused | None = None) -> Decimal | None:
        """Notional a new order on `coin` may still add under both limits; None if a mark is missing.

        `valuation` as for `admit`: `value(coin)` from the same synchronous step, or None to value it here.
        """
        valuation = self._valuation_of(coin, valuation)
        if isinstance(valuation, Refused):
            return None
        market_room = self._limits.max_notional_per_market - valuation.here_notional
        total_room = self._limits.max_total_notional - valuation.here_notional - valuation.others
        return min(market_room, total_room)

    # -- the gates, in order ---------------------------------------------------------------------------------

    def _first_refusal(self, order: PendingOrder, valuation: Valuation | Refused) -> Refused | None:
        return (
            self._check_hard_stop()
            or self._check_ready()
            or self._check_exposure(order, valuation)
            or self._check_market_state(order.coin)
            or self._check_budget()
        )

    def _check_hard_stop(self) -> Refused | None:
        reason = self._hard_stop()
        return None if reason is None else Refused(Gate.HARD_STOP, reason)

    def _check_ready(self) -> Refused | None:
        reason = self._not_ready()
        return None if reason is None else Refused(Gate.READY, reason)

    def _check_exposure(self, order: PendingOrder, valuation: Valuation | Refused) -> Refused | None:
        if isinstance(valuation, Refused):
            return valuation
        return (
            self._check_market_notional(order, valuation)
            or self._check_total_notional(order, valuation)
            or self._check_concurrent(order.coin, valuation)
        )

    def _check_market_notional(self, order: PendingOrder, valuation: Valuation) -> Refused | None:
        mark, here = valuation.mark, valuation.here
        after = valuation.here_notional + order.size * mark
        limit = self._limits.max_notional_per_market
        if after <= limit:
            return None
        return Refused(
            Gate.MARKET_NOTIONAL,
            f"{order.coin}: position {here.position * mark} + pending {here.pending * mark}"
            f" + order {order.size * mark} at mark {mark} = {after} > {limit}",
        )

    def _check_total_notional(self, order: PendingOrder, valuation: Valuation) -> Refused | None:
        here_after = valuation.here_notional + order.size * valuation.mark
        total = valuation.others + here_after
        limit = self._limits.max_total_notional
        if total <= limit:
            return None
        return Refused(
            Gate.TOTAL_NOTIONAL,
            f"other markets {valuation.others} + {order.coin} {here_after} = {total} > {limit}",
        )

    def _check_concurrent(self, coin: str, valuation: Valuation) -> Refused | None:
        count = len(valuation.exposed_markets | {coin})
        limit = self._limits.max_concurrent_positions
        if count <= limit:
            return None
        return Refused(
            Gate.CONCURRENT_POSITIONS,
            f"{count} markets with a position or a pending entry, counting {coin}, > {limit}",
        )

    def _check_market_state(self, coin: str) -> Refused | None:
        if self._flattening(coin):
            return Refused(Gate.FLATTEN_IN_PROGRESS, f"{coin}: a flatten is in progress")
        if self._tracker.has_pending_reduce_only(coin):
            return Refused(Gate.FLATTEN_IN_PROGRESS, f"{coin}: a reduce-only order is pending")
        position = self._tracker.position(coin)
        if position is not None:
            return Refused(Gate.HAS_POSITION, f"{coin}: already has a position of {position.size}")
        pending = self._tracker.pending_count(coin)
        if pending > 0:
            return Refused(Gate.PENDING_ORDER, f"{coin}: {pending} order(s) pending")
        return None

    def _check_budget(self) -> Refused | None:
        if self._budget.try_consume():
            return None
        return Refused(Gate.ACTION_BUDGET, f"action budget exhausted ({self._budget.per_minute} a minute)")

    # -- valuation -------------------------------------------------------------------------------------------

    def value(self, coin: str) -> Valuation | Refused:
        """This market's and the others' exposure at their marks; Refused if any needed mark is missing.

        Valid only until the next await: pass it to `remaining_cap` and `admit` within the same step.
        """
        exposures = self._exposures()
        mark = self._usable_mark(coin)
        if mark is None:
            return Refused(Gate.MARKET_NOTIONAL, f"no mark for {coin}: refused (fail closed)")
        others = ZERO
        for other in sorted(exposures.keys() - {coin}):
            other_mark = self._usable_mark(other)
            if other_mark is None:
                return Refused(
                    Gate.MARKET_NOTIONAL,
                    f"no mark for {other}, which has a position or a pending entry: refused (fail closed)",
                )
            others += exposures[other].size * other_mark
        here = exposures.get(coin, _MarketExposure())
        return Valuation(coin, mark, here, others, frozenset(exposures))

    def _valuation_of(self, coin: str, valuation: Valuation | Refused | None) -> Valuation | Refused:
        if valuation is None:
            return self.value(coin)
        if isinstance(valuation, Valuation) and valuation.coin != coin:
            raise ValueError(f"a valuation of {valuation.coin} cannot gate an order on {coin}")
        return valuation

    def _usable_mark(self, coin: str) -> Decimal | None:
        mark = self._marks(coin)
        if mark is None or not mark.is_finite() or mark <= 0:
            return None
        return mark

    def _exposures(self) -> dict[str, _MarketExposure]:
        exposures = {
            coin: _MarketExposure(position=abs(position.size))
            for coin, position in self._tracker.positions.items()
        }
        for pending in self._tracker.pending_orders():
            if pending.reduce_only:
                continue
            current = exposures.get(pending.coin, _MarketExposure())
            exposures[pending.coin] = attrs.evolve(current, pending=current.pending + pending.size)
        return exposures

    # -- counting and logging --------------------------------------------------------------------------------

    def _note_refused(self, coin: str, refused: Refused) -> None:
        self._counters[refused.gate] += 1
        previous = self._blocking.get(coin)
        if previous is refused.gate:
            return
        self._blocking[coin] = refused.gate
        log.warning(
            "entry gate blocking",
            coin=coin,
            gate=refused.gate.value,
            reason=refused.reason,
            previous=None if previous is None else previous.value,
        )

    def _note_admitted(self, coin: str) -> None:
        self.admitted_count += 1
        cleared = self._blocking.pop(coin, None)
        if cleared is not None:
            log.info("entry gates clear", coin=coin, was_blocked_by=cleared.value)
