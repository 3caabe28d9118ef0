"""Entry gates against a real PositionTracker: order of precedence, exact Decimal notional, fail-closed marks,
the seed's races (J-002 resync, S-1 full inbox) and state-change logging (A-003)."""

from __future__ import annotations

from decimal import Decimal

import attrs
import pytest
import structlog
import trio

from hip3.core.market import MarketKey, MarketSpec
from hip3.core.order import Cloid, Side, Tif
from hip3.execution.action_budget import ActionBudget
from hip3.execution.gates import Admitted, EntryGates, Gate, Limits, Refused
from hip3.execution.sizing import SizedOrder, size_entry
from hip3.position.model import PendingOrder
from hip3.position.tracker import PositionTracker, TrackerHandle
from hip3.protocol.messages import OrderState
from tests.position.helpers import fill, fills

D = Decimal
TSLA, GOLD, SILVER = "xyz:TSLA", "xyz:GOLD", "xyz:SILVER"
DEFAULT_LIMITS = Limits(D(50), D(100), 5)
GENEROUS = Limits(D(10_000), D(10_000), 10)


def entry(
    coin: str = TSLA, size: str = "0.15", px: str = "100", *, reduce_only: bool = False
) -> PendingOrder:
    return PendingOrder(
        cloid=Cloid.new(),
        coin=coin,
        asset=110000,
        side=Side.BUY,
        size=D(size),
        limit_px=D(px),
        tif=Tif.IOC,
        reduce_only=reduce_only,
        registered_at=0.0,
    )


@attrs.define
class World:
    """What the gates read besides the tracker; tests change it between signals."""

    marks: dict[str, Decimal] = attrs.field(factory=lambda: {TSLA: D(100), GOLD: D(200), SILVER: D(50)})
    hard_stop: str | None = None
    not_ready: str | None = None
    flattening: set[str] = attrs.field(factory=set)
    budget: ActionBudget = attrs.field(factory=lambda: ActionBudget(100))

    def gates(self, handle: TrackerHandle, limits: Limits = DEFAULT_LIMITS) -> EntryGates:
        return EntryGates(
            handle,
            limits,
            marks=self.marks.get,
            hard_stop=lambda: self.hard_stop,
            not_ready=lambda: self.not_ready,
            flattening=self.flattening.__contains__,
            budget=self.budget,
        )


def new_tracker(inbox_size: int = 1000) -> PositionTracker:
    return PositionTracker(wall_ms=lambda: 0, inbox_size=inbox_size)


async def hold(handle: TrackerHandle, positions: dict[str, str]) -> None:
    """Install positions (coin -> signed size) through a resync, as the exchange would report them."""
    await handle.resync(
        frozenset(positions),
        {coin: (D(size), D(1)) for coin, size in positions.items()},
        0,
        requested_at=trio.current_time(),
    )
    await handle.settled()


def refused_by(result: Admitted | Refused) -> Gate:
    assert isinstance(result, Refused), result
    return result.gate


def refusals(gates: EntryGates) -> dict[Gate, int]:
    return {gate: count for gate, count in gates.counters.items() if count}


# -- all gates pass ------------------------------------------------------------------------------------------


async def test_an_entry_that_passes_every_gate_is_registered_and_consumes_one_budget_unit() -> None:
    tracker, world = new_tracker(), World()
    gates = world.gates(tracker.handle)
    order = entry()

    assert gates.admit(order) == Admitted(order, registered_fast=True)

    assert tracker.handle.pending_count(TSLA) == 1
    assert tracker.handle.pending_by_cloid(order.cloid) is order
    assert world.budget.available() == 99
    assert refusals(gates) == {}
    assert gates.admitted_count == 1


async def test_a_reduce_only_order_is_not_an_entry() -> None:
    tracker, world = new_tracker(), World()

    with pytest.raises(ValueError, match="reduce-only orders are exits"):
        world.gates(tracker.handle).admit(entry(reduce_only=True))


# -- each gate, with its exact reason ------------------------------------------------------------------------


async def test_hard_stop_refuses_with_the_latch_reason() -> None:
    tracker, world = new_tracker(), World(hard_stop="11 alarming rejections within 1 h")
    gates = world.gates(tracker.handle)

    assert gates.admit(entry()) == Refused(Gate.HARD_STOP, "11 alarming rejections within 1 h")
    assert refusals(gates) == {Gate.HARD_STOP: 1}


