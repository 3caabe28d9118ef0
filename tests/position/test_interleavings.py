"""Random interleavings against the simulator's engine (hypothesis): signals through the entry gates, a full
inbox, post responses, userFills and orderUpdates delivered in any order, duplicated, snapshots and resyncs.

After every step: the exchange's own exposure never exceeds the caps, and no order whose terminal event was
delivered is still pending. Once everything is delivered: the tracker's positions equal the exchange's.
"""

from __future__ import annotations

import itertools
import json
from decimal import Decimal as D
from typing import Any

import attrs
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hip3.core.clock import trio_wall_clock
from hip3.core.market import MarketKey, MarketSpec
from hip3.core.order import Cloid, Side, Tif
from hip3.core.rounding import round_price
from hip3.execution.action_budget import ActionBudget
from hip3.execution.gates import Admitted, EntryGates, Limits
from hip3.execution.sizing import SizedOrder, size_entry
from hip3.position.model import PendingOrder
from hip3.position.tracker import PositionTracker, TrackerHandle
from hip3.protocol.account import AccountState, parse_account_state
from hip3.protocol.actions import OrderRequest, exchange_request, order_action
from hip3.protocol.messages import (
    ExchangeOk,
    Filled,
    OrderError,
    OrderState,
    OrderStatus,
    OrderUpdates,
    parse_exchange_response,
    parse_fill_list,
    parse_frame,
)
from hip3.protocol.signing import sign_l1_action
from hip3.sim.engine import SimExchange
from hip3.sim.events import OrderUpdated, SimEvent, UserFilled
from tests.sim import KEY, USER, scenario

BTC, TSLA, SILVER = "BTC", "xyz:TSLA", "xyz:SILVER"
MARKS = {BTC: D(90_000), TSLA: D(430), SILVER: D(32)}
SPECS = {
    BTC: MarketSpec(name=BTC, key=MarketKey("", 0, 0), sz_decimals=5, max_leverage=40),
    TSLA: MarketSpec(name=TSLA, key=MarketKey("xyz", 1, 0), sz_decimals=3, max_leverage=10),
    SILVER: MarketSpec(name=SILVER, key=MarketKey("xyz", 1, 1), sz_decimals=2, max_leverage=20),
}
DEX_COINS = {"": frozenset({BTC}), "xyz": frozenset({TSLA, SILVER})}
LIMITS = Limits(max_notional_per_market=D(50), max_total_notional=D(80), max_concurrent_positions=2)
STEPS = ("signal", "burst", "response", "event", "duplicate", "snapshot", "resync", "settle")
WALL_START_MS = 1_767_225_600_000


