"""Operations' wiring: the journal, metrics, alerts, latency figures and the dashboard joined to the bot.

Part of app.py's job (it wires, it computes nothing). The journal, the alert sender and the dashboard are
services (they outlive the body, so the shutdown's cancels, exits and fills are journaled and visible);
the connection watcher, the daily summary and the metrics sampler run in the body.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

import attrs
import httpx
import structlog
import trio

from hip3.app_trading import Desk
from hip3.config import Config
from hip3.core.clock import WallClock
from hip3.execution.latency import OrderLatency
from hip3.market.feed import MarketFeed
from hip3.net.ws import WsConnection
from hip3.ops.alerts import FLATTEN_FAILURE, HARD_STOP, AlertSender
from hip3.ops.bot_view import BotView
from hip3.ops.dashboard import create_dashboard_app, serve_dashboard
from hip3.ops.metrics import Metrics
from hip3.ops.watchers import (
    CounterDeltas,
    sample_metrics,
    send_daily_summaries,
    watch_connection,
)
from hip3.persist.journal import Journal
from hip3.persist.jsonl import BlockingRunner
from hip3.position.model import PendingOrder, Position
from hip3.protocol.messages import OrderState
from hip3.risk.hard_stop import HardStop, Latch
from hip3.risk.market_gates import MarketRiskGates
from hip3.risk.monitor import RiskFigures
from hip3.strategy.signal import Signal

log = structlog.get_logger(__name__)

DASHBOARD_TOKEN_ENV = "HIP3_DASHBOARD_TOKEN"


@attrs.define
class Ops:
    metrics: Metrics
    journal: Journal
    alerts: AlertSender
    view: BotView
    latency: OrderLatency | None  # trading mode only
    dashboard_url: str | None = None

    def counts(self) -> dict[str, int]:
        return dict(self.view.counts)

    def order_outcomes(self) -> dict[str, int]:
        """Ended orders by final state (filled, cancelled, rejected, ...)."""
        return dict(self.view.order_outcomes)

    def on_signal(self, signal: Signal) -> None:
        self.view.on_signal(signal)
        self.journal.signal(signal)
        self.metrics.signal(signal.coin, signal.side.label)


@attrs.frozen
class _DeskView:
    """The desk as the dashboard's view reads it."""

    desk: Desk

    @property
    def hard_stop(self) -> HardStop:
        return self.desk.hard_stop

    @property
    def positions(self) -> Mapping[str, Position]:
        return self.desk.tracker.handle.positions

    def pending_orders(self) -> list[PendingOrder]:
        return self.desk.tracker.handle.pending_orders()

    def is_exiting(self, coin: str) -> bool:
        return self.desk.exits.is_exiting(coin) or self.desk.guard.is_flattening(coin)

    def figures(self) -> RiskFigures:
        return self.desk.monitor.figures()


def build_ops(
    cfg: Config,
    *,
    feed: MarketFeed,
    ws: WsConnection,
    risk: MarketRiskGates,
    desk: Desk | None,
    wall_ms: WallClock,
    disk_writes: BlockingRunner,
    restored_entry_times: Mapping[str, int],
    alert_transport: httpx.AsyncBaseTransport | None = None,
) -> Ops:
    metrics = Metrics()
    journal = Journal(
        cfg.persistence.journal_path,
        wall_ms=wall_ms,
        estimated_fee_bps=cfg.detector.taker_fee_bps,
        run_blocking=disk_writes,
        restored_entry_times=restored_entry_times,
    )
    alerts = AlertSender.from_config(cfg.alerts, transport=alert_transport, wall_ms=wall_ms)
    latency = None
    if desk is not None:
        latency = OrderLatency(
            feed.states, on_tick_to_order_us=metrics.tick_to_order_us, on_post_rtt_ms=metrics.post_rtt_ms
        )
    view = BotView(
        mode=cfg.mode,
        states=feed.states,
        ws_status=lambda: ws.status.value,
        blocking_gates=risk.blocking_gates,
        latency=latency,
        wall_ms=wall_ms,
        trading=None if desk is None else _DeskView(desk),
        on_reset=partial(_journal_reset, journal),
    )
    ops = Ops(metrics, journal, alerts, view, latency)
    if desk is not None and latency is not None:
        _connect_desk(ops, desk, latency)
    return ops


