"""The journal: round trips from fills, the tables, batching, shutdown, entry times, overflow, a SIGKILL."""

from __future__ import annotations

import json
import signal as signals
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from hip3.core.clock import trio_wall_clock
from hip3.core.order import Cloid, Side, Tif
from hip3.execution.sender import RejectEvent
from hip3.persist.journal import (
    SCHEMA_VERSION,
    EntrySignal,
    Journal,
    JournalVersionError,
    RoundTrip,
    RoundTrips,
    open_journal_db,
    read_entry_times,
)
from hip3.persist.jsonl import run_inline
from hip3.position.model import PendingOrder, Position, apply_fill
from hip3.position.tracker import AppliedFill
from hip3.risk.hard_stop import Latch
from hip3.strategy.signal import Signal
from tests.conftest import REPO_ROOT

START_MS = 1_772_323_200_000  # 2026-03-01T00:00:00Z
D = Decimal


class Book:
    """Positions moved by `apply_fill`, as the tracker does, giving the AppliedFills it would tell."""

    def __init__(self) -> None:
        self.positions: dict[str, Position] = {}

    def fill(
        self, coin: str, side: Side, size: str, px: str, *, time_ms: int = 0, oid: int = 1
    ) -> AppliedFill:
        effect = apply_fill(self.positions.get(coin), coin, side, D(size), D(px), time_ms=time_ms)
        if effect.position is None:
            self.positions.pop(coin, None)
        else:
            self.positions[coin] = effect.position
        return AppliedFill(coin, side, D(size), D(px), oid, "userFills", effect)


def rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(path)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def journal(path: Path, **options: Any) -> Journal:
    options.setdefault("wall_ms", trio_wall_clock(START_MS))
    options.setdefault("run_blocking", run_inline)
    return Journal(path, **options)


def make_signal(signal_id: str, coin: str, side: Side, raw_edge_bps: float) -> Signal:
    return Signal(
        id=signal_id,
        coin=coin,
        side=side,
        raw_edge_bps=raw_edge_bps,
        net_edge_bps=raw_edge_bps - 20.0,
        threshold_bps=20.0,
        oracle_px=D("100.5"),
        best_px=D("100.1"),
        best_sz=D("3"),
        suggested_size=D("2"),
        baseline_bps=None,
        filters={"spread_ok": True},
        detected_at=1.5,
        oracle_update=7,
    )


# -- round trips (pure) -----------------------------------------------------------------------------------


def test_open_add_partial_close_close_is_one_round_trip_with_exact_figures() -> None:
    book, trips = Book(), RoundTrips()
    steps = [
        (Side.BUY, "2", "100", 1_000),  # open
        (Side.BUY, "2", "110", 2_000),  # add: entry 105
        (Side.SELL, "1", "120", 3_000),  # partial close: +15
        (Side.SELL, "3", "100", 4_000),  # close: −15
    ]
    ended: list[RoundTrip | None] = []
    for side, size, px, at in steps:
        fill = book.fill("XYZ:A", side, size, px, time_ms=at)
        ended.append(trips.on_fill(fill, fee=D("0.1"), time_ms=at))
    assert ended[:3] == [None, None, None]
    trip = ended[3]
    assert trip is not None
    assert (trip.opened_ms, trip.closed_ms) == (1_000, 4_000)
    assert (trip.size, trip.entry_px, trip.exit_px) == (D(4), D(105), D(105))
    assert (trip.pnl_usd, trip.fees_usd) == (D("-0.4"), D("0.4"))
    assert trip.pnl_bps == pytest.approx(-0.4 / 420 * 10_000)


def test_a_flip_ends_one_round_trip_and_opens_the_next_with_the_fee_split_by_size() -> None:
    book, trips = Book(), RoundTrips()
    opened = book.fill("XYZ:A", Side.BUY, "1", "100", time_ms=1_000)
    assert trips.on_fill(opened, fee=D("0.1"), time_ms=1_000) is None
    flip = book.fill("XYZ:A", Side.SELL, "3", "110", time_ms=2_000)
    first = trips.on_fill(flip, fee=D("0.3"), time_ms=2_000, entry_signal=EntrySignal("s2", 31.0))
    assert first is not None
    assert (first.size, first.entry_px, first.exit_px) == (D(1), D(100), D(110))
    assert (first.pnl_usd, first.fees_usd, first.entry_signal) == (D("9.8"), D("0.2"), None)
    close = book.fill("XYZ:A", Side.BUY, "2", "105", time_ms=5_000)
    second = trips.on_fill(close, fee=D("0.2"), time_ms=5_000)
    assert second is not None
    assert (second.opened_ms, second.size, second.entry_px, second.exit_px) == (2_000, D(2), D(110), D(105))
    assert (second.pnl_usd, second.fees_usd) == (D("9.6"), D("0.4"))
    assert second.entry_signal == EntrySignal("s2", 31.0)