@attrs.define
class World:
    exchange: SimExchange
    tracker: PositionTracker
    gates: EntryGates
    responses: list[tuple[PendingOrder, OrderStatus]] = attrs.field(factory=list)
    events: list[tuple[str, dict[str, Any]]] = attrs.field(factory=list)
    delivered_fills: list[Any] = attrs.field(factory=list)
    ended: set[Cloid] = attrs.field(factory=set)  # orders whose terminal event has been delivered
    nonces: Any = attrs.field(factory=lambda: itertools.count(1))

    @property
    def handle(self) -> TrackerHandle:
        return self.tracker.handle

    def on_event(self, event: SimEvent) -> None:
        if isinstance(event, UserFilled) and event.user == USER:
            self.events.append(("fill", event.fill))
        elif isinstance(event, OrderUpdated) and event.user == USER:
            self.events.append(("update", event.update))

    def new_order(self, coin: str, side: Side, usd: int, *, sized_first: bool) -> PendingOrder | None:
        """An entry of about `usd`, sized like the bot does, or (sized_first False) floored to the lot only,
        so that the notional gates themselves must hold the caps."""
        remaining = self.gates.remaining_cap(coin) or D(0)
        suggested = D(usd) / MARKS[coin]
        if sized_first:
            sized = size_entry(
                SPECS[coin], suggested_size=suggested, mark=MARKS[coin], remaining_cap=remaining,
                visible_size=D(10_000),
            )  # fmt: skip
            if not isinstance(sized, SizedOrder):
                return None
            size = sized.size
        else:
            size = suggested.quantize(D(1).scaleb(-SPECS[coin].sz_decimals), rounding="ROUND_FLOOR")
            if size <= 0:
                return None
        px = round_price(MARKS[coin] * (D("1.01") if side.is_buy else D("0.99")), SPECS[coin], side)
        return PendingOrder(
            cloid=Cloid.new(), coin=coin, asset=SPECS[coin].asset_id, side=side, size=size, limit_px=px,
            tif=Tif.IOC, reduce_only=False, registered_at=trio.current_time(),
        )  # fmt: skip

    def send_to_exchange(self, order: PendingOrder) -> None:
        request = OrderRequest(
            asset=order.asset, side=order.side, price=order.limit_px, size=order.size, tif=order.tif,
            cloid=order.cloid,
        )  # fmt: skip
        action = order_action([request])
        nonce = self.exchange.now_ms() + next(self.nonces)
        signature = dict(sign_l1_action(KEY, action, nonce=nonce, is_mainnet=False))
        _, body = self.exchange.exchange(exchange_request(action, signature, nonce=nonce))
        response = parse_exchange_response(body)
        assert isinstance(response, ExchangeOk) and len(response.statuses) == 1, body
        self.responses.append((order, response.statuses[0]))

    async def deliver_response(self, index: int) -> None:
        order, status = self.responses.pop(index)
        if isinstance(status, Filled):
            await self.handle.response_fill(
                order.cloid, status.oid, status.total_sz, status.avg_px, ends_order=True
            )
        elif isinstance(status, OrderError):
            await self.handle.order_ended(order.cloid, OrderState.REJECTED, status.text)
        else:
            raise AssertionError(f"an Ioc answered {status!r}")
        self.ended.add(order.cloid)

    async def deliver_event(self, index: int) -> None:
        kind, payload = self.events.pop(index)
        if kind == "fill":
            frame = parse_fill_list(USER, [payload])
            self.delivered_fills.append(frame)
            await self.handle.user_fills(frame)
            return
        updates = parse_frame(json.dumps({"channel": "orderUpdates", "data": [payload]}))
        assert isinstance(updates, OrderUpdates) and len(updates.updates) == 1
        await self.handle.order_updates(updates)
        if updates.updates[0].status != "open" and updates.updates[0].cloid is not None:
            self.ended.add(updates.updates[0].cloid)

    def account_state(self, dex: str) -> AccountState:
        request = {"type": "clearinghouseState", "user": USER} | ({"dex": dex} if dex else {})
        return parse_account_state(self.exchange.info(request)[1])

    async def resync(self) -> None:
        for dex, coins in DEX_COINS.items():
            requested_at = trio.current_time()
            state = self.account_state(dex)
            await self.handle.resync(coins, state.positions, state.time_ms, requested_at=requested_at)

    def exchange_sizes(self) -> dict[str, D]:
        sizes: dict[str, D] = {}
        for dex in DEX_COINS:
            sizes |= {coin: size for coin, (size, _) in self.account_state(dex).positions.items()}
        return sizes

    def check_caps_on_the_exchange(self) -> None:
        exposure = {coin: abs(size) * MARKS[coin] for coin, size in self.exchange_sizes().items()}
        for coin, notional in exposure.items():
            assert notional <= LIMITS.max_notional_per_market, (coin, notional)
        assert sum(exposure.values(), D(0)) <= LIMITS.max_total_notional, exposure

    def check_ended_orders_left_the_table(self) -> None:
        for cloid in self.ended:
            assert self.handle.pending_by_cloid(cloid) is None, cloid


