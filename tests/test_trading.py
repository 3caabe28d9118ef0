"""Trading mode end to end against the in-memory simulator under MockClock: entry, exit, hard stop, restart,
graceful shutdown. The exchange's own ledger (simAudit, clearinghouseState) is the judge."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from hip3 import cli
from hip3.app import Running, Transports, run_bot
from hip3.app_trading import Desk, graceful_shutdown
from hip3.config import Config, parse_config
from hip3.core.clock import WallClock, trio_wall_clock
from hip3.execution.gates import Gate
from hip3.net.ws import Connector
from hip3.persist.jsonl import run_inline
from hip3.protocol.signing import SigningKey
from hip3.risk.hard_stop import MANUAL
from hip3.sim.harness import WALL_START_MS, MemorySim, run_memory_sim
from hip3.sim.scenario_file import parse_scenario
from tests.test_observation import SCENARIO

KEY_HEX = "0x0123456789012345678901234567890123456789012345678901234567890123"  # the SDK's public test key
KEY = SigningKey.from_hex(KEY_HEX)
TSLA = "xyz:TSLA"


def trading_head(coins: Iterable[str]) -> str:
    """The start of a trading configuration on the in-memory simulator: its URLs, KEY's account, and `coins`
    (on the xyz dex) allowed."""
    allowlist = ", ".join(f'{{ coin = "{coin}" }}' for coin in coins)
    return f"""
mode = "trading"
[network]
name = "local"
api_url = "http://sim.local"
ws_url = "ws://sim.local/ws"
[account]
account_address = "{KEY.address}"
[markets]
dexes = ["xyz"]
allowlist = [{allowlist}]
"""


def config_text(data_dir: Path) -> str:
    return (
        trading_head([TSLA, "xyz:WIDE"])
        + f"""[position]
max_notional_per_market = 50
max_total_notional = 80
max_concurrent_positions = 2
[risk_monitor]
max_loss_usd = 20
[risk]
max_bbo_age_ms = 0
[detector]
baseline_min_samples = 5
consecutive_moves_filter = false
oracle_direction_filter = false
max_notional = 45
[mark_regression]
exit_threshold_bps = 5
min_holding_time_ms = 1000
[persistence]
data_dir = "{data_dir}"
"""
    )


async def start_sim(nursery: trio.Nursery) -> MemorySim:
    """The in-memory simulator on tests.test_observation's scenario, KEY funded with 10,000 USDC."""
    sim: MemorySim = await nursery.start(
        lambda task_status: run_memory_sim(
            parse_scenario(SCENARIO, source="test"),
            fund=[(KEY.address, D(10_000))],
            task_status=task_status,
        )
    )
    return sim


async def start_bot(
    nursery: trio.Nursery,
    cfg: Config,
    sim: MemorySim,
    *,
    wall_ms: WallClock | None = None,
    alerts: httpx.AsyncBaseTransport | None = None,
    ws_connector: Connector | None = None,
    environ: dict[str, str] | None = None,
) -> Running:
    """The bot on the in-memory simulator's transports and wall clock, trading (in trading mode) with KEY."""
    key = {"HIP3_TRADING_KEY": KEY_HEX} if cfg.mode == "trading" else {}
    running: Running = await nursery.start(
        lambda task_status: run_bot(
            cfg,
            transports=Transports(
                http=sim.http_transport, ws_connector=ws_connector or sim.ws_server.connect, alerts=alerts
            ),
            wall_ms=wall_ms or trio_wall_clock(WALL_START_MS),
            disk_writes=run_inline,
            environ=key | (environ or {}),
            task_status=task_status,
        )
    )
    return running


run_trading_bot = start_bot  # the name tests.soak uses


@asynccontextmanager
async def sim_and_bot(cfg: Config, **start_bot_args: Any) -> AsyncIterator[tuple[MemorySim, Running]]:
    """The simulator and the bot on it (`start_sim`, `start_bot`), in a nursery of their own that the end of
    the block cancels."""
    async with trio.open_nursery() as nursery:
        sim = await start_sim(nursery)
        yield sim, await start_bot(nursery, cfg, sim, **start_bot_args)
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def trading_desk(data_dir: Path) -> AsyncIterator[tuple[MemorySim, Desk]]:
    """`sim_and_bot` on `config_text(data_dir)`: the simulator and the bot's trading desk."""
    async with sim_and_bot(parse_config(config_text(data_dir), source="test")) as (sim, running):
        assert running.desk is not None
        yield sim, running.desk


async def enter_on_a_jump(sim: MemorySim) -> None:
    """Let the baselines be learned and the positions synced, script a 60 bps oracle jump on TSLA (it lands
    at 18 s: the book is stale for 1.5 s), and wait for the entry to fill."""
    await trio.sleep(16.5)
    sim.process.force_jump(TSLA, 60)
    await until(lambda: exchange_size(sim) > 0)