@pytest.mark.parametrize(
    "reason", ["not connected", "not subscribed: orderUpdates", "not synced", "clock skew 6200 ms"]
)
async def test_not_ready_refuses_with_the_readiness_reason(reason: str) -> None:
    tracker, world = new_tracker(), World(not_ready=reason)
    gates = world.gates(tracker.handle)

    assert gates.admit(entry()) == Refused(Gate.READY, reason)
    assert refusals(gates) == {Gate.READY: 1}


async def test_a_refused_entry_is_not_registered_and_consumes_no_budget() -> None:
    tracker, world = new_tracker(), World(not_ready="not synced")

    world.gates(tracker.handle).admit(entry())

    assert tracker.handle.pending_count(TSLA) == 0
    assert world.budget.available() == 100


async def test_per_market_notional_counts_position_pending_and_order_at_the_mark(
    nursery: trio.Nursery,
) -> None:
    tracker, world = new_tracker(), World()
    handle: TrackerHandle = await nursery.start(tracker.run)
    await hold(handle, {TSLA: "0.25"})  # $25 at mark 100
    assert handle.try_register_order(entry(TSLA, "0.1", px="105"))  # $10 at the mark ($10.50 at its limit)
    gates = world.gates(handle)

    # 25 + 10 + 15 = 50: at the limit, passes; the market is then refused for holding a position
    assert refused_by(gates.admit(entry(TSLA, "0.15"))) is Gate.HAS_POSITION
    assert gates.admit(entry(TSLA, "0.1501")) == Refused(
        Gate.MARKET_NOTIONAL,
        "xyz:TSLA: position 25.00 + pending 10.0 + order 15.0100 at mark 100 = 50.0100 > 50",
    )
    assert refusals(gates) == {Gate.HAS_POSITION: 1, Gate.MARKET_NOTIONAL: 1}


async def test_per_market_notional_boundary_on_an_empty_market() -> None:
    tracker, world = new_tracker(), World()
    gates = world.gates(tracker.handle)

    assert gates.admit(entry(TSLA, "0.5001")) == Refused(
        Gate.MARKET_NOTIONAL, "xyz:TSLA: position 0 + pending 0 + order 50.0100 at mark 100 = 50.0100 > 50"
    )
    assert isinstance(gates.admit(entry(TSLA, "0.5")), Admitted)  # $50.00 == limit


async def test_a_short_position_counts_by_its_absolute_size(nursery: trio.Nursery) -> None:
    tracker, world = new_tracker(), World()
    handle: TrackerHandle = await nursery.start(tracker.run)
    await hold(handle, {TSLA: "-0.4"})

    assert world.gates(handle).admit(entry(TSLA, "0.15")) == Refused(
        Gate.MARKET_NOTIONAL, "xyz:TSLA: position 40.0 + pending 0 + order 15.00 at mark 100 = 55.00 > 50"
    )


async def test_total_notional_sums_every_exposed_market_at_its_own_mark(nursery: trio.Nursery) -> None:
    tracker, world = new_tracker(), World()
    handle: TrackerHandle = await nursery.start(tracker.run)
    await hold(handle, {GOLD: "0.2"})  # $40 at mark 200
    assert handle.try_register_order(entry(SILVER, "0.9", px="49"))  # $45 at mark 50 ($44.10 at its limit)
    gates = world.gates(handle)

    assert gates.admit(entry(TSLA, "0.1501")) == Refused(
        Gate.TOTAL_NOTIONAL, "other markets 85.0 + xyz:TSLA 15.0100 = 100.0100 > 100"
    )
    assert isinstance(gates.admit(entry(TSLA, "0.15")), Admitted)  # 85 + 15 == 100


async def test_reduce_only_orders_add_no_notional_and_no_market(nursery: trio.Nursery) -> None:
    tracker, world = new_tracker(), World()
    handle: TrackerHandle = await nursery.start(tracker.run)
    await hold(handle, {GOLD: "0.2"})  # $40
    assert handle.try_register_order(entry(GOLD, "0.2", px="190", reduce_only=True))
    gates = world.gates(handle, Limits(D(50), D("55"), 2))

    assert isinstance(gates.admit(entry(TSLA, "0.15")), Admitted)  # 40 + 15 == 55; 2 markets


