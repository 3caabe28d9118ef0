"""The WebSocket connection's life: the 60 s idle close, pings that keep it open, and acks before data."""

from __future__ import annotations

import functools
from typing import Any

import pytest
import trio
import trio.testing
import trio_websocket

from hip3.core.order import Side, Tif
from hip3.sim.harness import MemorySim, run_memory_sim
from tests.sim_integration import (
    FUNDING,
    ORACLE_INTERVAL_MS,
    TRADER,
    TSLA,
    Frame,
    SimClient,
    ack,
    at_ms,
    quiet_scenario,
    signed_order,
    until_ms,
)

IDLE_TIMEOUT_S = 60.0
PING_EVERY_S = 50.0
KEPT_OPEN_S = 300.0


async def _receive_until_closed(client: SimClient) -> tuple[list[Frame], float]:
    """Every frame until the server closes the connection, and the virtual time it closed at."""
    frames: list[Frame] = []
    with pytest.raises(trio_websocket.ConnectionClosed):
        while True:
            frames.append(await client.receive())
    return frames, trio.current_time()


@pytest.mark.deadline(120)
async def test_a_client_that_never_sends_is_closed_60_s_after_connecting(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        sim = await nursery.start(run_memory_sim, quiet_scenario())
        connected_at = trio.current_time()
        client = await SimClient.connect(sim, nursery)
        frames, closed_at = await _receive_until_closed(client)
        nursery.cancel_scope.cancel()
    assert frames == []
    assert closed_at == connected_at + IDLE_TIMEOUT_S


@pytest.mark.deadline(120)
async def test_frames_from_the_server_do_not_keep_a_silent_client_open(
    autojump_clock: trio.testing.MockClock,
) -> None:
    subscription = {"type": "l2Book", "coin": TSLA}
    async with trio.open_nursery() as nursery:
        sim = await nursery.start(run_memory_sim, quiet_scenario())
        start = trio.current_time()
        client = await SimClient.connect(sim, nursery)
        await trio.sleep_until(at_ms(start, 7100))  # not a time the market process acts at
        last_message_at = trio.current_time()
        await client.subscribe(subscription)
        frames, closed_at = await _receive_until_closed(client)
        nursery.cancel_scope.cancel()
    # The silent client keeps receiving a book every 3 s (the snapshot, then 9 s … 66 s) and is still closed.
    assert frames[0].message == ack(subscription)
    assert [frame.at for frame in frames[1:]] == [last_message_at] + [
        at_ms(start, k * ORACLE_INTERVAL_MS) for k in range(3, 23)
    ]
    assert closed_at == last_message_at + IDLE_TIMEOUT_S


@pytest.mark.deadline(420)
async def test_a_client_that_pings_every_50_s_stays_open(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        sim = await nursery.start(run_memory_sim, quiet_scenario())
        start = trio.current_time()
        client = await SimClient.connect(sim, nursery)
        pongs: list[Frame] = []
        while trio.current_time() < start + KEPT_OPEN_S:
            await trio.sleep(PING_EVERY_S)
            await client.send({"method": "ping"})
            pongs.append(await client.receive())
        frames, closed_at = await _receive_until_closed(client)
        nursery.cancel_scope.cancel()
    ping_times = [start + PING_EVERY_S * k for k in range(1, 7)]
    assert [(frame.at, frame.message) for frame in pongs] == [(at, {"channel": "pong"}) for at in ping_times]
    # Nothing else arrived, and the server closed it 60 s after the last ping, not before.
    assert frames == []
    assert closed_at == start + KEPT_OPEN_S + IDLE_TIMEOUT_S


def _subscription_key(subscription: dict[str, Any]) -> tuple[str, str]:
    """Which of one connection's subscriptions a subscription is (orderUpdates frames carry no user)."""
    kind = subscription["type"]
    if kind == "orderUpdates":
        return kind, ""
    return kind, subscription.get("coin") or subscription.get("dex") or subscription.get("user") or ""


def _frame_key(frame: Frame) -> tuple[str, str]:
    """The subscription a data frame belongs to."""
    channel, data = frame.channel, frame.data
    if channel in ("l2Book", "bbo", "activeAssetCtx"):
        return channel, data["coin"]
    if channel == "trades":
        (coin,) = {trade["coin"] for trade in data}
        return channel, coin
    if channel == "allMids":
        (dex,) = {coin.split(":")[0] for coin in data["mids"]}
        return channel, dex
    if channel == "userFills":
        return channel, data["user"]
    assert channel == "orderUpdates", frame
    return channel, ""


async def _trade_at(sim: MemorySim, ms: int, start: float) -> None:
    """A taker buy of 0.1 TSLA through the stale ask, sent at `ms` after the start."""
    await trio.sleep_until(at_ms(start, ms))
    async with sim.http_client() as http:
        response = await http.post("/exchange", json=signed_order(sim, Side.BUY, "433.99", "0.1", Tif.IOC))
    assert "filled" in response.json()["response"]["data"]["statuses"][0]


async def test_each_subscription_is_acknowledged_before_its_first_data_frame(
    autojump_clock: trio.testing.MockClock,
) -> None:
    subscriptions = [
        {"type": "l2Book", "coin": TSLA},
        {"type": "bbo", "coin": TSLA},
        {"type": "trades", "coin": TSLA},
        {"type": "activeAssetCtx", "coin": TSLA},
        {"type": "allMids", "dex": "xyz"},
        {"type": "orderUpdates", "user": TRADER},
        {"type": "userFills", "user": TRADER},
    ]
    with_snapshot = {("l2Book", TSLA), ("allMids", "xyz"), ("userFills", TRADER)}
    bbo = {"type": "bbo", "coin": TSLA}
    async with trio.open_nursery() as nursery:
        sim = await nursery.start(functools.partial(run_memory_sim, quiet_scenario(), fund=FUNDING))
        start = trio.current_time()
        sim.process.force_jump(TSLA, 80.0)  # at 3 s; the makers re-quote from 4.25 s to 5 s
        client = await SimClient.connect(sim, nursery)
        async with trio.open_nursery() as traders:
            # The exchange is busy as the client subscribes: a trade in the same instant, another at 4.1 s.
            traders.start_soon(_trade_at, sim, 3500, start)
            traders.start_soon(_trade_at, sim, 4100, start)
            await trio.sleep_until(at_ms(start, 3500))
            await client.subscribe(*subscriptions)
            frames = await client.receive_until(until_ms(start, 4500))
        await client.send({"method": "unsubscribe", "subscription": bbo})
        frames += await client.receive_until(until_ms(start, 3 * ORACLE_INTERVAL_MS))
        nursery.cancel_scope.cancel()

    acks = {
        _subscription_key(frame.data["subscription"]): index
        for index, frame in enumerate(frames)
        if frame.channel == "subscriptionResponse" and frame.data["method"] == "subscribe"
    }
    assert sorted(acks) == sorted(_subscription_key(s) for s in subscriptions)
    first_data: dict[tuple[str, str], int] = {}
    for index, frame in enumerate(frames):
        if frame.channel != "subscriptionResponse":
            first_data.setdefault(_frame_key(frame), index)
    # Every subscription got data, none before its ack; a snapshot comes right after its ack.
    assert sorted(first_data) == sorted(acks)
    assert all(acks[key] < first_data[key] for key in acks)
    assert all(first_data[key] == acks[key] + 1 for key in with_snapshot)
    assert frames[acks[("userFills", TRADER)] + 1].data["isSnapshot"] is True

    # After the unsubscribe ack (at 4.5 s), the bbo changes of 4.75 s and 5 s are not sent; the book still is.
    (unsubscribed,) = [
        index for index, frame in enumerate(frames) if frame.message == ack(bbo, "unsubscribe")
    ]
    assert frames[unsubscribed].at == until_ms(start, 4500)
    after_the_race = [
        frame.at for frame in frames if frame.channel == "bbo" and frame.at > at_ms(start, 3500)
    ]
    assert after_the_race == [at_ms(start, ms) for ms in (4100, 4250, 4500)]
    assert max(index for index, frame in enumerate(frames) if frame.channel == "bbo") < unsubscribed
    assert [frame.at for frame in frames[unsubscribed:] if frame.channel == "l2Book"] == [
        at_ms(start, ms) for ms in (4750, 5000, 6000, 9000)
    ]
