"""The dashboard app against a fake source: JSON routes and hard-stop auth in memory, the push on Trio's mock
clock, and the served app over real loopback sockets."""

from __future__ import annotations

import itertools
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import httpx
import orjson
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette

from hip3.core.serving import BindRefused
from hip3.ops.dashboard import (
    HEARTBEAT_S,
    MAX_STREAM_CLIENTS,
    SnapshotFeed,
    check_bind_host,
    create_dashboard_app,
    serve_dashboard,
    server_sent_events,
    snapshot_changes,
)
from hip3.ops.metrics import Metrics

TOKEN = "s3cret-token"
PAGE_IDS = ("markets", "positions", "orders", "signals", "fills", "risk", "counters", "latency", "summary")
CONTROL_IDS = ("hardstop-button", "hardstop-reset-button", "hardstop-state", "hardstop-result", "connection")


def base_snapshot() -> dict[str, Any]:
    return {
        "markets": [
            {
                "coin": "xyz:TSLA",
                "bid": "251.1",
                "ask": "251.3",
                "oracle": "252.0",
                "edge_bps": 27.8,
                "gate": "open",
            }
        ],
        "positions": [
            {
                "coin": "xyz:TSLA",
                "size": "1.5",
                "entry_px": "251.3",
                "pnl_usd": 1.2,
                "held_s": 4.0,
                "exiting": False,
            }
        ],
        "orders": [],
        "signals": [{"coin": "xyz:TSLA", "side": "buy", "edge_bps": 27.8}],
        "fills": [],
        "risk": {"hard_stop": None, "counters": {"losing_streak": 0}},
        "connection": {"state": "connected", "epoch": 1},
        "latency": {"tick_to_order_us": {"p50": 80, "p99": 240}, "post_rtt_ms": {"p50": 12, "p99": 40}},
        "summary": {"round_trips": 0},
    }


class FakeSource:
    """A DashboardSource whose snapshot the test edits; it records the hard-stop calls."""

    def __init__(self) -> None:
        self.state = base_snapshot()
        self.snapshots_taken = 0
        self.latched: list[str] = []
        self.resets: list[str] = []
        self.latch_error: str | None = None

    def snapshot(self) -> dict[str, Any]:
        self.snapshots_taken += 1
        return self.state

    def latch_hard_stop(self, reason: str) -> str | None:
        if self.latch_error is None:
            self.latched.append(reason)
            self.state["risk"]["hard_stop"] = {"trigger": "manual", "reason": reason}
        return self.latch_error

    def reset_hard_stop(self, operator: str) -> str | None:
        self.resets.append(operator)
        self.state["risk"]["hard_stop"] = None
        return None


class ChangingSource(FakeSource):
    """A source whose snapshot is different at every call, as when a hold timer ticks."""

    def snapshot(self) -> dict[str, Any]:
        self.snapshots_taken += 1
        return {**self.state, "summary": {"version": self.snapshots_taken}}


