"""The journal: one SQLite file (WAL) of orders, fills, round trips, signals, risk events, the hard-stop latch
and the entry times of open positions, for the report and for restarts (predecessor §1.16, §6 items 21, 23).

Producers call synchronous methods that never wait: each turns its input into SQL statements at once (a
snapshot; the values are Decimals as TEXT, wall-clock ms from the journal's clock) and queues them on a
bounded memory channel. When the channel is full, records go to an ordered overflow list that the writer
drains before the channel is used again, so order is kept (an entry time's upsert never overtakes its
delete). Only when the overflow is full too is a record dropped; each drop is counted in `stats.dropped`
and logged as an error, never silent.

One writer task (`run`) opens the database (creating the schema, versioned by `PRAGMA user_version`) and
commits batches, one transaction per batch, through `run_blocking` (a worker thread; `run_inline` under
MockClock), as `hip3.persist.jsonl` does: a batch is written when it holds `batch_size` records or
`flush_interval_s` (Trio time) after its first record was queued, and on cancellation everything left is
written in one shielded, bounded call. WAL with `synchronous=NORMAL` keeps every committed batch across a
crash of the process. A batch that SQLite refuses is rolled back, counted in `stats.failed` and logged;
it never takes the bot down.

Round trips are derived here from the fills (`RoundTrips`, pure): a market from flat back to flat, a flip
ending one and opening the next.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import structlog
import trio

from hip3.core.clock import WallClock
from hip3.core.market import BPS_DECIMAL
from hip3.core.order import Side
from hip3.execution.sender import RejectEvent
from hip3.persist.jsonl import BlockingRunner, encode_line, run_in_worker_thread
from hip3.position.model import PendingOrder
from hip3.position.tracker import AppliedFill
from hip3.risk.hard_stop import Latch

log = structlog.get_logger(__name__)

SCHEMA_VERSION = 1
ZERO = Decimal(0)
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS orders (
        cloid TEXT PRIMARY KEY, coin TEXT, side TEXT, size TEXT, limit_px TEXT, tif TEXT,
        reduce_only INTEGER, registered_ms INTEGER, oid INTEGER, state TEXT, reason TEXT,
        ended_ms INTEGER)""",
    """CREATE TABLE IF NOT EXISTS fills (
        fill_id TEXT PRIMARY KEY, tid INTEGER, oid INTEGER, coin TEXT NOT NULL, side TEXT NOT NULL,
        size TEXT NOT NULL, px TEXT NOT NULL, fee TEXT, source TEXT NOT NULL, wall_ms INTEGER NOT NULL,
        realized_pnl TEXT NOT NULL, closed_size TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS round_trips (
        id INTEGER PRIMARY KEY, coin TEXT NOT NULL, opened_ms INTEGER, closed_ms INTEGER NOT NULL,
        entry_px TEXT NOT NULL, exit_px TEXT NOT NULL, size TEXT NOT NULL, pnl_usd TEXT NOT NULL,
        fees_usd TEXT NOT NULL, fees_estimated INTEGER NOT NULL, pnl_bps REAL NOT NULL,
        entry_edge_bps REAL, entry_signal_id TEXT)""",
    "CREATE INDEX IF NOT EXISTS round_trips_closed ON round_trips (closed_ms)",
    """CREATE TABLE IF NOT EXISTS signals (
        id TEXT PRIMARY KEY, coin TEXT NOT NULL, side TEXT NOT NULL, raw_edge_bps REAL, net_edge_bps REAL,
        threshold_bps REAL, record TEXT NOT NULL, wall_ms INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS risk_events (
        id INTEGER PRIMARY KEY, kind TEXT NOT NULL, detail TEXT NOT NULL, wall_ms INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS hard_stop (
        id INTEGER PRIMARY KEY, event TEXT NOT NULL CHECK (event IN ('latched', 'reset')),
        trigger TEXT NOT NULL, reason TEXT NOT NULL, wall_ms INTEGER NOT NULL, operator TEXT)""",
    "CREATE TABLE IF NOT EXISTS entry_times (coin TEXT PRIMARY KEY, entry_time_ms INTEGER NOT NULL)",
)