def exchange_size(sim: MemorySim, coin: str = TSLA) -> D:
    state: Any = sim.exchange.info({"type": "clearinghouseState", "user": KEY.address, "dex": "xyz"})[1]
    sizes = [D(p["position"]["szi"]) for p in state["assetPositions"] if p["position"]["coin"] == coin]
    return sizes[0] if sizes else D(0)


def open_orders(sim: MemorySim) -> list[Any]:
    return sim.exchange.info({"type": "openOrders", "user": KEY.address, "dex": "xyz"})[1]  # type: ignore[return-value]


async def until(condition: Any, *, limit_s: float = 30.0) -> float:
    start = trio.current_time()
    with trio.fail_after(limit_s):
        while not condition():  # noqa: ASYNC110 — observing the exchange from outside the bot
            await trio.sleep(0.05)
    return trio.current_time() - start


@pytest.mark.deadline(300)
async def test_a_dislocation_is_entered_and_exited_on_mark_regression(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with trading_desk(tmp_path) as (sim, desk):
        await enter_on_a_jump(sim)
        entry = exchange_size(sim)
        assert entry * D("430.55") <= D(45)  # the order cap
        await until(lambda: exchange_size(sim) == 0)  # the bid catches up with the oracle: mark regression
        audit: Any = sim.exchange.audit(KEY.address)
        assert audit["fills"] == 2 and audit["ledger_consistent"]
        assert audit["markets"][TSLA]["max_position_notional"] is not None
        assert D(audit["markets"][TSLA]["max_position_notional"]) <= D(50)
        await desk.tracker.handle.settled()
        assert desk.tracker.handle.position(TSLA) is None
        assert desk.monitor.figures().round_trips == 1
        assert not desk.hard_stop.reason()


@pytest.mark.deadline(300)
async def test_a_latched_hard_stop_flattens_refuses_entries_and_survives_a_restart(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with trading_desk(tmp_path) as (sim, desk):
        await enter_on_a_jump(sim)
        desk.hard_stop.latch(MANUAL, "operator pressed the button")
        await until(lambda: exchange_size(sim) == 0)  # flattened at once, not by the mark regression
        assert open_orders(sim) == []
        refused_before = desk.gates.counters[Gate.HARD_STOP]
        sim.process.force_jump(TSLA, 80)
        await trio.sleep(6)
        assert desk.gates.counters[Gate.HARD_STOP] > refused_before  # signals came, entries were refused
        assert exchange_size(sim) == 0

    async with trading_desk(tmp_path) as (_, restarted):  # a restart on the same data directory
        assert restarted.hard_stop.reason() == "operator pressed the button"


@pytest.mark.deadline(300)
async def test_the_shutdown_sequence_leaves_no_order_and_no_position_within_the_deadline(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with trading_desk(tmp_path) as (sim, desk):
        await enter_on_a_jump(sim)
        begun = trio.current_time()
        await graceful_shutdown(desk)
        assert trio.current_time() - begun <= desk.cfg.shutdown.deadline_s
        assert exchange_size(sim) == 0 and open_orders(sim) == []
        assert desk.shutting_down


@pytest.mark.deadline(300)
async def test_reset_hardstop_clears_the_latch_for_the_next_start(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, capsys: pytest.CaptureFixture[str]
) -> None:
    async with trading_desk(tmp_path) as (_, desk):
        desk.hard_stop.latch(MANUAL, "drill")
    config_file = tmp_path / "bot.toml"
    config_file.write_text(config_text(tmp_path))
    assert cli.main(["reset-hardstop", "--config", str(config_file)]) == 0
    assert "cleared the hard stop latched for manual: drill" in capsys.readouterr().out
    async with trading_desk(tmp_path) as (_, restarted):
        assert restarted.hard_stop.reason() is None
    assert cli.main(["reset-hardstop", "--config", str(config_file)]) == 0
    assert "no hard stop was latched" in capsys.readouterr().out


@pytest.mark.deadline(300)
async def test_a_disconnect_while_holding_is_reconciled_before_entries_resume(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with trading_desk(tmp_path) as (sim, desk):
        await enter_on_a_jump(sim)
        sim.faults.drop_websockets()
        await until(lambda: desk.readiness.not_ready() is not None, limit_s=1)  # entries stop at once
        await until(lambda: desk.readiness.not_ready() is None)  # reconnected, resynced, reconciled
        await desk.tracker.handle.settled()
        tracked = desk.tracker.handle.position(TSLA)  # still held: the position itself was reconciled
        assert tracked is not None and tracked.size == exchange_size(sim) > 0
        assert not desk.hard_stop.reason()
