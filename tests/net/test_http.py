"""The HTTP client on MockClock: bodies from the in-memory simulator, retries at exact jittered times, typed
errors, timeouts on Trio's clock, the weight budget and the counters.

Backoff delays are recomputed here from a `Random` with the client's seed: the n-th retry waits
`uniform(0, min(retry_max_s, retry_base_s * 2**(n-1)))`, so every give-up and success happens at a time the
test knows to the last bit.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, MutableMapping
from contextlib import asynccontextmanager
from decimal import Decimal
from random import Random
from typing import Any

import httpx
import pytest
import structlog.testing
import trio
import trio.testing

from hip3.net.http import (
    HttpBadJson,
    HttpClient,
    HttpRateLimited,
    HttpRejected,
    HttpServerError,
    HttpTransportError,
)
from hip3.net.weight_budget import WeightBudget
from hip3.sim.harness import BASE_URL, MemorySim, run_memory_sim
from hip3.sim.scenario_file import default_scenario

SEED = 7
USER = "0x" + "ab" * 20
META_XYZ = {"type": "meta", "dex": "xyz"}
SIGNATURE_R = "0x" + "5a" * 32
UNSIGNABLE_ACTION = {
    "action": {"type": "noop"},
    "nonce": 1_767_225_600_000,
    "signature": {"r": SIGNATURE_R, "s": "0x" + "11" * 32, "v": 27},
}

Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


def retry_delays(count: int, *, base: float = 0.5, cap: float = 10.0, seed: int = SEED) -> list[float]:
    """The delays before the 1st … count-th retry of a client built with `Random(seed)`."""
    rng = Random(seed)
    return [rng.uniform(0.0, min(cap, base * 2**k)) for k in range(count)]


def after(start: float, delays: list[float]) -> float:
    """`start` plus each delay in turn, as successive `trio.sleep`s add them: float times compare exactly."""
    now = start
    for delay in delays:
        now += delay
    return now


def json_reply(body: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(
        status, content=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )


def scripted(*steps: httpx.Response | Exception) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """A transport that answers (or raises) each step in turn and records the requests it saw."""
    seen: list[httpx.Request] = []
    remaining = list(steps)

    async def handle(request: httpx.Request) -> httpx.Response:
        await trio.lowlevel.checkpoint()
        seen.append(request)
        step = remaining.pop(0)
        if isinstance(step, Exception):
            raise step
        return step

    return httpx.MockTransport(handle), seen


def client_on(transport: httpx.AsyncBaseTransport, **options: Any) -> HttpClient:
    return HttpClient(BASE_URL, transport=transport, random=Random(SEED), **options)


@asynccontextmanager
async def simulated_exchange() -> AsyncIterator[MemorySim]:
    async with trio.open_nursery() as nursery:
        sim: MemorySim = await nursery.start(_run_sim)
        yield sim
        nursery.cancel_scope.cancel()


async def _run_sim(task_status: trio.TaskStatus[MemorySim] = trio.TASK_STATUS_IGNORED) -> None:
    await run_memory_sim(default_scenario(), fund=[(USER, Decimal(1000))], task_status=task_status)


def as_sent_by_the_sim(body: object) -> object:
    """The engine's reply as it comes out of the simulator's JSON encoder (tuples become lists)."""
    return json.loads(json.dumps(body))


def dropped(request_kind: type[httpx.TransportError]) -> Exception:
    return request_kind("Server disconnected without sending a response.")


@pytest.fixture
def captured_logs() -> Iterator[list[MutableMapping[str, Any]]]:
    with structlog.testing.capture_logs() as logs:
        yield logs


# ------------------------------------------------------------------------------ the simulator's bodies


@pytest.mark.parametrize(
    "request_body",
    [
        {"type": "meta", "dex": "xyz"},
        {"type": "meta", "dex": "flx"},
        {"type": "perpDexs"},
        {"type": "clearinghouseState", "user": USER, "dex": "xyz"},
        {"type": "l2Book", "coin": "xyz:TSLA"},
    ],
)
async def test_info_returns_the_simulators_bodies(
    autojump_clock: trio.testing.MockClock, request_body: dict[str, Any]
) -> None:
    async with simulated_exchange() as sim:
        client = client_on(sim.http_transport)
        answer = await client.info(request_body)
        status, expected = sim.exchange.info(request_body)
        await client.aclose()
    assert status == 200
    assert answer == as_sent_by_the_sim(expected)


async def test_real_calls_spend_their_documented_weight(autojump_clock: trio.testing.MockClock) -> None:
    budget = WeightBudget()
    async with simulated_exchange() as sim:
        client = client_on(sim.http_transport, budget=budget)
        await client.info(META_XYZ)  # 20
        await client.info({"type": "perpDexs"})  # 20
        await client.info({"type": "clearinghouseState", "user": USER, "dex": "xyz"})  # 2
        await client.info({"type": "l2Book", "coin": "xyz:TSLA"})  # 2
        answer = await client.exchange(UNSIGNABLE_ACTION)  # 1
        await client.aclose()
    assert budget.used() == 45
    assert answer == {
        "status": "err",
        "response": "Unable to recover signer.",
    }  # HTTP 200, as the exchange does


async def test_the_body_goes_out_as_json_in_the_callers_key_order() -> None:
    transport, seen = scripted(json_reply({"status": "ok"}))
    client = client_on(transport)
    action = {"type": "order", "orders": [{"a": 110000, "b": True, "p": "430.1", "s": "0.1", "r": False}]}
    body = {
        "action": action,
        "nonce": 1,
        "signature": {"r": "0x1", "s": "0x2", "v": 27},
        "vaultAddress": None,
    }

    await client.exchange(body)

    (request,) = seen
    assert request.method == "POST"
    assert request.url == httpx.URL(BASE_URL + "/exchange")
    assert request.headers["content-type"] == "application/json"
    assert request.content == json.dumps(body, separators=(",", ":")).encode()


# ----------------------------------------------------------------------------------------- 429 retries


async def test_two_429s_are_retried_at_the_jittered_delays_then_succeed(
    autojump_clock: trio.testing.MockClock, captured_logs: list[MutableMapping[str, Any]]
) -> None:
    budget = WeightBudget()
    async with simulated_exchange() as sim:
        client = client_on(sim.http_transport, budget=budget)
        sim.faults.rate_limit_rest(2)
        start = trio.current_time()
        answer = await client.info(META_XYZ)
        finished = trio.current_time()
        expected = as_sent_by_the_sim(sim.exchange.info(META_XYZ)[1])
        await client.aclose()

    delays = retry_delays(2)
    assert finished == after(start, delays)
    assert answer == expected
    assert budget.used() == 3 * 20  # every attempt spends its weight
    retries = [entry for entry in captured_logs if entry["event"] == "http_retry"]
    assert [(r["endpoint"], r["attempt"], r["status"], r["delay_s"]) for r in retries] == [
        ("/info", 1, 429, delays[0]),
        ("/info", 2, 429, delays[1]),
    ]


async def test_429s_beyond_the_retries_give_up_after_exactly_the_summed_delays(
    autojump_clock: trio.testing.MockClock, captured_logs: list[MutableMapping[str, Any]]
) -> None:
    async with simulated_exchange() as sim:
        client = client_on(sim.http_transport, retries=3)
        sim.faults.rate_limit_rest(10)
        start = trio.current_time()
        with pytest.raises(HttpRateLimited) as raised:
            await client.info(META_XYZ)
        gave_up_at = trio.current_time()
        await client.aclose()

    assert gave_up_at == after(start, retry_delays(3))
    assert raised.value.attempts == 4
    assert str(raised.value) == "POST /info: HTTP 429 rate limited (gave up after 4 attempts)"
    assert client.stats["info.requests"] == 4
    assert client.stats["info.rate_limited"] == 4
    assert client.stats["info.retries"] == 3
    (give_up,) = [entry for entry in captured_logs if entry["event"] == "http_give_up"]
    assert (give_up["endpoint"], give_up["attempt"], give_up["status"]) == ("/info", 4, 429)


async def test_exchange_retries_a_429_because_the_front_refused_it_before_the_exchange_saw_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with simulated_exchange() as sim:
        client = client_on(sim.http_transport)
        sim.faults.rate_limit_rest(1)
        start = trio.current_time()
        answer = await client.exchange(UNSIGNABLE_ACTION)
        finished = trio.current_time()
        await client.aclose()

    assert finished == start + retry_delays(1)[0]
    assert answer == {"status": "err", "response": "Unable to recover signer."}
    assert client.stats["exchange.retries"] == 1


@pytest.mark.deadline(120)
async def test_a_full_budget_makes_the_request_wait_before_it_is_sent(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with simulated_exchange() as sim:
        client = client_on(sim.http_transport, budget=WeightBudget(per_minute=40))
        start = trio.current_time()
        await client.info(META_XYZ)
        await client.info(META_XYZ)
        assert trio.current_time() == start
        await client.info(META_XYZ)
        assert trio.current_time() == start + 60.0
        await client.aclose()


async def test_user_fills_charge_their_extra_weight_after_the_response(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fills = [{"tid": i, "coin": "xyz:TSLA"} for i in range(45)]
    transport, _ = scripted(json_reply(fills), json_reply({"coin": "xyz:TSLA", "levels": [[], []]}))
    budget = WeightBudget(per_minute=30)
    client = client_on(transport, budget=budget)
    start = trio.current_time()

    assert await client.info({"type": "userFills", "user": USER}) == fills
    assert budget.used() == 20 + 2  # 45 fills: two whole steps of 20
    await client.info({"type": "l2Book", "coin": "xyz:TSLA"})  # 22 + 2 fits
    assert trio.current_time() == start
    assert budget.used() == 24


# ------------------------------------------------------------------------------------------------- 5xx


async def test_5xx_on_info_is_retried_then_succeeds(autojump_clock: trio.testing.MockClock) -> None:
    transport, seen = scripted(json_reply(None, 502), httpx.Response(503, text="busy"), json_reply([1, 2]))
    client = client_on(transport)
    start = trio.current_time()

    assert await client.info({"type": "perpDexs"}) == [1, 2]

    assert trio.current_time() == after(start, retry_delays(2))
    assert len(seen) == 3
    assert client.stats["info.server_errors"] == 2


async def test_5xx_after_all_retries_raises_with_the_status(autojump_clock: trio.testing.MockClock) -> None:
    transport, _ = scripted(*[json_reply(None, 500)] * 3)
    client = client_on(transport, retries=2)
    start = trio.current_time()

    with pytest.raises(HttpServerError) as raised:
        await client.info({"type": "clearinghouseState", "user": USER, "dex": "nope"})

    assert trio.current_time() == after(start, retry_delays(2))
    assert raised.value.status == 500
    assert raised.value.attempts == 3


async def test_the_backoff_is_capped_at_retry_max_s(autojump_clock: trio.testing.MockClock) -> None:
    transport, _ = scripted(*[json_reply(None, 502)] * 5, json_reply({}))
    client = client_on(transport, retries=5, retry_base_s=1.0, retry_max_s=3.0)
    start = trio.current_time()

    await client.info({"type": "perpDexs"})

    delays = retry_delays(5, base=1.0, cap=3.0)  # ceilings 1, 2, 3, 3, 3
    assert trio.current_time() == after(start, delays)
    assert max(delays[2:]) <= 3.0


async def test_5xx_on_exchange_is_not_retried(autojump_clock: trio.testing.MockClock) -> None:
    """A gateway can answer 502/504 after forwarding the action; the order may exist, so no resend."""
    transport, seen = scripted(httpx.Response(502, text="Bad Gateway"), json_reply({"status": "ok"}))
    client = client_on(transport)
    start = trio.current_time()

    with pytest.raises(HttpServerError) as raised:
        await client.exchange(UNSIGNABLE_ACTION)

    assert trio.current_time() == start
    assert len(seen) == 1
    assert raised.value.status == 502


# ------------------------------------------------------------------------------------ transport errors


async def test_dropped_and_refused_connections_on_info_are_retried(
    autojump_clock: trio.testing.MockClock,
) -> None:
    transport, seen = scripted(
        dropped(httpx.RemoteProtocolError),
        httpx.ConnectError("[Errno 111] Connection refused"),
        httpx.ReadError("connection reset by peer"),
        json_reply({"universe": []}),
    )
    client = client_on(transport)
    start = trio.current_time()

    assert await client.info(META_XYZ) == {"universe": []}

    assert trio.current_time() == after(start, retry_delays(3))
    assert len(seen) == 4
    assert client.stats["info.transport_errors"] == 3


async def test_transport_errors_on_info_give_up_with_a_typed_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    transport, _ = scripted(*[httpx.ConnectError("[Errno 111] Connection refused")] * 2)
    client = client_on(transport, retries=1)

    with pytest.raises(HttpTransportError) as raised:
        await client.info(META_XYZ)

    assert str(raised.value) == (
        "POST /info: ConnectError: [Errno 111] Connection refused (gave up after 2 attempts)"
    )


@pytest.mark.parametrize(
    "failure",
    [
        dropped(httpx.RemoteProtocolError),
        httpx.ReadError("connection reset by peer"),
        httpx.WriteError("broken pipe"),
        httpx.ReadTimeout("timed out"),
    ],
    ids=lambda failure: type(failure).__name__,
)
async def test_exchange_fails_at_once_when_the_action_may_have_been_sent(
    autojump_clock: trio.testing.MockClock, failure: Exception
) -> None:
    """A connection that breaks after the request went out (a dropped keep-alive connection, a reset, a read
    timeout) leaves it unknown whether the exchange read the action. Resending a signed order could fill it
    twice, so the client raises at once and the caller checks orderStatus by cloid or the user stream.
    """
    transport, seen = scripted(failure, json_reply({"status": "ok"}))
    client = client_on(transport)
    start = trio.current_time()

    with pytest.raises(HttpTransportError) as raised:
        await client.exchange(UNSIGNABLE_ACTION)

    assert trio.current_time() == start
    assert len(seen) == 1
    assert raised.value.may_have_been_sent
    assert raised.value.attempts == 1
    assert client.stats["exchange.retries"] == 0


@pytest.mark.parametrize(
    "failure",
    [httpx.ConnectError("[Errno 111] Connection refused"), httpx.ConnectTimeout("connect timed out")],
    ids=lambda failure: type(failure).__name__,
)
async def test_exchange_retries_when_no_connection_was_made(
    autojump_clock: trio.testing.MockClock, failure: Exception
) -> None:
    """A connect error comes before a byte of the request is written: the exchange cannot have the action."""
    transport, seen = scripted(failure, json_reply({"status": "ok"}))
    client = client_on(transport)
    start = trio.current_time()

    assert await client.exchange(UNSIGNABLE_ACTION) == {"status": "ok"}

    assert trio.current_time() == start + retry_delays(1)[0]
    assert len(seen) == 2


# -------------------------------------------------------------------------------------------- timeouts


async def test_a_hung_exchange_times_out_at_exactly_timeout_s(autojump_clock: trio.testing.MockClock) -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    client = client_on(httpx.MockTransport(hang), timeout_s=2.5)
    start = trio.current_time()

    with pytest.raises(HttpTransportError, match=r"no response within 2\.5 s") as raised:
        await client.exchange(UNSIGNABLE_ACTION)

    assert trio.current_time() == start + 2.5
    assert raised.value.may_have_been_sent  # so it was not retried


async def test_a_hung_info_times_out_on_each_attempt_and_is_retried(
    autojump_clock: trio.testing.MockClock,
) -> None:
    attempts: list[float] = []

    async def hang(request: httpx.Request) -> httpx.Response:
        attempts.append(trio.current_time())
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    client = client_on(httpx.MockTransport(hang), timeout_s=2.5, retries=1)
    start = trio.current_time()

    with pytest.raises(HttpTransportError):
        await client.info(META_XYZ)

    retry_at = start + 2.5 + retry_delays(1)[0]
    assert attempts == [start, retry_at]
    assert trio.current_time() == retry_at + 2.5


# --------------------------------------------------------------------------- rejections and bad bodies


async def test_a_422_from_the_simulator_is_rejected_with_its_text_and_not_retried(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with simulated_exchange() as sim:
        client = client_on(sim.http_transport)
        start = trio.current_time()
        with pytest.raises(HttpRejected) as raised:
            await client.info({"type": "noSuchRequest"})
        assert trio.current_time() == start
        await client.aclose()

    text = "Failed to deserialize the JSON body into the target type: unknown variant `noSuchRequest`"
    assert (raised.value.status, raised.value.text) == (422, text)
    assert client.stats["info.requests"] == 1
    assert client.stats["info.rejected"] == 1


async def test_a_422_on_exchange_carries_the_text_but_never_the_signed_body() -> None:
    text = "Failed to deserialize the JSON body into the target type: missing field `nonce`"
    transport, seen = scripted(httpx.Response(422, text=text), json_reply({"status": "ok"}))
    client = client_on(transport)

    with pytest.raises(HttpRejected) as raised:
        await client.exchange(UNSIGNABLE_ACTION)

    assert raised.value.text == text
    assert str(raised.value) == f"POST /exchange: HTTP 422 rejected: {text!r}"
    assert SIGNATURE_R not in str(raised.value)
    assert len(seen) == 1


async def test_a_200_that_is_not_json_raises_bad_json_and_is_not_retried() -> None:
    transport, seen = scripted(httpx.Response(200, text="<html>maintenance</html>"), json_reply({}))
    client = client_on(transport)

    with pytest.raises(HttpBadJson, match="not JSON") as raised:
        await client.info(META_XYZ)

    assert raised.value.content == b"<html>maintenance</html>"
    assert len(seen) == 1
    assert client.stats["bad_json"] == 1


# -------------------------------------------------------------------------------------------- counters


async def test_stats_count_attempts_retries_and_failures_by_endpoint(
    autojump_clock: trio.testing.MockClock,
) -> None:
    transport, _ = scripted(
        json_reply(None, 429),
        json_reply({"universe": []}),  # info: 2 attempts, 1 retry
        json_reply(None, 500),  # exchange: not retried
        httpx.ConnectError("refused"),
        json_reply({"status": "ok"}),  # exchange: 2 attempts, 1 retry
        dropped(httpx.RemoteProtocolError),
        json_reply([]),  # info: 2 attempts, 1 retry
    )
    client = client_on(transport)
    await client.info(META_XYZ)
    with pytest.raises(HttpServerError):
        await client.exchange(UNSIGNABLE_ACTION)
    await client.exchange(UNSIGNABLE_ACTION)
    await client.info({"type": "perpDexs"})

    assert dict(client.stats) == {
        "requests": 7,
        "retries": 3,
        "rate_limited": 1,
        "server_errors": 1,
        "transport_errors": 2,
        "rejected": 0,
        "bad_json": 0,
        "info.requests": 4,
        "info.retries": 2,
        "info.rate_limited": 1,
        "info.server_errors": 0,
        "info.transport_errors": 1,
        "info.rejected": 0,
        "info.bad_json": 0,
        "exchange.requests": 3,
        "exchange.retries": 1,
        "exchange.rate_limited": 0,
        "exchange.server_errors": 1,
        "exchange.transport_errors": 1,
        "exchange.rejected": 0,
        "exchange.bad_json": 0,
    }


async def test_logs_name_endpoint_attempt_status_and_delay_but_never_the_body(
    autojump_clock: trio.testing.MockClock, captured_logs: list[MutableMapping[str, Any]]
) -> None:
    transport, _ = scripted(httpx.ConnectError("refused"), dropped(httpx.RemoteProtocolError))
    client = client_on(transport)

    with pytest.raises(HttpTransportError):
        await client.exchange(UNSIGNABLE_ACTION)

    retry, give_up = captured_logs
    assert retry["event"] == "http_retry"
    assert (retry["endpoint"], retry["attempt"], retry["status"]) == ("/exchange", 1, None)
    assert retry["delay_s"] == retry_delays(1)[0]
    assert give_up["event"] == "http_give_up"
    assert (give_up["endpoint"], give_up["attempt"]) == ("/exchange", 2)
    assert all(SIGNATURE_R not in repr(entry) for entry in captured_logs)