_ORDER_REGISTERED = """INSERT INTO orders
    (cloid, coin, side, size, limit_px, tif, reduce_only, registered_ms, oid)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (cloid) DO UPDATE SET coin = excluded.coin, side = excluded.side, size = excluded.size,
    limit_px = excluded.limit_px, tif = excluded.tif, reduce_only = excluded.reduce_only,
    registered_ms = excluded.registered_ms, oid = coalesce(orders.oid, excluded.oid)"""
_ORDER_ENDED = """INSERT INTO orders (cloid, oid, state, reason, ended_ms) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (cloid) DO UPDATE SET oid = coalesce(excluded.oid, orders.oid), state = excluded.state,
    reason = excluded.reason, ended_ms = excluded.ended_ms"""
_FILL = """INSERT OR IGNORE INTO fills (fill_id, tid, oid, coin, side, size, px, fee, source, wall_ms,
    realized_pnl, closed_size) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""
_ROUND_TRIP = """INSERT INTO round_trips (coin, opened_ms, closed_ms, entry_px, exit_px, size, pnl_usd,
    fees_usd, fees_estimated, pnl_bps, entry_edge_bps, entry_signal_id)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"""
_SIGNAL = """INSERT OR IGNORE INTO signals (id, coin, side, raw_edge_bps, net_edge_bps, threshold_bps, record,
    wall_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"""
_RISK_EVENT = "INSERT INTO risk_events (kind, detail, wall_ms) VALUES (?, ?, ?)"
_HARD_STOP = "INSERT INTO hard_stop (event, trigger, reason, wall_ms, operator) VALUES (?, ?, ?, ?, ?)"
_ENTRY_TIME_SET = """INSERT INTO entry_times (coin, entry_time_ms) VALUES (?, ?)
    ON CONFLICT (coin) DO UPDATE SET entry_time_ms = excluded.entry_time_ms"""
_ENTRY_TIME_DELETE = "DELETE FROM entry_times WHERE coin = ?"

HARD_STOP_EVENTS = frozenset({"latched", "reset"})

Statement = tuple[str, tuple[object, ...]]


# -- round trips (pure) ----------------------------------------------------------------------------------


@attrs.frozen(slots=True)
class EntrySignal:
    """The signal taken to have opened a round trip."""

    signal_id: str
    edge_bps: float  # its raw edge


@attrs.frozen(slots=True)
class RoundTrip:
    coin: str
    opened_ms: int | None  # None: opened before a restart whose entry time was not journaled
    closed_ms: int
    entry_px: Decimal  # average of the opening legs
    exit_px: Decimal  # average of the closing legs
    size: Decimal  # total size opened
    pnl_usd: Decimal  # realised, net of fees
    fees_usd: Decimal
    fees_estimated: bool  # some leg's fee was estimated, not reported
    entry_signal: EntrySignal | None

    @property
    def entry_notional(self) -> Decimal:
        return self.size * self.entry_px

    @property
    def pnl_bps(self) -> float:
        return float(self.pnl_usd / self.entry_notional * BPS_DECIMAL)


@attrs.define(slots=True)
class _OpenTrip:
    opened_ms: int | None
    entry_signal: EntrySignal | None
    restored: bool = False  # we did not see it open: each closing leg brings its own opening
    opened_size: Decimal = ZERO
    opened_notional: Decimal = ZERO
    closed_size: Decimal = ZERO
    closed_notional: Decimal = ZERO
    realized: Decimal = ZERO
    fees: Decimal = ZERO
    fees_estimated: bool = False

    def add_open(self, size: Decimal, px: Decimal, fee: Decimal) -> None:
        self.opened_size += size
        self.opened_notional += size * px
        self.fees += fee

    def add_close(self, fill: AppliedFill, fee: Decimal) -> None:
        closed, pnl = fill.effect.closed_size, fill.effect.realized_pnl
        if self.restored:
            # pnl = closed · (px − entry) · sign of the position, which is the opposite of the fill's side
            self.add_open(closed, fill.px + pnl / (closed * fill.side.sign), ZERO)
        self.closed_size += closed
        self.closed_notional += closed * fill.px
        self.realized += pnl
        self.fees += fee

    def finish(self, coin: str, closed_ms: int) -> RoundTrip:
        return RoundTrip(
            coin=coin,
            opened_ms=self.opened_ms,
            closed_ms=closed_ms,
            entry_px=self.opened_notional / self.opened_size,
            exit_px=self.closed_notional / self.closed_size,
            size=self.opened_size,
            pnl_usd=self.realized - self.fees,
            fees_usd=self.fees,
            fees_estimated=self.fees_estimated,
            entry_signal=self.entry_signal,
        )


class RoundTrips:
    """Round trips per market from applied fills: flat → flat, a flip ends one and opens the next.

    The fee of a flipping fill is split by size. A closing fill on a market with no trip we saw open
    (a position restored at start) ends a trip whose opening is derived from the fill's realised PnL, and
    whose opening time is the restored entry time if one was given. A trip whose market went flat without a
    fill we saw (a resync) is dropped when the market next opens from flat.
    """

    def __init__(self) -> None:
        self._open: dict[str, _OpenTrip] = {}
        self._restored_entry_ms: dict[str, int] = {}

    def restore_entry_times(self, entry_times: Mapping[str, int]) -> None:
        self._restored_entry_ms.update(entry_times)

    def on_fill(
        self,
        fill: AppliedFill,
        *,
        fee: Decimal,
        time_ms: int,
        entry_signal: EntrySignal | None = None,
        fee_estimated: bool = False,
    ) -> RoundTrip | None:
        """Follow one fill; the round trip it ended, if any."""
        closed = fill.effect.closed_size
        opening = fill.size - closed
        closing_fee = fee * closed / fill.size
        ended = None
        if closed > 0:
            trip = self._open.get(fill.coin) or self._restored(fill.coin)
            trip.add_close(fill, closing_fee)
            trip.fees_estimated |= fee_estimated
            if fill.effect.position is None or opening > 0:
                ended = trip.finish(fill.coin, time_ms)
                del self._open[fill.coin]
        elif fill.opens_from_flat and self._open.pop(fill.coin, None) is not None:
            log.info("round trip dropped: its market went flat without a fill we saw", coin=fill.coin)
        if opening > 0:
            trip = self._open.setdefault(fill.coin, _OpenTrip(time_ms, entry_signal))
            trip.add_open(opening, fill.px, fee - closing_fee)
            trip.fees_estimated |= fee_estimated
        return ended

    def _restored(self, coin: str) -> _OpenTrip:
        trip = _OpenTrip(self._restored_entry_ms.pop(coin, None), None, restored=True)
        self._open[coin] = trip
        return trip


# -- the database ------------------------------------------------------------------------------------------


class JournalVersionError(RuntimeError):
    """The journal was written by a newer version of the bot."""


def open_journal_db(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) the journal in WAL mode with the current schema; autocommit mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        _ensure_schema(db)
    except BaseException:
        db.close()
        raise
    return db


def _ensure_schema(db: sqlite3.Connection) -> None:
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise JournalVersionError(f"journal schema {version} is newer than this bot's {SCHEMA_VERSION}")
    if version == SCHEMA_VERSION:
        return
    db.execute("BEGIN")
    for statement in _SCHEMA:
        db.execute(statement)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    db.execute("COMMIT")


def commit_statements(db: sqlite3.Connection, statements: Sequence[Statement]) -> bool:
    """Run `statements` in one transaction; False (rolled back, logged) when SQLite refuses them."""
    try:
        db.execute("BEGIN")
        for sql, params in statements:
            db.execute(sql, params)
        db.execute("COMMIT")
    except sqlite3.Error as exc:
        if db.in_transaction:
            db.execute("ROLLBACK")
        log.error("journal batch not written", statements=len(statements), error=repr(exc))
        return False
    return True


def read_entry_times(path: Path) -> dict[str, int]:
    """The entry times of the positions open when the journal was last written (start-up, before the bot
    runs); empty when there is no journal yet."""
    if not path.exists():
        return {}
    db = sqlite3.connect(path)
    try:
        return _entry_times_in(db)
    except sqlite3.OperationalError:  # a journal created before any schema was written
        return {}
    finally:
        db.close()


def _entry_times_in(db: sqlite3.Connection) -> dict[str, int]:
    return {coin: int(ms) for coin, ms in db.execute("SELECT coin, entry_time_ms FROM entry_times")}


# -- the journal -------------------------------------------------------------------------------------------


@attrs.frozen(slots=True)
class JournalRecord:
    statements: tuple[Statement, ...]  # written together, in one batch
    queued_at: float  # trio time


@attrs.define(slots=True)
class JournalStats:
    queued: int = 0  # records accepted (channel or overflow)
    committed: int = 0  # records whose batch committed
    batches: int = 0
    last_flush_at: float | None = None  # trio time the last batch write started
    overflowed: int = 0  # records that found the channel full and went to the overflow list
    dropped: int = 0  # records that found the overflow full too: lost, and logged
    failed: int = 0  # records in batches SQLite refused
    refused_stopped: int = 0  # records offered after the writer stopped
    abandoned_at_shutdown: int = 0  # records whose final write outlived the shutdown bound


@attrs.define(slots=True)
class _BatchWrite:
    statements: list[Statement]
    close_after: bool
    committed: bool = False


class Journal:
    def __init__(
        self,
        path: Path,
        *,
        wall_ms: WallClock,
        batch_size: int = 200,
        flush_interval_s: float = 0.5,
        queue_size: int = 20_000,
        overflow_size: int = 100_000,
        estimated_fee_bps: Decimal = ZERO,
        signal_match_ms: int = 5_000,
        shutdown_timeout_s: float = 5.0,
        run_blocking: BlockingRunner = run_in_worker_thread,
        restored_entry_times: Mapping[str, int] | None = None,
    ) -> None:
        """`estimated_fee_bps` prices fills whose fee is not reported (the round trips' fees); an opening
        fill is matched to the latest signal of its market and side at most `signal_match_ms` before it."""
        if batch_size < 1 or queue_size < 1 or overflow_size < 0 or flush_interval_s <= 0:
            raise ValueError("batch_size, queue_size must be ≥ 1, overflow_size ≥ 0, flush_interval_s > 0")
        self._path = path
        self._wall_ms = wall_ms
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._overflow_size = overflow_size
        self._fee_rate = estimated_fee_bps / BPS_DECIMAL
        self._signal_match_ms = signal_match_ms
        self._shutdown_timeout_s = shutdown_timeout_s
        self._run_blocking = run_blocking
        self._restored_entry_times = restored_entry_times  # None: read them from the file when it opens
        self._send, self._receive = trio.open_memory_channel[JournalRecord](queue_size)
        self._overflow: deque[JournalRecord] = deque()
        self._batch: list[JournalRecord] = []
        self._db: sqlite3.Connection | None = None
        self._db_lock = threading.Lock()  # an abandoned write and the shutdown write never interleave
        self._trips = RoundTrips()
        self._entry_times: dict[str, int] = {}
        self._last_signal: dict[tuple[str, str], tuple[EntrySignal, int]] = {}
        self._fill_seq = 0
        self._overflow_logged = self._drop_logged = False
        self.stats = JournalStats()

    # -- producers -----------------------------------------------------------------------------------------

    def order_registered(self, order: PendingOrder) -> None:
        params = (
            order.cloid.value,
            order.coin,
            order.side.label,
            str(order.size),
            str(order.limit_px),
            order.tif.value,
            int(order.reduce_only),
            self._wall_ms(),
            order.oid,
        )
        self._offer((_ORDER_REGISTERED, params))

    def order_ended(self, cloid: str, state: str, reason: str, oid: int | None) -> None:
        self._offer((_ORDER_ENDED, (cloid, oid, state, reason, self._wall_ms())))

    def fill(self, fill: AppliedFill) -> None:
        """Journal an applied fill (`PositionTracker.fill_listeners`), the round trip it ends and the entry
        time it sets or clears; with the exchange's trade id and fee when the fill carries them, else the fee
        estimated from the configured rate."""
        tid, fee = fill.tid, fill.fee
        now_ms = self._wall_ms()
        self._fill_seq += 1
        fill_id = str(tid) if tid is not None else f"{fill.source}:{fill.oid}:{now_ms}:{self._fill_seq}"
        statements: list[Statement] = [(_FILL, self._fill_params(fill, fill_id, tid, fee, now_ms))]
        trip_fee = abs(fill.size) * fill.px * self._fee_rate if fee is None else fee
        trip = self._trips.on_fill(
            fill,
            fee=trip_fee,
            time_ms=now_ms,
            entry_signal=self._signal_for(fill.coin, fill.side, now_ms),
            fee_estimated=fee is None,
        )
        if trip is not None:
            statements.append((_ROUND_TRIP, _round_trip_params(trip)))
        position = fill.effect.position
        entry_ms = None if position is None else position.entry_time_ms
        entry_change = self._entry_time_change(fill.coin, entry_ms)
        if entry_change is not None:
            statements.append(entry_change)
        self._offer(*statements)

    def signal(self, signal: Any) -> None:
        """Journal anything with `to_record()` giving id, coin, side and the edge figures (a Signal)."""
        record = signal.to_record()
        now_ms = self._wall_ms()
        coin, side = record["coin"], record["side"]
        raw_edge = record.get("raw_edge_bps")
        if raw_edge is not None:
            self._last_signal[(coin, side)] = (EntrySignal(str(record["id"]), float(raw_edge)), now_ms)
        record_json = encode_line(record).decode().rstrip("\n")
        params = (
            str(record["id"]),
            coin,
            side,
            raw_edge,
            record.get("net_edge_bps"),
            record.get("threshold_bps"),
            record_json,
            now_ms,
        )
        self._offer((_SIGNAL, params))

    def risk_event(self, kind: str, detail: str) -> None:
        self._offer((_RISK_EVENT, (kind, detail, self._wall_ms())))

    def reject(self, event: RejectEvent) -> None:
        """A `Sender.reject_listeners` listener: a risk event "reject" or "benign_reject"."""
        self.risk_event("benign_reject" if event.benign else "reject", f"{event.coin}: {event.text}")

    def hard_stop(self, event: str, trigger: str, reason: str, operator: str | None = None) -> None:
        if event not in HARD_STOP_EVENTS:
            raise ValueError(f"hard stop event must be one of {sorted(HARD_STOP_EVENTS)}, got {event!r}")
        self._offer((_HARD_STOP, (event, trigger, reason, self._wall_ms(), operator)))

    def hard_stop_latched(self, latch: Latch) -> None:
        """A `HardStop.listeners` listener."""
        self.hard_stop("latched", latch.trigger, latch.reason)

    def entry_time(self, coin: str, entry_time_ms: int | None) -> None:
        """Set (or, with None, delete) a market's entry time; fills already do this, resyncs may need it."""
        change = self._entry_time_change(coin, entry_time_ms)
        if change is not None:
            self._offer(change)

    def _fill_params(
        self, fill: AppliedFill, fill_id: str, tid: int | None, fee: Decimal | None, now_ms: int
    ) -> tuple[object, ...]:
        effect = fill.effect
        return (
            fill_id,
            tid,
            fill.oid,
            fill.coin,
            fill.side.label,
            str(fill.size),
            str(fill.px),
            None if fee is None else str(fee),
            fill.source,
            now_ms,
            str(effect.realized_pnl),
            str(effect.closed_size),
        )

    def _signal_for(self, coin: str, side: Side, now_ms: int) -> EntrySignal | None:
        latest = self._last_signal.get((coin, side.label))
        if latest is None or now_ms - latest[1] > self._signal_match_ms:
            return None
        return latest[0]

    def _entry_time_change(self, coin: str, entry_time_ms: int | None) -> Statement | None:
        if entry_time_ms is None:
            if self._entry_times.pop(coin, None) is None:
                return None
            return (_ENTRY_TIME_DELETE, (coin,))
        if self._entry_times.get(coin) == entry_time_ms:
            return None
        self._entry_times[coin] = entry_time_ms
        return (_ENTRY_TIME_SET, (coin, entry_time_ms))

    def _offer(self, *statements: Statement) -> None:
        record = JournalRecord(statements, trio.current_time())
        if self._overflow:  # keep order: nothing overtakes what is already waiting
            self._to_overflow(record)
            return
        try:
            self._send.send_nowait(record)
        except trio.WouldBlock:
            self._to_overflow(record)
            return
        except trio.BrokenResourceError:
            self.stats.refused_stopped += 1
            log.error("journal record offered after the writer stopped; not written")
            return
        self.stats.queued += 1
        self._overflow_logged = self._drop_logged = False

    def _to_overflow(self, record: JournalRecord) -> None:
        if len(self._overflow) >= self._overflow_size:
            self.stats.dropped += 1
            if not self._drop_logged:  # once per episode; the count is in stats
                self._drop_logged = True
                log.error("journal overflow full: records dropped", overflow=len(self._overflow))
            return
        self._overflow.append(record)
        self.stats.queued += 1
        self.stats.overflowed += 1
        if not self._overflow_logged:
            self._overflow_logged = True
            log.warning("journal queue full, writer behind; records kept in the overflow list")

    # -- the writer ----------------------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Open the journal, then commit batches until cancelled; write everything left on the way out."""
        await self._run_blocking(self._open)
        task_status.started()
        try:
            while True:
                await self._gather_batch()
                await self._write_batch(close_after=False)
        finally:
            self._take_everything_queued()  # before closing: a closed channel discards its buffer
            self._receive.close()
            await self._write_everything_left()

    def _open(self) -> None:
        self._db = open_journal_db(self._path)
        restored = self._restored_entry_times
        if restored is None:
            restored = _entry_times_in(self._db)
        self._trips.restore_entry_times(restored)
        for coin, entry_ms in restored.items():
            self._entry_times.setdefault(coin, entry_ms)

    async def _gather_batch(self) -> None:
        """Fill `_batch` until it holds batch_size records or its first record has waited flush_interval_s."""
        if not self._take_available():
            self._batch.append(await self._receive.receive())
            self._take_available()
        deadline = self._batch[0].queued_at + self._flush_interval_s
        with trio.move_on_at(deadline):
            while len(self._batch) < self._batch_size:
                self._batch.append(await self._receive.receive())
                self._take_available()

    def _take_available(self) -> bool:
        """Take queued records without waiting, the channel's (older) before the overflow's; True if any."""
        before = len(self._batch)
        while len(self._batch) < self._batch_size:
            try:
                self._batch.append(self._receive.receive_nowait())
            except trio.WouldBlock:
                break
        while len(self._batch) < self._batch_size and self._overflow:
            self._batch.append(self._overflow.popleft())
        return len(self._batch) > before

    def _take_everything_queued(self) -> None:
        while True:
            try:
                self._batch.append(self._receive.receive_nowait())
            except trio.WouldBlock:
                break
        self._batch.extend(self._overflow)
        self._overflow.clear()

    async def _write_batch(self, *, close_after: bool) -> None:
        records, self._batch = self._batch, []  # handed over: a write cut short by cancellation completes
        self.stats.last_flush_at = trio.current_time()
        batch = _BatchWrite([s for record in records for s in record.statements], close_after)
        await self._run_blocking(functools.partial(self._commit, batch))
        if not records:
            return
        self.stats.batches += 1
        if batch.committed:
            self.stats.committed += len(records)
        else:
            self.stats.failed += len(records)

    def _commit(self, batch: _BatchWrite) -> None:
        """Runs on the worker thread (or inline)."""
        with self._db_lock:
            if self._db is None:
                return
            if batch.statements:
                batch.committed = commit_statements(self._db, batch.statements)
            if batch.close_after:
                self._db.close()
                self._db = None

    async def _write_everything_left(self) -> None:
        """Shutdown: the gathered batch and everything queued in one write, shielded and bounded."""
        left = len(self._batch)
        with trio.move_on_after(self._shutdown_timeout_s, shield=True) as scope:
            await self._write_batch(close_after=True)
        if scope.cancelled_caught:
            self.stats.abandoned_at_shutdown += left
            log.error("journal's final write outlived the shutdown bound", records=left)
        elif left:
            log.info("journal records written at shutdown", records=left)


def _round_trip_params(trip: RoundTrip) -> tuple[object, ...]:
    signal = trip.entry_signal
    return (
        trip.coin,
        trip.opened_ms,
        trip.closed_ms,
        str(trip.entry_px),
        str(trip.exit_px),
        str(trip.size),
        str(trip.pnl_usd),
        str(trip.fees_usd),
        int(trip.fees_estimated),
        trip.pnl_bps,
        None if signal is None else signal.edge_bps,
        None if signal is None else signal.signal_id,
    )
