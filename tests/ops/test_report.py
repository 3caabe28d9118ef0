"""The report: exact figures per market and in total from a journal, the period filter, the outputs."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
import trio
import trio.testing

from hip3 import cli
from hip3.core.clock import trio_wall_clock
from hip3.core.order import Side
from hip3.ops.report import Report, build_report, parse_since, render_table, report_json
from hip3.persist.journal import Journal, open_journal_db
from hip3.persist.jsonl import run_inline
from hip3.position.model import Position, apply_fill
from hip3.position.tracker import AppliedFill
from hip3.strategy.signal import Signal

START_MS = 1_772_323_200_000
D = Decimal


class Trader:
    """Fills into a journal at chosen virtual times, positions moved as the tracker moves them."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.positions: dict[str, Position] = {}
        self.started = trio.current_time()

    async def at(self, seconds: float) -> None:
        await trio.sleep_until(self.started + seconds)

    def fill(self, coin: str, side: Side, size: str, px: str, fee: str) -> None:
        effect = apply_fill(self.positions.get(coin), coin, side, D(size), D(px), time_ms=0)
        if effect.position is None:
            self.positions.pop(coin, None)
        else:
            self.positions[coin] = effect.position
        self.journal.fill(AppliedFill(coin, side, D(size), D(px), 1, "userFills", effect, fee=D(fee)))

    def signal(self, coin: str, side: Side, raw_edge_bps: float) -> None:
        self.journal.signal(
            Signal(
                f"{coin}-{raw_edge_bps}",
                coin,
                side,
                raw_edge_bps,
                5.0,
                25.0,
                D(1),
                D(1),
                D(1),
                D(1),
                None,
                {},
                0.0,
                1,
            )
        )


async def write_two_markets(path: Path) -> None:
    """XYZ:A: a win (+1.96, 98 bps) then a loss (−0.52, −52 bps); XYZ:B: a win (+3.92, 196 bps)."""
    journal = Journal(path, wall_ms=trio_wall_clock(START_MS), run_blocking=run_inline)
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        trader = Trader(journal)
        trader.signal("XYZ:A", Side.BUY, 30.0)
        trader.fill("XYZ:A", Side.BUY, "2", "100", "0.02")
        await trader.at(10)
        trader.fill("XYZ:A", Side.SELL, "2", "101", "0.02")
        await trader.at(20)
        trader.fill("XYZ:A", Side.SELL, "1", "100", "0.01")  # no signal of that side: edge unknown
        await trader.at(50)
        trader.fill("XYZ:A", Side.BUY, "1", "100.5", "0.01")
        await trader.at(52)
        trader.signal("XYZ:B", Side.SELL, 40.0)
        trader.fill("XYZ:B", Side.SELL, "4", "50", "0.04")
        await trader.at(57)
        trader.fill("XYZ:B", Side.BUY, "4", "49", "0.04")
        nursery.cancel_scope.cancel()


@pytest.fixture
def journal_path(tmp_path: Path) -> Path:
    return tmp_path / "journal.sqlite3"


async def test_figures_per_market_and_in_total(
    autojump_clock: trio.testing.MockClock, journal_path: Path
) -> None:
    await write_two_markets(journal_path)
    report = build_report(journal_path, since_ms=None)
    a, b = report.markets
    assert (a.market, a.trades, a.wins, a.win_rate) == ("XYZ:A", 2, 1, 0.5)
    assert (a.pnl_usd, a.fees_usd, a.fees_estimated) == (D("1.44"), D("0.06"), False)
    assert (a.pnl_bps_mean, a.hold_s_mean) == pytest.approx((23.0, 20.0))
    assert (a.entry_edge_bps_mean, a.captured_bps_mean) == pytest.approx((30.0, 25.0))
    assert (b.market, b.trades, b.wins, b.win_rate, b.pnl_usd, b.fees_usd) == (
        "XYZ:B",
        1,
        1,
        1.0,
        D("3.92"),
        D("0.08"),
    )
    assert (b.pnl_bps_mean, b.hold_s_mean, b.entry_edge_bps_mean) == pytest.approx((196.0, 5.0, 40.0))
    assert b.captured_bps_mean == pytest.approx(200.0)
    total = report.total
    assert (total.market, total.trades, total.wins, total.pnl_usd, total.fees_usd) == (
        "TOTAL",
        3,
        2,
        D("5.36"),
        D("0.14"),
    )
    assert total.win_rate == pytest.approx(2 / 3)
    assert total.pnl_bps_mean == pytest.approx((98 - 52 + 196) / 3)
    assert (total.hold_s_mean, total.entry_edge_bps_mean) == (15.0, 35.0)
    assert total.captured_bps_mean == pytest.approx((100 - 50 + 200) / 3)


