from __future__ import annotations

from hip3.sim.nonces import NonceStore

NOW = 1_767_225_600_000
DAY = 86_400_000


def test_duplicate_low_high_and_window() -> None:
    store = NonceStore(size=3, window_back_ms=2 * DAY, window_ahead_ms=DAY)
    for n in (NOW + 1, NOW + 2, NOW + 3):
        assert store.use("s", n, NOW) is None
    assert store.use("s", NOW + 2, NOW) == f"Invalid nonce: duplicate nonce {NOW + 2}"
    assert store.use("s", NOW, NOW) == f"Invalid nonce: nonce too low {NOW} < {NOW + 1}"
    assert store.use("s", NOW + DAY, NOW) == f"Invalid nonce: nonce too high {NOW + DAY} > {NOW + DAY}"
    assert store.use("s", NOW + 10, NOW) is None  # drops NOW + 1
    assert store.use("s", NOW + 1, NOW) == f"Invalid nonce: nonce too low {NOW + 1} < {NOW + 2}"
    assert (
        store.use("t", NOW - 2 * DAY, NOW)
        == f"Invalid nonce: nonce too low {NOW - 2 * DAY} < {NOW - 2 * DAY}"
    )
    assert store.use("t", NOW - 2 * DAY + 1, NOW) is None


def test_out_of_order_nonces_are_accepted_while_the_set_has_room() -> None:
    store = NonceStore(size=100, window_back_ms=2 * DAY, window_ahead_ms=DAY)
    for n in (NOW + 5, NOW + 1, NOW + 3):
        assert store.use("s", n, NOW) is None
