"""`hip3 replay` against a recording made by a live trading run of the same bot on the in-memory simulator.

"Same trades": the replay's fills equal the live run's as (coin, side, size, price), in order. That is exact
here because the replay engine's top of book is the recorded one: the bot's IOC takes liquidity at the best
level, and every bbo frame the live bot received after its own fill (the depleted book) is in the recording
and is replayed at the same virtual instant. Depth behind the top comes from the book seeds the live bot
recorded (its /info l2Book snapshots at start and after reconnects), so it is the snapshot's, not live.
"""

from __future__ import annotations

import gzip
from decimal import Decimal
from pathlib import Path

import attrs
import orjson
import pytest
import trio
import trio.testing

from hip3 import cli
from hip3.config import load_config
from hip3.core.clock import trio_wall_clock
from hip3.ops.report import build_report, render_table
from hip3.persist.jsonl import run_inline
from hip3.persist.market_recording import (
    MarketRecorder,
    RecordedFrame,
    RecordedSeed,
    read_entries,
    read_recording,
)
from hip3.replay.exchange import ReplayExchange, parse_frame, parse_seed
from hip3.replay.run import ReplayResult, replay_config, run_replay, start_books
from hip3.replay.source import read_recordings
from hip3.sim.scenario_file import parse_scenario
from tests.conftest import REPO_ROOT
from tests.test_observation import SCENARIO
from tests.test_operations import enter_on_a_jump, journal_rows, start_bot, start_sim, trading_config
from tests.test_trading import TSLA, config_text, exchange_size, until

WIDE = "xyz:WIDE"

FILLS = "SELECT coin, side, size, px FROM fills ORDER BY wall_ms, fill_id"


def _write(path: Path, lines: list[dict[str, object]]) -> None:
    path.write_bytes(gzip.compress(b"".join(orjson.dumps(line) + b"\n" for line in lines)))


def test_recordings_are_read_in_time_order_across_files_and_restarts(tmp_path: Path) -> None:
    bbo = '{"channel":"bbo","data":{"coin":"xyz:TSLA"}}'
    _write(tmp_path / "market-2026-01-02.jsonl.gz", [{"t": 5.0, "w": 90_000, "frame": bbo}])
    _write(
        tmp_path / "market-2026-01-01.jsonl.gz",
        [
            {"t": 100.0, "w": 10_000, "frame": bbo},
            {"t": 101.5, "w": 11_500, "frame": bbo},
            {"t": 2.0, "w": 60_000, "frame": bbo},  # a restart: Trio time began again
        ],
    )
    frames = list(
        read_recordings([tmp_path / "market-2026-01-02.jsonl.gz", tmp_path / "market-2026-01-01.jsonl.gz"])
    )
    assert [f.frame.w for f in frames] == [10_000, 11_500, 60_000, 90_000]
    assert [f.offset_s for f in frames] == [0.0, 1.5, 50.0, 53.0]
    assert [f.frame.w for f in read_recordings([tmp_path])] == [10_000, 11_500, 60_000, 90_000]


async def _live_run(data_dir: Path) -> list[tuple[str, str, str, str]]:
    async with trio.open_nursery() as nursery:
        sim = await start_sim(nursery)
        await start_bot(nursery, trading_config(data_dir), sim)  # record_market_data defaults to true
        await enter_on_a_jump(sim)
        await until(lambda: exchange_size(sim) == 0)
        await trio.sleep(10)
        nursery.cancel_scope.cancel()
    return journal_rows(data_dir / "journal.sqlite3", FILLS)


async def _replay(recorded: Path, out: Path, *, latency_ms: float, start_at: float | None) -> ReplayResult:
    return await run_replay(
        [recorded / "market"],
        trading_config(recorded),
        scenario=parse_scenario(SCENARIO, source="test"),
        data_dir=out,
        latency_ms=latency_ms,
        start_at=start_at,
    )


