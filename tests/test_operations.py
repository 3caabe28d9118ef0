"""The operations layer wired into the bot, end to end against the in-memory simulator: the journal, the
latency figures, metrics, the dashboard's view and server, alerts, and entry times kept across a restart.

Like tests/test_trading.py these run under MockClock (except the served dashboard, which binds a real socket)
and judge with the simulator's own ledger and with the bot's other components (the risk monitor, the tracker).
"""

from __future__ import annotations

from decimal import Decimal as D
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import trio
import trio.testing
from prometheus_client.parser import text_string_to_metric_families

from hip3.app import Running
from hip3.app_trading import graceful_shutdown
from hip3.config import Config, parse_config
from hip3.core.clock import trio_wall_clock
from hip3.core.watched import Watched
from hip3.demo import free_port
from hip3.net.ws import ConnectionState, Status
from hip3.ops.alerts import AlertSender, iso_utc
from hip3.ops.metrics import Metrics
from hip3.ops.report import build_report
from hip3.ops.watchers import watch_connection
from hip3.risk.hard_stop import MANUAL
from hip3.sim.harness import WALL_START_MS, MemorySim
from tests import test_observation
from tests.persist.test_journal import rows as journal_rows
from tests.test_trading import (
    KEY,
    TSLA,
    config_text,
    enter_on_a_jump,
    exchange_size,
    open_orders,
    sim_and_bot,
    start_bot,
    start_sim,
    until,
)

WEBHOOK = "https://hooks.example/abc"
WIDE = "xyz:WIDE"
JUMP_AT_S = 16.5  # baselines learned, positions synced: a jump scripted now lands at the 18 s oracle update


# -- helpers ----------------------------------------------------------------------------------------------


def trading_config(data_dir: Path, extra: str = "", *, mark_regression: bool = True) -> Config:
    """tests.test_trading's configuration, with more TOML tables appended (none it already has)."""
    text = config_text(data_dir)
    if not mark_regression:
        text = text.replace("[mark_regression]\n", "[mark_regression]\nenabled = false\n")
    return parse_config(text + extra, source="test")


def metric(running: Running, sample: str, **labels: str) -> float:
    """The sum of the samples named `sample` whose labels include `labels` in the bot's /metrics text."""
    text = running.ops.metrics.render().decode()
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == sample and labels.items() <= s.labels.items()
    )


class Webhook:
    """The alert webhook: records each request (Trio time, URL, JSON body) and answers 204."""

    def __init__(self) -> None:
        self.posts: list[tuple[float, str, dict[str, Any]]] = []
        self.transport = httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.posts.append((trio.current_time(), str(request.url), orjson.loads(request.content)))
        return httpx.Response(204)

    def of_kind(self, kind: str) -> list[tuple[float, dict[str, Any]]]:
        return [(at, body) for at, _, body in self.posts if body["kind"] == kind]


class Outage:
    """A connector to the simulator that refuses new connections while `down` is set."""

    def __init__(self, sim: MemorySim) -> None:
        self.sim = sim
        self.down = False
        self.refused = 0

    async def connect(self, nursery: trio.Nursery) -> Any:
        if self.down:
            self.refused += 1
            raise OSError("connection refused (simulated outage)")
        return await self.sim.ws_server.connect(nursery)


# -- 1. the journal after trading --------------------------------------------------------------------------


