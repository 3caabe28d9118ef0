"""The test harness itself: async tests are bounded on Trio's clock."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from tests.conftest import _bounded


async def test_async_tests_run_under_a_deadline() -> None:
    remaining = trio.current_effective_deadline() - trio.current_time()
    assert 59.0 < remaining <= 60.0


@pytest.mark.deadline(5)
async def test_the_deadline_marker_sets_the_bound() -> None:
    remaining = trio.current_effective_deadline() - trio.current_time()
    assert 4.0 < remaining <= 5.0


async def test_a_hung_test_fails_at_its_deadline_in_virtual_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def hangs() -> None:
        await trio.sleep_forever()

    start = trio.current_time()
    with pytest.raises(trio.TooSlowError):
        await _bounded(hangs, 5)()
    assert trio.current_time() - start == 5.0
