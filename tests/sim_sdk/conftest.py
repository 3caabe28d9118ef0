"""Fixtures: one `hip3 sim` loopback server per session, SDK clients pointed at it, the calm windows.

The server runs as a subprocess (`python -m hip3 sim --port 0 --fund …`, the default scenario) from the
repository root; the fixture waits for its ready line (30 s real time), yields the URL and stops it with
SIGTERM (then SIGKILL) at the end. The clients are the official SDK's `Info` and `Exchange`, told about the
`xyz` dex; their nonces come from `NonceClock`. `calm_book` measures the oracle's phase once by polling
metaAndAssetCtxs until an xyz oracle price changes.

`ws_info` is an Info with the SDK's WebSocket thread, disconnected with `disconnect_websocket()` after the
test. That call closes the socket from the test's thread while the SDK's thread waits in websocket-client's
select loop, which only re-checks every 10 s whether it should stop; so the threads are joined once, at the
end of the session, instead of making each WebSocket test wait for them.
"""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
from eth_account import Account
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info

from hip3.sim.scenario_file import default_scenario
from tests.sim_sdk import FRESH_KEY, FUNDED_USDC, MASTER_KEY, PERP_DEXS, TRADER_KEY, CalmBook, NonceClock

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
WS_THREAD_JOIN_TIMEOUT_S = 15.0  # websocket-client wakes at least every 10 s
READY_LINE = re.compile(r"hip3 sim ready: (http://127\.0\.0\.1:\d+) \(ws ws://127\.0\.0\.1:\d+/ws\)")
CALM_MARGIN_S = 0.12  # distance kept from every scheduled book or mark change
ORACLE_POLL_S = 0.003


# --------------------------------------------------------------------------------------------- the server


def _pump_lines(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def _wait_for_ready(process: subprocess.Popen[str], lines: queue.Queue[str | None], stderr: Path) -> str:
    deadline = time.monotonic() + READY_TIMEOUT_S
    seen: list[str] = []
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if line is None:
            break
        seen.append(line)
        if (match := READY_LINE.search(line)) is not None:
            return match.group(1)
    _stop(process)
    pytest.fail(
        f"hip3 sim printed no ready line within {READY_TIMEOUT_S:.0f} s (exit code {process.returncode})\n"
        f"stdout: {''.join(seen)!r}\nstderr: {stderr.read_text()!r}"
    )


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def sim_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL (http://127.0.0.1:PORT) of a `hip3 sim` serving the default scenario."""
    command = [sys.executable, "-m", "hip3", "sim", "--port", "0"]
    for key in (TRADER_KEY, FRESH_KEY, MASTER_KEY):
        command += ["--fund", f"{Account.from_key(key).address.lower()}={FUNDED_USDC}"]
    stderr_path = tmp_path_factory.mktemp("sim") / "stderr.txt"
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True, bufsize=1
        )
    assert process.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_pump_lines, args=(process.stdout, lines), daemon=True).start()
    try:
        yield _wait_for_ready(process, lines, stderr_path)
    finally:
        _stop(process)


# --------------------------------------------------------------------------------------------- clients


@pytest.fixture(scope="session")
def nonces() -> Iterator[NonceClock]:
    """The nonce source of every signed request: patched into the SDK, and used for hand-built bodies."""
    clock = NonceClock()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("hyperliquid.exchange.get_timestamp_ms", clock)
        yield clock


@pytest.fixture(scope="session")
def info(sim_url: str) -> Info:
    """A REST-only Info that knows the first dex and xyz."""
    return Info(sim_url, skip_ws=True, perp_dexs=PERP_DEXS)


def _exchange(sim_url: str, key: str) -> Exchange:
    return Exchange(Account.from_key(key), sim_url, perp_dexs=PERP_DEXS)


@pytest.fixture(scope="session")
def trader(sim_url: str, nonces: NonceClock) -> Exchange:
    return _exchange(sim_url, TRADER_KEY)


@pytest.fixture(scope="session")
def fresh_trader(sim_url: str, nonces: NonceClock) -> Exchange:
    return _exchange(sim_url, FRESH_KEY)


@pytest.fixture(scope="session")
def master(sim_url: str, nonces: NonceClock) -> Exchange:
    return _exchange(sim_url, MASTER_KEY)


@pytest.fixture(scope="session")
def _websocket_threads() -> Iterator[list[threading.Thread]]:
    threads: list[threading.Thread] = []
    yield threads
    for thread in threads:
        thread.join(timeout=WS_THREAD_JOIN_TIMEOUT_S)
    assert not any(thread.is_alive() for thread in threads), "an SDK WebSocket thread did not stop"


@pytest.fixture
def ws_info(sim_url: str, _websocket_threads: list[threading.Thread]) -> Iterator[Info]:
    """An Info with the SDK's WebSocket (websocket-client, in its own thread), disconnected after the test."""
    with_ws = Info(sim_url, skip_ws=False, perp_dexs=PERP_DEXS)
    try:
        yield with_ws
    finally:
        with_ws.disconnect_websocket()
        if with_ws.ws_manager is not None:
            _websocket_threads.append(with_ws.ws_manager)


# --------------------------------------------------------------------------------------------- calm windows


def _xyz_oracles(info: Info) -> list[str]:
    _, contexts = info.post("/info", {"type": "metaAndAssetCtxs", "dex": "xyz"})
    return [ctx["oraclePx"] for ctx in contexts]


def _observe_oracle_update(info: Info, interval_s: float) -> float:
    """The monotonic time of an oracle update, to a few ms: poll until some xyz oracle price changes."""
    timeout_s = 2 * interval_s + 1
    deadline = time.monotonic() + timeout_s
    previous_sent = time.monotonic()
    first = _xyz_oracles(info)
    while time.monotonic() < deadline:
        sent = time.monotonic()
        current = _xyz_oracles(info)
        if current != first:
            return (previous_sent + time.monotonic()) / 2
        previous_sent = sent
        time.sleep(ORACLE_POLL_S)
    pytest.fail(f"no xyz oracle price changed within {timeout_s:.0f} s")


@pytest.fixture(scope="session")
def calm_book(info: Info) -> CalmBook:
    """The calm windows of xyz:TSLA in the default scenario, with the phase measured on the live server."""
    scenario = default_scenario()
    interval = scenario.oracle_interval_ms / 1000
    xyz = next(dex for dex in scenario.dexes if dex.name == "xyz")
    process = next(market for market in xyz.markets if market.name == "TSLA").process
    walk_start = process.quote_lag_ms / 1000
    walk_end = walk_start + process.catch_up_ms / 1000
    windows = [
        (CALM_MARGIN_S, walk_start - CALM_MARGIN_S),
        (walk_end + CALM_MARGIN_S, interval - CALM_MARGIN_S),
    ]
    windows = [(start, end) for start, end in windows if end > start]
    assert windows, f"xyz:TSLA re-quotes during its whole {interval} s oracle cycle"
    return CalmBook(_observe_oracle_update(info, interval), interval, windows)
