"""`hip3 replay RECORDING… [--config FILE] [--scenario FILE]`: the real bot, in trading mode, against a replay
exchange driven by a raw market recording, on a virtual clock; then the report from the bot's own journal.

Same code path as live: `run_bot` builds the same feed, risk gates, detector, entry gates, desk and exits;
only the transports are in-memory and the exchange is the simulator's engine whose books follow the recording
(hip3.replay.exchange). The bot's IOC orders match in the engine against the recorded best bid/ask and, behind
it, the depth of the coin's last recorded book seed.

Start: the bot starts `startup_s` before the first frame and seeds its books over /info from the engine, so
the engine gets each coin's starting book and oracle first: the coin's first recorded seed (full depth), else
(recordings without seeds) its first bbo within SEED_WINDOW_S, and its first activeAssetCtx. The head scan
stops as soon as every coin has a seed and an oracle.

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
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path

import attrs
import trio
import trio.testing

from hip3.app import Running, Transports, run_bot
from hip3.app_trading import graceful_shutdown
from hip3.config import Config, MarketEntry, MarketsConfig
from hip3.core.clock import trio_wall_clock
from hip3.keys import KEY_ENV_VAR
from hip3.launch import EXIT_INVALID, EXIT_OK, load_or_report
from hip3.ops.report import Report, build_report, render_table, report_json
from hip3.persist.jsonl import run_inline
from hip3.persist.market_recording import RecordedSeed
from hip3.protocol.signing import SigningKey
from hip3.replay.exchange import SEED, MarketFrame, ReplayExchange, ReplayStats
from hip3.replay.source import TimedFrame, read_recordings
from hip3.sim.memory import MemoryWsServer, SimHttpTransport
from hip3.sim.scenario import Scenario
from hip3.sim.scenario_file import default_scenario, load_scenario

REPLAY_KEY_HEX = "0x" + hashlib.sha256(b"hip3 replay account").hexdigest()  # a throwaway, public key
REPLAY_KEY = SigningKey.from_hex(REPLAY_KEY_HEX)
DEFAULT_FUND_USDC = Decimal(10_000)
DEFAULT_CONFIG = "config/default.toml"  # the shipped observation config, as `hip3 report` assumes
DEFAULT_STARTUP_S = (
    10.0  # virtual seconds the bot gets to discover, subscribe and sync before the first frame
)
SEED_WINDOW_S = 60.0  # coins without a recorded seed: their first frames within this start their books
ON_TIME_PERIOD_S = 1.0


@attrs.frozen
class ReplayResult:
    report: Report
    journal_path: Path
    stats: ReplayStats
    frames: int  # recorded frames replayed (seeds are counted in stats.seeds)
    seeded_coins: frozenset[str]  # coins whose starting book is a recorded seed (the rest: a first bbo)


def replay_config(cfg: Config, data_dir: Path, account: str, coins: Iterable[str] = ()) -> Config:
    """`cfg` as the replay runs it: trading, the replay account, its own data directory, no recording, and
    nothing that reaches outside (no dashboard port, no webhook alerts). An observation config with no
    allowlist watched every market of its dexes: the replay trades those of `coins` (the exchange's)."""
    return attrs.evolve(
        cfg,
        mode="trading",
        markets=attrs.evolve(cfg.markets, allowlist=_allowlist(cfg.markets, coins)),
        dashboard=attrs.evolve(cfg.dashboard, enabled=False),
        alerts=attrs.evolve(cfg.alerts, webhook_url=None),
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


def _allowlist(markets: MarketsConfig, coins: Iterable[str]) -> tuple[MarketEntry, ...]:
    if markets.allowlist:
        return markets.allowlist
    watched = [
        coin for coin in coins if ":" in coin and (not markets.dexes or coin.split(":")[0] in markets.dexes)
    ]
    return tuple(MarketEntry(coin=coin) for coin in sorted(watched))


def _parsed(exchange: ReplayExchange, frames: Iterator[TimedFrame]) -> Iterator[tuple[float, MarketFrame]]:
    for timed in frames:
        entry = timed.frame
        if isinstance(entry, RecordedSeed):
            frame = exchange.parse_seed(entry.book)
        else:
            frame = exchange.parse(entry.text)
        if frame is not None:
            yield timed.offset_s, frame


def _head(
    parsed: Iterator[tuple[float, MarketFrame]], coins: Iterable[str]
) -> list[tuple[float, MarketFrame]]:
    """The frames up to the first one past SEED_WINDOW_S, or until every coin has a seed and an oracle."""
    missing = {(channel, coin) for coin in coins for channel in (SEED, "activeAssetCtx")}
    head: list[tuple[float, MarketFrame]] = []
    for item in parsed:
        head.append(item)
        missing.discard((item[1].channel, item[1].coin))
        if item[0] > SEED_WINDOW_S or not missing:
            break
    return head


def _seed(exchange: ReplayExchange, head: Sequence[tuple[float, MarketFrame]]) -> frozenset[str]:
    """Give the engine each coin's starting book and oracle (the bot seeds books over /info); returns the
    coins whose book is a recorded seed."""
    seeded = frozenset(frame.coin for _, frame in head if frame.channel == SEED)
    seen: set[tuple[str, str]] = set()
    for _, frame in head:
        if frame.channel == "bbo" and frame.coin in seeded:
            continue
        if (frame.channel, frame.coin) not in seen:
            seen.add((frame.channel, frame.coin))
            exchange.apply(frame)
    exchange.stats.applied = exchange.stats.seeds = 0
    return seeded


def start_books(
    exchange: ReplayExchange, frames: Iterable[TimedFrame]
) -> tuple[Iterator[tuple[float, MarketFrame]], frozenset[str]]:
    """Give the engine each coin's starting book and oracle (module doc); returns every frame to drive, from
    the first, and the coins whose starting book is a recorded seed."""
    parsed = _parsed(exchange, iter(frames))
    head = _head(parsed, exchange.sim.coins)
    return itertools.chain(head, parsed), _seed(exchange, head)


async def drive(
    exchange: ReplayExchange,
    frames: Iterator[tuple[float, MarketFrame]],
    *,
    start: float,
    latency_s: float,
) -> int:
    """Apply each frame at `start + offset` and publish it `latency_s` later; returns the number of frames
    (book seeds left out)."""
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
        count += frame.channel != SEED
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
    to_drive, seeded = start_books(exchange, itertools.chain([first], frames))
    replay_cfg = replay_config(cfg, data_dir, REPLAY_KEY.address, exchange.sim.coins)
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
        count = await drive(exchange, to_drive, start=start, latency_s=latency_ms / 1000)
        await trio.sleep(tail_s)
        if running.desk is not None:
            await graceful_shutdown(running.desk)
        nursery.cancel_scope.cancel()
    journal = replay_cfg.persistence.journal_path
    return ReplayResult(build_report(journal, since_ms=None), journal, exchange.stats, count, seeded)


# -- the command ------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recording", nargs="+", type=Path, help="recording files (*.jsonl.gz) or directories")
    parser.add_argument(
        "--config",
        default=DEFAULT_CONFIG,
        help=f"the bot's config, mode, account, dashboard and alerts aside (default: {DEFAULT_CONFIG})",
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
    missing = [str(path) for path in args.recording if not path.exists()]
    if missing:
        print(f"hip3 replay: no such recording: {', '.join(missing)}", file=sys.stderr)
        return EXIT_INVALID
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
            print(_summary(result, args.latency_ms))
    return EXIT_OK


def _summary(result: ReplayResult, latency_ms: float) -> str:
    return (
        f"# {result.frames} frames, {result.stats.seeds} book seeds, latency {latency_ms:g} ms, "
        f"journal {result.journal_path}"
    )