async def test_since_keeps_the_round_trips_closed_in_the_period(
    autojump_clock: trio.testing.MockClock, journal_path: Path
) -> None:
    await write_two_markets(journal_path)
    report = build_report(journal_path, since_ms=START_MS + 50_000)  # XYZ:A's loss closed at exactly 50 s
    assert [(m.market, m.trades) for m in report.markets] == [("XYZ:A", 1), ("XYZ:B", 1)]
    assert report.total.pnl_usd == D("3.40")
    later = build_report(journal_path, since_ms=START_MS + 50_001)
    assert [(m.market, m.trades, m.pnl_usd) for m in later.markets] == [("XYZ:B", 1, D("3.92"))]


async def test_the_table_and_the_json(autojump_clock: trio.testing.MockClock, journal_path: Path) -> None:
    await write_two_markets(journal_path)
    report = build_report(journal_path, since_ms=None)
    assert render_table(report) == TABLE
    encoded = json.loads(json.dumps(report_json(report)))
    assert encoded["since_ms"] is None
    assert [m["market"] for m in encoded["markets"]] == ["XYZ:A", "XYZ:B"]
    assert encoded["total"]["pnl_usd"] == "5.36"
    assert encoded["markets"][1] == {
        "market": "XYZ:B",
        "trades": 1,
        "wins": 1,
        "win_rate": 1.0,
        "pnl_usd": "3.92",
        "pnl_bps_mean": pytest.approx(196.0),
        "fees_usd": "0.08",
        "fees_estimated": False,
        "hold_s_mean": 5.0,
        "entry_edge_bps_mean": 40.0,
        "captured_bps_mean": pytest.approx(200.0),
    }


TABLE = """\
market      trades   win %        pnl $   pnl bps     fees $    hold s  edge bps  capt bps
------------------------------------------------------------------------------------------
XYZ:A            2    50.0       1.4400     23.00     0.0600      20.0     30.00     25.00
XYZ:B            1   100.0       3.9200    196.00     0.0800       5.0     40.00    200.00
------------------------------------------------------------------------------------------
TOTAL            3    66.7       5.3600     80.67     0.1400      15.0     35.00     83.33
"""


def test_an_empty_journal_reports_no_trades(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    open_journal_db(path).close()
    report = build_report(path, since_ms=None)
    assert report == Report(since_ms=None, markets=(), total=report.total)
    assert (report.total.trades, report.total.win_rate, report.total.pnl_bps_mean) == (0, None, None)
    assert render_table(report).splitlines()[-1].split() == [
        "TOTAL",
        "0",
        "-",
        "0.0000",
        "-",
        "0.0000",
        "-",
        "-",
        "-",
    ]


def test_a_missing_journal_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no journal"):
        build_report(tmp_path / "none.sqlite3", since_ms=None)


@pytest.mark.parametrize(
    ("text", "ms"),
    [("24h", 86_400_000), ("30m", 1_800_000), ("7d", 604_800_000), ("90s", 90_000), (" 1h ", 3_600_000)],
)
def test_parse_since(text: str, ms: int) -> None:
    assert parse_since(text) == ms


@pytest.mark.parametrize("text", ["", "24", "h", "1.5h", "-1h", "2w", "24 h"])
def test_parse_since_refuses_what_it_cannot_read(text: str) -> None:
    with pytest.raises(ValueError, match="unit"):
        parse_since(text)


async def test_the_cli_prints_the_journal_as_json_and_as_a_table(
    autojump_clock: trio.testing.MockClock, journal_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await write_two_markets(journal_path)
    capsys.readouterr()  # the journal's own log lines
    assert cli.main(["report", "--journal", str(journal_path), "--since", "9999d", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    expected = report_json(build_report(journal_path, since_ms=0))
    assert printed.pop("since_ms") > 0
    assert printed == {key: value for key, value in expected.items() if key != "since_ms"}
    assert cli.main(["report", "--journal", str(journal_path), "--since", "9999d"]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[1:] == render_table(build_report(journal_path, since_ms=0)).splitlines()[1:]


def test_the_cli_refuses_a_bad_period_and_a_missing_journal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["report", "--journal", str(tmp_path / "none.sqlite3")]) == 1
    assert "no journal at" in capsys.readouterr().err
    open_journal_db(tmp_path / "j.sqlite3").close()
    assert cli.main(["report", "--journal", str(tmp_path / "j.sqlite3"), "--since", "soon"]) == 1
    assert "hip3 report:" in capsys.readouterr().err
