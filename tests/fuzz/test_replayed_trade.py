"""A real trade's user frames replayed out of order and twice, around resyncs and userFills snapshots.

1. The trading bot enters on a forced jump against the in-memory simulator and exits on mark regression.
   The simulator may stream the fills late and drop orderUpdates (its own faults). The userFills and
   orderUpdates frames it sent for the trade are then fed to the bot again through its socket: shuffled,
   some twice, mixed with a userFills snapshot (isSnapshot true) holding the same fills, position resyncs
   from clearinghouseState and, in some examples, a dropped socket (the simulator's own snapshot, then the
   reconcile's fetch). The replay starts while the position is held or once it is closed again. Whatever
   the order: the tracker's position equals the exchange's clearinghouseState, every fill of the trade was
   applied exactly once (the fill listeners' sizes per order equal the exchange's), every replayed fill is
   counted as a duplicate, no order is left pending, and the exchange's audit shows the caps kept and its
   ledger consistent.
2. The tracker alone, on the simulator's engine: one real trade (ours, or made by hand) whose frames it
   sees for the first time only now, shuffled and duplicated around snapshots and resyncs. A fill only in
   a snapshot is neither applied nor remembered; a streamed fill older than an accepted resync is absorbed;
   a streamed fill seen before is a duplicate. Without a final resync the tracker ends equal to the exchange
   and each fill is applied at most once (exactly once for ours).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import defaultdict
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import attrs
import hypothesis.strategies as st
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings

from hip3.core.order import Side
from hip3.execution.gates import Admitted
from hip3.position.tracker import AppliedFill
from hip3.protocol.messages import OrderUpdates, UserFills, parse_fill_list, parse_frame
from hip3.sim.events import UserFilled
from hip3.sim.harness import MemorySim
from tests.fuzz.test_hostile_input import Injector, start_bot
from tests.position.test_interleavings import MARKS, USER, World, mock_clock_settings, new_world
from tests.test_trading import KEY, TSLA, enter_on_a_jump, exchange_size, until

SCALE = max(1, int(os.environ.get("HIP3_FUZZ_EXAMPLES", "1")))
REPLAY = settings(max_examples=15 * SCALE, deadline=None, suppress_health_check=list(HealthCheck))
CAP = D(50)  # max_notional_per_market in tests.test_trading.config_text


def streamed_user_frames(seen: list[str]) -> list[str]:
    """The userFills (not the subscription's snapshot) and orderUpdates frames a socket received."""
    return [
        text
        for text in seen
        if isinstance(frame := parse_frame(text), OrderUpdates)
        or (isinstance(frame, UserFills) and not frame.is_snapshot)
    ]


def fills_of(frames: list[str]) -> list[dict[str, Any]]:
    return [
        fill
        for text in frames
        if (frame := json.loads(text))["channel"] == "userFills"
        for fill in frame["data"]["fills"]
    ]


def exchange_fills(sim: MemorySim) -> list[dict[str, Any]]:
    fills: Any = sim.exchange.info({"type": "userFills", "user": KEY.address})[1]
    return fills


def per_oid(items: list[tuple[int | None, D]]) -> dict[int | None, D]:
    sizes: dict[int | None, D] = defaultdict(D)
    for oid, size in items:
        sizes[oid] += size
    return dict(sizes)


@REPLAY
@given(st.data())
def test_a_real_trade_replayed_out_of_order_and_twice_around_a_resync_is_counted_once(data: Any) -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        trio.run(_replay_scenario, Path(data_dir), data, clock=trio.testing.MockClock(autojump_threshold=0))


async def _replay_scenario(data_dir: Path, data: Any) -> None:
    with trio.fail_after(600):
        async with trio.open_nursery() as nursery:
            sim, running, injector = await start_bot(nursery, data_dir)
            desk = running.desk
            assert desk is not None
            handle = desk.tracker.handle
            applied: list[AppliedFill] = []
            desk.tracker.fill_listeners.append(applied.append)
            fills_delay = data.draw(st.sampled_from([0.0, 0.0, 0.3, 2.0]), label="userFills delay")
            if fills_delay:
                sim.faults.delay_user_fills(fills_delay)
            sim.faults.drop_order_updates(data.draw(st.integers(0, 2), label="orderUpdates dropped"))
            await enter_on_a_jump(sim)
            holding = data.draw(st.booleans(), label="replay while holding")
            if not holding:
                await until(lambda: exchange_size(sim) == 0)  # the exit on mark regression
            await trio.sleep(fills_delay + 0.01)
            await handle.settled()

            frames = [text for socket in injector.sockets for text in streamed_user_frames(socket.seen)]
            assert fills_of(frames), "the trade streamed no fill"
            script = _draw_script(data, frames)
            duplicates_before = desk.tracker.stats["fills_duplicate"]
            replayed_fills = 0
            for action in script:
                replayed_fills += await _act(action, sim, running, injector, frames)
                await trio.sleep(data.draw(st.sampled_from([0, 0.001, 0.05, 0.5]), label="pause"))

            await until(lambda: exchange_size(sim) == 0, limit_s=60)  # the exit, if it was still to come
            await trio.sleep(fills_delay + 1)
            await handle.settled()
            assert exchange_size(sim) == 0
            assert handle.position(TSLA) is None, handle.position(TSLA)
            assert handle.pending_orders() == []
            made = exchange_fills(sim)
            assert made and all(fill["coin"] == TSLA for fill in made)
            # every fill of the trade applied once, whichever source came first; none applied again
            assert per_oid([(f.oid, f.size) for f in applied]) == per_oid(
                [(f["oid"], D(f["sz"])) for f in made]
            )
            assert desk.tracker.stats["fills_duplicate"] - duplicates_before >= replayed_fills
            audit: Any = sim.exchange.audit(KEY.address)
            assert audit["ledger_consistent"], audit
            assert D(audit["markets"][TSLA]["max_position_notional"]) <= CAP
            assert audit["fills"] == len(made)
            assert not desk.hard_stop.reason()
            nursery.cancel_scope.cancel()


def _draw_script(data: Any, frames: list[str]) -> list[Any]:
    twice = data.draw(st.lists(st.sampled_from(frames), max_size=len(frames)), label="frames sent twice")
    extra = data.draw(
        st.lists(st.sampled_from(["snapshot", "resync", "reconnect"]), max_size=2), label="extra actions"
    )
    return list(data.draw(st.permutations([*frames, *twice, "snapshot", "resync", *extra]), label="script"))


async def _act(action: str, sim: MemorySim, running: Any, injector: Injector, frames: list[str]) -> int:
    """Do one step of the script; return how many fills it fed the bot again."""
    desk = running.desk
    if action == "resync":
        await desk.resyncer.once()
        return 0
    if action == "reconnect":
        sockets = len(injector.sockets)
        sim.faults.drop_websockets()
        await until(lambda: len(injector.sockets) > sockets and desk.readiness.not_ready() is None)
        return 0
    if action == "snapshot":
        fills = fills_of(frames)
        snapshot = {"user": KEY.address, "isSnapshot": True, "fills": fills}
        injector.inject(json.dumps({"channel": "userFills", "data": snapshot}))
        return len(fills)
    injector.inject(action)
    return len(fills_of([action]))


# ----------------------------------------------------------------------------- first seen in a snapshot


@mock_clock_settings(60 * SCALE)
@given(data=st.data())
async def test_a_real_fills_frames_replayed_around_snapshots_and_resyncs_count_it_once(
    data: st.DataObject, autojump_clock: trio.testing.MockClock
) -> None:
    """One real trade on the simulator's engine, ours (registered, its response held) or not (made on the
    exchange by hand), whose userFills and orderUpdates the tracker first sees only now: shuffled, some
    twice, around userFills snapshots holding the fill and position resyncs. A fill only in a snapshot is
    not applied and not remembered, so a later stream of it still counts; a resync accepted before the fill
    is streamed already holds it; a fill streamed again is a duplicate."""
    world = new_world()
    applied: list[AppliedFill] = []
    world.tracker.fill_listeners.append(applied.append)
    made: list[dict[str, Any]] = []
    world.exchange.add_listener(
        lambda event: made.append(event.fill) if isinstance(event, UserFilled) else None
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(world.tracker.run)
        ours = data.draw(st.booleans(), label="our order")
        coin = data.draw(st.sampled_from(sorted(MARKS)), label="coin")
        side = data.draw(st.sampled_from([Side.BUY, Side.SELL]), label="side")
        order = world.new_order(coin, side, 40, sized_first=True)
        assert order is not None
        if ours:
            assert isinstance(world.gates.admit(order), Admitted)
        world.send_to_exchange(order)
        if not ours:
            world.responses.clear()  # a trade made by hand: no response reaches us
        assert made, "the trade did not fill"
        await trio.sleep(0.001)  # the snapshots and resyncs below come after the fill, as they would

        events = list(world.events)
        world.events.clear()
        twice = data.draw(st.lists(st.sampled_from(events), max_size=3), label="events sent twice")
        extra = data.draw(
            st.lists(st.sampled_from(["snapshot", "resync"]), min_size=1, max_size=4), label="snapshots"
        )
        script = data.draw(
            st.permutations([*events, *twice, *extra, *(["response"] * len(world.responses))]),
            label="script",
        )
        kept, expected = await _replay(world, data, script, made)
        await world.handle.settled()

        tracked = {c: position.size for c, position in world.handle.positions.items()}
        assert tracked == world.exchange_sizes()  # no resync after the last frame: the frames did it
        assert not world.handle.pending_orders()
        counted = per_oid([(fill.oid, fill.size) for fill in applied])
        if ours:  # applied once, by whichever source came first
            assert counted == per_oid([(fill["oid"], D(fill["sz"])) for fill in made])
        else:  # applied once if streamed before a resync; else the accepted resync already held it
            assert counted == per_oid([(fill["oid"], D(fill["sz"])) for fill in kept])
        assert {key: world.tracker.stats[key] for key in expected} == expected
        nursery.cancel_scope.cancel()


async def _replay(
    world: World, data: st.DataObject, script: list[Any], made: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Deliver the script; return the fills first streamed before any resync (a foreign fill counts then)
    and the duplicate and snapshot counts the tracker must show."""
    resynced = False
    seen: set[int] = set()  # tids streamed so far
    kept: list[dict[str, Any]] = []  # fills first streamed before any resync: a foreign fill counts then
    expected = {"fills_duplicate": 0, "fills_in_snapshot": 0}
    for action in script:
        if action == "snapshot":
            fills = parse_fill_list(USER, list(data.draw(st.permutations(made))))
            for fill in fills.fills:
                expected["fills_duplicate" if fill.tid in seen else "fills_in_snapshot"] += 1
            await world.handle.user_fills(attrs.evolve(fills, is_snapshot=True))
        elif action == "resync":
            await world.resync()
            resynced = True
        elif action == "response":
            await world.deliver_response(0)
        else:
            kind, payload = action
            if kind == "fill" and payload["tid"] in seen:
                expected["fills_duplicate"] += 1
            elif kind == "fill":
                seen.add(payload["tid"])
                kept += [] if resynced else [payload]
            world.events.append(action)
            await world.deliver_event(len(world.events) - 1)
        await trio.sleep(0.001)
    return kept, expected
