from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hip3.sim.ledger import FeeSplit, Position, apply_fill, fee_split, increase_of


def test_open_add_reduce_flip_close() -> None:
    pos = Position()
    steps = [
        (True, "1", "100", "0", "Open Long", "0", D(100)),
        (True, "1", "110", "1", "Open Long", "0", D(105)),
        (False, "0.5", "120", "2", "Close Long", "7.5", D(105)),
        (False, "2.5", "100", "1.5", "Long > Short", "-7.5", D(100)),
        (True, "1", "90", "-1", "Close Short", "10", None),
    ]
    for is_buy, sz, px, start, direction, closed, entry in steps:
        effect = apply_fill(pos, is_buy=is_buy, sz=D(sz), px=D(px))
        assert (effect.start_position, effect.direction, effect.closed_pnl) == (
            D(start),
            direction,
            D(closed),
        )
        if entry is not None:
            assert pos.entry_px == entry
    assert pos.szi == 0 and pos.realized_pnl == D(10)


def test_short_side_directions() -> None:
    pos = Position()
    assert apply_fill(pos, is_buy=False, sz=D(1), px=D(50)).direction == "Open Short"
    assert apply_fill(pos, is_buy=True, sz=D(2), px=D(40)).direction == "Short > Long"
    assert pos.szi == 1 and pos.entry_px == D(40) and pos.realized_pnl == D(10)


@pytest.mark.parametrize(
    ("scale", "growth", "protocol", "deployer"),
    [
        ("0", False, "1", "0"),
        ("0.5", False, "1", "0.5"),
        ("1", False, "1", "1"),
        ("3", False, "3", "3"),
        ("0", True, "0.1", "0"),
        ("0.5", True, "0.1", "0.05"),
        ("1", True, "0.1", "0.1"),
        ("3", True, "0.3", "0.3"),
        ("9.99", True, "0.999", "0.999"),
        ("3.01", True, "0.301", "0.301"),
    ],
)
def test_hip3_fee_table(scale: str, growth: bool, protocol: str, deployer: str) -> None:
    # x = 1 bp: the §9 table in units of x
    split = fee_split(D(1), builder_dex=True, deployer_scale=D(scale), growth_mode=growth)
    assert split == FeeSplit(D(protocol) / 10_000, D(deployer) / 10_000)


def test_first_dex_charges_the_base_rate_only() -> None:
    split = fee_split(D("4.5"), builder_dex=False, deployer_scale=D(3), growth_mode=True)
    assert split.total == D("0.00045") and split.deployer == 0


def test_increase_of() -> None:
    assert increase_of(D(2), is_buy=False, sz=D(1)) == 0
    assert increase_of(D(2), is_buy=False, sz=D(3)) == 0
    assert increase_of(D(2), is_buy=False, sz=D(5)) == D(1)
    assert increase_of(D(-1), is_buy=False, sz=D(1)) == D(1)


fills = st.lists(
    st.tuples(st.booleans(), st.integers(1, 500), st.integers(1, 10_000)),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(fills)
def test_position_is_the_signed_sum_of_fills(seq: list[tuple[bool, int, int]]) -> None:
    pos = Position()
    total = D(0)
    for is_buy, sz_milli, px_cents in seq:
        sz, px = D(sz_milli) / 1000, D(px_cents) / 100
        effect = apply_fill(pos, is_buy=is_buy, sz=sz, px=px)
        assert effect.start_position == total
        total += sz if is_buy else -sz
        assert pos.szi == total
        assert (pos.entry_px > 0) == (pos.szi != 0)
