"""Builds the bot's components from the configuration and runs them as one nursery tree. It wires; it computes
nothing.

Services (the WebSocket, the HTTP client, the recorders' writers) live in a service nursery: on shutdown the
body (feed, signal task, followups, spec refresh) is cancelled first, and the services last, so the body can
still use them while it stops and every buffered record is written.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import httpx
import structlog
import tricycle
import trio

from hip3.app_ops import Ops, build_ops, start_ops_body, start_ops_services
from hip3.app_trading import (
    Desk,
    build_desk,
    graceful_shutdown,
    start_body,
    start_services,
)
from hip3.config import Config
from hip3.core.clock import WallClock, system_wall_ms
from hip3.execution.shutdown import wait_for_signals
from hip3.launch import load_proven_key
from hip3.market.book_seed import run_book_seeding
from hip3.market.feed import MarketFeed, run_feed
from hip3.market.preflight import preflight, require_clean
from hip3.market.registry import MarketRegistry, discover, run_spec_refresh
from hip3.net.http import HttpClient
from hip3.net.weight_budget import WeightBudget
from hip3.net.ws import Connector, WsConnection, WsSettings, url_connector
from hip3.persist.journal import read_entry_times
from hip3.persist.jsonl import BlockingRunner, DailyJsonl, run_in_worker_thread
from hip3.persist.market_recording import MarketRecorder
from hip3.persist.recorder import SignalRecorder
from hip3.risk.market_gates import MarketRiskGates, RiskSettings
from hip3.strategy.detector import Detector, DetectorSettings
from hip3.strategy.signal_task import SignalListener, run_signal_task

log = structlog.get_logger(__name__)


@attrs.frozen
class Transports:
    """Where HTTP and the WebSocket go: the configured network by default; tests pass in-memory ones."""

    http: httpx.AsyncBaseTransport | None = None
    ws_connector: Connector | None = None
    alerts: httpx.AsyncBaseTransport | None = None  # the alert webhook's


@attrs.frozen
class Running:
    """What a started bot exposes to its caller (tests, the demo, the dashboard)."""

    registry: MarketRegistry
    feed: MarketFeed
    ws: WsConnection
    risk: MarketRiskGates
    detector: Detector
    recorder: SignalRecorder
    data_dir: Path
    ops: Ops
    desk: Desk | None = None  # trading mode only


def _http_client(cfg: Config, transports: Transports) -> HttpClient:
    http = cfg.http
    return HttpClient(
        cfg.network.api_url,
        transport=transports.http,
        budget=WeightBudget(per_minute=http.weight_per_minute),
        timeout_s=http.timeout_ms / 1000,
        retries=http.retries,
        retry_base_s=http.retry_base_delay_ms / 1000,
        retry_max_s=http.retry_max_delay_ms / 1000,
    )


def _ws_settings(cfg: Config) -> WsSettings:
    ws = cfg.websocket
    return WsSettings(
        heartbeat_interval_s=ws.heartbeat_interval_ms / 1000,
        pong_timeout_s=ws.pong_timeout_ms / 1000,
        connect_timeout_s=ws.connect_timeout_ms / 1000,
        subscribe_timeout_s=ws.subscribe_timeout_ms / 1000,
        reconnect_base_s=ws.reconnect_base_delay_ms / 1000,
        reconnect_max_s=ws.reconnect_max_delay_ms / 1000,
        reconnect_jitter=ws.reconnect_jitter,
        healthy_reset_s=ws.healthy_reset_ms / 1000,
        max_reconnect_attempts=ws.max_reconnect_attempts,
        post_timeout_s=ws.post_timeout_ms / 1000,
        max_inflight_posts=ws.max_inflight_posts,
        messages_per_minute=ws.messages_per_minute,
        outbound_queue_size=ws.outbound_queue_size,
    )


def _risk_settings(cfg: Config) -> RiskSettings:
    risk = cfg.risk
    return RiskSettings(
        max_bbo_age_ms=risk.max_bbo_age_ms,
        max_ctx_age_ms=risk.max_ctx_age_ms,
        max_mark_mid_divergence_bps=float(risk.max_mark_mid_divergence_bps),
        spread_shock_multiplier=float(risk.spread_shock_multiplier),
        spread_ewma_alpha=risk.spread_ewma_alpha,
        oi_cap_fraction=float(risk.oi_cap_fraction),
    )


def _detector(cfg: Config) -> Detector:
    d = cfg.detector
    settings = DetectorSettings(
        taker_fee_bps=float(d.taker_fee_bps),
        slippage_bps=float(d.slippage_bps),
        min_edge_bps=float(d.min_edge_bps),
        sizing_alpha=float(d.sizing_alpha),
        max_notional=d.max_notional,
        min_book_notional=d.min_book_notional,
        normal_book_notional=d.normal_book_notional,
        oracle_direction_filter=d.oracle_direction_filter,
        oracle_velocity_filter=d.oracle_velocity_filter,
        min_oracle_change_bps=float(d.min_oracle_change_bps),
        consecutive_moves_filter=d.consecutive_moves_filter,
        min_consecutive_oracle_moves=d.min_consecutive_oracle_moves,
        oracle_move_min_bps=float(d.oracle_move_min_bps),
        baseline_tracking=d.baseline_tracking,
        baseline_alpha=d.baseline_alpha,
        baseline_min_samples=d.baseline_min_samples,
        min_edge_above_baseline_bps=float(d.min_edge_above_baseline_bps),
    )
    allowlist = cfg.markets.allowlist
    thresholds = {e.coin: float(e.threshold_bps) for e in allowlist if e.threshold_bps is not None}
    return Detector(settings, thresholds_bps=thresholds)


def _markets_to_watch(cfg: Config, registry: MarketRegistry) -> list[str]:
    if cfg.markets.allowlist:
        return [entry.coin for entry in cfg.markets.allowlist]
    return [coin for coin in registry.coins if (spec := registry.spec(coin)) and not spec.is_delisted]


async def _discover(cfg: Config, http: HttpClient) -> MarketRegistry:
    registry = await discover(http, dexes=cfg.markets.dexes)
    report = preflight(
        registry,
        allowlist=[entry.coin for entry in cfg.markets.allowlist],
        mode=cfg.mode,
        dexes_named=cfg.markets.dexes,
    )
    for warning in report.warnings:
        log.warning("preflight", warning=warning)
    require_clean(report)
    return registry


def _recorders(
    cfg: Config, data_dir: Path, feed: MarketFeed, wall_ms: WallClock, disk_writes: BlockingRunner
) -> tuple[DailyJsonl, DailyJsonl, SignalRecorder, MarketRecorder | None]:
    p = cfg.persistence
    batching: Mapping[str, Any] = {
        "wall_ms": wall_ms,
        "buffer_size": p.buffer_size,
        "flush_interval_s": p.flush_interval_ms / 1000,
        "queue_size": p.queue_size,
        "run_blocking": disk_writes,
    }
    signals = DailyJsonl(data_dir / "signals", "signals", **batching)
    followups = DailyJsonl(data_dir / "signals", "followups", **batching)
    offsets = tuple(ms / 1000 for ms in p.followup_offsets_ms)
    recorder = SignalRecorder(signals, followups, feed.states, offsets_s=offsets, wall_ms=wall_ms)
    market = MarketRecorder(data_dir / "market", **batching) if p.record_market_data else None
    return signals, followups, recorder, market


async def run_bot(
    cfg: Config,
    *,
    transports: Transports | None = None,
    wall_ms: WallClock = system_wall_ms,
    disk_writes: BlockingRunner = run_in_worker_thread,
    environ: Mapping[str, str] | None = None,
    handle_signals: bool = False,
    task_status: trio.TaskStatus[Running] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the bot until cancelled, or (with handle_signals) until SIGTERM/SIGINT has run the shutdown.

    Observation discovers, subscribes, detects and records, and never sends anything to /exchange. Trading
    adds the desk (hip3.app_trading). Tests pass in-memory transports, a wall clock tied to Trio's, and
    `disk_writes=run_inline` (a worker thread would let MockClock race ahead of the disk).
    """
    transports = transports or Transports()
    data_dir = Path(cfg.persistence.data_dir)
    key = load_proven_key(cfg, environ) if cfg.is_trading else None
    async with _http_client(cfg, transports) as http, tricycle.open_service_nursery() as services:
        registry = await _discover(cfg, http)
        watched = _markets_to_watch(cfg, registry)
        feed = MarketFeed({coin: spec for coin in watched if (spec := registry.spec(coin))})
        ws = WsConnection(transports.ws_connector or url_connector(cfg.network.ws_url), _ws_settings(cfg))
        entry_times = read_entry_times(cfg.persistence.journal_path)  # the tracker's and the journal's
        desk = None
        if key is not None:
            desk = build_desk(
                cfg,
                key=key,
                http=http,
                ws=ws,
                feed=feed,
                data_dir=data_dir,
                wall_ms=wall_ms,
                restored_entry_times=entry_times,
            )
        risk, detector = MarketRiskGates(_risk_settings(cfg), registry), _detector(cfg)
        ops = build_ops(
            cfg,
            feed=feed,
            ws=ws,
            risk=risk,
            desk=desk,
            wall_ms=wall_ms,
            disk_writes=disk_writes,
            restored_entry_times=entry_times,
            alert_transport=transports.alerts,
        )
        signals, followups, recorder, market = _recorders(cfg, data_dir, feed, wall_ms, disk_writes)
        for writer in (signals, followups, market):
            if writer is not None:
                await services.start(writer.run)
        await start_ops_services(ops, services, cfg, os.environ if environ is None else environ)
        if market is not None:
            ws.raw_listeners.append(market.on_raw_frame)
        if desk is not None:
            await start_services(desk, services, ws)
        await services.start(ws.run)
        async with trio.open_nursery() as body:
            await body.start(run_feed, ws, feed)
            record_seed = None if market is None else market.record_seed
            await body.start(run_book_seeding, ws, feed, http.info, record_seed)
            await body.start(recorder.run)
            listeners: list[SignalListener] = []
            market_listeners = []
            if desk is not None:
                await start_body(desk, body, ws, http)
                listeners.append(desk.pipeline.on_signal)
                market_listeners.append(desk.exits.on_market_update)
            await start_ops_body(ops, body, cfg, ws=ws, risk=risk, desk=desk, wall_ms=wall_ms)
            await body.start(
                lambda task_status: run_signal_task(
                    feed,
                    risk,
                    detector,
                    listeners,
                    bookkeepers=[recorder.on_signal, ops.on_signal],
                    market_listeners=market_listeners,
                    task_status=task_status,
                )
            )
            await body.start(
                lambda task_status: run_spec_refresh(
                    registry,
                    http,
                    interval_s=cfg.markets.spec_refresh_interval_s,
                    dexes=cfg.markets.dexes,
                    on_change=lambda changes: log.warning("market specs changed", changes=len(changes)),
                    task_status=task_status,
                )
            )
            if handle_signals:
                stop = partial(_stop, desk, services.cancel_scope)
                await body.start(
                    lambda task_status: wait_for_signals(
                        lambda _signum: body.start_soon(stop), task_status=task_status
                    )
                )
            log.info(cfg.mode, markets=len(feed.states), data_dir=str(data_dir))
            task_status.started(Running(registry, feed, ws, risk, detector, recorder, data_dir, ops, desk))


async def _stop(desk: Desk | None, everything: trio.CancelScope) -> None:
    """The first SIGTERM/SIGINT: run the shutdown sequence (trading), then cancel the whole tree: the body
    first, the services (socket, writers) last."""
    if desk is not None:
        await graceful_shutdown(desk)
    everything.cancel()