def test_a_position_restored_at_start_ends_a_trip_whose_entry_comes_from_the_realised_pnl() -> None:
    trips = RoundTrips()
    trips.restore_entry_times({"XYZ:A": 500})
    restored = Position("XYZ:A", D(-2), D(50), 500)
    effect = apply_fill(restored, "XYZ:A", Side.BUY, D(2), D(48), time_ms=900)
    fill = AppliedFill("XYZ:A", Side.BUY, D(2), D(48), 9, "response", effect)
    trip = trips.on_fill(fill, fee=D(0), time_ms=900)
    assert trip is not None
    assert (trip.opened_ms, trip.size, trip.entry_px, trip.exit_px, trip.pnl_usd) == (
        500,
        D(2),
        D(50),
        D(48),
        D(4),
    )


def test_a_trip_that_went_flat_without_a_fill_is_dropped_when_the_market_opens_again() -> None:
    book, trips = Book(), RoundTrips()
    trips.on_fill(book.fill("XYZ:A", Side.BUY, "1", "100"), fee=D(0), time_ms=1)
    book.positions.clear()  # a resync flattened the market
    assert trips.on_fill(book.fill("XYZ:A", Side.SELL, "1", "90"), fee=D(0), time_ms=2) is None
    trip = trips.on_fill(book.fill("XYZ:A", Side.BUY, "1", "85"), fee=D(0), time_ms=3)
    assert trip is not None
    assert (trip.opened_ms, trip.size, trip.entry_px, trip.exit_px, trip.pnl_usd) == (
        2,
        D(1),
        D(90),
        D(85),
        D(5),
    )


# -- the tables ---------------------------------------------------------------------------------------------