async def test_s2_two_15_dollar_entries_under_a_20_dollar_total_the_second_is_refused() -> None:
    tracker, world = new_tracker(), World()
    gates = world.gates(tracker.handle, Limits(D(20), D(20), 2))

    assert isinstance(gates.admit(entry(TSLA, "0.15")), Admitted)  # $15 at mark 100
    assert gates.admit(entry(GOLD, "0.075")) == Refused(  # $15 at mark 200
        Gate.TOTAL_NOTIONAL, "other markets 15.00 + xyz:GOLD 15.000 = 30.000 > 20"
    )
    assert refusals(gates) == {Gate.TOTAL_NOTIONAL: 1}


async def test_concurrent_positions_count_markets_with_a_position_or_a_pending_entry(
    nursery: trio.Nursery,
) -> None:
    tracker, world = new_tracker(), World()
    handle: TrackerHandle = await nursery.start(tracker.run)
    await hold(handle, {GOLD: "0.01"})
    assert handle.try_register_order(entry(SILVER, "0.2"))
    gates = world.gates(handle, Limits(D(1000), D(1000), 2))

    assert gates.admit(entry(TSLA)) == Refused(
        Gate.CONCURRENT_POSITIONS, "3 markets with a position or a pending entry, counting xyz:TSLA, > 2"
    )
    # A market already counted adds nothing: GOLD passes this gate and is refused for its position.
    assert gates.admit(entry(GOLD, "0.1")) == Refused(
        Gate.HAS_POSITION, "xyz:GOLD: already has a position of 0.01"
    )


async def test_flatten_in_progress_refuses_from_the_guard_or_a_pending_reduce_only_order() -> None:
    tracker, world = new_tracker(), World(flattening={TSLA})
    assert tracker.handle.try_register_order(entry(GOLD, "0.01", reduce_only=True))
    gates = world.gates(tracker.handle)

    assert gates.admit(entry(TSLA)) == Refused(Gate.FLATTEN_IN_PROGRESS, "xyz:TSLA: a flatten is in progress")
    assert gates.admit(entry(GOLD, "0.05")) == Refused(
        Gate.FLATTEN_IN_PROGRESS, "xyz:GOLD: a reduce-only order is pending"
    )
    assert refusals(gates) == {Gate.FLATTEN_IN_PROGRESS: 2}


async def test_a_filled_entry_leaves_a_position_and_the_next_entry_is_refused(nursery: trio.Nursery) -> None:
    tracker, world = new_tracker(), World()
    handle: TrackerHandle = await nursery.start(tracker.run)
    gates = world.gates(handle)
    first = entry(TSLA, "0.15")
    assert isinstance(gates.admit(first), Admitted)

    await handle.response_fill(first.cloid, 7001, D("0.15"), D("99.9"), ends_order=True)
    await handle.settled()

    assert handle.pending_count(TSLA) == 0
    assert gates.admit(entry(TSLA, "0.1")) == Refused(
        Gate.HAS_POSITION, "xyz:TSLA: already has a position of 0.15"
    )


async def test_a_pending_order_on_the_market_refuses_a_second_entry() -> None:
    tracker, world = new_tracker(), World()
    gates = world.gates(tracker.handle)
    assert isinstance(gates.admit(entry(TSLA, "0.1")), Admitted)

    assert gates.admit(entry(TSLA, "0.1")) == Refused(Gate.PENDING_ORDER, "xyz:TSLA: 1 order(s) pending")
    assert tracker.handle.pending_count(TSLA) == 1
    assert world.budget.available() == 99


async def test_the_action_budget_is_the_last_gate_and_only_spent_by_admitted_entries() -> None:
    tracker, world = new_tracker(), World(budget=ActionBudget(1))
    gates = world.gates(tracker.handle)
    assert isinstance(gates.admit(entry(TSLA, "0.1")), Admitted)
    assert refused_by(gates.admit(entry(TSLA, "0.1"))) is Gate.PENDING_ORDER

    assert gates.admit(entry(GOLD, "0.05")) == Refused(
        Gate.ACTION_BUDGET, "action budget exhausted (1 a minute)"
    )
    assert tracker.handle.pending_count(GOLD) == 0
    assert refusals(gates) == {Gate.PENDING_ORDER: 1, Gate.ACTION_BUDGET: 1}


