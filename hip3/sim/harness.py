"""The whole simulated exchange in process: engine, market process, and in-memory HTTP and WebSocket.

Tests start it with `nursery.start(run_memory_sim, scenario)` and get a `MemorySim`. Under MockClock the
market process, the exchange's timers and every transport timeout run on exact virtual time, and the
exchange's wall clock (nonces, timestamps) advances with Trio's clock from a fixed start.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import attrs
import httpx
import trio

from hip3.core.clock import trio_wall_clock
from hip3.sim.driver import run_market
from hip3.sim.engine import SimExchange
from hip3.sim.faults import SimFaults, run_fault_schedule
from hip3.sim.market_process import MarketProcess
from hip3.sim.memory import MemoryWsServer, SimHttpTransport
from hip3.sim.scenario import Scenario
from hip3.sim.transport_faults import TransportFaults

WALL_START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
BASE_URL = "http://sim.local"


@attrs.frozen
class MemorySim:
    exchange: SimExchange
    process: MarketProcess
    faults: SimFaults
    ws_server: MemoryWsServer
    http_transport: SimHttpTransport

    def http_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self.http_transport, base_url=BASE_URL)


async def run_memory_sim(
    scenario: Scenario,
    *,
    fund: Sequence[tuple[str, Decimal]] = (),
    wall_start_ms: int = WALL_START_MS,
    task_status: trio.TaskStatus[MemorySim] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the exchange until cancelled; reports the `MemorySim` once the first quotes are in the books."""
    exchange = SimExchange(scenario, wall_ms=trio_wall_clock(wall_start_ms))
    for user, usdc in fund:
        exchange.fund(user, usdc)
    process = MarketProcess(scenario)
    faults = SimFaults(exchange, process, TransportFaults())
    async with trio.open_nursery() as nursery:
        await nursery.start(run_market, process, exchange)
        await nursery.start(run_fault_schedule, scenario.faults, faults)
        ws_server = MemoryWsServer(
            exchange, nursery, idle_timeout_s=scenario.ws_idle_timeout_s, faults=faults.transport
        )
        http = SimHttpTransport(exchange, faults.transport)
        task_status.started(MemorySim(exchange, process, faults, ws_server, http))
