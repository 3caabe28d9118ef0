"""The risk monitor with exact figures: every limit at its boundary, windows on virtual time, 0 disables.

Fills go through the tracker's own `apply_fill`, so the monitor sees the effects the live tracker produces.
Unless a test says otherwise fees are 0 and the limits are the predecessor's mainnet ones: 20 USD over an
hour, 5 losing round trips, 3 flatten failures, 10 alarming rejects, 1 signer error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
from structlog.testing import capture_logs

from hip3.core.order import Side
from hip3.execution.nonce import NonceManager
from hip3.execution.sender import RejectEvent
from hip3.position.model import Position, apply_fill
from hip3.position.tracker import AppliedFill
from hip3.risk.hard_stop import (
    ALARMING_REJECTS,
    CLOCK_SKEW,
    FLATTEN_FAILURES,
    LOSING_STREAK,
    REALIZED_LOSS,
    SIGNER_ERRORS,
    HardStop,
    Latch,
)
from hip3.risk.monitor import MonitorSettings, RiskMonitor

TSLA = "xyz:TSLA"
GOLD = "xyz:GOLD"
HOUR = 3600.0
NOW_MS = 1_767_225_600_000
IOC_NO_MATCH = "Order could not immediately match against any resting orders. asset=110000"
MARGIN = "Insufficient margin to place order. asset=110000"
NO_WALLET = "User or API Wallet 0x0123456789abcdef0123456789abcdef01234567 does not exist."
BAD_NONCE = "Invalid nonce: duplicate nonce"

LIMITS = MonitorSettings(
    max_loss_usd=Decimal(20),
    window_s=HOUR,
    max_losing_streak=5,
    max_flatten_failures=3,
    max_alarming_rejects=10,
    max_signer_errors=1,
    fee_bps=0.0,
)
DISABLED = MonitorSettings(Decimal(0), HOUR, 0, 0, 0, 0, 0.0)
sleeps_an_hour = pytest.mark.deadline(2 * HOUR)


class Desk:
    """A hard stop, a monitor, and positions kept with the tracker's arithmetic."""

    def __init__(self, tmp_path: Path, settings: MonitorSettings = LIMITS) -> None:
        self.stop = HardStop(tmp_path / "hardstop.json", wall_ms=lambda: NOW_MS)
        self.monitor = RiskMonitor(settings, self.stop)
        self.positions: dict[str, Position] = {}

    def fill(self, coin: str, side: Side, size: str, px: str, *, fee: str | None = None) -> None:
        effect = apply_fill(self.positions.get(coin), coin, side, Decimal(size), Decimal(px), time_ms=NOW_MS)
        if effect.position is None:
            self.positions.pop(coin, None)
        else:
            self.positions[coin] = effect.position
        exchange_fee = None if fee is None else Decimal(fee)
        self.monitor.on_fill(
            AppliedFill(coin, side, Decimal(size), Decimal(px), 1, "response", effect, fee=exchange_fee)
        )

    def round_trip(self, open_px: str, close_px: str, coin: str = TSLA) -> None:
        self.fill(coin, Side.BUY, "1", open_px)
        self.fill(coin, Side.SELL, "1", close_px)

    def reject(self, text: str, *, benign: bool = False, coin: str = TSLA) -> None:
        self.monitor.on_reject(RejectEvent(coin, text, benign))

    @property
    def latch(self) -> Latch | None:
        return self.stop.state.value


def trip_pnls(logs: Sequence[Mapping[str, Any]]) -> list[Decimal]:
    return [Decimal(str(entry["pnl_usd"])) for entry in logs if entry["event"] == "round trip ended"]


# -- realised loss -------------------------------------------------------------------------------------------


