"""The real processes: `hip3 sim` on loopback and `hip3 run` trading against it; SIGTERM must leave no order
resting and (with shutdown.flatten on) no position at the exchange. Real clock, real sockets, loopback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from hip3.protocol.signing import SigningKey
from tests.conftest import REPO_ROOT

KEY_HEX = "0x0123456789012345678901234567890123456789012345678901234567890123"  # the SDK's public test key
ADDRESS = SigningKey.from_hex(KEY_HEX).address
JUMPY = REPO_ROOT / "hip3" / "sim" / "scenarios" / "jumpy.toml"


def trading_config(url: str, data_dir: Path) -> str:
    ws_url = "ws" + url.removeprefix("http") + "/ws"
    return f"""
mode = "trading"
[network]
name = "local"
api_url = "{url}"
ws_url = "{ws_url}"
[account]
account_address = "{ADDRESS}"
[markets]
dexes = ["xyz"]
allowlist = [{{ coin = "xyz:TSLA" }}, {{ coin = "xyz:SILVER" }}]
[position]
max_notional_per_market = 30
max_total_notional = 60
max_concurrent_positions = 2
[risk_monitor]
max_loss_usd = 50
[risk]
max_bbo_age_ms = 0
[detector]
baseline_min_samples = 3
consecutive_moves_filter = false
oracle_direction_filter = false
max_notional = 25
[time_stop]
threshold_ms = 600000
[mark_regression]
min_holding_time_ms = 600000
[shutdown]
deadline_s = 20
flatten = true
[persistence]
data_dir = "{data_dir}"
"""


@pytest.fixture
def sim_url() -> Iterator[str]:
    command = [
        sys.executable,
        "-m",
        "hip3",
        "sim",
        "--port",
        "0",
        "--scenario",
        str(JUMPY),
        "--fund",
        f"{ADDRESS}=10000",
    ]
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("hip3 sim ready: "), line
        yield line.split()[3]
    finally:
        process.terminate()
        process.wait(timeout=20)


def info(url: str, request: dict[str, Any]) -> Any:
    return httpx.post(f"{url}/info", json=request, timeout=5).json()


def positions(url: str) -> dict[str, Decimal]:
    state = info(url, {"type": "clearinghouseState", "user": ADDRESS, "dex": "xyz"})
    return {p["position"]["coin"]: Decimal(p["position"]["szi"]) for p in state["assetPositions"]}


def wait_for(condition: Any, limit_s: float) -> bool:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.25)
    return False


@pytest.mark.deadline(240)
def test_sigterm_leaves_no_resting_order_and_no_position(sim_url: str, tmp_path: Path) -> None:
    config = tmp_path / "trading.toml"
    config.write_text(trading_config(sim_url, tmp_path / "data"))
    env = {**os.environ, "HIP3_TRADING_KEY": KEY_HEX}
    bot = subprocess.Popen(
        [sys.executable, "-m", "hip3", "run", "--config", str(config)],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        held = wait_for(lambda: any(positions(sim_url).values()), limit_s=90)
        assert held, "the bot took no position within 90 s on the jumpy scenario"
        bot.send_signal(signal.SIGTERM)
        output, _ = bot.communicate(timeout=60)
    finally:
        if bot.poll() is None:
            bot.kill()
    assert bot.returncode == 0, output[-3000:]
    assert "shutdown sequence done" in output
    for dex in ("", "xyz"):
        request = {"type": "openOrders", "user": ADDRESS} | ({"dex": dex} if dex else {})
        assert info(sim_url, request) == []
    assert not any(positions(sim_url).values())