# -- W-005: a missing mark fails closed ----------------------------------------------------------------------


async def test_no_mark_for_the_market_refuses() -> None:
    tracker, world = new_tracker(), World()
    del world.marks[TSLA]

    assert world.gates(tracker.handle).admit(entry(TSLA)) == Refused(
        Gate.MARKET_NOTIONAL, "no mark for xyz:TSLA: refused (fail closed)"
    )


async def test_no_mark_for_another_market_with_a_position_refuses(nursery: trio.Nursery) -> None:
    tracker, world = new_tracker(), World()
    handle: TrackerHandle = await nursery.start(tracker.run)
    await hold(handle, {GOLD: "0.01"})
    del world.marks[GOLD]

    assert world.gates(handle).admit(entry(TSLA)) == Refused(
        Gate.MARKET_NOTIONAL,
        "no mark for xyz:GOLD, which has a position or a pending entry: refused (fail closed)",
    )


async def test_no_mark_for_another_market_with_a_pending_entry_refuses() -> None:
    tracker, world = new_tracker(), World()
    assert tracker.handle.try_register_order(entry(SILVER, "0.2"))
    world.marks[SILVER] = D(0)  # a zero mark is no mark

    assert world.gates(tracker.handle).admit(entry(TSLA)) == Refused(
        Gate.MARKET_NOTIONAL,
        "no mark for xyz:SILVER, which has a position or a pending entry: refused (fail closed)",
    )


async def test_no_mark_for_a_market_without_exposure_does_not_matter() -> None:
    tracker, world = new_tracker(), World()
    del world.marks[GOLD]

    assert isinstance(world.gates(tracker.handle).admit(entry(TSLA)), Admitted)


# -- precedence: the first failing gate wins -----------------------------------------------------------------


async def test_with_every_gate_failing_each_one_wins_in_turn_as_the_earlier_ones_clear(
    nursery: trio.Nursery,
) -> None:
    tracker, world = new_tracker(), World(budget=ActionBudget(1))
    handle: TrackerHandle = await nursery.start(tracker.run)
    await hold(handle, {TSLA: "0.4", GOLD: "0.45", SILVER: "0.02"})  # $40, $90, $1
    resting = entry(TSLA, "0.05")
    assert handle.try_register_order(resting)
    assert world.budget.try_consume()
    world.hard_stop, world.not_ready, world.flattening = "latched", "not synced", {TSLA}
    limits = Limits(D(50), D(100), 2)
    seen: list[Gate] = []

    def winner() -> Gate:
        seen.append(refused_by(world.gates(handle, limits).admit(entry(TSLA, "0.15"))))
        return seen[-1]

    assert winner() is Gate.HARD_STOP
    world.hard_stop = None
    assert winner() is Gate.READY
    world.not_ready = None
    assert winner() is Gate.MARKET_NOTIONAL  # 40 + 5 + 15 = 60 > 50
    limits = attrs.evolve(limits, max_notional_per_market=D(1000))
    assert winner() is Gate.TOTAL_NOTIONAL  # 90 + 1 + 60 = 151 > 100
    limits = attrs.evolve(limits, max_total_notional=D(1000))
    assert winner() is Gate.CONCURRENT_POSITIONS  # 3 > 2
    limits = attrs.evolve(limits, max_concurrent_positions=3)
    assert winner() is Gate.FLATTEN_IN_PROGRESS
    world.flattening = set()
    assert winner() is Gate.HAS_POSITION
    # a resync may not touch a market with a pending order, so the position is closed by a fill
    await handle.user_fills(fills(fill(4242, "0.4", "100", coin=TSLA, side=Side.SELL)))
    await handle.settled()
    assert winner() is Gate.PENDING_ORDER
    await handle.order_ended(resting.cloid, OrderState.CANCELLED, "canceled")
    await handle.settled()
    assert winner() is Gate.ACTION_BUDGET

    assert seen == list(Gate)


# -- J-002: a resync requested but not yet applied never opens the gates -------------------------------------


