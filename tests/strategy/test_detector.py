"""The dislocation detector: edge and threshold on both sides, fee model, filters, baseline, sizing, dedup.

Figures: oracle 100 and a 100-lot book (notional ~10 000 USD) unless a test says otherwise. The default
threshold is 4 (fee) + 2 (slippage) + 5 (min edge) = 11 bps. `plain()` switches the oracle filters and the
baseline off so a test sees only what it is about.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hip3.core.market import MarketKey, MarketSpec
from hip3.core.order import Side
from hip3.market.state import MarketState
from hip3.strategy.detector import Detector, DetectorSettings
from hip3.strategy.signal import Signal

D = Decimal
TSLA = "xyz:TSLA"
NVDA = "xyz:NVDA"


def spec(coin: str = TSLA, *, growth: bool = False) -> MarketSpec:
    return MarketSpec(
        name=coin, key=MarketKey("xyz", 1, 0), sz_decimals=3, max_leverage=10, growth_mode=growth
    )


def market(
    *,
    oracle: str = "100",
    bid: str = "99.95",
    ask: str = "100.05",
    bid_sz: str = "100",
    ask_sz: str = "100",
    coin: str = TSLA,
    growth: bool = False,
) -> MarketState:
    return MarketState(
        coin=coin,
        spec=spec(coin, growth=growth),
        bid_px=D(bid),
        bid_sz=D(bid_sz),
        ask_px=D(ask),
        ask_sz=D(ask_sz),
        oracle_px=D(oracle),
        oracle_updates=1,
        oracle_changed_at=0.0,
    )


def plain(**overrides: Any) -> DetectorSettings:
    options: dict[str, Any] = {
        "oracle_direction_filter": False,
        "consecutive_moves_filter": False,
        "baseline_tracking": False,
    }
    options.update(overrides)
    return DetectorSettings(**options)


def quote(state: MarketState, bid: str, ask: str) -> None:
    state.bid_px, state.ask_px = D(bid), D(ask)


def move_oracle(state: MarketState, price: str, at: float) -> None:
    state.previous_oracle_px = state.oracle_px
    state.oracle_px = D(price)
    state.oracle_updates += 1
    state.oracle_changed_at = at


def signal_of(result: Signal | None) -> Signal:
    assert result is not None
    return result


# -- edge and threshold --------------------------------------------------------------------------------------


def test_ask_below_the_oracle_by_more_than_the_threshold_is_a_buy() -> None:
    detector = Detector(plain())
    state = market(bid="99.75", ask="99.85")
    signal = signal_of(detector.evaluate(state, 1.5))
    assert signal.side is Side.BUY
    assert signal.raw_edge_bps == pytest.approx(15.0)
    assert signal.threshold_bps == pytest.approx(11.0)
    assert signal.net_edge_bps == pytest.approx(4.0)
    assert (signal.oracle_px, signal.best_px, signal.best_sz) == (D(100), D("99.85"), D(100))
    assert (signal.detected_at, signal.oracle_update, signal.baseline_bps) == (1.5, 1, None)
    assert detector.stats["signals"] == 1 and detector.stats["evaluations"] == 1


def test_bid_above_the_oracle_by_more_than_the_threshold_is_a_sell() -> None:
    detector = Detector(plain())
    signal = signal_of(detector.evaluate(market(bid="100.15", ask="100.25", bid_sz="80"), 0.0))
    assert signal.side is Side.SELL
    assert signal.raw_edge_bps == pytest.approx(15.0)
    assert signal.net_edge_bps == pytest.approx(4.0)
    assert (signal.best_px, signal.best_sz) == (D("100.15"), D(80))


def test_an_edge_below_the_threshold_gives_no_signal() -> None:
    detector = Detector(plain())
    assert detector.evaluate(market(bid="99.8", ask="99.9"), 0.0) is None  # 10 bps < 11
    assert detector.evaluate(market(bid="100.1", ask="100.2", coin=NVDA), 0.0) is None
    assert detector.stats["below_threshold"] == 2


def test_an_edge_exactly_at_the_threshold_signals() -> None:
    signal = signal_of(Detector(plain()).evaluate(market(bid="99.79", ask="99.89"), 0.0))
    assert signal.raw_edge_bps == 11.0 and signal.net_edge_bps == 0.0


def test_a_book_around_the_oracle_has_no_edge() -> None:
    detector = Detector(plain())
    assert detector.evaluate(market(), 0.0) is None
    assert detector.stats == {"evaluations": 1, "below_threshold": 1}


@pytest.mark.parametrize(
    "broken",
    [
        {"oracle_px": None},
        {"oracle_px": D(0)},
        {"bid_px": None},
        {"ask_sz": None},
        {"bid_px": D("100.1"), "ask_px": D("100.1")},  # locked
        {"bid_px": D("100.2"), "ask_px": D("100.1")},  # crossed
    ],
)
def test_no_valid_quote_or_oracle_is_not_evaluated(broken: dict[str, Any]) -> None:
    state = market(bid="99.75", ask="99.85")
    for name, value in broken.items():
        setattr(state, name, value)
    detector = Detector(plain())
    assert detector.evaluate(state, 0.0) is None
    assert detector.stats["no_quote"] == 1
    assert state.baseline_ewma_bps is None


def test_a_per_market_threshold_replaces_the_fee_based_one() -> None:
    detector = Detector(plain(), thresholds_bps={TSLA: 20.0})
    assert detector.evaluate(market(bid="99.75", ask="99.85"), 0.0) is None  # 15 < 20
    signal = signal_of(detector.evaluate(market(bid="99.65", ask="99.75"), 0.0))
    assert signal.threshold_bps == 20.0
    assert signal.net_edge_bps == pytest.approx(5.0)
    other = signal_of(detector.evaluate(market(bid="99.75", ask="99.85", coin=NVDA), 0.0))
    assert other.threshold_bps == pytest.approx(11.0)


def test_a_per_market_fee_replaces_the_default_fee() -> None:
    detector = Detector(plain(), fee_bps={TSLA: 10.0})
    assert detector.threshold_bps(market()) == pytest.approx(17.0)
    assert detector.threshold_bps(market(coin=NVDA)) == pytest.approx(11.0)


def test_growth_mode_cuts_the_fee_by_ninety_percent() -> None:
    detector = Detector(plain(), fee_bps={NVDA: 10.0})
    assert detector.fee_bps(market(growth=True)) == pytest.approx(0.4)
    assert detector.threshold_bps(market(growth=True)) == pytest.approx(7.4)
    assert detector.threshold_bps(market(coin=NVDA, growth=True)) == pytest.approx(8.0)
    signal = signal_of(detector.evaluate(market(bid="99.82", ask="99.92", growth=True), 0.0))  # 8 bps
    assert signal.net_edge_bps == pytest.approx(0.6)


def test_a_threshold_override_ignores_growth_mode() -> None:
    detector = Detector(plain(), thresholds_bps={TSLA: 20.0})
    assert detector.threshold_bps(market(growth=True)) == 20.0


@given(
    ask_cents=st.integers(min_value=9_000, max_value=9_999),
    other_cents=st.integers(min_value=9_000, max_value=9_999),
)
def test_the_buy_edge_falls_as_the_ask_rises(ask_cents: int, other_cents: int) -> None:
    low, high = sorted((ask_cents, other_cents))
    edges = []
    for cents in (low, high):
        ask = D(cents) / 100
        detector = Detector(plain(), thresholds_bps={TSLA: 0.0})
        signal = signal_of(detector.evaluate(market(bid=str(ask - D("0.5")), ask=str(ask)), 0.0))
        assert signal.raw_edge_bps == pytest.approx(float((D(100) - ask) / 100) * 10_000)
        edges.append(signal.raw_edge_bps)
    assert edges[0] >= edges[1]


@given(ask_cents=st.integers(min_value=9_800, max_value=10_010))  # the bid stays below the oracle
def test_a_buy_signals_exactly_when_the_edge_clears_the_threshold(ask_cents: int) -> None:
    ask = D(ask_cents) / 100
    detector = Detector(plain())
    result = detector.evaluate(market(bid=str(ask - D("0.1")), ask=str(ask)), 0.0)
    raw = float((D(100) - ask) / 100) * 10_000
    assert (result is not None) == (raw >= 11.0)
    assert result is None or result.side is Side.BUY


# -- oracle filters ------------------------------------------------------------------------------------------


def oracle_path(detector: Detector, state: MarketState, prices: list[str], *, step_s: float = 3.0) -> float:
    """Move the oracle through `prices`, one every `step_s`, evaluating after each (as the feed would)."""
    at = state.oracle_changed_at or 0.0
    detector.evaluate(state, at)
    for price in prices:
        at += step_s
        move_oracle(state, price, at)
        detector.evaluate(state, at)
    return at


def rising_then_stale_ask(detector: Detector) -> tuple[MarketState, float]:
    """Oracle 100 → 100.03 → 100.06 (two 3 bps moves); then the ask is left at 99.9 (16 bps below)."""
    state = market()
    at = oracle_path(detector, state, ["100.03", "100.06"])
    quote(state, "99.8", "99.9")
    return state, at + 0.1


def falling_then_stale_ask(detector: Detector) -> tuple[MarketState, float]:
    state = market(oracle="100.06", bid="100.01", ask="100.11")
    at = oracle_path(detector, state, ["100.03", "100"])
    quote(state, "99.7", "99.8")  # 20 bps below the oracle, but the oracle is falling
    return state, at + 0.1


def test_direction_filter_passes_a_buy_while_the_oracle_rises() -> None:
    detector = Detector(plain(oracle_direction_filter=True))
    state, now = rising_then_stale_ask(detector)
    signal = signal_of(detector.evaluate(state, now))
    assert signal.raw_edge_bps == pytest.approx(15.990405756546)
    assert signal.filters["direction_ok"] is True
    assert signal.filters["oracle_change_bps"] == pytest.approx(6.0)
    assert signal.filters["consecutive_moves"] == 2


def test_direction_filter_blocks_a_buy_while_the_oracle_falls() -> None:
    detector = Detector(plain(oracle_direction_filter=True))
    state, now = falling_then_stale_ask(detector)
    assert detector.evaluate(state, now) is None
    assert detector.stats["filter_direction"] == 1


def test_direction_filter_blocks_when_the_oracle_has_not_moved_in_the_window() -> None:
    detector = Detector(plain(oracle_direction_filter=True))
    state, now = rising_then_stale_ask(detector)
    assert detector.evaluate(state, now + 10.0) is None  # last change 10.1 s ago, window 10 s
    assert detector.stats["filter_direction"] == 1


def test_direction_filter_passes_a_sell_while_the_oracle_falls() -> None:
    detector = Detector(plain(oracle_direction_filter=True))
    state = market(oracle="100.06", bid="100.01", ask="100.11")
    at = oracle_path(detector, state, ["100.03", "100"])
    quote(state, "100.2", "100.3")
    assert signal_of(detector.evaluate(state, at)).side is Side.SELL


def test_without_the_direction_filter_a_falling_oracle_does_not_block() -> None:
    detector = Detector(plain())
    state, now = falling_then_stale_ask(detector)
    signal = signal_of(detector.evaluate(state, now))
    assert signal.filters["direction_ok"] is False  # recorded even when the filter is off


def test_velocity_filter_needs_the_oracle_to_move_enough_in_the_window() -> None:
    detector = Detector(plain(oracle_velocity_filter=True))
    state = market()
    at = oracle_path(detector, state, ["100.02"])  # +2 bps < 3
    quote(state, "99.7", "99.8")
    assert detector.evaluate(state, at) is None
    assert detector.stats["filter_velocity"] == 1
    move_oracle(state, "100.04", at + 3)  # +4 bps over the window
    signal = signal_of(detector.evaluate(state, at + 3))
    assert signal.filters["oracle_change_bps"] == pytest.approx(4.0)


def test_velocity_filter_counts_a_fall_as_much_as_a_rise() -> None:
    detector = Detector(plain(oracle_velocity_filter=True))
    state, now = falling_then_stale_ask(detector)  # −6 bps
    assert detector.evaluate(state, now) is not None


def test_velocity_filter_off_lets_a_still_oracle_through() -> None:
    detector = Detector(plain())
    assert detector.evaluate(market(bid="99.7", ask="99.8"), 0.0) is not None


def test_consecutive_filter_needs_two_moves_in_the_signal_direction() -> None:
    detector = Detector(plain(consecutive_moves_filter=True))
    state = market()
    at = oracle_path(detector, state, ["100.05"])  # one move
    quote(state, "99.7", "99.8")
    assert detector.evaluate(state, at) is None
    assert detector.stats["filter_consecutive"] == 1
    move_oracle(state, "100.1", at + 3)
    signal = signal_of(detector.evaluate(state, at + 3))
    assert signal.filters["consecutive_moves"] == 2 and signal.filters["consecutive_ok"] is True


def test_consecutive_filter_ignores_moves_below_the_move_minimum() -> None:
    detector = Detector(plain(consecutive_moves_filter=True))
    state = market()
    at = oracle_path(detector, state, ["100.01", "100.02", "100.03"])  # 1 bp steps: no moves
    quote(state, "99.7", "99.8")
    assert detector.evaluate(state, at) is None
    assert detector.stats["filter_consecutive"] == 1


def test_consecutive_filter_counts_only_moves_inside_the_window() -> None:
    detector = Detector(plain(consecutive_moves_filter=True))
    state = market()
    at = oracle_path(detector, state, ["100.05", "100.1"], step_s=6.0)  # moves at 6 and 12
    quote(state, "99.7", "99.8")
    assert detector.evaluate(state, 17.0) is None  # window (7, 17] holds one move
    assert detector.evaluate(state, at) is not None


def test_consecutive_filter_off_lets_a_single_move_through() -> None:
    detector = Detector(plain())
    state = market()
    at = oracle_path(detector, state, ["100.05"])
    quote(state, "99.7", "99.8")
    assert signal_of(detector.evaluate(state, at)).filters["consecutive_moves"] == 1


def test_observe_records_oracle_updates_without_evaluating() -> None:
    detector = Detector(plain(consecutive_moves_filter=True))
    state = market()
    detector.observe(state, 0.0)
    for at, price in ((3.0, "100.03"), (6.0, "100.06")):
        move_oracle(state, price, at)
        detector.observe(state, at)
    assert detector.stats["evaluations"] == 0 and detector.baseline_samples(TSLA) == 0
    assert len(detector.oracle_history(TSLA)) == 3
    quote(state, "99.8", "99.9")
    assert signal_of(detector.evaluate(state, 6.1)).filters["consecutive_moves"] == 2


def test_the_default_settings_need_a_rising_oracle_with_two_moves() -> None:
    detector = Detector(DetectorSettings(baseline_tracking=False))
    state, now = rising_then_stale_ask(detector)
    assert detector.evaluate(state, now) is not None
    blocked = Detector(DetectorSettings(baseline_tracking=False))
    assert blocked.evaluate(market(bid="99.7", ask="99.8"), 0.0) is None
    assert blocked.stats["filter_direction"] == 1


# -- structural baseline -------------------------------------------------------------------------------------


def wide_market() -> MarketState:
    """Mid 99.6, 40 bps below the oracle, every time; the ask 35 bps below it."""
    return market(bid="99.55", ask="99.65")


def learn_wide_market(detector: Detector, state: MarketState, evaluations: int) -> None:
    for i in range(evaluations):
        detector.evaluate(state, float(i))


def test_a_wide_but_stable_market_gives_no_signal_once_the_baseline_is_learned() -> None:
    detector = Detector(plain(baseline_tracking=True))
    state = wide_market()
    learn_wide_market(detector, state, 100)
    assert state.baseline_ewma_bps == pytest.approx(40.0)
    assert detector.baseline_samples(TSLA) == 100
    move_oracle(state, "100", 100.0)  # a new oracle update, so dedup plays no part
    assert detector.evaluate(state, 100.0) is None  # 35 − 40 = −5 < 11
    assert detector.stats["below_baseline"] == 1


def test_a_real_dislocation_above_the_baseline_signals() -> None:
    detector = Detector(plain(baseline_tracking=True))
    state = wide_market()
    learn_wide_market(detector, state, 100)
    move_oracle(state, "100", 100.0)
    quote(state, "98.95", "99.05")  # the ask 60 bps below where it usually is: raw 95 bps
    signal = signal_of(detector.evaluate(state, 100.0))
    assert signal.raw_edge_bps == pytest.approx(95.0)
    assert signal.baseline_bps == pytest.approx(40.0)
    assert signal.net_edge_bps == pytest.approx(44.0)  # min(95 − 11, 95 − 40 − 11)
    assert signal.filters["baseline_applied"] is True


def test_min_edge_above_the_baseline_adds_to_the_threshold() -> None:
    detector = Detector(plain(baseline_tracking=True, min_edge_above_baseline_bps=8.0))
    state = wide_market()
    learn_wide_market(detector, state, 100)
    move_oracle(state, "100", 100.0)
    quote(state, "98.95", "99.05")
    assert signal_of(detector.evaluate(state, 100.0)).net_edge_bps == pytest.approx(36.0)  # 55 − 19


def test_a_market_stays_silent_until_its_baseline_is_learned() -> None:
    """Before the usual gap is known, a structurally wide market would signal on its own spread."""
    detector = Detector(plain(baseline_tracking=True))
    state = wide_market()
    assert detector.evaluate(state, 0.0) is None  # the structural gap would look like a 35 bps edge
    learn_wide_market(detector, state, 98)  # 99 samples in all
    state.oracle_updates += 1
    assert detector.evaluate(state, 99.0) is None  # decided on 99 earlier samples: still learning
    assert detector.stats["baseline_learning"] == 100
    state.oracle_updates += 1
    assert detector.evaluate(state, 100.0) is None  # 100 earlier samples: the baseline applies and blocks
    assert detector.stats["below_baseline"] == 1


def test_a_positive_baseline_makes_a_sell_easier_but_never_below_the_plain_threshold() -> None:
    detector = Detector(plain(baseline_tracking=True))
    state = wide_market()
    learn_wide_market(detector, state, 100)
    move_oracle(state, "100", 100.0)
    quote(state, "100", "100.1")  # bid at the oracle: 40 bps above its usual place, but no edge on the oracle
    assert detector.evaluate(state, 100.0) is None
    assert detector.stats["below_threshold"] == 1
    quote(state, "100.15", "100.25")
    signal = signal_of(detector.evaluate(state, 100.0))
    assert signal.side is Side.SELL
    assert signal.net_edge_bps == pytest.approx(4.0)  # min(15 − 11, 15 + 40 − 11)


def test_a_negative_baseline_blocks_sells_in_a_market_that_usually_trades_above_the_oracle() -> None:
    detector = Detector(plain(baseline_tracking=True))
    state = market(bid="100.35", ask="100.45")  # mid 40 bps above; the bid 35 bps above the oracle
    learn_wide_market(detector, state, 100)
    assert state.baseline_ewma_bps == pytest.approx(-40.0)
    state.oracle_updates += 1
    assert detector.evaluate(state, 100.0) is None
    assert detector.stats["below_baseline"] == 1


def test_the_baseline_ewma_weights_each_sample_by_alpha_per_market() -> None:
    detector = Detector(plain(baseline_alpha=0.1))
    tsla, nvda = wide_market(), market(coin=NVDA)
    detector.evaluate(tsla, 0.0)  # first sample: 40
    quote(tsla, "99.45", "99.55")  # sample 50
    detector.evaluate(tsla, 1.0)
    detector.evaluate(nvda, 1.0)  # sample 0
    assert tsla.baseline_ewma_bps == pytest.approx(41.0)
    assert nvda.baseline_ewma_bps == pytest.approx(0.0)
    assert (detector.baseline_samples(TSLA), detector.baseline_samples(NVDA)) == (2, 1)


def test_with_baseline_tracking_off_the_ewma_is_kept_but_not_applied() -> None:
    detector = Detector(plain())
    state = wide_market()
    learn_wide_market(detector, state, 150)
    state.oracle_updates += 1
    signal = signal_of(detector.evaluate(state, 150.0))
    assert signal.baseline_bps is None and signal.filters["baseline_applied"] is False
    assert state.baseline_ewma_bps == pytest.approx(40.0)


# -- sizing --------------------------------------------------------------------------------------------------


def sized(ask_sz: str, **settings: Any) -> Signal | None:
    """A buy at ask 100 against oracle 100.2 (raw ~19.96 bps) with `ask_sz` on the ask."""
    detector = Detector(plain(**settings))
    return detector.evaluate(market(oracle="100.2", bid="99.9", ask="100", ask_sz=ask_sz), 0.0)


def test_a_book_at_or_below_the_minimum_notional_gives_no_signal() -> None:
    detector = Detector(plain())
    state = market(oracle="100.2", bid="99.9", ask="100", ask_sz="5")  # 500 USD
    assert detector.evaluate(state, 0.0) is None
    assert detector.stats["book_too_thin"] == 1
    state.ask_sz = D("5.01")
    assert detector.evaluate(state, 0.0) is not None


@pytest.mark.parametrize(
    ("ask_sz", "liquidity", "size"),
    [
        ("10", "0.1111111111111111111111111111", "0.1111111111111111111111111111"),  # 1000 USD
        ("27.5", "0.5", "1.375"),  # 2750 USD: halfway
        ("50", "1", "5"),  # 5000 USD: full alpha
        ("100", "1", "10"),  # above normal: still full alpha
    ],
)
def test_size_scales_linearly_between_the_minimum_and_the_normal_book(
    ask_sz: str, liquidity: str, size: str
) -> None:
    signal = signal_of(sized(ask_sz, max_notional=D(100_000)))
    assert signal.suggested_size == D(size)
    assert signal.filters["liquidity_factor"] == pytest.approx(float(liquidity))
    assert signal.filters["book_notional"] == pytest.approx(float(D(ask_sz) * 100))


def test_size_is_capped_at_ninety_nine_percent_of_max_notional() -> None:
    signal = signal_of(sized("100"))  # alpha would take 10; the cap is 50 · 0.99 / 100
    assert signal.suggested_size == D("0.495")
    assert signal.filters["below_min_order_notional"] is False  # 49.5 USD


def test_a_size_worth_less_than_the_minimum_order_is_flagged_not_raised() -> None:
    signal = signal_of(sized("6"))  # 600 USD book: liquidity 100/4500, 0.0133… lots worth 1.33 USD
    assert signal.suggested_size == D("0.01333333333333333333333333333")
    assert signal.filters["below_min_order_notional"] is True


def test_size_factor_scales_the_capped_size() -> None:
    signal = signal_of(
        Detector(plain()).evaluate(market(oracle="100.2", bid="99.9", ask="100"), 0.0, size_factor=0.5)
    )
    assert signal.suggested_size == D("0.2475")
    assert signal.filters["size_factor"] == 0.5


def test_a_zero_size_factor_gives_no_signal_and_a_negative_one_is_refused() -> None:
    detector = Detector(plain())
    state = market(oracle="100.2", bid="99.9", ask="100")
    assert detector.evaluate(state, 0.0, size_factor=0.0) is None
    assert detector.stats["zero_size"] == 1
    with pytest.raises(ValueError):
        detector.evaluate(state, 0.0, size_factor=-1.0)


@given(
    ask_sz=st.decimals(min_value=D(1), max_value=D(10_000), places=3),
    size_factor=st.floats(min_value=0.01, max_value=1.0),
)
def test_a_suggested_size_never_exceeds_alpha_of_the_book_or_the_buffered_cap(
    ask_sz: Decimal, size_factor: float
) -> None:
    detector = Detector(plain())
    result = detector.evaluate(
        market(oracle="100.2", bid="99.9", ask="100", ask_sz=str(ask_sz)), 0.0, size_factor=size_factor
    )
    if ask_sz * 100 <= 500:
        assert result is None
        return
    signal = signal_of(result)
    assert 0 < signal.suggested_size <= ask_sz * D("0.10")
    assert signal.suggested_size * signal.best_px <= D(50) * D("0.99")


def test_settings_refuse_a_minimum_book_at_or_above_the_normal_one() -> None:
    with pytest.raises(ValueError):
        DetectorSettings(min_book_notional=D(5000), normal_book_notional=D(5000))
    with pytest.raises(ValueError):
        DetectorSettings(sizing_alpha=0)


def test_settings_accept_floats_for_decimal_fields() -> None:
    settings = DetectorSettings(sizing_alpha=0.1, max_notional=50.0)
    assert (settings.sizing_alpha, settings.max_notional) == (D("0.1"), D("50.0"))


# -- one signal per market and side per oracle update --------------------------------------------------------


def test_a_second_evaluation_on_the_same_oracle_update_is_a_duplicate() -> None:
    detector = Detector(plain())
    state = market(bid="99.75", ask="99.85")
    assert detector.evaluate(state, 0.0) is not None
    assert detector.evaluate(state, 0.01) is None
    assert detector.evaluate(state, 0.02) is None
    assert detector.stats["duplicate"] == 2 and detector.stats["signals"] == 1
    move_oracle(state, "100.01", 3.0)
    assert signal_of(detector.evaluate(state, 3.0)).oracle_update == 2


def test_dedup_is_per_side_and_per_market() -> None:
    detector = Detector(plain())
    state = market(bid="99.75", ask="99.85")
    other = market(bid="99.75", ask="99.85", coin=NVDA)
    assert detector.evaluate(state, 0.0) is not None
    assert detector.evaluate(other, 0.0) is not None
    quote(state, "100.15", "100.25")
    assert signal_of(detector.evaluate(state, 0.1)).side is Side.SELL


def test_an_evaluation_that_did_not_signal_does_not_use_up_the_update() -> None:
    detector = Detector(plain())
    state = market()
    assert detector.evaluate(state, 0.0) is None
    quote(state, "99.75", "99.85")
    assert detector.evaluate(state, 0.1) is not None


# -- the record ----------------------------------------------------------------------------------------------


def test_the_signal_record_is_json_ready() -> None:
    signal = signal_of(Detector(plain()).evaluate(market(bid="99.75", ask="99.85"), 2.5))
    record = signal.to_record()
    assert json.loads(json.dumps(record)) == record
    assert len(record["id"]) == 32 and int(record["id"], 16) >= 0
    assert {k: record[k] for k in ("coin", "side", "oracle_px", "best_px", "best_sz", "suggested_size")} == {
        "coin": TSLA,
        "side": "buy",
        "oracle_px": "100",
        "best_px": "99.85",
        "best_sz": "100",
        "suggested_size": "0.4957436154231347020530796194",
    }
    assert (record["detected_at"], record["oracle_update"], record["baseline_bps"]) == (2.5, 1, None)
    assert record["filters"]["size_factor"] == 1.0


def test_signal_ids_are_unique() -> None:
    detector = Detector(plain())
    first = signal_of(detector.evaluate(market(bid="99.75", ask="99.85"), 0.0))
    second = signal_of(detector.evaluate(market(bid="99.75", ask="99.85", coin=NVDA), 0.0))
    assert first.id != second.id
