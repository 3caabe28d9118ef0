"""The windowed oracle history: change and direction over a window, consecutive moves, bounded memory."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hip3.strategy.oracle_tracker import OracleDirection, OracleHistory

D = Decimal
UP, DOWN, FLAT = OracleDirection.UP, OracleDirection.DOWN, OracleDirection.FLAT


def history(*points: tuple[float, str], move_min_bps: float = 2.0, max_changes: int = 256) -> OracleHistory:
    tracker = OracleHistory(move_min_bps=move_min_bps, max_changes=max_changes)
    for at, price in points:
        tracker.record(at, D(price))
    return tracker


RISING = history((0.0, "100"), (3.0, "100.05"), (6.0, "100.1"))


def test_record_keeps_changes_only() -> None:
    tracker = history()
    assert tracker.record(0.0, D(100)) is True
    assert tracker.record(1.0, D(100)) is False
    assert tracker.record(2.0, D("100.01")) is True
    assert len(tracker) == 2
    assert tracker.latest is not None and tracker.latest.price == D("100.01") and tracker.latest.at == 2.0


def test_record_refuses_time_going_back_and_non_positive_prices() -> None:
    tracker = history((5.0, "100"))
    with pytest.raises(ValueError, match="older"):
        tracker.record(4.0, D(101))
    with pytest.raises(ValueError, match="positive"):
        tracker.record(6.0, D(0))


def test_change_over_a_window_starts_from_the_price_in_force_when_it_opened() -> None:
    assert RISING.change_bps(7.0, 5.0) == pytest.approx(10.0)  # price at t=2 is 100 (set at t=0)
    assert RISING.change_bps(7.0, 2.0) == pytest.approx(4.99750124937)  # from 100.05 (t=3) to 100.1
    assert RISING.direction(7.0, 2.0) is UP


def test_a_history_starting_inside_the_window_measures_from_its_oldest_price() -> None:
    assert RISING.change_bps(7.0, 60.0) == pytest.approx(10.0)


def test_no_change_inside_the_window_is_flat() -> None:
    assert RISING.change_bps(20.0, 10.0) == 0.0
    assert RISING.direction(20.0, 10.0) is FLAT
    assert history().direction(0.0, 10.0) is FLAT
    assert history((0.0, "100")).change_bps(1.0, 10.0) == 0.0


def test_falling_oracle_is_down() -> None:
    falling = history((0.0, "100"), (3.0, "99.97"))
    assert falling.change_bps(4.0, 10.0) == pytest.approx(-3.0)
    assert falling.direction(4.0, 10.0) is DOWN


def test_consecutive_moves_count_the_latest_run_in_one_direction() -> None:
    tracker = history((0, "100"), (1, "99.97"), (2, "100"), (3, "100.03"), (4, "100.06"))
    assert tracker.consecutive_moves(UP) == 3  # 99.97 → 100 → 100.03 → 100.06
    assert tracker.consecutive_moves(DOWN) == 0
    assert tracker.consecutive_moves(FLAT) == 0


def test_changes_below_the_move_minimum_neither_count_nor_break_a_run() -> None:
    # 100 → 100.03 (+3) → 100.02 (−1, noise) → 100.05 (+3)
    tracker = history((0, "100"), (1, "100.03"), (2, "100.02"), (3, "100.05"))
    assert tracker.consecutive_moves(UP) == 2
    tiny_steps = history((0, "100"), (1, "100.01"), (2, "100.02"), (3, "100.03"))
    assert tiny_steps.consecutive_moves(UP) == 0


def test_a_run_is_counted_only_from_changes_after_since() -> None:
    # predecessor 5b6eee3: three down moves before entry at t=10 do not count against the position
    tracker = history((0, "100"), (1, "99.97"), (2, "99.94"), (3, "99.91"))
    assert tracker.consecutive_moves(DOWN) == 3
    assert tracker.consecutive_moves(DOWN, since=10.0) == 0
    tracker.record(11.0, D("99.88"))
    assert tracker.consecutive_moves(DOWN, since=10.0) == 1
    tracker.record(12.0, D("99.85"))
    assert tracker.consecutive_moves(DOWN, since=10.0) == 2


def test_memory_is_bounded() -> None:
    tracker = history(*[(float(i), str(100 + i)) for i in range(10)], max_changes=4)
    assert len(tracker) == 4
    assert tracker.consecutive_moves(UP) == 3


def test_parameters_are_checked() -> None:
    with pytest.raises(ValueError):
        OracleHistory(move_min_bps=-1)
    with pytest.raises(ValueError):
        OracleHistory(move_min_bps=2, max_changes=1)


@given(st.lists(st.decimals(min_value=D(90), max_value=D(110), places=2), min_size=1, max_size=40))
def test_change_over_a_window_covering_everything_is_last_against_first(prices: list[Decimal]) -> None:
    tracker = history(*[(float(i), str(p)) for i, p in enumerate(prices)], max_changes=64)
    expected = float((prices[-1] - prices[0]) / prices[0]) * 10_000
    assert tracker.change_bps(float(len(prices)), 1_000.0) == pytest.approx(expected)