async def test_j002_a_signal_between_a_resync_request_and_its_application_is_still_refused() -> None:
    tracker, world = new_tracker(), World()
    handle = tracker.handle
    async with trio.open_nursery() as actor:
        await actor.start(tracker.run)
        await hold(handle, {TSLA: "0.4"})  # $40 against a $50 limit
        actor.cancel_scope.cancel()
    gates = world.gates(handle)

    await handle.resync(
        frozenset({TSLA}), {TSLA: (D("0.4"), D(1))}, 0, requested_at=trio.current_time()
    )  # queued; the actor is not running
    refused_before = gates.admit(entry(TSLA, "0.15"))
    async with trio.open_nursery() as actor:
        await actor.start(tracker.run)
        await handle.settled()
        refused_after = gates.admit(entry(TSLA, "0.15"))
        actor.cancel_scope.cancel()

    expected = Refused(
        Gate.MARKET_NOTIONAL, "xyz:TSLA: position 40.0 + pending 0 + order 15.00 at mark 100 = 55.00 > 50"
    )
    assert refused_before == expected
    assert refused_after == expected
    assert tracker.stats["resyncs"] == 2


# -- S-1: a full inbox, the actor-only registration, and the market freed by the terminal update -------------


async def test_s1_full_inbox_registers_once_and_the_market_is_free_after_the_order_ends(
    nursery: trio.Nursery,
) -> None:
    tracker, world = new_tracker(inbox_size=1), World()
    handle = tracker.handle
    await handle.resync(
        frozenset(), {}, 0, requested_at=trio.current_time()
    )  # fills the one slot: the actor is not running yet
    gates = world.gates(handle)
    order = entry(TSLA, "0.15")

    admitted = gates.admit(order)

    assert admitted == Admitted(order, registered_fast=False)
    assert handle.pending_count(TSLA) == 1
    await nursery.start(tracker.run)
    await handle.register_actor_only(order)
    await handle.settled()
    assert handle.pending_count(TSLA) == 1  # not 2
    assert handle.pending_notional(TSLA) == D("15.00")
    assert tracker.stats["registered"] == 1
    assert tracker.stats["register_inbox_full"] == 1

    await handle.order_ended(order.cloid, OrderState.REJECTED, "Order could not immediately match")
    await handle.settled()

    assert handle.pending_count(TSLA) == 0
    assert handle.pending_notional(TSLA) == 0
    again = entry(TSLA, "0.15")
    assert gates.admit(again) == Admitted(again, registered_fast=True)


async def test_s1_an_order_that_ended_before_its_actor_only_registration_is_not_resurrected(
    nursery: trio.Nursery,
) -> None:
    tracker, world = new_tracker(inbox_size=1), World()
    handle = tracker.handle
    await handle.resync(frozenset(), {}, 0, requested_at=trio.current_time())
    gates = world.gates(handle)
    order = entry(TSLA, "0.15")
    assert gates.admit(order) == Admitted(order, registered_fast=False)
    await nursery.start(tracker.run)

    await handle.order_ended(order.cloid, OrderState.REJECTED, "Order could not immediately match")
    await handle.register_actor_only(order)
    await handle.settled()

    assert tracker.stats["register_skipped_already_ended"] == 1
    assert tracker.stats["registered"] == 0
    assert handle.pending_count(TSLA) == 0
    assert handle.pending_by_cloid(order.cloid) is None
    assert isinstance(gates.admit(entry(TSLA, "0.15")), Admitted)


# -- remaining cap and sizing together -----------------------------------------------------------------------


async def test_remaining_cap_is_the_smaller_room_under_both_limits(nursery: trio.Nursery) -> None:
    tracker, world = new_tracker(), World()
    handle: TrackerHandle = await nursery.start(tracker.run)
    await hold(handle, {GOLD: "0.3"})  # $60
    assert handle.try_register_order(entry(TSLA, "0.1"))  # $10
    gates = world.gates(handle)

    assert gates.remaining_cap(TSLA) == D("30.00")  # total: 100 - 60 - 10; per market: 50 - 10 = 40
    assert gates.remaining_cap(SILVER) == D("30.00")
    assert gates.remaining_cap(GOLD) == D("-10.00")  # per market: 50 - 60
    del world.marks[GOLD]
    assert gates.remaining_cap(TSLA) is None