@asynccontextmanager
async def in_memory_client(
    source: FakeSource, token: str | None = TOKEN, metrics: Metrics | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_dashboard_app(source, token=token, metrics=metrics or Metrics())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://dashboard") as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


NON_ASCII = {"Authorization": "Bearer s3cret-tokén".encode("latin-1")}


async def test_snapshot_is_the_sources_json() -> None:
    source = FakeSource()
    async with in_memory_client(source) as client:
        response = await client.get("/api/snapshot")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == base_snapshot()


async def test_snapshot_writes_nan_as_null_for_the_page() -> None:
    source = FakeSource()
    source.state["markets"][0]["edge_bps"] = math.nan
    async with in_memory_client(source) as client:
        response = await client.get("/api/snapshot")
    assert response.json()["markets"][0]["edge_bps"] is None


async def test_healthz_answers_ok() -> None:
    async with in_memory_client(FakeSource()) as client:
        response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["ok"] is True


async def test_page_is_self_contained_with_stable_ids() -> None:
    async with in_memory_client(FakeSource()) as client:
        response = await client.get("/")
    page = response.text
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    for element_id in PAGE_IDS + CONTROL_IDS:
        assert f'id="{element_id}"' in page, element_id
    assert "http://" not in page and "https://" not in page and "<script src" not in page


async def test_metrics_route_serves_the_registry() -> None:
    metrics = Metrics()
    metrics.tick_to_order_us(120)
    metrics.post_rtt_ms(30)
    metrics.signal("xyz:TSLA", "buy")
    async with in_memory_client(FakeSource(), metrics=metrics) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {family.name: family for family in text_string_to_metric_families(response.text)}
    assert {"hip3_triggers", "hip3_tick_to_order_us", "hip3_post_rtt_ms", "hip3_hard_stop_latched"} <= set(
        families
    )
    buckets = {
        s.labels["le"]: s.value
        for s in families["hip3_tick_to_order_us"].samples
        if s.name.endswith("_bucket")
    }
    assert buckets["100.0"] == 0 and buckets["250.0"] == 1 and buckets["+Inf"] == 1


@pytest.mark.parametrize("path", ["/api/hardstop", "/api/hardstop/reset"])
@pytest.mark.parametrize("configured", [None, ""])
async def test_hard_stop_controls_refuse_without_a_configured_token(
    path: str, configured: str | None
) -> None:
    source = FakeSource()
    async with in_memory_client(source, token=configured) as client:
        response = await client.post(path, json={"reason": "x"}, headers=bearer("anything"))
    assert response.status_code == 403
    assert "HIP3_DASHBOARD_TOKEN" in response.json()["error"]
    assert source.latched == [] and source.resets == []


@pytest.mark.parametrize("path", ["/api/hardstop", "/api/hardstop/reset"])
@pytest.mark.parametrize(
    "headers", [{}, bearer("wrong"), bearer(TOKEN + "x"), {"Authorization": f"Basic {TOKEN}"}, NON_ASCII]
)
async def test_hard_stop_controls_refuse_a_wrong_or_missing_token(path: str, headers: dict[str, Any]) -> None:
    source = FakeSource()
    async with in_memory_client(source) as client:
        response = await client.post(path, json={"reason": "x"}, headers=headers)
    assert response.status_code == 401
    assert response.json()["ok"] is False and response.json()["error"]
    assert response.headers["www-authenticate"] == "Bearer"
    assert source.latched == [] and source.resets == []


async def test_the_right_token_latches_then_resets() -> None:
    source = FakeSource()
    async with in_memory_client(source) as client:
        latch = await client.post("/api/hardstop", json={"reason": "manual check"}, headers=bearer(TOKEN))
        assert latch.status_code == 200 and latch.json() == {"ok": True}
        assert source.latched == ["manual check"]
        reset = await client.post("/api/hardstop/reset", json={"operator": "alice"}, headers=bearer(TOKEN))
        assert reset.status_code == 200
        default_operator = await client.post("/api/hardstop/reset", headers=bearer(TOKEN))
    assert source.resets == ["alice", "dashboard"]
    assert default_operator.status_code == 200


async def test_a_refused_latch_reports_the_sources_error() -> None:
    source = FakeSource()
    source.latch_error = "already latched"
    async with in_memory_client(source) as client:
        response = await client.post("/api/hardstop", json={"reason": "again"}, headers=bearer(TOKEN))
    assert response.status_code == 409
    assert response.json() == {"ok": False, "error": "already latched"}


@pytest.mark.parametrize("body", [b"", b"{not json", b'{"reason": ""}', b'{"reason": 5}', b"[]"])
async def test_a_latch_needs_a_reason(body: bytes) -> None:
    source = FakeSource()
    async with in_memory_client(source) as client:
        response = await client.post("/api/hardstop", content=body, headers=bearer(TOKEN))
    assert response.status_code == 400
    assert source.latched == []


def test_push_interval_below_a_tenth_of_a_second_is_refused() -> None:
    with pytest.raises(ValueError, match=r"at least 0\.1"):
        create_dashboard_app(FakeSource(), token=None, metrics=Metrics(), push_interval_s=0.05)


async def collect_changes(source: FakeSource, interval_s: float, seconds: float) -> list[float]:
    """The Trio times at which the stream produced a snapshot during `seconds`."""
    times: list[float] = []
    with trio.move_on_after(seconds):
        async for _ in snapshot_changes(SnapshotFeed(source, interval_s), interval_s):
            times.append(trio.current_time())
    return times


async def test_changing_snapshots_push_at_most_ten_a_second(autojump_clock: trio.testing.MockClock) -> None:
    times = await collect_changes(ChangingSource(), 0.1, 3.0)
    # Trio's clock is a float: a gap of "0.1" can be 1e-16 short, hence the slack on the window.
    most_in_one_second = max(sum(1 for t in times if start <= t < start + 1.0 - 1e-6) for start in times)
    assert most_in_one_second == 10
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert min(gaps) >= 0.1 - 1e-9


async def test_unchanged_snapshots_push_once(autojump_clock: trio.testing.MockClock) -> None:
    times = await collect_changes(FakeSource(), 0.1, 10.0)
    assert len(times) == 1


async def test_changes_between_pushes_coalesce_into_the_latest(
    autojump_clock: trio.testing.MockClock,
) -> None:
    source = FakeSource()
    pushed: list[Any] = []

    async def edit_every_millisecond() -> None:
        for version in range(1, 1001):
            source.state = {**source.state, "summary": {"version": version}}
            await trio.sleep(0.001)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(edit_every_millisecond)
        with trio.move_on_after(1.5):
            async for encoded in snapshot_changes(SnapshotFeed(source, 0.1), 0.1):
                pushed.append(orjson.loads(encoded)["summary"].get("version", 0))
    assert len(pushed) <= 15
    assert pushed[-1] == 1000
    assert pushed == sorted(pushed)


async def test_readers_share_the_snapshots_taken(autojump_clock: trio.testing.MockClock) -> None:
    source = ChangingSource()
    feed = SnapshotFeed(source, 0.1)

    async def read_until(deadline: float) -> None:
        with trio.move_on_at(deadline):
            async for _ in snapshot_changes(feed, 0.1):
                pass

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        for reader in range(10):  # out of phase with one another
            await trio.sleep(0.013 * reader)
            nursery.start_soon(read_until, start + 1.0)
    assert source.snapshots_taken <= 21  # twice per push interval, however many readers


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_hosts_are_allowed(host: str) -> None:
    check_bind_host(host, allow_remote=False)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "dashboard.example"])
