"""The HIP-3 taker fee model (protocol reference §9) and the detector's effective per-market fee."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hip3.strategy.fees import GROWTH_MODE_FACTOR, effective_taker_fee_bps, taker_fee_bps


def builder(base: float, scale: float, *, growth: bool = False) -> float:
    return taker_fee_bps(base, builder_dex=True, deployer_scale=scale, growth_mode=growth)


def test_the_first_dex_charges_the_base_rate_whatever_the_scale() -> None:
    assert taker_fee_bps(4.5, builder_dex=False, deployer_scale=3, growth_mode=True) == 4.5


@pytest.mark.parametrize(
    ("scale", "growth", "expected"),
    [
        # the reference table for x = 1, as protocol + deployer
        (0.0, False, 1.0),
        (0.5, False, 1.5),
        (1.0, False, 2.0),
        (3.0, False, 6.0),
        (0.0, True, 0.1),
        (0.5, True, 0.15),
        (1.0, True, 0.2),
        (3.01, True, 0.602),
        (9.99, True, 1.998),
    ],
)
def test_builder_dex_fee_follows_the_reference_table(scale: float, growth: bool, expected: float) -> None:
    assert builder(1.0, scale, growth=growth) == pytest.approx(expected, abs=1e-12)


def test_scale_above_one_charges_protocol_and_deployer_each_x_times_scale() -> None:
    assert builder(2.0, 3.0) == pytest.approx(12.0)  # 6 + 6
    assert builder(2.0, 1.0) == pytest.approx(4.0)  # the config default: base 2 at scale 1


@pytest.mark.parametrize(
    ("base", "scale"), [(-1.0, 1.0), (1.0, -0.1), (1.0, 10.5), (math.nan, 1.0), (1.0, math.inf)]
)
def test_invalid_inputs_are_refused(base: float, scale: float) -> None:
    with pytest.raises(ValueError):
        builder(base, scale)


def test_effective_fee_is_used_as_configured_and_cut_by_ninety_percent_in_growth_mode() -> None:
    assert effective_taker_fee_bps(4.0, growth_mode=False) == 4.0
    assert effective_taker_fee_bps(4.0, growth_mode=True) == pytest.approx(0.4)
    with pytest.raises(ValueError):
        effective_taker_fee_bps(-1.0, growth_mode=False)


@given(
    base=st.floats(0, 10),
    low=st.floats(0, 10),
    high=st.floats(0, 10),
)
def test_fee_grows_with_the_deployer_scale(base: float, low: float, high: float) -> None:
    low, high = sorted((low, high))
    assert builder(base, low) <= builder(base, high) + 1e-12


@given(base=st.floats(0, 10), scale=st.floats(0, 10))
def test_growth_mode_is_a_tenth_of_the_normal_fee(base: float, scale: float) -> None:
    assert builder(base, scale, growth=True) == pytest.approx(builder(base, scale) * GROWTH_MODE_FACTOR)