async def test_a_valuation_taken_for_sizing_gates_as_a_fresh_one_would(nursery: trio.Nursery) -> None:
    tracker, world = new_tracker(), World()
    handle: TrackerHandle = await nursery.start(tracker.run)
    await hold(handle, {GOLD: "0.3"})  # $60
    gates = world.gates(handle)
    valuation = gates.value(TSLA)

    assert gates.remaining_cap(TSLA, valuation) == gates.remaining_cap(TSLA) == D("40.00")
    assert gates.admit(entry(TSLA, "0.4001"), valuation) == gates.admit(entry(TSLA, "0.4001"))
    assert refused_by(gates.admit(entry(TSLA, "0.4001"), valuation)) is Gate.TOTAL_NOTIONAL
    assert isinstance(gates.admit(entry(TSLA, "0.4"), valuation), Admitted)  # 60 + 40 == 100


async def test_a_valuation_of_another_market_is_refused() -> None:
    tracker, world = new_tracker(), World()
    gates = world.gates(tracker.handle)
    valuation = gates.value(GOLD)

    with pytest.raises(ValueError, match="a valuation of xyz:GOLD cannot gate an order on xyz:TSLA"):
        gates.admit(entry(TSLA), valuation)
    with pytest.raises(ValueError, match="a valuation of xyz:GOLD cannot gate an order on xyz:TSLA"):
        gates.remaining_cap(TSLA, valuation)
    assert tracker.handle.pending_count(TSLA) == 0


async def test_u_boundary_a_size_made_at_mid_passes_the_gate_at_a_mark_half_a_percent_higher() -> None:
    tracker, world = new_tracker(), World()
    gates = world.gates(tracker.handle)
    mid = D(100)
    cap = gates.remaining_cap(TSLA)
    assert cap == D(50)
    sized = size_entry(
        MarketSpec(TSLA, MarketKey("xyz", 1, 0), sz_decimals=4, max_leverage=10),
        suggested_size=D("0.5"),
        mark=mid,
        remaining_cap=cap,
        visible_size=D(10),
    )
    assert sized == SizedOrder(D("0.4950"), D("49.5000"), raised_to_minimum=False, shrunk_to_cap=True)
    world.marks[TSLA] = D("100.5")

    assert isinstance(gates.admit(entry(TSLA, str(sized.size))), Admitted)  # 49.7475 ≤ 50


# -- one warning when a gate starts blocking, one line when it clears ---------------------------------


async def test_a_gate_blocking_a_thousand_times_warns_once_and_counts_every_time() -> None:
    tracker, world = new_tracker(), World(not_ready="not subscribed")
    gates = world.gates(tracker.handle)

    with structlog.testing.capture_logs() as logs:
        for _ in range(1000):
            gates.admit(entry(TSLA))
        world.not_ready = None
        assert isinstance(gates.admit(entry(TSLA)), Admitted)
        gates.admit(entry(TSLA))
        gates.admit(entry(TSLA))

    assert [(line["event"], line["log_level"], line.get("gate")) for line in logs] == [
        ("entry gate blocking", "warning", "ready"),
        ("entry gates clear", "info", None),
        ("entry gate blocking", "warning", "pending_order"),
    ]
    assert logs[0]["reason"] == "not subscribed"
    assert logs[1]["was_blocked_by"] == "ready"
    assert refusals(gates) == {Gate.READY: 1000, Gate.PENDING_ORDER: 2}


async def test_blocking_is_tracked_per_market() -> None:
    tracker, world = new_tracker(), World(hard_stop="latched")
    gates = world.gates(tracker.handle)

    with structlog.testing.capture_logs() as logs:
        for coin in (TSLA, GOLD, TSLA, GOLD):
            gates.admit(entry(coin, "0.01"))

    assert [line["coin"] for line in logs] == [TSLA, GOLD]


async def test_counters_cover_every_gate_and_cannot_be_changed_from_outside() -> None:
    gates = World().gates(new_tracker().handle)

    assert dict(gates.counters) == dict.fromkeys(Gate, 0)
    with pytest.raises(TypeError):
        gates.counters[Gate.READY] = 5  # type: ignore[index]


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ((D(0), D(100), 5), "notional limits must be positive"),
        ((D(50), D(-1), 5), "notional limits must be positive"),
        ((D(50), D(100), 0), "max_concurrent_positions must be ≥ 1"),
    ],
)
def test_limits_must_allow_something(limits: tuple[Decimal, Decimal, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Limits(*limits)