async def test_every_table_round_trips(autojump_clock: trio.testing.MockClock, tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    jr = journal(path, estimated_fee_bps=D(1))
    book = Book()
    cloid = Cloid("0x" + "0" * 31 + "1")
    order = PendingOrder(cloid, "XYZ:A", 110000, Side.BUY, D("2"), D("100.5"), Tif.IOC, False, 0.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(jr.run)
        jr.signal(make_signal("sig-1", "XYZ:A", Side.BUY, 42.5))
        jr.order_registered(order)
        await trio.sleep(1.0)
        jr.order_ended(cloid.value, "filled", "filled", 777)
        opened = book.fill("XYZ:A", Side.BUY, "2", "100", time_ms=START_MS + 1000)
        jr.fill(attrs.evolve(opened, tid=5001, fee=D("0.02")))
        await trio.sleep(2.0)
        jr.fill(book.fill("XYZ:A", Side.SELL, "2", "101", time_ms=START_MS + 3000))
        jr.risk_event("flatten_failure", "XYZ:A: timeout")
        jr.reject(RejectEvent("XYZ:A", "Order could not immediately match", benign=True))
        latch = Latch(reason="loss", trigger="realized_loss", latched_at_ms=START_MS)
        jr.hard_stop_latched(latch)
        jr.hard_stop("reset", latch.trigger, latch.reason)  # as a reset without an operator
        jr.hard_stop("reset", "manual", "cleared", operator="alice")
        await trio.sleep(1.0)
        nursery.cancel_scope.cancel()
    assert rows(path, "SELECT * FROM orders") == [
        (
            cloid.value,
            "XYZ:A",
            "buy",
            "2",
            "100.5",
            "Ioc",
            0,
            START_MS,
            777,
            "filled",
            "filled",
            START_MS + 1000,
        )
    ]
    assert rows(path, "SELECT * FROM fills ORDER BY wall_ms") == [
        ("5001", 5001, 1, "XYZ:A", "buy", "2", "100", "0.02", "userFills", START_MS + 1000, "0", "0"),
        (f"userFills:1:{START_MS + 3000}:2", None, 1, "XYZ:A", "sell", "2", "101", None, "userFills",
         START_MS + 3000, "2", "2"),
    ]  # fmt: skip
    (trip,) = rows(path, "SELECT * FROM round_trips")
    # fees: 0.02 reported + 2·101·1e-4 estimated = 0.0402; pnl 2 − 0.0402
    assert trip[1:10] == ("XYZ:A", START_MS + 1000, START_MS + 3000, "100", "101", "2", "1.9598", "0.0402", 1)
    assert trip[10] == pytest.approx(1.9598 / 200 * 10_000)
    assert trip[11:] == (42.5, "sig-1")
    ((signal_id, coin, side, raw, net, threshold, record, wall),) = rows(path, "SELECT * FROM signals")
    assert (signal_id, coin, side, raw, net, threshold, wall) == (
        "sig-1",
        "XYZ:A",
        "buy",
        42.5,
        22.5,
        20.0,
        START_MS,
    )
    assert json.loads(record)["oracle_px"] == "100.5"
    assert rows(path, "SELECT kind, detail, wall_ms FROM risk_events ORDER BY id") == [
        ("flatten_failure", "XYZ:A: timeout", START_MS + 3000),
        ("benign_reject", "XYZ:A: Order could not immediately match", START_MS + 3000),
    ]
    assert rows(path, "SELECT event, trigger, reason, wall_ms, operator FROM hard_stop ORDER BY id") == [
        ("latched", "realized_loss", "loss", START_MS + 3000, None),
        ("reset", "realized_loss", "loss", START_MS + 3000, None),
        ("reset", "manual", "cleared", START_MS + 3000, "alice"),
    ]
    assert rows(path, "SELECT * FROM entry_times") == []
    assert rows(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert rows(path, "PRAGMA journal_mode") == [("wal",)]
    assert (jr.stats.committed, jr.stats.failed, jr.stats.dropped) == (jr.stats.queued, 0, 0)


async def test_hard_stop_events_are_only_latched_or_reset(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="hard stop event"):
        journal(tmp_path / "j.sqlite3").hard_stop("cleared", "manual", "x")


def test_a_journal_from_a_newer_bot_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    open_journal_db(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(JournalVersionError):
        open_journal_db(path)


# -- batching, shutdown, overflow ---------------------------------------------------------------------------


async def test_a_batch_commits_when_full_or_exactly_flush_interval_after_its_first_record(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    path = tmp_path / "j.sqlite3"
    jr = journal(path, batch_size=3, flush_interval_s=0.5)
    count = "SELECT count(*) FROM risk_events"
    async with trio.open_nursery() as nursery:
        await nursery.start(jr.run)
        for n in range(4):
            jr.risk_event("test", str(n))
        await trio.testing.wait_all_tasks_blocked()
        assert rows(path, count) == [(3,)]  # a full batch at once
        first_queued = trio.current_time()
        await trio.sleep(0.4)
        assert rows(path, count) == [(3,)]
        await trio.sleep(0.2)
        assert rows(path, count) == [(4,)]
        assert jr.stats.last_flush_at == first_queued + 0.5
        assert (jr.stats.batches, jr.stats.committed) == (2, 4)
        nursery.cancel_scope.cancel()


async def test_shutdown_writes_the_gathered_batch_and_everything_queued(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    path = tmp_path / "j.sqlite3"
    jr = journal(path, batch_size=1000, flush_interval_s=3600.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(jr.run)
        for n in range(10):
            jr.risk_event("test", str(n))
        await trio.sleep(30.0)
        assert rows(path, "SELECT count(*) FROM risk_events") == [(0,)]
        for n in range(10, 15):
            jr.risk_event("test", str(n))
        nursery.cancel_scope.cancel()
    assert rows(path, "SELECT detail FROM risk_events ORDER BY id") == [(str(n),) for n in range(15)]
    jr.risk_event("late", "after the writer stopped")
    assert jr.stats.refused_stopped == 1


async def test_a_full_queue_overflows_in_order_and_beyond_the_overflow_records_are_counted(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    path = tmp_path / "j.sqlite3"
    permits = trio.Semaphore(0)  # each write waits for one: the test decides when the writer makes progress

    async def gated(write: Callable[[], None]) -> None:
        await permits.acquire()
        write()

    jr = journal(path, batch_size=3, queue_size=2, overflow_size=3, run_blocking=gated)
    async with trio.open_nursery() as nursery:
        permits.release()  # opening the database
        await nursery.start(jr.run)
        for n in range(9):  # 0-2 in the writer's first batch, 3-4 in the channel, 5-7 overflow, 8 dropped
            jr.risk_event("test", str(n))
            if n == 2:
                await trio.testing.wait_all_tasks_blocked()
        assert (jr.stats.queued, jr.stats.overflowed, jr.stats.dropped) == (8, 3, 1)
        permits.release()
        await trio.testing.wait_all_tasks_blocked()  # second batch: 3-4 from the channel, 5 from overflow
        jr.risk_event("test", "after")  # the channel has room, but the overflow is not empty: behind it
        assert jr.stats.overflowed == 4
        for _ in range(10):
            permits.release()
        await trio.sleep(1.0)
        nursery.cancel_scope.cancel()
    expected = [*map(str, range(8)), "after"]
    assert rows(path, "SELECT detail FROM risk_events ORDER BY id") == [(d,) for d in expected]


async def test_the_worker_thread_writes_on_the_real_clock(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    jr = Journal(path, wall_ms=lambda: START_MS, batch_size=5, flush_interval_s=3600.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(jr.run)
        for n in range(7):
            jr.risk_event("test", str(n))
        with trio.fail_after(10):
            while jr.stats.committed < 5:  # noqa: ASYNC110 - no event for "this much is committed"
                await trio.sleep(0.01)
        assert rows(path, "SELECT count(*) FROM risk_events") == [(5,)]
        nursery.cancel_scope.cancel()
    assert rows(path, "SELECT count(*) FROM risk_events") == [(7,)]


# -- entry times --------------------------------------------------------------------------------------------


async def test_entry_times_are_upserted_on_open_deleted_on_close_and_read_back(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    path = tmp_path / "j.sqlite3"
    assert read_entry_times(path) == {}
    jr, book = journal(path), Book()
    async with trio.open_nursery() as nursery:
        await nursery.start(jr.run)
        jr.fill(book.fill("XYZ:A", Side.BUY, "1", "10", time_ms=111))
        jr.fill(book.fill("XYZ:A", Side.BUY, "1", "11", time_ms=222))  # an add keeps the entry time
        jr.fill(book.fill("XYZ:B", Side.SELL, "1", "10", time_ms=333))
        jr.fill(book.fill("XYZ:B", Side.BUY, "3", "9", time_ms=444))  # a flip: a new entry time
        jr.fill(book.fill("XYZ:C", Side.BUY, "1", "10", time_ms=555))
        jr.fill(book.fill("XYZ:C", Side.SELL, "1", "10", time_ms=666))  # closed: deleted
        jr.entry_time("XYZ:D", 777)  # a resync installed it
        jr.entry_time("XYZ:E", 888)
        jr.entry_time("XYZ:E", None)
        await trio.sleep(1.0)
        nursery.cancel_scope.cancel()
    assert read_entry_times(path) == {"XYZ:A": 111, "XYZ:B": 444, "XYZ:D": 777}


async def test_after_a_restart_the_closing_fill_of_a_restored_position_has_its_real_entry_time(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    path = tmp_path / "j.sqlite3"
    book = Book()
    first = journal(path)
    async with trio.open_nursery() as nursery:
        await nursery.start(first.run)
        first.fill(book.fill("XYZ:A", Side.BUY, "1", "10", time_ms=START_MS - 5000))
        nursery.cancel_scope.cancel()
    second = journal(path)
    async with trio.open_nursery() as nursery:
        await nursery.start(second.run)
        second.fill(book.fill("XYZ:A", Side.SELL, "1", "12"))
        nursery.cancel_scope.cancel()
    assert rows(path, "SELECT opened_ms, closed_ms, entry_px, pnl_usd FROM round_trips") == [
        (START_MS - 5000, START_MS, "10", "2")
    ]
    assert read_entry_times(path) == {}


# -- a crash ------------------------------------------------------------------------------------------------

CHILD = """
import os, signal, sys, threading
from pathlib import Path
import trio
from hip3.persist.journal import Journal

def kill():
    os.kill(os.getpid(), signal.SIGKILL)

async def main(path, mode):
    jr = Journal(path, wall_ms=lambda: 1, batch_size=50, flush_interval_s=3600.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(jr.run)
        if mode == "settled":
            for n in range(200):
                jr.risk_event("test", str(n))
            while jr.stats.committed < 200:
                await trio.sleep(0.001)
            for n in range(200, 230):  # queued, never committed
                jr.risk_event("test", str(n))
            print(jr.stats.committed, flush=True)
            kill()
        threading.Timer(0.5, kill).start()  # at any moment, most likely while a batch is being written
        n = reported = 0
        while True:
            jr.risk_event("test", str(n))
            n += 1
            if n % 25 == 0:
                await trio.sleep(0.001)
            if jr.stats.committed != reported:
                reported = jr.stats.committed
                print(reported, flush=True)

trio.run(main, Path(sys.argv[1]), sys.argv[2])
"""


@pytest.mark.parametrize("mode", ["settled", "busy"])
def test_every_batch_committed_before_a_sigkill_survives_it(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "j.sqlite3"
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(CHILD))
    child = subprocess.run(
        [sys.executable, str(script), str(path), mode],
        cwd=REPO_ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == -signals.SIGKILL, child.stderr
    committed = max(int(line) for line in child.stdout.splitlines() if line.isdigit())  # not the logs
    assert rows(path, "PRAGMA integrity_check") == [("ok",)]
    details = [int(d) for (d,) in rows(path, "SELECT detail FROM risk_events ORDER BY id")]
    assert len(details) >= committed > 0
    assert details == list(range(len(details)))  # a prefix: nothing lost in between, nothing torn
    if mode == "settled":
        assert len(details) == 200
