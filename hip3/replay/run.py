"""`hip3 replay RECORDING… --config FILE --scenario FILE`: the real bot, in trading mode, against a replay
exchange driven by a raw market recording, on a virtual clock; then the report from the bot's own journal.

Same code path as live: `run_bot` builds the same feed, risk gates, detector, entry gates, desk and exits;
only the transports are in-memory and the exchange is the simulator's engine whose books follow the recording
(hip3.replay.exchange). The bot's IOC orders match in the engine against the recorded best bid/ask.

Timing: frame i is applied to the engine at `start + offset_i` (hip3.replay.source) and published to the bot
`latency_ms` later, so with a latency the bot decides on data that is `latency_ms` old and its orders meet the
book as it is by then (the round trip, all charged to the market-data leg). Wall-clock ms (nonces, journal
times) are the recording's: `w` of the first frame at `start`.

The replay's bot trades a throwaway key funded on the replay exchange, writes into its own data directory
(never the recorded bot's journal), and does not record market data. At the end of the recording it runs the
graceful shutdown (flattening whatever is still open against the last recorded book) before the report.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import sys
import tempfile
from collections import deque
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path

import attrs
import trio
import trio.testing

from hip3.app import Running, Transports, run_bot
from hip3.app_trading import graceful_shutdown
from hip3.config import Config
from hip3.core.clock import trio_wall_clock
from hip3.keys import KEY_ENV_VAR
from hip3.launch import EXIT_INVALID, EXIT_OK, load_or_report
from hip3.ops.report import Report, build_report, render_table, report_json
from hip3.persist.jsonl import run_inline
from hip3.protocol.signing import SigningKey
from hip3.replay.exchange import MarketFrame, ReplayExchange, ReplayStats
from hip3.replay.source import TimedFrame, read_recordings
from hip3.sim.memory import MemoryWsServer, SimHttpTransport
from hip3.sim.scenario import Scenario
from hip3.sim.scenario_file import default_scenario, load_scenario

REPLAY_KEY_HEX = "0x" + hashlib.sha256(b"hip3 replay account").hexdigest()  # a throwaway, public key
REPLAY_KEY = SigningKey.from_hex(REPLAY_KEY_HEX)
DEFAULT_FUND_USDC = Decimal(10_000)
DEFAULT_STARTUP_S = (
    10.0  # virtual seconds the bot gets to discover, subscribe and sync before the first frame
)
SEED_WINDOW_S = (
    60.0  # the recording holds no book snapshot: each coin's first frames within this start its book
)
ON_TIME_PERIOD_S = 1.0


@attrs.frozen
class ReplayResult:
    report: Report
    journal_path: Path
    stats: ReplayStats
    frames: int


def replay_config(cfg: Config, data_dir: Path, account: str) -> Config:
    """`cfg` as the replay runs it: trading, the replay account, its own data directory, no recording."""
    return attrs.evolve(
        cfg,
        mode="trading",
        account=attrs.evolve(
            cfg.account,
            account_address=account.lower(),
            signer_address=None,
            vault_address=None,
            key_file=None,
        ),
        persistence=attrs.evolve(
            cfg.persistence,
            data_dir=data_dir,
            journal_path=data_dir / "journal.sqlite3",
            record_market_data=False,
        ),
    )


def _parsed(exchange: ReplayExchange, frames: Iterator[TimedFrame]) -> Iterator[tuple[float, MarketFrame]]:
    for timed in frames:
        frame = exchange.parse(timed.frame.text)
        if frame is not None:
            yield timed.offset_s, frame


def _seed(exchange: ReplayExchange, head: Sequence[tuple[float, MarketFrame]]) -> None:
    """Give the engine the first recorded book and oracle of each coin (the bot seeds books over /info)."""
    seen: set[tuple[str, str]] = set()
    for _, frame in head:
        if (frame.channel, frame.coin) not in seen:
            seen.add((frame.channel, frame.coin))
            exchange.apply(frame)
    exchange.stats.applied = 0


async def drive(
    exchange: ReplayExchange,
    frames: Iterator[tuple[float, MarketFrame]],
    *,
    start: float,
    latency_s: float,
) -> int:
    """Apply each frame at `start + offset` and publish it `latency_s` later; returns the number of frames."""
    pending: deque[tuple[float, MarketFrame]] = deque()
    count = 0

    async def publish_due(until: float) -> None:
        while pending and pending[0][0] <= until:
            due, frame = pending.popleft()
            await trio.sleep_until(due)
            exchange.publish(frame)
            # live, the bot reacted to each frame before the next arrived, even within one instant
            await trio.testing.wait_all_tasks_blocked()

    for offset, frame in frames:
        due = start + offset
        await publish_due(due)
        await trio.sleep_until(due)
        exchange.apply(frame)
        pending.append((due + latency_s, frame))
        count += 1
    await publish_due(float("inf"))
    return count


async def _tick(exchange: ReplayExchange) -> None:
    while True:
        await trio.sleep(ON_TIME_PERIOD_S)
        exchange.sim.on_time()


async def run_replay(
    recording_paths: Sequence[Path],
    cfg: Config,
    *,
    scenario: Scenario,
    data_dir: Path,
    latency_ms: float = 0.0,
    fund_usdc: Decimal = DEFAULT_FUND_USDC,
    start_at: float | None = None,
    startup_s: float = DEFAULT_STARTUP_S,
    tail_s: float = 0.0,
    task_status: trio.TaskStatus[Running] = trio.TASK_STATUS_IGNORED,
) -> ReplayResult:
    """Replay the recordings through the bot; report started with the bot's `Running`; return the report.

    The first frame plays at Trio time `start_at` (default: now + `startup_s`); `tail_s` more seconds run
    after the last one before the shutdown. Meant for a virtual clock (MockClock): `run` provides one.
    """
    frames = read_recordings(recording_paths)
    first = next(frames, None)
    if first is None:
        raise ValueError("the recording holds no frames")
    now = trio.current_time()
    start = now + startup_s if start_at is None else start_at
    wall_ms = trio_wall_clock(first.frame.w - round((start - now) * 1000))
    exchange = ReplayExchange(scenario, wall_ms=wall_ms)
    exchange.sim.fund(REPLAY_KEY.address, fund_usdc)
    parsed = _parsed(exchange, itertools.chain([first], frames))
    head: list[tuple[float, MarketFrame]] = []
    for item in parsed:
        head.append(item)
        if item[0] > SEED_WINDOW_S:
            break
    _seed(exchange, head)
    replay_cfg = replay_config(cfg, data_dir, REPLAY_KEY.address)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_tick, exchange)
        ws_server = MemoryWsServer(exchange, nursery)
        running: Running = await nursery.start(
            lambda task_status: run_bot(
                replay_cfg,
                transports=Transports(http=SimHttpTransport(exchange), ws_connector=ws_server.connect),
                wall_ms=wall_ms,
                disk_writes=run_inline,
                environ={KEY_ENV_VAR: REPLAY_KEY_HEX},
                task_status=task_status,
            )
        )
        task_status.started(running)
        count = await drive(exchange, itertools.chain(head, parsed), start=start, latency_s=latency_ms / 1000)
        await trio.sleep(tail_s)
        if running.desk is not None:
            await graceful_shutdown(running.desk)
        nursery.cancel_scope.cancel()
    journal = replay_cfg.persistence.journal_path
    return ReplayResult(build_report(journal, since_ms=None), journal, exchange.stats, count)


# -- the command ------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recording", nargs="+", type=Path, help="recording files (*.jsonl.gz) or directories")
    parser.add_argument(
        "--config", required=True, help="the bot's configuration (its mode and account are ignored)"
    )
    parser.add_argument(
        "--scenario", type=Path, help="scenario TOML giving the markets' specs (default: the shipped default)"
    )
    parser.add_argument(
        "--latency-ms", type=float, default=0.0, help="delay between a frame and the bot seeing it"
    )
    parser.add_argument(
        "--out", type=Path, help="data directory of the replay's journal (default: a temporary one)"
    )
    parser.add_argument("--fund", type=Decimal, default=DEFAULT_FUND_USDC, help="USDC of the replay account")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    cfg = load_or_report(args.config)
    if cfg is None:
        return EXIT_INVALID
    scenario = load_scenario(args.scenario) if args.scenario else default_scenario()
    with tempfile.TemporaryDirectory(prefix="hip3-replay-") as temporary:
        data_dir = args.out or Path(temporary)

        async def main() -> ReplayResult:
            return await run_replay(
                args.recording,
                cfg,
                scenario=scenario,
                data_dir=data_dir,
                latency_ms=args.latency_ms,
                fund_usdc=args.fund,
            )

        try:
            result = trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
        except (ValueError, OSError) as exc:
            print(f"hip3 replay: {exc}", file=sys.stderr)
            return EXIT_INVALID
        if args.json:
            print(json.dumps(report_json(result.report), indent=2))
        else:
            print(render_table(result.report), end="")
            print(f"# {result.frames} frames, latency {args.latency_ms:g} ms, journal {result.journal_path}")
    return EXIT_OK
