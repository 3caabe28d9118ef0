"""Shared test helpers. Tests are deterministic: no network, MockClock for anything that waits.

Every async test runs under `trio.fail_after(DEFAULT_DEADLINE_S)` on Trio's clock (virtual seconds under
MockClock), so a hung test fails with its traceback instead of hanging CI. `@pytest.mark.deadline(S)` sets
another bound for one test. A test that needs MockClock must take `autojump_clock` as its own argument:
pytest-trio ignores a clock requested only by a fixture, and collection fails loudly if that happens.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trio

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"
VECTORS_FILE = Path(__file__).resolve().parent / "data" / "l1-signing.json"  # a copy of shared/vectors
DEFAULT_DEADLINE_S = 60.0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "deadline(seconds): bound an async test on Trio's clock (default 60)")


def _bounded(test: Callable[..., Awaitable[Any]], seconds: float) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(test)
    async def bounded(**kwargs: Any) -> Any:
        with trio.fail_after(seconds):
            return await test(**kwargs)

    return bounded


CLOCK_FIXTURES = ("autojump_clock", "mock_clock")


def _check_clock_is_an_argument(item: pytest.Function) -> None:
    """pytest-trio runs a test on a clock only if the test itself takes it; a fixture's request is ignored."""
    parameters = inspect.signature(item.obj).parameters
    for clock in CLOCK_FIXTURES:
        if clock in item.fixturenames and clock not in parameters:
            raise pytest.UsageError(
                f"{item.nodeid} uses {clock} through a fixture only; add `{clock}` to the test's own "
                "arguments, or the test runs on the real clock"
            )


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if isinstance(item, pytest.Function) and inspect.iscoroutinefunction(item.obj):
            _check_clock_is_an_argument(item)
            marker = item.get_closest_marker("deadline")
            seconds = float(marker.args[0]) if marker else DEFAULT_DEADLINE_S
            item.obj = _bounded(item.obj, seconds)


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT
