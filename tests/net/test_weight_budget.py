"""The REST weight budget on MockClock: exact times at which weight fits again, and the documented weights."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from hip3.net.weight_budget import WeightBudget, exchange_weight, extra_info_weight, info_weight

LONG = 300  # virtual seconds: these tests wait out whole windows


@pytest.mark.deadline(LONG)
async def test_fifty_light_requests_pass_at_once_and_the_51st_waits_a_full_window(
    autojump_clock: trio.testing.MockClock,
) -> None:
    budget = WeightBudget(per_minute=100)
    start = trio.current_time()
    for _ in range(50):
        await budget.acquire(2)
    assert trio.current_time() == start
    assert budget.used() == 100

    await budget.acquire(2)

    assert trio.current_time() == start + 60.0
    assert budget.used() == 2  # the first 50 left the window together


@pytest.mark.deadline(LONG)
async def test_the_window_slides_weight_frees_when_its_own_minute_is_over(
    autojump_clock: trio.testing.MockClock,
) -> None:
    budget = WeightBudget(per_minute=100)
    start = trio.current_time()
    await budget.acquire(60)
    await trio.sleep(30.0)
    await budget.acquire(40)

    await budget.acquire(50)  # needs the 60 from t=0 gone, not the 40 from t=30
    assert trio.current_time() == start + 60.0
    await budget.acquire(20)  # 40 + 50 + 20 > 100: waits for the 40 from t=30
    assert trio.current_time() == start + 90.0
    assert budget.used() == 70


@pytest.mark.deadline(LONG)
async def test_a_charge_after_a_response_delays_the_next_acquire_exactly(
    autojump_clock: trio.testing.MockClock,
) -> None:
    budget = WeightBudget(per_minute=100)
    start = trio.current_time()
    await budget.acquire(50)
    await trio.sleep(10.0)
    budget.charge(50)  # e.g. the extra weight of a long userFills answer
    assert budget.used() == 100

    await budget.acquire(60)  # 60 fits only once both the 50 at t=0 and the 50 charged at t=10 are gone

    assert trio.current_time() == start + 70.0


@pytest.mark.deadline(LONG)
async def test_a_charge_beyond_the_budget_is_recorded_and_waited_out(
    autojump_clock: trio.testing.MockClock,
) -> None:
    budget = WeightBudget(per_minute=100)
    start = trio.current_time()
    budget.charge(150)
    assert budget.used() == 150
    await budget.acquire(1)
    assert trio.current_time() == start + 60.0


@pytest.mark.deadline(LONG)
async def test_waiters_are_served_in_arrival_order_so_a_heavy_request_is_not_starved(
    autojump_clock: trio.testing.MockClock,
) -> None:
    budget = WeightBudget(per_minute=100)
    start = trio.current_time()
    await budget.acquire(100)
    served: list[tuple[str, float]] = []

    async def take(name: str, weight: int) -> None:
        await budget.acquire(weight)
        served.append((name, trio.current_time() - start))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(take, "heavy", 100)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(take, "light", 2)

    assert served == [("heavy", 60.0), ("light", 120.0)]


async def test_a_weight_larger_than_the_whole_budget_is_refused() -> None:
    budget = WeightBudget(per_minute=100)
    with pytest.raises(ValueError, match="101"):
        await budget.acquire(101)
    with pytest.raises(ValueError):
        await budget.acquire(-1)
    assert budget.used() == 0


@pytest.mark.parametrize(
    ("request_body", "weight"),
    [
        ({"type": "l2Book", "coin": "xyz:TSLA"}, 2),
        ({"type": "allMids", "dex": "xyz"}, 2),
        ({"type": "clearinghouseState", "user": "0x0", "dex": "xyz"}, 2),
        ({"type": "orderStatus", "user": "0x0", "oid": 1}, 2),
        ({"type": "spotClearinghouseState", "user": "0x0"}, 2),
        ({"type": "exchangeStatus"}, 2),
        ({"type": "userRole", "user": "0x0"}, 60),
        ({"type": "meta", "dex": "xyz"}, 20),
        ({"type": "perpDexs"}, 20),
        ({"type": "metaAndAssetCtxs", "dex": "xyz"}, 20),
        ({"type": "openOrders", "user": "0x0", "dex": "xyz"}, 20),
        ({"type": "userFills", "user": "0x0"}, 20),
        ({"type": "userFillsByTime", "user": "0x0", "startTime": 0}, 20),
        ({"type": "userRateLimit", "user": "0x0"}, 20),
        ({"type": "candleSnapshot", "req": {}}, 20),
        ({}, 20),
    ],
)
def test_info_weight_follows_the_documented_table(request_body: dict[str, Any], weight: int) -> None:
    assert info_weight(request_body) == weight


@pytest.mark.parametrize(
    ("request_type", "items", "extra"),
    [
        ("userFills", 45, 2),  # whole steps of 20 (floor): 45 items → 2, not 3
        ("userFills", 19, 0),
        ("userFills", 20, 1),
        ("userFills", 2000, 100),
        ("userFillsByTime", 40, 2),
        ("historicalOrders", 59, 2),
        ("fundingHistory", 60, 3),
        ("candleSnapshot", 119, 1),  # candles count per 60
        ("candleSnapshot", 120, 2),
        ("openOrders", 500, 0),  # not a type that pays per item
        ("meta", 100, 0),
    ],
)
def test_extra_info_weight_counts_whole_steps_of_returned_items(
    request_type: str, items: int, extra: int
) -> None:
    assert extra_info_weight(request_type, [{"tid": i} for i in range(items)]) == extra


def test_extra_info_weight_is_zero_for_an_answer_that_is_not_a_list() -> None:
    assert extra_info_weight("userFills", {"status": "err"}) == 0
    assert extra_info_weight("userFills", None) == 0


@pytest.mark.parametrize(
    ("batch_length", "weight"), [(0, 1), (1, 1), (39, 1), (40, 2), (79, 2), (80, 3), (1000, 26)]
)
def test_exchange_weight_is_one_plus_one_per_forty_orders(batch_length: int, weight: int) -> None:
    assert exchange_weight(batch_length) == weight