@pytest.mark.deadline(600)
async def test_a_replay_reproduces_the_live_runs_trades(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    live_dir = tmp_path / "live"
    live_fills = await _live_run(live_dir)
    assert [(coin, side) for coin, side, _, _ in live_fills] == [(TSLA, "buy"), (TSLA, "sell")]
    frames = [f for path in sorted((live_dir / "market").glob("*.jsonl.gz")) for f in read_recording(path)]
    assert frames
    # the replay runs in a fresh stretch of virtual time, aligned so the first frame plays at the same offset
    # from the bot's start as it was received live
    begun = trio.current_time()
    result = await _replay(live_dir, tmp_path / "replay", latency_ms=0, start_at=begun + frames[0].t)
    replay_fills = journal_rows(result.journal_path, FILLS)
    assert replay_fills == live_fills
    assert result.report.total.trades == 1


@pytest.mark.deadline(600)
async def test_latency_delays_the_replayed_fills(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    live_dir = tmp_path / "live"
    await _live_run(live_dir)
    first_t = next(read_recording(sorted((live_dir / "market").glob("*.jsonl.gz"))[0])).t
    times = {}
    for latency in (0, 250):
        begun = trio.current_time()
        result = await _replay(
            live_dir, tmp_path / f"replay-{latency}", latency_ms=latency, start_at=begun + first_t
        )
        rows = journal_rows(result.journal_path, "SELECT wall_ms FROM fills ORDER BY wall_ms")
        assert rows
        times[latency] = rows[0][0]
    assert times[250] - times[0] >= 250


def _book(coin: str, time_ms: int, bids: list[str], asks: list[str]) -> dict[str, object]:
    def side(prices: list[str]) -> list[dict[str, object]]:
        return [{"px": px, "sz": "1.5", "n": 1} for px in prices]

    return {"coin": coin, "time": time_ms, "levels": [side(bids), side(asks)]}


def _bbo(coin: str, time_ms: int, bid: str, ask: str) -> str:
    wire = [{"px": bid, "sz": "0.5", "n": 1}, {"px": ask, "sz": "0.5", "n": 1}]
    return orjson.dumps({"channel": "bbo", "data": {"coin": coin, "time": time_ms, "bbo": wire}}).decode()


async def test_seed_lines_are_recorded_beside_frames_and_only_read_as_entries(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    rec = MarketRecorder(tmp_path, wall_ms=trio_wall_clock(1_772_330_400_000), run_blocking=run_inline)
    seed = _book(TSLA, 5, ["430.5"], ["430.6"])
    async with trio.open_nursery() as nursery:
        await nursery.start(rec.run)
        assert rec.record_frame(_bbo(TSLA, 4, "430.5", "430.6"), 1.0)
        assert rec.record_seed(seed, 2.0)
        assert not rec.record_seed(None, 3.0)  # an l2Book of an unknown coin answers null: nothing to keep
        nursery.cancel_scope.cancel()
    path = rec.path_for("2026-03-01")
    assert [type(entry) for entry in read_entries(path)] == [RecordedFrame, RecordedSeed]
    assert [entry.book for entry in read_entries(path) if isinstance(entry, RecordedSeed)] == [seed]
    assert [frame.t for frame in read_recording(path)] == [1.0]  # frame readers see what they always saw


def test_the_replay_book_is_the_newest_top_with_the_last_seeds_depth_behind_it() -> None:
    exchange = ReplayExchange(parse_scenario(SCENARIO, source="test"), wall_ms=lambda: 0)

    def apply(frame: object) -> None:
        assert frame is not None
        exchange.apply(frame)  # type: ignore[arg-type]

    def prices() -> list[list[str]]:
        _, book = exchange.sim.info({"type": "l2Book", "coin": TSLA})
        assert isinstance(book, dict)
        return [[level["px"] for level in side] for side in book["levels"]]

    apply(parse_seed(_book(TSLA, 1_000, ["430.5", "430.4", "430.3"], ["430.6", "430.7"])))
    assert prices() == [["430.5", "430.4", "430.3"], ["430.6", "430.7"]]
    apply(parse_frame(_bbo(TSLA, 2_000, "430.45", "430.7")))
    assert prices() == [["430.45", "430.4", "430.3"], ["430.7"]]
    # a seed older than the applied bbo (the bbo overtook the /info answer) keeps that top
    apply(parse_seed(_book(TSLA, 1_500, ["430.2", "430.1"], ["430.8", "430.9"])))
    assert prices() == [["430.45", "430.2", "430.1"], ["430.7", "430.8", "430.9"]]
    apply(parse_seed(_book(TSLA, 3_000, ["430"], ["431"])))  # a newer seed is the whole book
    assert prices() == [["430"], ["431"]]
    assert exchange.stats.seeds == 3


def _entries(market_dir: Path) -> list[RecordedFrame | RecordedSeed]:
    return [entry for path in sorted(market_dir.glob("*.jsonl.gz")) for entry in read_entries(path)]


def _depth(exchange: ReplayExchange, coin: str) -> tuple[int, int]:
    _, book = exchange.sim.info({"type": "l2Book", "coin": coin})
    assert isinstance(book, dict)
    bids, asks = book["levels"]
    return len(bids), len(asks)


def _seed_levels(seed: RecordedSeed) -> list[list[tuple[Decimal, Decimal]]]:
    return [[(Decimal(level["px"]), Decimal(level["sz"])) for level in side] for side in seed.book["levels"]]


def _started(market_dir: Path) -> tuple[ReplayExchange, frozenset[str]]:
    exchange = ReplayExchange(parse_scenario(SCENARIO, source="test"), wall_ms=lambda: 0)
    to_drive, seeded = start_books(exchange, read_recordings([market_dir]))
    for _, frame in to_drive:  # up to the first TSLA bbo: apply it as the drive would
        if frame.coin == TSLA and frame.channel == "bbo":
            exchange.apply(frame)
            break
    return exchange, seeded


@pytest.mark.deadline(600)
async def test_a_live_run_records_its_book_seeds_and_the_replay_books_start_with_their_depth(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    live_dir = tmp_path / "live"
    live_fills = await _live_run(live_dir)
    entries = _entries(live_dir / "market")
    seeds = [entry for entry in entries if isinstance(entry, RecordedSeed)]
    assert {seed.book["coin"] for seed in seeds} == {TSLA, WIDE}  # one per market at start, in the same file
    tsla_seed = next(seed for seed in seeds if seed.book["coin"] == TSLA)
    bids, asks = _seed_levels(tsla_seed)
    assert len(bids) > 1 and len(asks) > 1
    # the engine's book at the first TSLA bbo: the recorded top, and the seed's depth behind it
    exchange, seeded = _started(live_dir / "market")
    assert seeded == {TSLA, WIDE}
    assert _depth(exchange, TSLA) == (len(bids), len(asks))
    # the same recording without its seed lines (as recorded before seeds were): top of book only
    old_dir = tmp_path / "old"
    old_dir.mkdir()
    _write(
        old_dir / "market-old.jsonl.gz",
        [{"t": e.t, "w": e.w, "frame": e.text} for e in entries if isinstance(e, RecordedFrame)],
    )
    old_exchange, old_seeded = _started(old_dir)
    assert old_seeded == frozenset()
    assert _depth(old_exchange, TSLA) == (1, 1)
    # the whole replay: every seed applied, same trades
    begun = trio.current_time()
    result = await _replay(live_dir, tmp_path / "replay", latency_ms=0, start_at=begun + entries[0].t)
    assert result.seeded_coins == {TSLA, WIDE}
    assert result.stats.seeds == len(seeds)
    assert journal_rows(result.journal_path, FILLS) == live_fills


def _recorded_live_run(tmp_path: Path) -> tuple[Path, list[tuple[str, str, str, str]], list[str]]:
    """A live run's data directory and fills, and the `--config`/`--scenario` arguments for a replay of it."""
    live_dir = tmp_path / "live"
    fills = trio.run(_live_run, live_dir, clock=trio.testing.MockClock(autojump_threshold=0))
    (tmp_path / "bot.toml").write_text(config_text(live_dir))
    (tmp_path / "scenario.toml").write_text(SCENARIO)
    return (
        live_dir,
        fills,
        ["--config", str(tmp_path / "bot.toml"), "--scenario", str(tmp_path / "scenario.toml")],
    )


def test_the_replay_command_prints_the_report_of_the_live_runs_trades(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    live_dir, live_fills, options = _recorded_live_run(tmp_path)
    entries = _entries(live_dir / "market")
    seeds = sum(isinstance(entry, RecordedSeed) for entry in entries)
    out = tmp_path / "replay"
    code = cli.main(["replay", str(live_dir / "market"), *options, "--out", str(out)])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert journal_rows(out / "journal.sqlite3", FILLS) == live_fills
    replayed = build_report(out / "journal.sqlite3", since_ms=None)
    assert replayed.total.trades == 1
    table = render_table(replayed)
    assert table == render_table(build_report(live_dir / "journal.sqlite3", since_ms=None))
    before, summary = printed.out.rstrip("\n").rsplit("\n", 1)  # the bot's log lines come first
    assert (before + "\n").endswith(table)
    journal = out / "journal.sqlite3"
    assert summary == f"# {len(entries) - seeds} frames, {seeds} book seeds, latency 0 ms, journal {journal}"


def test_the_replay_command_names_a_missing_or_damaged_recording_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bot.toml").write_text(config_text(tmp_path / "data"))
    config = ["--config", str(tmp_path / "bot.toml")]
    missing = tmp_path / "market-2026-01-01.jsonl.gz"
    assert cli.main(["replay", str(missing), *config]) == 1
    printed = capsys.readouterr()
    assert printed.err == f"hip3 replay: no such recording: {missing}\n" and printed.out == ""
    damaged = tmp_path / "market-2026-01-02.jsonl.gz"
    damaged.write_bytes(b"not gzip at all")
    assert cli.main(["replay", str(damaged), *config]) == 1
    printed = capsys.readouterr()
    assert printed.err.startswith(f"hip3 replay: {damaged}: damaged gzip data") and printed.out == ""
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["replay", str(empty), *config]) == 1
    assert capsys.readouterr().err == "hip3 replay: the recording holds no frames\n"


def test_the_replay_command_runs_on_the_shipped_config_by_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    live_dir, _, options = _recorded_live_run(tmp_path)
    scenario = options[options.index("--scenario") + 1]
    monkeypatch.chdir(REPO_ROOT)  # config/default.toml, as `hip3 report` finds it
    out = tmp_path / "replay"
    code = cli.main(["replay", str(live_dir / "market"), "--scenario", scenario, "--out", str(out)])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert printed.out.rstrip("\n").rsplit("\n", 1)[1].endswith(f"journal {out / 'journal.sqlite3'}")


def test_a_replay_of_an_observation_config_trades_its_markets_and_reaches_nothing_outside(
    tmp_path: Path,
) -> None:
    """The shipped observation config watches every xyz market, serves a dashboard and may send webhook
    alerts: its replay trades those markets, and serves and sends nothing."""
    live = load_config(REPO_ROOT / "config" / "default.toml")
    live = attrs.evolve(live, alerts=attrs.evolve(live.alerts, webhook_url="https://alerts.example/hook"))
    assert live.dashboard.enabled and live.alerts.webhook_url and live.markets.allowlist == ()
    coins = ["BTC", "xyz:TSLA", "flx:OIL", "xyz:GOLD"]
    replayed = replay_config(live, tmp_path, "0x" + "ab" * 20, coins)
    assert [entry.coin for entry in replayed.markets.allowlist] == ["xyz:GOLD", "xyz:TSLA"]
    assert not replayed.dashboard.enabled and replayed.alerts.webhook_url is None
    assert replayed.mode == "trading" and not replayed.persistence.record_market_data
