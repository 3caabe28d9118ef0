"""The trading report from the journal's round trips (`hip3 report`), per market and in total.

Per group: trades (round trips closed in the period), win rate (a win is a round trip whose PnL net of fees
is ≥ 0, as the risk monitor counts them), realised PnL net of fees in $ and as the mean of the trips' bps,
fees, average hold, and the mean raw edge of the signals that opened the trips (over those with a known
signal) against the mean edge captured (a trip's PnL before fees, in bps of its entry notional).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from statistics import fmean
from typing import Any

import attrs

from hip3.core.market import BPS_DECIMAL

ZERO = Decimal(0)
TOTAL = "TOTAL"
_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_SINCE_RE = re.compile(r"(\d+)([smhd])")


def parse_since(text: str) -> int:
    """A look-back such as "30m", "24h" or "7d" (also "90s") in milliseconds."""
    match = _SINCE_RE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"expected a number and a unit (s, m, h, d), like 24h, got {text!r}")
    return int(match[1]) * _UNIT_MS[match[2]]


@attrs.frozen(slots=True)
class TripRow:
    """One round trip as the report reads it."""

    coin: str
    opened_ms: int | None
    closed_ms: int
    entry_notional: Decimal
    pnl_usd: Decimal
    fees_usd: Decimal
    fees_estimated: bool
    pnl_bps: float
    entry_edge_bps: float | None

    @property
    def captured_bps(self) -> float:
        return self.pnl_bps + float(self.fees_usd / self.entry_notional * BPS_DECIMAL)


@attrs.frozen(slots=True)
class MarketFigures:
    market: str  # a coin, or TOTAL
    trades: int
    wins: int
    pnl_usd: Decimal
    fees_usd: Decimal
    fees_estimated: bool
    pnl_bps_mean: float | None
    hold_s_mean: float | None  # over trips with a known opening time
    entry_edge_bps_mean: float | None  # over trips with a known opening signal
    captured_bps_mean: float | None

    @property
    def win_rate(self) -> float | None:
        return self.wins / self.trades if self.trades else None


@attrs.frozen(slots=True)
class Report:
    since_ms: int | None
    markets: tuple[MarketFigures, ...]  # by market name
    total: MarketFigures


def build_report(path: Path, *, since_ms: int | None) -> Report:
    """The figures of the round trips closed at or after `since_ms` (wall ms; None: all of them)."""
    rows = read_round_trips(path, since_ms=since_ms)
    by_market: dict[str, list[TripRow]] = {}
    for row in rows:
        by_market.setdefault(row.coin, []).append(row)
    markets = tuple(figures_of(coin, trips) for coin, trips in sorted(by_market.items()))
    return Report(since_ms=since_ms, markets=markets, total=figures_of(TOTAL, rows))


def read_round_trips(path: Path, *, since_ms: int | None) -> list[TripRow]:
    if not path.exists():
        raise FileNotFoundError(f"no journal at {path}")
    query = """SELECT coin, opened_ms, closed_ms, size, entry_px, pnl_usd, fees_usd, fees_estimated, pnl_bps,
        entry_edge_bps FROM round_trips WHERE closed_ms >= ? ORDER BY closed_ms, id"""
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    try:
        rows = db.execute(query, (-1 if since_ms is None else since_ms,)).fetchall()
    finally:
        db.close()
    return [_trip_row(row) for row in rows]


def _trip_row(row: sqlite3.Row) -> TripRow:
    return TripRow(
        coin=row["coin"],
        opened_ms=row["opened_ms"],
        closed_ms=row["closed_ms"],
        entry_notional=Decimal(row["size"]) * Decimal(row["entry_px"]),
        pnl_usd=Decimal(row["pnl_usd"]),
        fees_usd=Decimal(row["fees_usd"]),
        fees_estimated=bool(row["fees_estimated"]),
        pnl_bps=row["pnl_bps"],
        entry_edge_bps=row["entry_edge_bps"],
    )


def figures_of(market: str, trips: Sequence[TripRow]) -> MarketFigures:
    holds = [(t.closed_ms - t.opened_ms) / 1000 for t in trips if t.opened_ms is not None]
    edges = [t.entry_edge_bps for t in trips if t.entry_edge_bps is not None]
    return MarketFigures(
        market=market,
        trades=len(trips),
        wins=sum(1 for t in trips if t.pnl_usd >= 0),
        pnl_usd=sum((t.pnl_usd for t in trips), ZERO),
        fees_usd=sum((t.fees_usd for t in trips), ZERO),
        fees_estimated=any(t.fees_estimated for t in trips),
        pnl_bps_mean=_mean(t.pnl_bps for t in trips),
        hold_s_mean=_mean(holds),
        entry_edge_bps_mean=_mean(edges),
        captured_bps_mean=_mean(t.captured_bps for t in trips),
    )


def _mean(values: Iterable[float]) -> float | None:
    listed = list(values)
    return fmean(listed) if listed else None


# -- output -----------------------------------------------------------------------------------------------

_COLUMNS = (
    ("market", 10),
    ("trades", 7),
    ("win %", 7),
    ("pnl $", 12),
    ("pnl bps", 9),
    ("fees $", 10),
    ("hold s", 9),
    ("edge bps", 9),
    ("capt bps", 9),
)


def render_table(report: Report) -> str:
    """A fixed-width table, one line per market and a total line; "-" where a figure has no data."""
    lines = [_table_line(name for name, _ in _COLUMNS)]
    lines.append("-" * len(lines[0]))
    lines.extend(_table_line(_cells(figures)) for figures in report.markets)
    if report.markets:
        lines.append("-" * len(lines[0]))
    lines.append(_table_line(_cells(report.total)))
    if report.total.fees_estimated:
        lines.append("fees include estimates (fills whose fee was not reported)")
    return "\n".join(lines) + "\n"


def _table_line(cells: Iterable[str]) -> str:
    parts = [
        cell.ljust(width) if index == 0 else cell.rjust(width)
        for index, (cell, (_, width)) in enumerate(zip(cells, _COLUMNS, strict=True))
    ]
    return " ".join(parts).rstrip()


def _cells(figures: MarketFigures) -> list[str]:
    win_rate = figures.win_rate
    return [
        figures.market,
        str(figures.trades),
        "-" if win_rate is None else f"{win_rate * 100:.1f}",
        f"{figures.pnl_usd:.4f}",
        _number(figures.pnl_bps_mean, 2),
        f"{figures.fees_usd:.4f}",
        _number(figures.hold_s_mean, 1),
        _number(figures.entry_edge_bps_mean, 2),
        _number(figures.captured_bps_mean, 2),
    ]


def _number(value: float | None, places: int) -> str:
    return "-" if value is None else f"{value:.{places}f}"


def report_json(report: Report) -> dict[str, Any]:
    """JSON-ready: money as exact decimal strings, the rest as numbers or null."""
    return {
        "since_ms": report.since_ms,
        "markets": [_figures_json(figures) for figures in report.markets],
        "total": _figures_json(report.total),
    }


def _figures_json(figures: MarketFigures) -> dict[str, Any]:
    return {
        "market": figures.market,
        "trades": figures.trades,
        "wins": figures.wins,
        "win_rate": figures.win_rate,
        "pnl_usd": str(figures.pnl_usd),
        "pnl_bps_mean": figures.pnl_bps_mean,
        "fees_usd": str(figures.fees_usd),
        "fees_estimated": figures.fees_estimated,
        "hold_s_mean": figures.hold_s_mean,
        "entry_edge_bps_mean": figures.entry_edge_bps_mean,
        "captured_bps_mean": figures.captured_bps_mean,
    }
