"""`hip3 demo`: the shipped sim config, the summary, and the real command trading the loopback simulator.

The end-to-end test runs `python -m hip3 demo` for 60 s of real time (the loopback simulator uses real
sockets, so no MockClock) and judges the run by the simulator's own ledger, as written in the summary.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from decimal import Decimal as D
from pathlib import Path
from typing import Any, cast

import attrs
import pytest
import trio

from hip3 import cli, demo
from hip3.config import load_config
from hip3.risk.monitor import RiskFigures
from hip3.sim.server import RunningSim
from tests.conftest import REPO_ROOT

SIM_CONFIG = REPO_ROOT / "config" / "sim.toml"
DEMO_SECONDS = 60
DEMO_SEED = 1
ADDRESS = "0x9b2edbbe499adc654d6e88464156e68eda207caa"


def _environment_without_account() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("HIP3_ACCOUNT_ADDRESS", "HIP3_TRADING_KEY")}


def test_the_sim_config_passes_check_config(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("HIP3_ACCOUNT_ADDRESS", raising=False)
    assert cli.main(["check-config", str(SIM_CONFIG)]) == 0
    assert "valid (0 warnings)" in capsys.readouterr().err
    cfg = load_config(SIM_CONFIG, env={})
    assert cfg.mode == "trading" and cfg.network.name == "local"
    assert cfg.position.max_notional_per_market == D(50)
    assert cfg.detector.max_notional <= cfg.position.max_notional_per_market


def test_the_demo_points_the_config_at_its_simulator_account_and_data_dir(tmp_path: Path) -> None:
    base = load_config(SIM_CONFIG, env={})
    sim = RunningSim(exchange=cast(Any, None), faults=cast(Any, None), http_url="http://127.0.0.1:41234")
    cfg = demo.demo_config(
        base,
        sim=sim,
        is_mainnet=False,
        address=ADDRESS,
        data_dir=tmp_path,
        dashboard=False,
        dashboard_port=0,
    )
    assert (cfg.network.api_url, cfg.network.ws_url) == ("http://127.0.0.1:41234", "ws://127.0.0.1:41234/ws")
    assert not cfg.network.is_mainnet
    assert cfg.account.account_address == ADDRESS and cfg.account.key_file is None
    assert cfg.persistence.data_dir == tmp_path
    assert cfg.persistence.journal_path.parent == tmp_path
    assert not cfg.dashboard.enabled and 1 <= cfg.dashboard.port <= 65_535  # 0 became a free port
    assert attrs.evolve(cfg, account=base.account, network=base.network, persistence=base.persistence,
                        dashboard=base.dashboard) == base  # fmt: skip


def test_the_throwaway_key_is_fresh_each_time() -> None:
    (key_a, address_a), (key_b, address_b) = demo.throwaway_key(), demo.throwaway_key()
    assert key_a != key_b and address_a != address_b
    assert len(key_a) == 66 and address_a.startswith("0x") and len(address_a) == 42


def _figures(**changes: Any) -> RiskFigures:
    zero = {
        field.name: D(0) if field.type in ("Decimal", D) else None if field.name == "clock_skew" else 0
        for field in attrs.fields(RiskFigures)
    }
    return RiskFigures(**{**zero, **changes})


def test_the_summary_takes_the_exchange_view_from_the_audit() -> None:
    audit = {
        "markets": {
            "xyz:TSLA": {"max_position_notional": "44.41154", "position": "0.0", "orders": 4, "fills": 4},
            "xyz:GOLD": {"max_position_notional": "44.5", "position": "-0.0168", "orders": 1, "fills": 1},
        },
        "orders": 5,
        "fills": 5,
    }
    summary = demo.build_summary(
        counts={"signals": 9, "orders": 5, "fills": 5},
        order_outcomes={"rejected": 1, "filled": 4},
        figures=_figures(
            round_trips=2, wins=1, losses=1, realized_pnl_total_usd=D("0.1234"), fees_usd=D("0.08")
        ),
        cap_per_market_usd=D(50),
        audit=audit,
        open_orders=0,
        tick_to_order_us={"p50": 61.5, "p99": 240, "count": 5},
        duration_s=60.0123,
    )
    assert list(summary) == list(demo.SUMMARY_KEYS)
    assert summary["signals"] == 9 and summary["fills"] == 5
    assert summary["orders"] == {"total": 5, "filled": 4, "rejected": 1}
    assert summary["round_trips"] == 2 and summary["win_rate"] == 0.5
    assert summary["realized_pnl_usd"] == "0.1234" and summary["fees_usd"] == "0.08"
    assert summary["cap_per_market_usd"] == "50"
    assert summary["max_notional_by_market"] == {"xyz:TSLA": "44.41154", "xyz:GOLD": "44.5"}
    assert summary["positions_at_end"] == {"xyz:GOLD": "-0.0168"}  # flat markets are left out
    assert summary["tick_to_order_us"] == {"p50": 61.5, "p99": 240.0, "count": 5}
    assert summary["duration_s"] == 60.012
    json.dumps(summary)  # plain JSON: strings for Decimals
    assert "win rate 50%" in demo.summary_text(summary)
    assert "orders 5 (4 filled, 1 rejected)" in demo.summary_text(summary)


def test_no_decided_round_trip_has_no_win_rate() -> None:
    summary = demo.build_summary(
        counts={},
        order_outcomes={},
        figures=_figures(),
        cap_per_market_usd=D(50),
        audit={"markets": {}},
        open_orders=0,
        tick_to_order_us={"p50": None, "p99": None, "count": 0},
        duration_s=1.0,
    )
    assert summary["win_rate"] is None and summary["tick_to_order_us"]["p50"] is None
    assert summary["signals"] == 0 and summary["positions_at_end"] == {}
    assert "win rate n/a" in demo.summary_text(summary)


def test_the_status_line_shows_the_figures() -> None:
    line = demo.status_line(
        demo.Progress(
            elapsed_s=83.4,
            connection="live",
            hard_stop="clear",
            signals=12,
            orders=5,
            fills=8,
            round_trips=3,
            realized_pnl_usd=D("-0.25"),
            open_positions=1,
            dashboard_url="http://127.0.0.1:8080",
        )
    )
    assert line == (
        "01:23  live  signals 12  orders 5  fills 8  round trips 3  pnl -0.2500 USD  open 1  "
        "hard stop clear  dashboard http://127.0.0.1:8080"
    )


@pytest.mark.deadline(45)
async def test_sigterm_stops_the_demo_gracefully_and_returns_the_summary(tmp_path: Path) -> None:
    setup = demo.DemoSetup(
        scenario=demo.load_demo_scenario(demo.DemoOptions(seed=DEMO_SEED)),
        base_config=load_config(SIM_CONFIG, env={}),
        data_dir=tmp_path,
        duration_s=None,
        dashboard=False,
        dashboard_port=0,
    )
    out = tmp_path / "out.txt"
    with out.open("w") as stream:
        async with trio.open_nursery() as nursery:
            finished: list[dict[str, Any] | None] = []

            async def run(task_status: trio.TaskStatus[demo.Demo]) -> None:
                finished.append(await demo.run_demo(setup, out=stream, task_status=task_status))

            await nursery.start(run)  # the demo's signal handlers are installed from here on
            await trio.sleep(2)
            os.kill(os.getpid(), signal.SIGTERM)
    assert finished and finished[0] is not None
    summary = finished[0]
    assert summary["open_orders_at_end"] == 0 and summary["positions_at_end"] == {}
    assert 2 <= summary["duration_s"] < 30
    assert "hip3 demo: simulator http://127.0.0.1:" in out.read_text()


def test_the_demo_command_trades_the_simulator_within_its_caps(tmp_path: Path) -> None:
    summary_file = tmp_path / "summary.json"
    command = [
        sys.executable, "-m", "hip3", "demo", "--duration", str(DEMO_SECONDS), "--no-dashboard",
        "--seed", str(DEMO_SEED), "--summary-json", str(summary_file), "--data-dir", str(tmp_path / "data"),
    ]  # fmt: skip
    result = subprocess.run(
        command,
        cwd=REPO_ROOT,
        env=_environment_without_account(),
        capture_output=True,
        text=True,
        timeout=DEMO_SECONDS + 40,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(summary_file.read_text())
    assert list(summary) == list(demo.SUMMARY_KEYS)
    orders = summary["orders"]
    assert orders["total"] >= 1 and summary["fills"] >= 2 and summary["round_trips"] >= 1, summary
    assert (
        orders.get("filled", 0) >= 2 and sum(n for k, n in orders.items() if k != "total") == orders["total"]
    )
    assert summary["open_orders_at_end"] == 0
    assert summary["positions_at_end"] == {}  # flattened on the way out
    cap = D(summary["cap_per_market_usd"])
    assert summary["max_notional_by_market"]
    assert all(D(peak) <= cap for peak in summary["max_notional_by_market"].values()), summary
    assert summary["tick_to_order_us"]["count"] >= 1
    assert "round trips" in result.stdout and "hip3 demo:" in result.stdout