async def test_a_loss_equal_to_the_limit_does_not_latch_and_a_cent_more_does(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    desk.round_trip("100", "85")
    desk.round_trip("100", "95")
    assert desk.monitor.figures().realized_pnl_window_usd == Decimal(-20)
    assert desk.stop.reason() is None

    desk.round_trip("100", "99.99")

    assert desk.latch is not None
    assert desk.latch.trigger == REALIZED_LOSS
    assert desk.latch.reason == "realised loss 20.01 USD over the last 3600 s exceeds 20"


async def test_the_exchange_fee_counts_where_the_fill_carries_it(tmp_path: Path) -> None:
    """The estimate (fee_bps) only stands in when the source reported no fee, as in the journal."""
    desk = Desk(tmp_path, attrs.evolve(LIMITS, fee_bps=10.0))
    desk.fill(TSLA, Side.BUY, "1", "100", fee="0.5")
    desk.fill(TSLA, Side.SELL, "1", "110")  # no fee reported: 10 bps of 110
    figures = desk.monitor.figures()
    assert figures.fees_usd == Decimal("0.61")
    assert figures.realized_pnl_total_usd == Decimal("9.39")


async def test_gains_in_the_window_offset_losses(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    desk.round_trip("100", "110")
    desk.round_trip("100", "75")  # -25, but +10 earlier: net -15
    assert desk.stop.reason() is None
    assert desk.monitor.figures().realized_pnl_window_usd == Decimal(-15)


async def test_fees_are_estimated_from_size_price_and_bps_and_count_as_loss(tmp_path: Path) -> None:
    desk = Desk(tmp_path, attrs.evolve(LIMITS, max_loss_usd=Decimal("0.10"), fee_bps=5.0))
    desk.fill(TSLA, Side.BUY, "2", "50")  # 100 USD notional × 5 bps = 0.05
    desk.fill(TSLA, Side.SELL, "2", "50")  # flat PnL, another 0.05 in fees

    figures = desk.monitor.figures()
    assert figures.fees_usd == Decimal("0.10")
    assert figures.realized_pnl_total_usd == Decimal("-0.10")
    assert desk.stop.reason() is None

    desk.fill(TSLA, Side.BUY, "2", "50")  # an opening fill costs its fee too

    assert desk.latch is not None
    assert desk.latch.reason == "realised loss 0.15 USD over the last 3600 s exceeds 0.10"


async def test_a_loss_just_over_the_limit_is_shown_with_the_digits_that_decide(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    desk.fill(TSLA, Side.BUY, "1", "100")
    desk.fill(TSLA, Side.SELL, "1", "79.999")
    assert desk.latch is not None
    assert desk.latch.reason == "realised loss 20.001 USD over the last 3600 s exceeds 20"


@sleeps_an_hour
async def test_a_loss_leaves_the_window_exactly_window_s_later(
    tmp_path: Path, autojump_clock: object
) -> None:
    await trio.sleep(100.1)  # an awkward start, so float noise would show
    desk = Desk(tmp_path)
    desk.round_trip("100", "85")  # -15 at t0

    await trio.sleep(HOUR - 1e-6)
    assert desk.monitor.figures().realized_pnl_window_usd == Decimal(-15)
    await trio.sleep(1e-6)
    assert desk.monitor.figures().realized_pnl_window_usd == Decimal(0)

    desk.round_trip("100", "85")  # -15 at t0 + window: the first one is out

    assert desk.stop.reason() is None
    assert desk.monitor.figures().realized_pnl_total_usd == Decimal(-30)


@sleeps_an_hour
async def test_a_loss_one_microsecond_inside_the_window_still_counts(
    tmp_path: Path, autojump_clock: object
) -> None:
    await trio.sleep(100.1)
    desk = Desk(tmp_path)
    desk.round_trip("100", "85")

    await trio.sleep(HOUR - 1e-6)
    desk.round_trip("100", "85")

    assert desk.latch is not None
    assert desk.latch.reason == "realised loss 30.00 USD over the last 3600 s exceeds 20"


# -- round trips and the losing streak -------------------------------------------------------------------


async def test_five_losing_round_trips_do_not_latch_and_the_sixth_does(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    for _ in range(5):
        desk.round_trip("100", "99")
    assert desk.monitor.figures().losing_streak == 5
    assert desk.stop.reason() is None

    desk.round_trip("100", "99")

    assert desk.latch is not None
    assert desk.latch.trigger == LOSING_STREAK
    assert desk.latch.reason == "6 losing round trips in a row exceed 5 (last: xyz:TSLA -1.00 USD)"


async def test_a_win_resets_the_streak(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    for _ in range(5):
        desk.round_trip("100", "99")
    desk.round_trip("100", "100.5")
    for _ in range(5):
        desk.round_trip("100", "99")

    figures = desk.monitor.figures()
    assert (figures.round_trips, figures.wins, figures.losses, figures.losing_streak) == (11, 1, 10, 5)
    assert desk.stop.reason() is None


async def test_the_streak_runs_across_markets(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    for coin in [TSLA, GOLD, TSLA, GOLD, TSLA, GOLD]:
        desk.round_trip("100", "99", coin=coin)
    assert desk.latch is not None
    assert desk.latch.reason == "6 losing round trips in a row exceed 5 (last: xyz:GOLD -1.00 USD)"


async def test_a_round_trip_runs_from_flat_to_flat_through_adds_and_partial_exits(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    with capture_logs() as logs:
        desk.fill(TSLA, Side.BUY, "1", "100")
        desk.fill(TSLA, Side.BUY, "1", "102")  # entry 101
        desk.fill(TSLA, Side.SELL, "1", "103")  # +2, still open
        assert desk.monitor.figures().round_trips == 0
        desk.fill(TSLA, Side.SELL, "1", "98")  # -3: the round trip ends at -1

    assert trip_pnls(logs) == [Decimal(-1)]
    figures = desk.monitor.figures()
    assert (figures.round_trips, figures.wins, figures.losses, figures.losing_streak) == (1, 0, 1, 1)


async def test_markets_keep_their_own_round_trips(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    with capture_logs() as logs:
        desk.fill(TSLA, Side.BUY, "1", "100")
        desk.fill(GOLD, Side.SELL, "2", "50")
        desk.fill(TSLA, Side.SELL, "1", "104")
        desk.fill(GOLD, Side.BUY, "2", "51")
    assert trip_pnls(logs) == [Decimal(4), Decimal(-2)]


async def test_a_round_trip_includes_the_fees_of_both_legs(tmp_path: Path) -> None:
    desk = Desk(tmp_path, attrs.evolve(LIMITS, fee_bps=10.0))
    with capture_logs() as logs:
        desk.round_trip("100", "100.15")  # +0.15 gross, fees 0.1 + 0.10015
    assert trip_pnls(logs) == [Decimal("-0.05015")]
    assert desk.monitor.figures().losses == 1


async def test_a_flip_ends_one_round_trip_and_opens_the_next_splitting_its_fee(tmp_path: Path) -> None:
    desk = Desk(tmp_path, attrs.evolve(LIMITS, fee_bps=10.0))
    with capture_logs() as logs:
        desk.fill(TSLA, Side.BUY, "1", "100")  # fee 0.1
        desk.fill(TSLA, Side.SELL, "3", "99")  # closes 1 at -1, opens short 2; fee 0.297 = 0.099 + 0.198
        desk.fill(TSLA, Side.BUY, "2", "98")  # +2, fee 0.196

    assert trip_pnls(logs) == [Decimal("-1.199"), Decimal("1.606")]
    figures = desk.monitor.figures()
    assert (figures.round_trips, figures.wins, figures.losses, figures.losing_streak) == (2, 1, 1, 0)
    assert figures.fees_usd == Decimal("0.593")


async def test_a_position_the_monitor_did_not_see_open_ends_on_its_closing_leg(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    desk.positions[TSLA] = Position(TSLA, Decimal(-1), Decimal(100), NOW_MS)  # restored at start
    with capture_logs() as logs:
        desk.fill(TSLA, Side.BUY, "1", "103")
    assert trip_pnls(logs) == [Decimal(-3)]


async def test_a_round_trip_whose_market_went_flat_unseen_is_dropped(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    desk.fill(TSLA, Side.BUY, "1", "100")
    desk.positions.clear()  # a resync found the market flat
    with capture_logs() as logs:
        desk.round_trip("100", "101")
    assert trip_pnls(logs) == [Decimal(1)]
    assert desk.monitor.figures().round_trips == 1


# -- rejects -------------------------------------------------------------------------------------------------


async def test_eleven_benign_rejects_in_an_hour_do_not_latch(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    for _ in range(11):
        desk.reject(IOC_NO_MATCH, benign=True)

    figures = desk.monitor.figures()
    assert (figures.benign_rejects_window, figures.benign_rejects_total) == (11, 11)
    assert figures.alarming_rejects_window == 0
    assert desk.stop.reason() is None


async def test_ten_alarming_rejects_do_not_latch_and_the_eleventh_does(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    for _ in range(10):
        desk.reject(MARGIN)
    assert desk.stop.reason() is None

    desk.reject(MARGIN)

    assert desk.latch is not None
    assert desk.latch.trigger == ALARMING_REJECTS
    assert desk.latch.reason == f"11 alarming rejects over the last 3600 s exceed 10 (last: {TSLA}: {MARGIN})"


@sleeps_an_hour
async def test_alarming_rejects_leave_the_window_exactly_window_s_later(
    tmp_path: Path, autojump_clock: object
) -> None:
    desk = Desk(tmp_path)
    for _ in range(10):
        desk.reject(MARGIN)
    await trio.sleep(HOUR)

    desk.reject(MARGIN)

    figures = desk.monitor.figures()
    assert (figures.alarming_rejects_window, figures.alarming_rejects_total) == (1, 11)
    assert desk.stop.reason() is None


# -- signer and nonce errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [NO_WALLET, BAD_NONCE, f"L1 error: {NO_WALLET}"])
async def test_one_signer_error_does_not_latch_and_a_second_does(tmp_path: Path, text: str) -> None:
    desk = Desk(tmp_path)
    desk.reject(text)
    assert desk.monitor.figures().signer_errors_window == 1
    assert desk.stop.reason() is None

    desk.reject(text)

    assert desk.latch is not None
    assert desk.latch.trigger == SIGNER_ERRORS
    assert desk.latch.reason == f"2 signer errors over the last 3600 s exceed 1 (last: xyz:TSLA: {text})"


async def test_signer_errors_also_count_as_alarming_and_name_the_stricter_limit(tmp_path: Path) -> None:
    desk = Desk(tmp_path, attrs.evolve(LIMITS, max_alarming_rejects=1))
    desk.reject(NO_WALLET)
    desk.reject(BAD_NONCE)
    assert desk.monitor.figures().alarming_rejects_window == 2
    assert desk.latch is not None and desk.latch.trigger == SIGNER_ERRORS


async def test_other_alarming_rejects_are_not_signer_errors(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    desk.reject(MARGIN)
    desk.reject("Order price cannot be more than 80% away from the reference price")
    assert desk.monitor.figures().signer_errors_window == 0
    assert desk.stop.reason() is None


@sleeps_an_hour
async def test_signer_errors_leave_the_window(tmp_path: Path, autojump_clock: object) -> None:
    desk = Desk(tmp_path)
    desk.reject(NO_WALLET)
    await trio.sleep(HOUR)
    desk.reject(NO_WALLET)
    assert desk.stop.reason() is None


# -- flatten failures ----------------------------------------------------------------------------------------


async def test_three_flatten_failures_do_not_latch_and_the_fourth_does(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    for _ in range(3):
        desk.monitor.on_flatten_failure(TSLA, "no fill at the limit price")
    assert desk.monitor.figures().flatten_failures_window == 3
    assert desk.stop.reason() is None

    desk.monitor.on_flatten_failure(GOLD, "rejected: Insufficient margin")

    assert desk.latch is not None
    assert desk.latch.trigger == FLATTEN_FAILURES
    assert desk.latch.reason == (
        "4 flatten failures over the last 3600 s exceed 3 (last: xyz:GOLD: rejected: Insufficient margin)"
    )


@sleeps_an_hour
async def test_flatten_failures_leave_the_window(tmp_path: Path, autojump_clock: object) -> None:
    desk = Desk(tmp_path)
    for _ in range(3):
        desk.monitor.on_flatten_failure(TSLA, "no fill")
    await trio.sleep(HOUR)
    desk.monitor.on_flatten_failure(TSLA, "no fill")
    assert desk.stop.reason() is None


# -- clock skew ----------------------------------------------------------------------------------------------


async def test_a_blocking_clock_skew_latches_and_a_warning_does_not(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    nonces = NonceManager(lambda: NOW_MS, warn_ms=2_000, block_ms=5_000)

    nonces.observe(server_ms=NOW_MS + 5_000, sent_ms=NOW_MS, received_ms=NOW_MS)
    desk.monitor.on_clock_skew(nonces.blocked_reason)
    assert desk.stop.reason() is None

    nonces.observe(server_ms=NOW_MS + 5_001, sent_ms=NOW_MS, received_ms=NOW_MS)
    desk.monitor.on_clock_skew(nonces.blocked_reason)

    assert desk.latch is not None
    assert desk.latch.trigger == CLOCK_SKEW
    assert desk.latch.reason == nonces.blocked_reason
    assert desk.monitor.figures().clock_skew == nonces.blocked_reason


# -- 0 disables, first reason stands, re-arming -------------------------------------------------------------


async def test_zero_disables_every_counted_limit(tmp_path: Path) -> None:
    desk = Desk(tmp_path, DISABLED)
    for _ in range(20):
        desk.round_trip("100", "50")
        desk.reject(MARGIN)
        desk.reject(NO_WALLET)
        desk.monitor.on_flatten_failure(TSLA, "no fill")

    figures = desk.monitor.figures()
    assert figures.realized_pnl_window_usd == Decimal(-1000)
    assert (figures.losing_streak, figures.flatten_failures_window) == (20, 20)
    assert (figures.alarming_rejects_window, figures.signer_errors_window) == (40, 20)
    assert desk.stop.reason() is None


async def test_the_first_reason_stands_when_more_limits_are_exceeded(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    desk.round_trip("100", "79")
    for _ in range(6):
        desk.round_trip("100", "99")
    assert desk.latch is not None
    assert desk.latch.trigger == REALIZED_LOSS


async def test_an_operator_reset_re_arms_windows_and_streak(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    for _ in range(6):
        desk.round_trip("100", "99")
    assert desk.latch is not None

    desk.stop.reset(operator="alice")
    desk.round_trip("100", "99")
    desk.reject(MARGIN)

    figures = desk.monitor.figures()
    assert (figures.losing_streak, figures.realized_pnl_window_usd, figures.alarming_rejects_window) == (
        1,
        Decimal(-1),
        1,
    )
    assert (figures.round_trips, figures.realized_pnl_total_usd) == (7, Decimal(-7))
    assert desk.stop.reason() is None


def test_settings_refuse_a_non_positive_window() -> None:
    with pytest.raises(ValueError):
        attrs.evolve(LIMITS, window_s=0.0)