def _journal_reset(journal: Journal, cleared: Latch, operator: str) -> None:
    journal.hard_stop("reset", cleared.trigger, cleared.reason, operator=operator)


def _connect_desk(ops: Ops, desk: Desk, latency: OrderLatency) -> None:
    journal, metrics, alerts = ops.journal, ops.metrics, ops.alerts
    tracker = desk.tracker
    tracker.registered_listeners += [journal.order_registered, ops.view.on_order]
    tracker.ended_listeners.append(partial(_order_ended, ops))
    tracker.fill_listeners += [journal.fill, ops.view.on_fill, lambda fill: metrics.fill(fill.coin)]
    tracker.installed_listeners.append(
        lambda coin, position: journal.entry_time(coin, None if position is None else position.entry_time_ms)
    )
    desk.sender.reject_listeners.append(journal.reject)
    desk.sender.post_listeners.append(latency.on_post)
    desk.pipeline.queued_listeners.append(latency.on_entry_queued)
    desk.hard_stop.listeners += [journal.hard_stop_latched, partial(_alert_latch, alerts, metrics)]
    desk.hard_stop.reset_listeners.append(lambda _cleared: metrics.hard_stop(False))
    desk.exits.flatten_failure_listeners.append(partial(_flatten_failed, ops))
    metrics.hard_stop(desk.hard_stop.latched is not None)


def _order_ended(ops: Ops, order: PendingOrder, state: OrderState, reason: str) -> None:
    ops.journal.order_ended(order.cloid.value, state.value, reason, order.oid)
    ops.view.on_order_ended(order, state, reason)
    ops.metrics.order(state.value)


def _alert_latch(alerts: AlertSender, metrics: Metrics, latch: Latch) -> None:
    metrics.hard_stop(True)
    alerts.notify(
        HARD_STOP,
        "HARD STOP latched",
        "entries stopped; resting orders cancelled; flattening",
        {"trigger": latch.trigger, "reason": latch.reason},
    )


def _flatten_failed(ops: Ops, coin: str, reason: str) -> None:
    ops.journal.risk_event("flatten_failure", f"{coin}: {reason}")
    ops.alerts.notify(FLATTEN_FAILURE, "Flatten failed", reason, {"market": coin})


# -- tasks ----------------------------------------------------------------------------------------------


async def start_ops_services(
    ops: Ops,
    services: trio.Nursery,
    cfg: Config,
    environ: Mapping[str, str],
) -> None:
    await services.start(ops.journal.run)
    await services.start(ops.alerts.run)
    dash = cfg.dashboard
    if dash.enabled:
        app = create_dashboard_app(
            ops.view,
            token=environ.get(DASHBOARD_TOKEN_ENV) or None,
            metrics=ops.metrics,
            push_interval_s=dash.update_interval_ms / 1000,
            max_streams=dash.max_connections,
        )
        ops.dashboard_url = await services.start(
            partial(serve_dashboard, app, host=dash.host, port=dash.port, allow_remote=True)
        )
        log.info("dashboard", url=ops.dashboard_url)


async def start_ops_body(
    ops: Ops,
    body: trio.Nursery,
    cfg: Config,
    *,
    ws: WsConnection,
    risk: MarketRiskGates,
    desk: Desk | None,
    wall_ms: WallClock,
) -> None:
    await body.start(
        partial(
            watch_connection,
            ws.status,
            ops.alerts,
            ops.metrics,
            alert_after_s=float(cfg.alerts.disconnect_alert_s),
        )
    )
    await body.start(partial(sample_metrics, partial(_sample, ops, risk, desk, CounterDeltas())))
    if desk is not None and cfg.alerts.daily_summary:
        await body.start(
            partial(send_daily_summaries, ops.alerts, desk.monitor.figures, ops.counts, wall_ms=wall_ms)
        )


def _sample(ops: Ops, risk: MarketRiskGates, desk: Desk | None, deltas: CounterDeltas) -> None:
    blocks = {gate.value: count for gate, count in risk.counters.items()}
    if desk is not None:
        stats = desk.pipeline.stats
        blocks |= {
            name.removeprefix("refused_"): n for name, n in stats.items() if name.startswith("refused_")
        }
        ops.metrics.set_positions(len(desk.tracker.handle.positions))
        ops.metrics.set_realized_pnl(desk.monitor.figures().realized_pnl_total_usd)
    for gate, count in deltas.new_since_last(blocks).items():
        ops.metrics.gate_block(gate, count)