def test_remote_hosts_need_permission(host: str) -> None:
    with pytest.raises(BindRefused):
        check_bind_host(host, allow_remote=False)
    check_bind_host(host, allow_remote=True)


async def test_serve_refuses_all_interfaces_without_allow_remote() -> None:
    app = create_dashboard_app(FakeSource(), token=None, metrics=Metrics())
    with pytest.raises(BindRefused):
        await serve_dashboard(app, host="0.0.0.0", port=0)


@asynccontextmanager
async def served(app: Starlette) -> AsyncIterator[str]:
    async with trio.open_nursery() as nursery:
        url: str = await nursery.start(partial(serve_dashboard, app, port=0))
        yield url
        nursery.cancel_scope.cancel()


async def read_events(lines: AsyncIterator[str], count: int) -> list[dict[str, Any]]:
    """The data of the next `count` snapshot events."""
    events: list[dict[str, Any]] = []
    async for line in lines:
        if line.startswith("data: "):
            events.append(orjson.loads(line.removeprefix("data: ")))
            if len(events) == count:
                break
    return events


async def test_served_on_loopback_with_a_live_stream() -> None:
    source = FakeSource()
    app = create_dashboard_app(source, token=TOKEN, metrics=Metrics())
    async with served(app) as url, httpx.AsyncClient(base_url=url) as client:
        assert url.startswith("http://127.0.0.1:")
        assert (await client.get("/healthz")).json()["ok"] is True
        async with client.stream("GET", "/api/stream") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = response.aiter_lines()
            [first] = await read_events(lines, 1)
            assert first == base_snapshot()
            latch = await client.post("/api/hardstop", json={"reason": "from test"}, headers=bearer(TOKEN))
            assert latch.status_code == 200
            [second] = await read_events(lines, 1)
            assert second["risk"]["hard_stop"] == {"trigger": "manual", "reason": "from test"}


async def test_streams_beyond_the_limit_are_refused_and_slots_come_back() -> None:
    app = create_dashboard_app(FakeSource(), token=None, metrics=Metrics())
    async with served(app) as url, httpx.AsyncClient(base_url=url) as client:
        async with trio.open_nursery() as nursery:
            opened = trio.Semaphore(0)
            release = trio.Event()

            async def hold_a_stream() -> None:
                async with client.stream("GET", "/api/stream") as response:
                    lines = response.aiter_lines()  # kept: dropping it would close the stream
                    await read_events(lines, 1)
                    opened.release()
                    await release.wait()

            for _ in range(MAX_STREAM_CLIENTS):
                nursery.start_soon(hold_a_stream)
            for _ in range(MAX_STREAM_CLIENTS):
                await opened.acquire()
            assert (await client.get("/healthz")).json()["streams"] == MAX_STREAM_CLIENTS
            refused = await client.get("/api/stream")
            assert refused.status_code == 503
            release.set()
        assert await streams_after_closing(client) == 0


async def streams_after_closing(client: httpx.AsyncClient) -> int:
    """The live-stream count once the server has noticed the clients left (it may take a few polls)."""
    for _ in range(200):
        streams: int = (await client.get("/healthz")).json()["streams"]
        if streams == 0:
            return 0
        await trio.sleep(0.01)
    return streams


async def test_an_unchanged_stream_sends_a_heartbeat_every_fifteen_seconds(
    autojump_clock: trio.testing.MockClock,
) -> None:
    start = trio.current_time()
    events: list[tuple[float, bytes]] = []
    with trio.move_on_after(40.0):
        changes = snapshot_changes(SnapshotFeed(FakeSource(), 0.1), 0.1, heartbeat_s=HEARTBEAT_S)
        async for event in server_sent_events(changes):
            events.append((round(trio.current_time() - start, 6), event))
    assert [kind.split(b"\n")[0] for _, kind in events] == [
        b"event: snapshot",
        b"event: heartbeat",
        b"event: heartbeat",
    ]
    assert [at for at, _ in events] == [0.0, 15.0, 30.0]