def new_world() -> World:
    wall = trio_wall_clock(WALL_START_MS)
    exchange = SimExchange(scenario(), wall_ms=wall)
    exchange.set_maker_quotes(TSLA, [(D("429.5"), D(1000))], [(D("430.5"), D(1000))])
    exchange.set_maker_quotes(SILVER, [(D("31.98"), D(100_000))], [(D("32.02"), D(100_000))])
    exchange.set_maker_quotes(BTC, [(D(89_990), D(100))], [(D(90_010), D(100))])
    tracker = PositionTracker(
        wall, inbox_size=0
    )  # a rendezvous inbox: a burst of two takes the actor-only path
    gates = EntryGates(
        tracker.handle, LIMITS, marks=MARKS.get, hard_stop=lambda: None, not_ready=lambda: None,
        flattening=lambda coin: False, budget=ActionBudget(100_000),
    )  # fmt: skip
    world = World(exchange, tracker, gates)
    exchange.add_listener(world.on_event)
    return world


async def signal(world: World, data: st.DataObject, *, then_register: list[PendingOrder]) -> None:
    coin = data.draw(st.sampled_from(sorted(MARKS)))
    side = data.draw(st.sampled_from([Side.BUY, Side.SELL]))
    sized_first = data.draw(st.booleans())
    order = world.new_order(coin, side, data.draw(st.integers(5, 90)), sized_first=sized_first)
    if order is None:
        return
    admitted = world.gates.admit(order)
    if not isinstance(admitted, Admitted):
        return
    if not admitted.registered_fast:
        then_register.append(order)  # the actor-only path, once this burst is over
    world.send_to_exchange(order)


async def step(world: World, data: st.DataObject, name: str) -> None:
    if name in ("signal", "burst"):
        late: list[PendingOrder] = []
        for _ in range(3 if name == "burst" else 1):  # a burst registers without yielding: the inbox fills
            await signal(world, data, then_register=late)
        for order in late:
            await world.handle.register_actor_only(order)
    elif name == "response" and world.responses:
        await world.deliver_response(data.draw(st.integers(0, len(world.responses) - 1)))
    elif name == "event" and world.events:
        await world.deliver_event(data.draw(st.integers(0, len(world.events) - 1)))
    elif name == "duplicate" and world.delivered_fills:
        await world.handle.user_fills(data.draw(st.sampled_from(world.delivered_fills)))
    elif name == "snapshot" and world.delivered_fills:
        fills = tuple(f for frame in world.delivered_fills for f in frame.fills)
        await world.handle.user_fills(attrs.evolve(world.delivered_fills[0], is_snapshot=True, fills=fills))
    elif name == "resync":
        await world.resync()
    elif name == "settle":
        await world.handle.settled()
        world.check_ended_orders_left_the_table()


def mock_clock_settings(max_examples: int) -> settings:
    """A property's settings under the MockClock fixture, which the examples share: it holds no state that
    one example could leave behind. Virtual time makes wall-time deadlines meaningless."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.function_scoped_fixture,
            HealthCheck.large_base_example,
        ],
    )


@mock_clock_settings(80)
@given(data=st.data())
async def test_random_interleavings_keep_caps_and_end_equal_to_the_exchange(
    data: st.DataObject, autojump_clock: trio.testing.MockClock
) -> None:
    world = new_world()
    async with trio.open_nursery() as nursery:
        await nursery.start(world.tracker.run)
        for _ in range(data.draw(st.integers(1, 40), label="steps")):
            await step(world, data, data.draw(st.sampled_from(STEPS)))
            await trio.sleep(0.001)  # time moves: fills, snapshots and resync requests are ordered
            world.check_caps_on_the_exchange()
        while world.responses or world.events:  # quiet: everything delivered, in a random order
            name = data.draw(st.sampled_from(["response", "event"]))
            await step(
                world, data, name if (world.responses if name == "response" else world.events) else "settle"
            )
        await world.handle.settled()
        world.check_ended_orders_left_the_table()
        assert not world.handle.pending_orders()
        tracked = {coin: position.size for coin, position in world.handle.positions.items()}
        assert tracked == world.exchange_sizes()
        nursery.cancel_scope.cancel()
