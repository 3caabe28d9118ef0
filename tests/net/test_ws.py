"""The WebSocket connection under MockClock, against the in-memory simulator and a scripted peer.

Jitter is off (reconnect_jitter=0) wherever a test asserts reconnect times, so every time is exact.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal

import attrs
import pytest
import trio
import trio.testing
import trio_websocket

from hip3.net.ws import (
    CANCELLED_CLOSE_TIMEOUT_S,
    ConnectionState,
    PostOutcomeUnknown,
    ReconnectGaveUp,
    Status,
    WsConnection,
    WsSettings,
    WsUnavailable,
)
from hip3.protocol.messages import Bbo
from hip3.sim.harness import MemorySim, run_memory_sim
from hip3.sim.scenario import DexDef, MarketDef, Scenario
from hip3.sim.scenario_file import shipped_scenario
from tests.net.scripted_ws_server import ScriptedServer

TSLA_BBO = {"type": "bbo", "coin": "xyz:TSLA"}
USER = "0x14791697260e4c9a71f18484c9f997b308e59325"
NO_JITTER = WsSettings(reconnect_jitter=0)


async def start_sim(nursery: trio.Nursery) -> MemorySim:
    return await nursery.start(run_memory_sim, shipped_scenario("calm"))  # type: ignore[no-any-return]


async def start_connection(
    nursery: trio.Nursery,
    connector: Callable[[trio.Nursery], Awaitable[trio_websocket.WebSocketConnection]],
    settings: WsSettings = NO_JITTER,
    subscriptions: tuple[dict[str, str], ...] = (TSLA_BBO,),
) -> WsConnection:
    connection = WsConnection(connector, settings)
    for subscription in subscriptions:
        connection.subscribe(subscription)
    await nursery.start(connection.run)
    return connection


async def live_on_sim(
    nursery: trio.Nursery, settings: WsSettings = NO_JITTER
) -> tuple[MemorySim, WsConnection]:
    """The calm simulator and a connection to it, LIVE with the TSLA bbo subscription."""
    sim = await start_sim(nursery)
    connection = await start_connection(nursery, sim.ws_server.connect, settings)
    await connection.wait_live()
    return sim, connection


async def post_at_once(connection: WsConnection, count: int) -> list[float]:
    """Send `count` info posts together; the seconds from now at which each was answered, in answer order."""
    start = trio.current_time()
    answered: list[float] = []

    async def post_one() -> None:
        await connection.post("info", {"type": "allMids"})
        answered.append(trio.current_time() - start)

    async with trio.open_nursery() as posts:
        for _ in range(count):
            posts.start_soon(post_one)
    return answered


async def test_live_after_every_subscription_is_acknowledged(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    sim = await start_sim(nursery)
    connection = await start_connection(
        nursery, sim.ws_server.connect, subscriptions=(TSLA_BBO, {"type": "orderUpdates", "user": USER})
    )
    start = trio.current_time()
    assert await connection.wait_live() == Status(ConnectionState.LIVE, 1)
    assert trio.current_time() == start
    assert connection.stats["SubscriptionAck"] == 2


async def test_not_live_without_acks_and_reconnects_after_the_subscribe_timeout(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    server = ScriptedServer(nursery, ack=False)
    start = trio.current_time()
    connection = await start_connection(nursery, server.connect)
    await connection.status.wait_for(lambda s: s.state is ConnectionState.SUBSCRIBING)
    with trio.move_on_after(9.999):
        await connection.wait_live()
        pytest.fail("LIVE without an acknowledgement")
    await connection.status.wait_for(lambda s: s.epoch == 2)
    assert trio.current_time() - start == 10.0 + 1.0  # subscribe timeout, then the first backoff
    assert connection.stats["connections_lost"] == 1


async def live_with_a_bbo_consumer(
    nursery: trio.Nursery,
) -> tuple[MemorySim, WsConnection, trio.MemoryReceiveChannel[Bbo]]:
    sim = await start_sim(nursery)
    connection = WsConnection(sim.ws_server.connect, NO_JITTER)
    connection.subscribe(TSLA_BBO)
    bbos = connection.frames(Bbo)
    await nursery.start(connection.run)
    await connection.wait_live()
    return sim, connection, bbos


async def test_data_frames_reach_their_consumers(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    sim, _, bbos = await live_with_a_bbo_consumer(nursery)
    sim.process.force_jump("xyz:TSLA", 80)
    frame = await bbos.receive()
    assert isinstance(frame, Bbo) and frame.coin == "xyz:TSLA"
    assert frame.bid is not None and frame.ask is not None and frame.bid.px < frame.ask.px


async def test_a_frame_handler_runs_in_the_reader_before_the_channels_until_removed(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    sim, connection, bbos = await live_with_a_bbo_consumer(nursery)
    handled: list[tuple[Bbo, float]] = []
    remove = connection.on_frames(lambda frame, at: handled.append((frame, at)), Bbo)
    sim.process.force_jump("xyz:TSLA", 80)
    frame = await bbos.receive()
    assert handled and handled[-1][0] is frame  # handled before the channel's consumer got it
    assert handled[-1][1] <= trio.current_time()
    remove()
    count = len(handled)
    sim.process.force_jump("xyz:TSLA", -80)
    await bbos.receive()
    assert len(handled) == count


@pytest.mark.deadline(600)
async def test_heartbeat_pings_after_45_quiet_seconds(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    server = ScriptedServer(nursery)
    start = trio.current_time()
    connection = await start_connection(nursery, server.connect)
    await connection.wait_live()
    await trio.sleep(200)
    pings = [round(at - start, 6) for at, text in server.received if text == '{"method": "ping"}']
    assert pings == [45.0, 90.0, 135.0, 180.0]
    assert connection.status.value == Status(ConnectionState.LIVE, 1)


@pytest.mark.deadline(600)
async def test_pings_keep_the_simulator_from_closing_an_idle_connection(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    sim = await start_sim(nursery)
    connection = await start_connection(
        nursery, sim.ws_server.connect, subscriptions=({"type": "orderUpdates", "user": USER},)
    )
    await connection.wait_live()
    await trio.sleep(300)
    assert connection.status.value == Status(ConnectionState.LIVE, 1)
    assert connection.stats["pings"] == 6 and connection.stats["Pong"] == 6


@pytest.mark.deadline(600)
async def test_a_missing_pong_ends_the_connection_and_it_reconnects(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    server = ScriptedServer(nursery, answer_pings=False)
    start = trio.current_time()
    connection = await start_connection(nursery, server.connect)
    await connection.wait_live()
    await connection.status.wait_for(lambda s: s.state is ConnectionState.DISCONNECTED)
    assert trio.current_time() - start == 45.0 + 10.0
    await connection.wait_live(after_epoch=1)
    assert trio.current_time() - start == 56.0  # healthy for 55 s: the backoff starts again at 1 s
    assert server.connections == 2


@pytest.mark.deadline(600)
async def test_backoff_doubles_to_its_cap(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    attempts: list[float] = []
    start = trio.current_time()

    async def refuse(_nursery: trio.Nursery) -> trio_websocket.WebSocketConnection:
        attempts.append(trio.current_time() - start)
        raise OSError("connection refused")

    await start_connection(nursery, refuse, attrs.evolve(NO_JITTER, reconnect_max_s=60))
    await trio.sleep(200)
    assert attempts == [0, 1, 3, 7, 15, 31, 63, 123, 183]


async def test_backoff_resets_after_a_healthy_connection(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    sim = await start_sim(nursery)
    attempts: list[float] = []
    start = trio.current_time()

    async def flaky(client_nursery: trio.Nursery) -> trio_websocket.WebSocketConnection:
        attempts.append(trio.current_time() - start)
        if len(attempts) <= 2:
            raise OSError("connection refused")
        return await sim.ws_server.connect(client_nursery)

    connection = await start_connection(nursery, flaky)
    await connection.wait_live()
    assert trio.current_time() - start == 3.0  # failed at 0 and 1, connected at 3
    await trio.sleep(40)
    sim.faults.drop_websockets()  # after 40 s LIVE: healthy
    await connection.wait_live(after_epoch=3)
    await trio.sleep(5)
    sim.faults.drop_websockets()  # after 5 s LIVE: not healthy
    await connection.wait_live(after_epoch=4)
    sim.faults.drop_websockets()
    await connection.wait_live(after_epoch=5)
    assert attempts == [0, 1, 3, 44, 50, 52]


async def test_giving_up_after_the_maximum_attempts(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    async def refuse(_nursery: trio.Nursery) -> trio_websocket.WebSocketConnection:
        raise OSError("connection refused")

    connection = WsConnection(refuse, attrs.evolve(NO_JITTER, max_reconnect_attempts=3))
    start = trio.current_time()
    with pytest.raises(ReconnectGaveUp, match="4 connection attempts in a row failed"):
        await connection.run()
    assert trio.current_time() - start == 1 + 2 + 4


async def test_shutdown_during_backoff_returns_at_once(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    async def refuse(_nursery: trio.Nursery) -> trio_websocket.WebSocketConnection:
        raise OSError("connection refused")

    connection = WsConnection(refuse, NO_JITTER)
    start = trio.current_time()
    with trio.move_on_after(0.5):
        await connection.run()
    assert trio.current_time() - start == 0.5
    assert connection.status.value.state is ConnectionState.DISCONNECTED


async def test_a_cancelled_live_connection_returns_without_waiting_for_the_close_handshake(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    sim = await start_sim(nursery)
    connection = WsConnection(sim.ws_server.connect, NO_JITTER)
    connection.subscribe(TSLA_BBO)
    async with trio.open_nursery() as inner:
        await inner.start(connection.run)
        await connection.wait_live()
        cancelled_at = trio.current_time()
        inner.cancel_scope.cancel()
    # the socket's reader is cancelled with it, so the peer's closing answer could never be read
    assert trio.current_time() - cancelled_at <= CANCELLED_CLOSE_TIMEOUT_S
    assert connection.status.value.state is ConnectionState.DISCONNECTED


async def test_post_requests_over_the_socket(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    _, connection = await live_on_sim(nursery)
    response = await connection.post("info", {"type": "l2Book", "coin": "xyz:TSLA"})
    assert response.kind == "info"
    assert response.payload["type"] == "l2Book" and response.payload["data"]["coin"] == "xyz:TSLA"


async def test_a_post_times_out_at_exactly_its_timeout(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    sim, connection = await live_on_sim(nursery)
    sim.faults.delay_post_responses(10)
    start = trio.current_time()
    with pytest.raises(PostOutcomeUnknown, match="got no answer"):
        await connection.post("info", {"type": "allMids"})
    assert trio.current_time() - start == 5.0
    assert connection.stats["post_unknown"] == 1
    await trio.sleep(6)
    assert connection.stats["post_late"] == 1  # the late answer is counted, not mistaken for another


async def test_a_post_fails_at_once_when_the_socket_is_down(autojump_clock: trio.testing.MockClock) -> None:
    async def never(_nursery: trio.Nursery) -> trio_websocket.WebSocketConnection:
        raise AssertionError("not connected in this test")

    connection = WsConnection(never)
    start = trio.current_time()
    with pytest.raises(WsUnavailable, match="disconnected"):
        await connection.post("action", {"type": "noop"})
    assert trio.current_time() == start


async def test_a_disconnect_ends_posts_in_flight_as_unknown(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    sim, connection = await live_on_sim(nursery)
    sim.faults.delay_post_responses(10)
    start = trio.current_time()

    async def drop_soon() -> None:
        await trio.sleep(1)
        sim.faults.drop_websockets()

    nursery.start_soon(drop_soon)
    with pytest.raises(PostOutcomeUnknown):
        await connection.post("info", {"type": "allMids"})
    assert trio.current_time() - start == 1.0


@pytest.mark.deadline(600)
async def test_every_message_shares_the_rate_limit(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    # a client that may not send for 60 s would meet the simulator's idle close; give it more room
    scenario = attrs.evolve(shipped_scenario("calm"), ws_idle_timeout_s=300)
    sim: MemorySim = await nursery.start(run_memory_sim, scenario)
    settings = attrs.evolve(NO_JITTER, messages_per_minute=5, post_timeout_s=120, heartbeat_interval_s=500)
    connection = await start_connection(
        nursery,
        sim.ws_server.connect,
        settings,
        subscriptions=(TSLA_BBO, {"type": "orderUpdates", "user": USER}),
    )
    await connection.wait_live()
    answered = await post_at_once(connection, 4)
    assert answered == [0.0, 0.0, 0.0, 60.0]  # 2 subscribes + 3 posts fill the minute; the 4th waits


@pytest.mark.parametrize("fault", ["drop_websockets", "drop_websockets_after_frames"])
async def test_resubscribes_after_the_simulators_disconnects(
    fault: str, nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    sim, connection, bbos = await live_with_a_bbo_consumer(nursery)
    if fault == "drop_websockets":
        sim.faults.drop_websockets()
    else:
        sim.faults.drop_websockets_after_frames(0)
        sim.process.force_jump("xyz:TSLA", 80)  # the next frame the server would send drops the connection
    status = await connection.wait_live(after_epoch=1)
    assert status.epoch == 2
    sim.process.force_jump("xyz:TSLA", -80)
    frame = await bbos.receive()
    assert frame.coin == "xyz:TSLA"


@pytest.mark.deadline(300)
async def test_resubscribes_after_the_servers_idle_close(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    sim = await start_sim(nursery)
    settings = attrs.evolve(NO_JITTER, heartbeat_interval_s=100)  # too slow: the server closes at 60 s
    start = trio.current_time()
    connection = await start_connection(nursery, sim.ws_server.connect, settings)
    await connection.wait_live()
    await connection.wait_live(after_epoch=1)
    assert trio.current_time() - start == 60.0 + 1.0


async def test_malformed_frames_are_counted_and_the_connection_stays(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    garbage = [
        "not json",
        '{"channel":"bbo","data":{"coin":1}}',
        '{"channel":"mystery","data":{}}',
        "not json",
    ]
    server = ScriptedServer(nursery, frames_after_ack=garbage)
    connection = await start_connection(nursery, server.connect)
    await connection.wait_live()
    await trio.sleep(1)
    assert connection.stats["Malformed"] == 4
    malformed_kinds = {k: v for k, v in connection.stats.items() if k.startswith("malformed:")}
    assert sum(malformed_kinds.values()) == 4 and len(malformed_kinds) == 3
    assert connection.status.value == Status(ConnectionState.LIVE, 1)


async def test_subscriptions_for_42_markets_are_live_at_once(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    markets = tuple(
        MarketDef(name=f"M{i:02d}", sz_decimals=2, max_leverage=10, start_price=Decimal(10 + i))
        for i in range(42)
    )
    first = DexDef(
        name="", markets=(MarketDef(name="BTC", sz_decimals=5, max_leverage=40, start_price=Decimal(90_000)),)
    )
    scenario = Scenario(dexes=(first, DexDef(name="xyz", markets=markets)))
    sim: MemorySim = await nursery.start(run_memory_sim, scenario)
    coins = [coin for coin in sim.exchange.coins if coin.startswith("xyz:")]
    assert len(coins) == 42
    subscriptions = tuple(
        {"type": kind, "coin": coin} for coin in coins for kind in ("bbo", "activeAssetCtx")
    )
    subscriptions += tuple({"type": "l2Book", "coin": f"{coin}"} for coin in coins)
    connection = await start_connection(nursery, sim.ws_server.connect, subscriptions=subscriptions)
    start = trio.current_time()
    await connection.wait_live()
    assert trio.current_time() == start  # no waiting for data: acks only
    assert connection.stats["SubscriptionAck"] == len(subscriptions)


async def test_posts_in_flight_are_bounded(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    sim, connection = await live_on_sim(nursery, attrs.evolve(NO_JITTER, max_inflight_posts=2))
    sim.faults.delay_post_responses(2)
    answered = await post_at_once(connection, 3)
    assert answered == [2.0, 2.0, 4.0]  # the third waits for a free slot, then its own 2 s


async def test_a_connection_without_subscriptions_is_live_at_once(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    sim = await start_sim(nursery)
    start = trio.current_time()
    connection = await start_connection(nursery, sim.ws_server.connect, subscriptions=())
    assert await connection.wait_live() == Status(ConnectionState.LIVE, 1)
    assert trio.current_time() == start
    response = await connection.post("info", {"type": "allMids"})  # usable for posts only
    assert response.kind == "info"
