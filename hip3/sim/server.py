"""The loopback exchange: the engine and its market process behind Hypercorn (Trio worker) on one port.

`POST /info`, `POST /exchange` and `GET /ws` (WebSocket), as the real API. It binds to loopback unless told
otherwise, because it accepts any signature from a funded test account.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from decimal import Decimal
from functools import partial

import attrs
import hypercorn.trio
import trio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from hip3.core import serving
from hip3.core.clock import WallClock, system_wall_ms
from hip3.core.serving import hypercorn_config
from hip3.sim.driver import run_market
from hip3.sim.engine import SimExchange
from hip3.sim.faults import SimFaults, run_fault_schedule
from hip3.sim.market_process import MarketProcess
from hip3.sim.scenario import Scenario
from hip3.sim.transport_faults import TransportFaults
from hip3.sim.ws_serve import FrameTiming, StarletteFrames, serve_session
from hip3.sim.ws_session import HTTP_OK, ExchangeEndpoints, http_post_reply


def check_bind_host(host: str, *, allow_remote: bool) -> None:
    serving.check_bind_host(
        host, allow_remote=allow_remote, what="the simulator", permission="--allow-remote is given"
    )


def _answer(status: int, body: object) -> Response:
    if status != HTTP_OK and isinstance(body, str):
        return Response(body, status_code=status, media_type="text/plain")
    return Response(
        json.dumps(body, separators=(",", ":")), status_code=status, media_type="application/json"
    )


def create_app(
    exchange: ExchangeEndpoints,
    *,
    idle_timeout_s: float,
    faults: TransportFaults | None = None,
    timing: FrameTiming | None = None,
) -> Starlette:
    transport_faults = faults or TransportFaults()

    async def post_json(request: Request, handle: Callable[[object], tuple[int, object]]) -> Response:
        return _answer(*http_post_reply(handle, await request.body(), transport_faults))

    async def info(request: Request) -> Response:
        return await post_json(request, exchange.info)

    async def exchange_endpoint(request: Request) -> Response:
        return await post_json(request, exchange.exchange)

    async def websocket_endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        await serve_session(exchange, StarletteFrames(websocket), idle_timeout_s, transport_faults, timing)

    return Starlette(
        routes=[
            Route("/info", info, methods=["POST"]),
            Route("/exchange", exchange_endpoint, methods=["POST"]),
            WebSocketRoute("/ws", websocket_endpoint),
        ]
    )


@attrs.frozen
class RunningSim:
    exchange: SimExchange
    faults: SimFaults
    http_url: str  # e.g. http://127.0.0.1:8545
    timing: FrameTiming = attrs.field(factory=FrameTiming)  # every WebSocket frame sent and received

    @property
    def ws_url(self) -> str:
        return "ws" + self.http_url.removeprefix("http") + "/ws"


async def run_sim_server(
    scenario: Scenario,
    *,
    host: str = "127.0.0.1",
    port: int = 8545,
    fund: Sequence[tuple[str, Decimal]] = (),
    allow_remote: bool = False,
    wall_clock: WallClock = system_wall_ms,
    task_status: trio.TaskStatus[RunningSim] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the scenario's exchange until cancelled; reports the engine and the bound URL when ready."""
    check_bind_host(host, allow_remote=allow_remote)
    exchange = SimExchange(scenario, wall_ms=wall_clock)
    for user, usdc in fund:
        exchange.fund(user, usdc)
    faults = SimFaults(exchange, MarketProcess(scenario), TransportFaults())
    timing = FrameTiming()
    app = create_app(
        exchange, idle_timeout_s=scenario.ws_idle_timeout_s, faults=faults.transport, timing=timing
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(run_market, faults.process, exchange)
        await nursery.start(run_fault_schedule, scenario.faults, faults)
        serve = partial(hypercorn.trio.serve, app, hypercorn_config(host, port))  # type: ignore[arg-type]
        binds: list[str] = await nursery.start(serve)
        task_status.started(RunningSim(exchange=exchange, faults=faults, http_url=binds[0], timing=timing))
