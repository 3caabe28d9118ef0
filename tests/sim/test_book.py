from __future__ import annotations

from decimal import Decimal as D

from hypothesis import given, settings
from hypothesis import strategies as st

from hip3.sim.book import Book, RestingOrder


def _order(oid: int, user: str, is_buy: bool, px: str, sz: str) -> RestingOrder:
    return RestingOrder(oid, user, "X", is_buy, D(px), D(sz), D(sz), 0, "Gtc")


def test_price_time_priority_and_partial_fill() -> None:
    book = Book("X")
    book.add(_order(1, "a", False, "101", "1"))
    book.add(_order(2, "b", False, "100", "1"))
    book.add(_order(3, "c", False, "100", "2"))
    result = book.take("t", True, D(101), D("3.5"))
    assert [(m.maker.oid, m.px, m.sz) for m in result.matches] == [
        (2, D(100), D(1)),
        (3, D(100), D(2)),
        (1, D(101), D("0.5")),
    ]
    assert result.filled == D("3.5")
    assert book.levels(False) == [(D(101), D("0.5"), 1)]


def test_limit_price_stops_matching() -> None:
    book = Book("X")
    book.add(_order(1, "a", True, "99", "1"))
    result = book.take("t", False, D(100), D(1))
    assert result.matches == [] and result.filled == 0
    assert not book.would_cross(False, D(100))
    assert book.would_cross(False, D(99))


def test_self_trade_cancels_the_resting_order() -> None:
    book = Book("X")
    book.add(_order(1, "t", False, "100", "1"))
    book.add(_order(2, "a", False, "100", "1"))
    result = book.take("t", True, D(100), D(1))
    assert [o.oid for o in result.self_trade_canceled] == [1]
    assert [m.maker.oid for m in result.matches] == [2]
    assert len(book) == 0 and book.best_ask() is None


def test_remove_and_levels() -> None:
    book = Book("X")
    book.add(_order(1, "a", True, "99", "1"))
    book.add(_order(2, "a", True, "99", "2"))
    book.add(_order(3, "a", True, "98", "1"))
    assert book.levels(True) == [(D(99), D(3), 2), (D(98), D(1), 1)]
    assert book.remove(2) is not None and book.remove(2) is None
    assert book.top(True) == (D(99), D(1), 1)
    book.remove(1)
    assert book.best_bid() == D(98)


operations = st.lists(
    st.tuples(
        st.sampled_from(["add", "cancel", "take"]),
        st.booleans(),
        st.integers(min_value=90, max_value=110),
        st.integers(min_value=1, max_value=5),
        st.sampled_from(["a", "b", "c"]),
    ),
    max_size=80,
)


@settings(max_examples=150, deadline=None)
@given(operations)
def test_book_never_crosses_and_sizes_stay_positive(ops: list[tuple[str, bool, int, int, str]]) -> None:
    book = Book("X")
    for oid, (kind, is_buy, px, sz, user) in enumerate(ops, start=1):
        if kind == "cancel":
            book.remove(px % max(oid, 1))
        elif kind == "take" or book.would_cross(is_buy, D(px)):
            result = book.take(user, is_buy, D(px), D(sz))
            remaining = D(sz) - result.filled
            if kind == "add" and remaining > 0 and not book.would_cross(is_buy, D(px)):
                book.add(_order(oid, user, is_buy, str(px), str(remaining)))
        else:
            book.add(_order(oid, user, is_buy, str(px), str(sz)))
        bid, ask = book.best_bid(), book.best_ask()
        assert bid is None or ask is None or bid < ask
        for order in book.orders():
            assert order.sz > 0
        for is_bid in (True, False):
            assert all(level[1] > 0 and level[2] > 0 for level in book.levels(is_bid, 1000))
