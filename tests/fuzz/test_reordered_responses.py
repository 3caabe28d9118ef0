"""Reordered own responses (issue 9): the answers to our own orders delivered in any order, twice, or late.

A sequence of real entries goes through the entry gates to the simulator's engine (the World of
tests/position/test_interleavings.py). What the exchange answers is held back: the post responses, and the
orderUpdates and userFills of the same orders. Hypothesis then delivers them in any order, delivers some
twice (a response, an update, a fill, a batch of fills in one frame), lets some arrive only after a resync
or after a userFills snapshot that already holds fills not yet streamed. After every step the exchange's own
audit shows no cap exceeded, its ledger is consistent and no fill has been applied more than the exchange
made; once everything is delivered the tracker's positions equal the exchange's, every fill of ours was
applied exactly once, and no order is left pending.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from decimal import Decimal as D
from typing import Any

import attrs
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from hip3.position.model import PendingOrder
from hip3.position.tracker import AppliedFill
from hip3.protocol.messages import OrderStatus, OrderUpdates, parse_fill_list, parse_frame
from hip3.sim.events import SimEvent, UserFilled
from tests.position.test_interleavings import LIMITS, USER, World, mock_clock_settings, new_world, step

SCALE = max(1, int(os.environ.get("HIP3_FUZZ_EXAMPLES", "1")))
# the World's own steps, and the redeliveries this file adds
STEPS = (
    "signal",
    "burst",
    "response",
    "event",
    "fills_batch",
    "response_again",
    "update_again",
    "fills_again",
    "snapshot",
    "resync",
    "settle",
)


@attrs.define
class Courier:
    """What was delivered (so it can be delivered again), and what the exchange and the tracker did."""

    world: World
    responses: list[tuple[PendingOrder, OrderStatus]] = attrs.field(factory=list)
    updates: list[OrderUpdates] = attrs.field(factory=list)
    fills: list[dict[str, Any]] = attrs.field(factory=list)  # every fill of ours the exchange made
    applied: list[AppliedFill] = attrs.field(factory=list)

    @classmethod
    def new(cls) -> Courier:
        courier = cls(new_world())
        courier.world.exchange.add_listener(courier.on_event)
        courier.world.tracker.fill_listeners.append(courier.applied.append)
        return courier

    def on_event(self, event: SimEvent) -> None:
        if isinstance(event, UserFilled) and event.user == USER:
            self.fills.append(event.fill)

    async def deliver_response(self, index: int) -> None:
        self.responses.append(self.world.responses[index])
        await self.world.deliver_response(index)

    async def deliver_event(self, index: int) -> None:
        kind, payload = self.world.events[index]
        if kind == "update":
            updates = parse_frame(json.dumps({"channel": "orderUpdates", "data": [payload]}))
            assert isinstance(updates, OrderUpdates)
            self.updates.append(updates)
        await self.world.deliver_event(index)

    async def deliver_fills_batch(self, data: st.DataObject) -> None:
        """Several held fills in one streamed frame, in any order (the sim sends one per frame)."""
        held = [i for i, (kind, _) in enumerate(self.world.events) if kind == "fill"]
        if not held:
            return
        chosen = data.draw(st.lists(st.sampled_from(held), min_size=1, max_size=4, unique=True))
        payloads = [self.world.events[i][1] for i in chosen]
        for i in sorted(chosen, reverse=True):
            del self.world.events[i]
        frame = parse_fill_list(USER, payloads)
        self.world.delivered_fills.append(frame)
        await self.world.handle.user_fills(frame)

    async def respond_again(self, data: st.DataObject) -> None:
        """A response delivered a second time: the order has ended, its fill is already counted."""
        if self.responses:
            order, status = data.draw(st.sampled_from(self.responses))
            self.world.responses.append((order, status))
            await self.world.deliver_response(len(self.world.responses) - 1)

    async def snapshot(self, data: st.DataObject) -> None:
        """A userFills snapshot, as after a resubscription: every fill made so far, streamed or not."""
        fills = data.draw(st.permutations(self.fills)) if self.fills else []
        frame = parse_fill_list(USER, list(fills))
        await self.world.handle.user_fills(attrs.evolve(frame, is_snapshot=True))

    async def step(self, data: st.DataObject, name: str) -> None:
        world = self.world
        if name == "response" and world.responses:
            await self.deliver_response(data.draw(st.integers(0, len(world.responses) - 1)))
        elif name == "event" and world.events:
            await self.deliver_event(data.draw(st.integers(0, len(world.events) - 1)))
        elif name == "fills_batch":
            await self.deliver_fills_batch(data)
        elif name == "response_again":
            await self.respond_again(data)
        elif name == "update_again" and self.updates:
            await world.handle.order_updates(data.draw(st.sampled_from(self.updates)))
        elif name == "fills_again" and world.delivered_fills:
            await world.handle.user_fills(data.draw(st.sampled_from(world.delivered_fills)))
        elif name == "snapshot":
            await self.snapshot(data)
        elif name in ("signal", "burst", "resync", "settle"):
            await step(world, data, name)

    # -- what must hold --------------------------------------------------------------------------------

    def check_the_exchange_audit(self) -> None:
        self.world.check_caps_on_the_exchange()
        audit: Any = self.world.exchange.audit(USER)
        assert audit["ledger_consistent"], audit
        for coin, market in audit["markets"].items():
            peak = market["max_position_notional"]
            assert peak is None or D(peak) <= LIMITS.max_notional_per_market, (coin, market)

    def exchange_filled(self) -> dict[int, D]:
        filled: dict[int, D] = defaultdict(D)
        for fill in self.fills:
            filled[fill["oid"]] += D(fill["sz"])
        return dict(filled)

    def tracker_applied(self) -> dict[int, D]:
        applied: dict[int, D] = defaultdict(D)
        for fill in self.applied:
            assert fill.oid is not None
            applied[fill.oid] += fill.size
        return dict(applied)

    def check_no_fill_counted_twice(self) -> None:
        filled = self.exchange_filled()
        for oid, size in self.tracker_applied().items():
            assert size <= filled.get(oid, D(0)), (oid, size, filled.get(oid))


@mock_clock_settings(40 * SCALE)
@given(data=st.data())
async def test_own_responses_updates_and_fills_in_any_order_twice_or_late_end_equal_to_the_exchange(
    data: st.DataObject, autojump_clock: trio.testing.MockClock
) -> None:
    courier = Courier.new()
    world = courier.world
    async with trio.open_nursery() as nursery:
        await nursery.start(world.tracker.run)
        for _ in range(data.draw(st.integers(1, 40), label="steps")):
            await courier.step(data, data.draw(st.sampled_from(STEPS)))
            await trio.sleep(0.001)  # time moves: fills, snapshots and resync requests are ordered
            await world.handle.settled()
            courier.check_the_exchange_audit()
            courier.check_no_fill_counted_twice()
        while world.responses or world.events:  # everything still held, in any order, some twice, some late
            name = data.draw(
                st.sampled_from(["response", "event", "fills_batch", "response_again", "snapshot", "resync"])
            )
            await courier.step(data, name)
            await trio.sleep(0.001)
        await world.handle.settled()
        world.check_ended_orders_left_the_table()
        assert not world.handle.pending_orders()
        courier.check_the_exchange_audit()
        # every fill of ours counted exactly once: by the response, the terminal update or the stream
        assert courier.tracker_applied() == courier.exchange_filled()
        tracked = {coin: position.size for coin, position in world.handle.positions.items()}
        assert tracked == world.exchange_sizes()
        nursery.cancel_scope.cancel()