@pytest.mark.deadline(300)
async def test_the_journal_holds_the_orders_fills_round_trips_and_signals_of_a_trading_run(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    cfg = trading_config(tmp_path)
    async with sim_and_bot(cfg) as (sim, running):
        desk = running.desk
        assert desk is not None
        await enter_on_a_jump(sim)
        await until(lambda: exchange_size(sim) == 0)  # out on the mark regression
        await desk.tracker.handle.settled()
        await graceful_shutdown(desk)
        assert exchange_size(sim) == 0 and open_orders(sim) == []
        figures = desk.monitor.figures()
        audit: Any = sim.exchange.audit(KEY.address)
        counts = running.ops.counts()

    path = cfg.persistence.journal_path
    assert path == tmp_path / "journal.sqlite3" and path.exists()
    assert audit["orders"] == 2 and audit["fills"] == 2 and audit["ledger_consistent"]
    orders = journal_rows(path, "SELECT coin, side, reduce_only, state FROM orders ORDER BY registered_ms")
    assert len(orders) == audit["orders"] == counts["orders"]
    assert orders == [(TSLA, "buy", 0, "filled"), (TSLA, "sell", 1, "filled")]
    fills = journal_rows(path, "SELECT coin, side, size FROM fills ORDER BY wall_ms")
    assert len(fills) == audit["fills"] == counts["fills"]
    assert [(coin, side) for coin, side, _ in fills] == [(TSLA, "buy"), (TSLA, "sell")]
    assert fills[0][2] == fills[1][2]  # flat again
    trips = journal_rows(path, "SELECT coin, pnl_usd, entry_signal_id FROM round_trips")
    assert len(trips) == figures.round_trips == 1
    ((coin, pnl, signal_id),) = trips
    assert coin == TSLA
    assert D(pnl) == figures.realized_pnl_total_usd  # the same fills, the same estimated fees
    assert D(pnl) != 0
    signals = journal_rows(path, "SELECT id, coin, side FROM signals")
    assert len(signals) >= 1 and len(signals) == counts["signals"]
    assert (signal_id, TSLA, "buy") in signals  # the trip names the signal that opened it
    assert journal_rows(path, "SELECT coin FROM entry_times") == []  # flat: no entry time is left
    report = build_report(path, since_ms=0)
    assert report.total.trades == figures.round_trips
    assert report.total.pnl_usd == figures.realized_pnl_total_usd
    assert [m.market for m in report.markets] == [TSLA]


# -- 2. latency and metrics --------------------------------------------------------------------------------


@pytest.mark.deadline(300)
async def test_tick_to_order_and_post_round_trips_are_measured_and_exported(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with sim_and_bot(trading_config(tmp_path)) as (sim, running):
        desk, latency = running.desk, running.ops.latency
        assert desk is not None and latency is not None
        assert latency.tick_to_order_us.count == 0 and latency.tick_to_order_us.percentile(0.5) is None
        await enter_on_a_jump(sim)
        await until(lambda: exchange_size(sim) == 0)
        await desk.tracker.handle.settled()
        await trio.sleep(1.5)  # a metrics sample
        entries = desk.pipeline.stats["queued"]
        posts = sum(n for name, n in desk.sender.stats.items() if name.startswith("posts_"))
        assert entries == 1
        assert latency.tick_to_order_us.count == entries  # one sample per entry sent, none for the exit
        p50 = latency.tick_to_order_us.percentile(0.5)
        assert isinstance(p50, float) and p50 >= 0
        assert latency.post_rtt_ms.count == posts >= 2  # every post: the entry and the exit at least
        rtt = latency.post_rtt_ms.percentiles()
        assert isinstance(rtt["p50"], float) and 0 <= rtt["p50"] <= rtt["p99"]  # type: ignore[operator]
        assert metric(running, "hip3_tick_to_order_us_count") == latency.tick_to_order_us.count
        assert metric(running, "hip3_post_rtt_ms_count") == latency.post_rtt_ms.count
        assert metric(running, "hip3_fills_total") == 2
        assert metric(running, "hip3_fills_total", coin=TSLA) == 2
        assert metric(running, "hip3_orders_total", outcome="filled") == 2
        assert metric(running, "hip3_triggers_total", coin=TSLA, side="buy") >= 1
        assert metric(running, "hip3_positions") == 0
        assert metric(running, "hip3_hard_stop_latched") == 0
        assert metric(running, "hip3_realized_pnl_usd") == pytest.approx(
            float(desk.monitor.figures().realized_pnl_total_usd)
        )
        snapshot_latency = running.ops.view.snapshot()["latency"]
        assert snapshot_latency["tick_to_order_us"]["count"] == latency.tick_to_order_us.count
        assert snapshot_latency["post_rtt_ms"]["p50"] == latency.post_rtt_ms.percentile(0.5)


# -- 3. the dashboard's snapshot and hard-stop controls -----------------------------------------------------


def check_the_snapshot_of_an_open_position(running: Running, sim: MemorySim) -> None:
    assert running.desk is not None
    position = running.desk.tracker.handle.position(TSLA)
    assert position is not None
    snapshot = running.ops.view.snapshot()
    orjson.dumps(snapshot)  # JSON as it is: no Decimal, no object without an encoding
    rows = snapshot["positions"]
    assert [(row["coin"], row["size"], row["entry_px"]) for row in rows] == [
        (TSLA, str(position.size), str(position.entry_px))
    ]
    assert rows[0]["size"] == str(exchange_size(sim))
    assert rows[0]["held_s"] >= 0
    markets = {market["coin"]: market for market in snapshot["markets"]}
    assert sorted(markets) == [TSLA, WIDE]
    for coin, market in markets.items():
        state = running.feed.states[coin]
        assert market["bid"] == str(state.bid_px) and market["ask"] == str(state.ask_px)
        assert D(market["bid"]) < D(market["ask"])
    assert snapshot["connection"]["state"] == "live"
    summary, counts = snapshot["summary"], running.ops.counts()
    assert {name: summary[name] for name in ("signals", "orders", "fills")} == counts
    assert counts["orders"] >= 1 and counts["fills"] >= 1
    assert summary["mode"] == "trading"
    assert snapshot["risk"]["hard_stop"] is None
    assert [fill["coin"] for fill in snapshot["fills"]] == [TSLA]
    assert snapshot["signals"] and snapshot["signals"][0]["coin"] == TSLA


@pytest.mark.deadline(300)
async def test_the_snapshot_shows_the_open_position_and_the_controls_latch_and_reset_the_hard_stop(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    cfg = trading_config(tmp_path)
    async with sim_and_bot(cfg) as (sim, running):
        desk, ops = running.desk, running.ops
        assert desk is not None
        await enter_on_a_jump(sim)
        await desk.tracker.handle.settled()
        check_the_snapshot_of_an_open_position(running, sim)

        assert ops.view.latch_hard_stop("test") is None
        latched = ops.view.snapshot()["risk"]["hard_stop"]
        assert latched["trigger"] == MANUAL and latched["reason"] == "dashboard: test"
        assert latched["latched_at_ms"] >= WALL_START_MS
        assert desk.hard_stop.reason() == "dashboard: test"
        assert ops.view.latch_hard_stop("again") == "the hard stop is already latched"
        assert metric(running, "hip3_hard_stop_latched") == 1
        await until(lambda: exchange_size(sim) == 0)  # the latch flattens
        assert open_orders(sim) == []
        await desk.tracker.handle.settled()
        flat = ops.view.snapshot()
        orjson.dumps(flat)
        assert flat["positions"] == [] and flat["orders"] == []
        assert flat["summary"]["round_trips"] == desk.monitor.figures().round_trips == 1

        assert ops.view.reset_hard_stop("alice") is None
        assert ops.view.snapshot()["risk"]["hard_stop"] is None
        assert desk.hard_stop.reason() is None
        assert ops.view.reset_hard_stop("bob") == "no hard stop is latched"
        assert metric(running, "hip3_hard_stop_latched") == 0

    events = journal_rows(
        cfg.persistence.journal_path, "SELECT event, trigger, reason, operator FROM hard_stop ORDER BY id"
    )
    assert events == [
        ("latched", MANUAL, "dashboard: test", None),
        ("reset", MANUAL, "dashboard: test", "alice"),
    ]


# -- 4. alerts ---------------------------------------------------------------------------------------------

ALERTS = f"""
[alerts]
webhook_url = "{WEBHOOK}"
disconnect_alert_s = 5
[websocket]
reconnect_base_delay_ms = 1000
reconnect_max_delay_ms = 1000
reconnect_jitter = 0
"""


@pytest.mark.deadline(300)
async def test_a_latched_hard_stop_posts_one_alert_naming_its_trigger(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    webhook = Webhook()
    async with sim_and_bot(trading_config(tmp_path, ALERTS), alerts=webhook.transport) as (_, running):
        assert running.desk is not None and running.ops.alerts.enabled
        await trio.sleep(10)
        assert webhook.posts == []
        latched_at = trio.current_time()
        assert running.desk.hard_stop.latch(MANUAL, "operator drill")
        assert not running.desk.hard_stop.latch(MANUAL, "pressed twice")  # already latched: nothing new
        await trio.sleep(10)

    assert len(webhook.posts) == 1
    at, url, body = webhook.posts[0]
    assert url == WEBHOOK
    assert at == pytest.approx(latched_at)  # posted at once
    assert body["kind"] == "hard_stop" and body["title"] == "HARD STOP latched"
    assert body["fields"] == {"trigger": MANUAL, "reason": "operator drill"}
    assert running.ops.alerts.counts.sent == 1 and running.ops.alerts.counts.failed == 0


@pytest.mark.deadline(300)
async def test_a_websocket_outage_longer_than_the_limit_is_alerted_down_and_back(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    webhook = Webhook()
    async with trio.open_nursery() as nursery:
        sim = await start_sim(nursery)
        outage = Outage(sim)
        cfg = trading_config(tmp_path, ALERTS)
        running = await start_bot(nursery, cfg, sim, alerts=webhook.transport, ws_connector=outage.connect)
        ws = running.ws
        await ws.wait_live()
        await trio.sleep(10)
        epoch = ws.status.value.epoch
        assert metric(running, "hip3_ws_reconnect_total") == 0
        outage.down = True
        dropped_at = trio.current_time()
        sim.faults.drop_websockets()
        await ws.status.wait_for(lambda s: s.state is not ConnectionState.LIVE)
        assert trio.current_time() == dropped_at
        await trio.sleep(6.5)  # refused at +1 … +6 s
        outage.down = False
        back = await ws.wait_live(after_epoch=epoch)
        back_at = trio.current_time()
        await trio.sleep(1)
        nursery.cancel_scope.cancel()

    limit = cfg.alerts.disconnect_alert_s
    assert outage.refused == 6
    assert back_at - dropped_at == pytest.approx(7.0)  # the first attempt after the outage, 1 s apart
    disconnects = webhook.of_kind("disconnect")
    assert [body["title"] for _, body in disconnects] == ["WebSocket down", "WebSocket back"]
    (down_at, down), (up_at, up) = disconnects
    assert down_at == pytest.approx(dropped_at + limit)
    assert down["text"] == f"no live connection for {limit} s"
    assert up_at == pytest.approx(back_at)
    assert up["text"] == "live again after 7 s"
    assert len(webhook.posts) == 2  # nothing else
    assert back.epoch == epoch + 7  # six refused attempts, then the one that held
    assert metric(running, "hip3_ws_reconnect_total", reason="dropped") == 1


@pytest.mark.deadline(300)
async def test_a_short_websocket_drop_is_counted_but_not_alerted(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    webhook = Webhook()
    async with sim_and_bot(trading_config(tmp_path, ALERTS), alerts=webhook.transport) as (sim, running):
        await trio.sleep(10)
        epoch = running.ws.status.value.epoch
        sim.faults.drop_websockets()
        await running.ws.wait_live(after_epoch=epoch)
        await trio.sleep(10)

    assert webhook.posts == []
    assert metric(running, "hip3_ws_reconnect_total") == 1


@pytest.mark.deadline(300)
async def test_an_alert_is_stamped_with_the_bots_wall_clock(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    webhook = Webhook()
    async with sim_and_bot(trading_config(tmp_path, ALERTS), alerts=webhook.transport) as (_, running):
        assert running.desk is not None
        await trio.sleep(10)
        running.desk.hard_stop.latch(MANUAL, "operator drill")
        latch = running.desk.hard_stop.latched
        await trio.sleep(1)

    assert latch is not None and latch.latched_at_ms == WALL_START_MS + 10_000
    [(_, _, body)] = webhook.posts
    assert body["time"] == iso_utc(latch.latched_at_ms)  # 2026-01-01T00:00:10.000Z


async def test_the_connection_watcher_survives_a_link_back_as_the_alert_deadline_passes(
    mock_clock: trio.testing.MockClock,
) -> None:
    webhook = Webhook()
    alerts, metrics = AlertSender(WEBHOOK, transport=webhook.transport), Metrics()
    status = Watched(Status(ConnectionState.LIVE, 1))
    async with trio.open_nursery() as nursery:
        await nursery.start(alerts.run)
        await nursery.start(partial(watch_connection, status, alerts, metrics, alert_after_s=5))
        await trio.testing.wait_all_tasks_blocked()
        status.set(Status(ConnectionState.DISCONNECTED, 1))
        await trio.testing.wait_all_tasks_blocked()  # the watcher waits, 5 s to go
        status.set(Status(ConnectionState.LIVE, 2))  # back: the watcher is woken …
        mock_clock.jump(5)  # … and its deadline passes before it runs (on a real clock: a busy loop)
        await trio.testing.wait_all_tasks_blocked()
        status.set(Status(ConnectionState.DISCONNECTED, 2))  # a later, long outage
        await trio.testing.wait_all_tasks_blocked()
        mock_clock.jump(6)
        await trio.testing.wait_all_tasks_blocked()
        status.set(Status(ConnectionState.LIVE, 3))
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()

    text = metrics.render().decode()
    reconnects = [
        s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "hip3_ws_reconnect_total"
    ]
    assert reconnects == [2]
    assert [body["title"] for body in (post[2] for post in webhook.posts)][-2:] == [
        "WebSocket down",
        "WebSocket back",
    ]


# -- 5. a restart keeps the entry time -------------------------------------------------------------------

RESTART = """
[time_stop]
threshold_ms = 20000
[shutdown]
flatten = false
"""


@pytest.mark.deadline(300)
async def test_a_restart_keeps_the_journaled_entry_time_and_the_time_stop_fires_when_first_due(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    cfg = trading_config(tmp_path, RESTART, mark_regression=False)
    threshold_ms = cfg.time_stop.threshold_ms
    wall_ms = trio_wall_clock(WALL_START_MS)  # one clock for both runs, as the exchange's is one
    async with trio.open_nursery() as outer:
        sim = await start_sim(outer)
        async with trio.open_nursery() as first_run:
            first = await start_bot(first_run, cfg, sim, wall_ms=wall_ms)
            assert first.desk is not None
            await enter_on_a_jump(sim)
            await first.desk.tracker.handle.settled()
            position = first.desk.tracker.handle.position(TSLA)
            assert position is not None
            entry_ms = position.entry_time_ms
            await trio.sleep(2)
            first_run.cancel_scope.cancel()  # stopped without the shutdown sequence: the position stays
        size = exchange_size(sim)
        assert size == position.size > 0
        assert journal_rows(cfg.persistence.journal_path, "SELECT coin, entry_time_ms FROM entry_times") == [
            (TSLA, entry_ms)
        ]
        await trio.sleep(5)  # down for a while: a fresh entry time would be 7 s late

        async with trio.open_nursery() as second_run:
            restart_ms = wall_ms()
            assert restart_ms - entry_ms >= 7_000
            second = await start_bot(second_run, cfg, sim, wall_ms=wall_ms)
            desk = second.desk
            assert desk is not None
            await until(lambda: desk.tracker.handle.position(TSLA) is not None)
            restored = desk.tracker.handle.position(TSLA)
            assert restored is not None
            assert restored.entry_time_ms == entry_ms
            assert restored.size == size
            assert second.ops.view.snapshot()["positions"][0]["held_s"] >= 7
            due_ms = entry_ms + threshold_ms
            assert wall_ms() < due_ms
            await until(lambda: exchange_size(sim) == 0)
            closed_ms = wall_ms()
            assert due_ms <= closed_ms <= due_ms + 500
            assert desk.exits.stats["time_stop_triggered"] == 1
            await desk.tracker.handle.settled()
            second_run.cancel_scope.cancel()
        outer.cancel_scope.cancel()

    trips = journal_rows(cfg.persistence.journal_path, "SELECT coin, opened_ms, closed_ms FROM round_trips")
    assert len(trips) == 1
    coin, opened_ms, trip_closed_ms = trips[0]
    assert (coin, opened_ms) == (TSLA, entry_ms)  # the restored trip knows when it opened
    assert due_ms <= trip_closed_ms <= due_ms + 500
    assert journal_rows(cfg.persistence.journal_path, "SELECT coin FROM entry_times") == []


@pytest.mark.deadline(300)
async def test_a_position_found_at_start_without_a_journaled_entry_time_is_journaled_when_found(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    cfg = trading_config(tmp_path / "first", RESTART, mark_regression=False)
    # The second run on another data directory: a journal that never saw the position.
    fresh = trading_config(tmp_path / "second", RESTART, mark_regression=False)
    wall_ms = trio_wall_clock(WALL_START_MS)
    async with trio.open_nursery() as outer:
        sim = await start_sim(outer)
        async with trio.open_nursery() as first_run:
            await start_bot(first_run, cfg, sim, wall_ms=wall_ms)
            await enter_on_a_jump(sim)
            first_run.cancel_scope.cancel()
        await trio.sleep(5)
        async with trio.open_nursery() as second_run:
            second = await start_bot(second_run, fresh, sim, wall_ms=wall_ms)
            desk = second.desk
            assert desk is not None
            await until(lambda: desk.tracker.handle.position(TSLA) is not None)
            found = desk.tracker.handle.position(TSLA)
            assert found is not None and found.size == exchange_size(sim)
            found_ms = found.entry_time_ms  # nothing better is known: the time it was found
            await trio.sleep(1)  # past the journal's flush interval
            journaled = journal_rows(
                fresh.persistence.journal_path, "SELECT coin, entry_time_ms FROM entry_times"
            )
            assert journaled == [(TSLA, found_ms)]  # a later restart would restore it
            await until(lambda: exchange_size(sim) == 0)
            assert found_ms + fresh.time_stop.threshold_ms <= wall_ms() <= found_ms + 20_500
            await desk.tracker.handle.settled()
            second_run.cancel_scope.cancel()
        outer.cancel_scope.cancel()

    entry_times = journal_rows(cfg.persistence.journal_path, "SELECT coin, entry_time_ms FROM entry_times")
    assert [coin for coin, _ in entry_times] == [TSLA] and entry_times[0][1] < found_ms
    journal = fresh.persistence.journal_path
    trips = journal_rows(journal, "SELECT coin, opened_ms FROM round_trips")
    assert trips == [(TSLA, None)]  # when it really opened is unknown to this journal
    assert journal_rows(journal, "SELECT coin FROM entry_times") == []


# -- 6. observation mode ---------------------------------------------------------------------------------


@pytest.mark.deadline(300)
async def test_observation_mode_has_operations_without_trading_parts_and_journals_its_signals(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    cfg = parse_config(test_observation.config_text(tmp_path, baseline=True), source="test")
    async with sim_and_bot(cfg) as (sim, running):
        ops = running.ops
        assert running.desk is None and ops is not None
        assert ops.latency is None
        await trio.sleep(JUMP_AT_S)
        sim.process.force_jump(TSLA, 60)
        await trio.sleep(8)
        snapshot = ops.view.snapshot()
        orjson.dumps(snapshot)
        assert snapshot["positions"] == [] and snapshot["orders"] == [] and snapshot["fills"] == []
        assert snapshot["risk"]["hard_stop"] is None
        assert snapshot["latency"] == {}
        assert snapshot["connection"]["state"] == "live"
        assert snapshot["summary"]["mode"] == "observation" and "round_trips" not in snapshot["summary"]
        assert [s["coin"] for s in snapshot["signals"]] == [TSLA]
        assert ops.view.latch_hard_stop("test") == "there is no hard stop in observation mode"
        assert ops.view.reset_hard_stop("alice") == "there is no hard stop in observation mode"
        assert ops.counts() == {"signals": 1, "orders": 0, "fills": 0}
        assert metric(running, "hip3_triggers_total", coin=TSLA, side="buy") == 1
        assert metric(running, "hip3_orders_total") == 0

    path = cfg.persistence.journal_path
    signals = journal_rows(path, "SELECT coin, side, raw_edge_bps FROM signals")
    assert [(coin, side) for coin, side, _ in signals] == [(TSLA, "buy")]
    assert signals[0][2] > 0
    assert journal_rows(path, "SELECT * FROM orders") == []
    assert journal_rows(path, "SELECT * FROM fills") == []
    assert journal_rows(path, "SELECT * FROM hard_stop") == []


# -- 7. the dashboard served -------------------------------------------------------------------------------


TOKEN = "s3cret-dashboard-token"


@pytest.mark.deadline(20)  # real seconds: no MockClock, the dashboard binds a loopback socket
async def test_the_dashboard_serves_health_metrics_and_the_snapshot_on_a_loopback_port(
    tmp_path: Path,
) -> None:
    async with trio.open_nursery() as outer:
        sim = await start_sim(outer)
        port = free_port()  # the configuration refuses port 0
        dashboard = f"\n[dashboard]\nenabled = true\nport = {port}\n"
        # The bot in a nursery of its own, stopped before the simulator; and the socket's reader in the
        # outer nursery: on the real clock its closing handshake needs both alive, or the bot waits out its
        # 2 s close timeout (hip3.net.ws.CLOSE_TIMEOUT_S) on the way out.
        async with trio.open_nursery() as nursery:
            running = await start_bot(
                nursery,
                trading_config(tmp_path, dashboard),
                sim,
                ws_connector=lambda _nursery: sim.ws_server.connect(outer),
                environ={"HIP3_DASHBOARD_TOKEN": TOKEN},
            )
            url = running.ops.dashboard_url
            assert url == f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(base_url=url, timeout=5) as client:
                health = await client.get("/healthz")
                assert health.status_code == 200 and health.json()["ok"] is True
                metrics = await client.get("/metrics")
                assert metrics.status_code == 200
                assert "hip3_orders_total" in metrics.text
                families = {f.name for f in text_string_to_metric_families(metrics.text)}
                assert {"hip3_orders", "hip3_tick_to_order_us", "hip3_ws_reconnect"} <= families
                snapshot = await client.get("/api/snapshot")
                assert snapshot.status_code == 200
                assert snapshot.json()["summary"]["mode"] == "trading"
                desk = running.desk
                assert desk is not None
                wrong = await client.post(
                    "/api/hardstop", json={"reason": "x"}, headers={"Authorization": "Bearer wrong"}
                )
                assert wrong.status_code == 401 and desk.hard_stop.reason() is None
                authorised = {"Authorization": f"Bearer {TOKEN}"}  # the token from the bot's environment
                latch = await client.post("/api/hardstop", json={"reason": "drill"}, headers=authorised)
                assert latch.status_code == 200 and desk.hard_stop.reason() == "dashboard: drill"
                reset = await client.post(
                    "/api/hardstop/reset", json={"operator": "alice"}, headers=authorised
                )
                assert reset.status_code == 200 and desk.hard_stop.reason() is None
            nursery.cancel_scope.cancel()
        outer.cancel_scope.cancel()
