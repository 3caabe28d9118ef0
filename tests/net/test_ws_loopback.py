"""The connection over a real socket to the loopback simulator (real clock, loopback only)."""

from __future__ import annotations

import trio

from hip3.net.ws import ConnectionState, WsConnection, url_connector
from hip3.protocol.messages import Bbo
from hip3.sim.scenario_file import default_scenario
from hip3.sim.server import RunningSim, run_sim_server


async def test_bbo_frames_arrive_over_a_real_socket(nursery: trio.Nursery) -> None:
    sim: RunningSim = await nursery.start(
        lambda task_status: run_sim_server(default_scenario(), port=0, task_status=task_status)
    )
    assert sim.ws_url.startswith("ws://127.0.0.1:")
    connection = WsConnection(url_connector(sim.ws_url))
    connection.subscribe({"type": "bbo", "coin": "xyz:TSLA"})
    bbos = connection.frames(Bbo)
    await nursery.start(connection.run)
    status = await connection.wait_live()
    assert status.state is ConnectionState.LIVE and status.epoch == 1
    with trio.fail_after(15):  # quotes re-price within a few seconds of every 3 s oracle update
        frames = [await bbos.receive()]
    assert all(frame.coin == "xyz:TSLA" and frame.bid and frame.ask for frame in frames)
    assert frames[0].bid.px < frames[0].ask.px
    nursery.cancel_scope.cancel()
