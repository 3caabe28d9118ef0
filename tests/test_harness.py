"""The test harness itself: async tests are bounded on Trio's clock."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import trio
import trio.testing

from tests.conftest import _bounded, _check_clock_is_an_argument


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


def test_a_clock_asked_for_only_by_a_fixture_is_a_usage_error() -> None:
    async def test_uses_clock_via_fixture(client: object) -> None: ...

    async def test_takes_the_clock(client: object, autojump_clock: object) -> None: ...

    fixturenames = ["client", "autojump_clock", "nursery"]
    wrong = SimpleNamespace(obj=test_uses_clock_via_fixture, fixturenames=fixturenames, nodeid="t::wrong")
    right = SimpleNamespace(obj=test_takes_the_clock, fixturenames=fixturenames, nodeid="t::right")
    with pytest.raises(pytest.UsageError, match="t::wrong uses autojump_clock through a fixture only"):
        _check_clock_is_an_argument(wrong)  # type: ignore[arg-type]
    _check_clock_is_an_argument(right)  # type: ignore[arg-type]
