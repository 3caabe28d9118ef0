"""The action budget on MockClock: a unit consumed at t is back at exactly t + 60 s, never earlier."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from hip3.execution.action_budget import ActionBudget

LONG = 300  # virtual seconds: these tests wait out whole windows


async def test_consumes_up_to_the_budget_then_refuses_without_consuming() -> None:
    budget = ActionBudget(per_minute=3)
    assert budget.available() == 3
    assert budget.try_consume()
    assert budget.try_consume(2)
    assert budget.available() == 0

    assert not budget.try_consume()
    assert budget.available() == 0


async def test_a_request_larger_than_what_is_left_consumes_nothing() -> None:
    budget = ActionBudget(per_minute=5)
    assert budget.try_consume(3)

    assert not budget.try_consume(3)

    assert budget.available() == 2
    assert budget.try_consume(2)


@pytest.mark.deadline(LONG)
async def test_units_come_back_exactly_sixty_seconds_after_they_were_consumed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    budget = ActionBudget(per_minute=3)
    start = trio.current_time()
    assert budget.try_consume()  # t = 0
    await trio.sleep(10.0)
    assert budget.try_consume(2)  # t = 10
    assert not budget.try_consume()

    await trio.sleep_until(start + 59.999)
    assert budget.available() == 0
    await trio.sleep_until(start + 60.0)
    assert budget.available() == 1
    assert budget.try_consume()  # t = 60

    await trio.sleep_until(start + 69.999)
    assert budget.available() == 0
    await trio.sleep_until(start + 70.0)
    assert budget.available() == 2

    await trio.sleep_until(start + 120.0)
    assert budget.available() == 3


@pytest.mark.deadline(LONG)
async def test_refusals_do_not_push_the_refill_back(autojump_clock: trio.testing.MockClock) -> None:
    budget = ActionBudget(per_minute=1)
    start = trio.current_time()
    assert budget.try_consume()
    for _ in range(30):
        await trio.sleep(1.0)
        assert not budget.try_consume()

    await trio.sleep_until(start + 60.0)

    assert budget.try_consume()


async def test_check_and_consume_is_one_step_for_concurrent_tasks() -> None:
    budget = ActionBudget(per_minute=5)
    granted: list[bool] = []

    async def signal() -> None:
        await trio.lowlevel.checkpoint()
        granted.append(budget.try_consume())

    async with trio.open_nursery() as nursery:
        for _ in range(8):
            nursery.start_soon(signal)

    assert granted.count(True) == 5
    assert budget.available() == 0


@pytest.mark.parametrize("per_minute", [0, -1])
def test_a_budget_must_allow_something(per_minute: int) -> None:
    with pytest.raises(ValueError, match="per_minute must be ≥ 1"):
        ActionBudget(per_minute)


async def test_consuming_nothing_is_a_mistake() -> None:
    with pytest.raises(ValueError, match="n must be ≥ 1"):
        ActionBudget(5).try_consume(0)
