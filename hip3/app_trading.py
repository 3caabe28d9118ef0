"""Trading mode's wiring: the parts from hip3.execution, hip3.position and hip3.risk joined into tasks.

Part of app.py's job (it wires, it computes nothing). Services that must outlive the body so that cancels
and exits can still go out while the bot stops (the tracker's actor, the user stream, the sender) are started
in the service nursery; the rest (entries, exits, resync, reconcile, clock sync, dead-man switch) in the body.
On the first SIGTERM or SIGINT the shutdown sequence runs within `shutdown.deadline_s`: stop entries, cancel
resting orders, flatten if configured, clear the dead-man switch, flush; then the whole tree is cancelled.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import structlog
import trio

from hip3.config import Config
from hip3.core.clock import WallClock
from hip3.core.market import MarketSpec
from hip3.core.order import Tif
from hip3.core.watched import Watched
from hip3.execution.action_budget import ActionBudget
from hip3.execution.deadman import DeadmanSwitch
from hip3.execution.entries import EntryPipeline
from hip3.execution.gates import EntryGates, Limits
from hip3.execution.nonce import NonceManager, run_clock_sync
from hip3.execution.readiness import Readiness
from hip3.execution.scheduler import CancelRequest, Scheduler
from hip3.execution.sender import Sender
from hip3.execution.shutdown import ShutdownSteps, shut_down
from hip3.market.feed import MarketFeed
from hip3.net.http import HttpClient
from hip3.net.ws import Status, WsConnection
from hip3.position.exits import Exits, ExitSettings
from hip3.position.flatten import FlattenGuard
from hip3.position.model import OrderPhase
from hip3.position.reconcile import reconcile
from hip3.position.resync import Resyncer
from hip3.position.tracker import PositionTracker
from hip3.position.user_stream import run_user_stream
from hip3.protocol.actions import exchange_request
from hip3.protocol.signing import SigningKey, sign_l1_action
from hip3.risk.hard_stop import HARD_STOP_FILE, HardStop, Latch
from hip3.risk.monitor import MonitorSettings, RiskMonitor

log = structlog.get_logger(__name__)

ACTIONS_PER_MINUTE = 600  # the bot's own ceiling on entries, well under the exchange's address budget
SKEW_CHECK_S = 1.0
UNTIL_DONE_POLL_S = 0.1


@attrs.define
class Desk:
    """Every trading component of one run."""

    cfg: Config
    account: str
    key: SigningKey
    nonces: NonceManager
    tracker: PositionTracker
    scheduler: Scheduler
    sender: Sender
    guard: FlattenGuard
    exits: Exits
    gates: EntryGates
    pipeline: EntryPipeline
    hard_stop: HardStop
    monitor: RiskMonitor
    resyncer: Resyncer
    synced: Watched[bool]
    reconciled: Watched[bool]
    readiness: Readiness
    deadman: DeadmanSwitch
    specs: Mapping[str, MarketSpec]
    wall_ms: WallClock
    shutting_down: bool = False

    def entry_block(self) -> str | None:
        """The hard-stop gate's reason: a latched stop, or a shutdown in progress."""
        return "shutting down" if self.shutting_down else self.hard_stop.reason()


def build_desk(
    cfg: Config,
    *,
    key: SigningKey,
    http: HttpClient,
    ws: WsConnection,
    feed: MarketFeed,
    data_dir: Path,
    wall_ms: WallClock,
    restored_entry_times: Mapping[str, int] | None = None,
) -> Desk:
    account = cfg.account.account_address
    if account is None:  # the config refuses trading without it; this keeps the type honest
        raise ValueError("trading needs account.account_address")
    specs = {coin: state.spec for coin, state in feed.states.items()}
    nonces = NonceManager(wall_ms, warn_ms=cfg.risk.clock_skew_warn_ms, block_ms=cfg.risk.clock_skew_block_ms)
    tracker = PositionTracker(wall_ms, restored_entry_times=restored_entry_times)
    scheduler = Scheduler()
    sender = Sender(
        scheduler,
        tracker.handle,
        ws,
        http,
        nonces,
        key,
        is_mainnet=cfg.network.is_mainnet,
        vault_address=cfg.account.vault_address,
        account_address=account,
    )
    guard = FlattenGuard()
    exits = Exits(tracker.handle, scheduler, feed.states, specs, guard, _exit_settings(cfg), wall_ms=wall_ms)
    hard_stop = HardStop(data_dir / HARD_STOP_FILE, wall_ms=wall_ms)
    monitor = RiskMonitor(_monitor_settings(cfg), hard_stop)
    synced, reconciled = Watched(False), Watched(False)
    readiness = Readiness(
        ws.status,
        synced,
        lambda: nonces.blocked_reason,
        extra=[(reconciled, "not reconciled since the reconnect")],
    )
    resyncer = Resyncer(tracker.handle, http.info, account, _dex_coins(specs))
    desk_box: list[Desk] = []

    def marks(coin: str) -> Decimal | None:
        state = feed.states.get(coin)
        return None if state is None else state.mark_px

    gates = EntryGates(
        tracker.handle,
        _limits(cfg),
        marks=marks,
        hard_stop=lambda: desk_box[0].entry_block(),  # noqa: PLW0108 — the desk does not exist yet
        not_ready=readiness.not_ready,
        flattening=lambda coin: guard.is_flattening(coin) or exits.is_exiting(coin),
        budget=ActionBudget(ACTIONS_PER_MINUTE),
    )
    pipeline = EntryPipeline(
        gates,
        scheduler,
        tracker.handle,
        specs,
        marks,
        max_order_notional=cfg.detector.max_notional,
        slippage_bps=cfg.detector.slippage_bps,
    )
    deadman = DeadmanSwitch(
        _action_poster(http, nonces, key, cfg),
        wall_ms=lambda: wall_ms() + nonces.offset_ms,
        arm_ahead_s=cfg.deadman.arm_ahead_ms / 1000,
        refresh_margin_s=cfg.deadman.refresh_margin_ms / 1000,
        daily_cap=cfg.deadman.daily_trigger_cap,
        orders_can_rest=lambda: any(order.tif is not Tif.IOC for order in tracker.handle.pending_orders()),
    )
    desk = Desk(
        cfg, account, key, nonces, tracker, scheduler, sender, guard, exits, gates, pipeline, hard_stop,
        monitor, resyncer, synced, reconciled, readiness, deadman, specs, wall_ms,
    )  # fmt: skip
    desk_box.append(desk)
    _connect_listeners(desk)
    return desk


def _connect_listeners(desk: Desk) -> None:
    desk.tracker.fill_listeners += [desk.monitor.on_fill, desk.exits.on_fill]
    desk.sender.reject_listeners.append(desk.monitor.on_reject)
    desk.exits.flatten_failure_listeners.append(desk.monitor.on_flatten_failure)
    desk.hard_stop.listeners.append(lambda latch: _on_latch(desk, latch))


def _on_latch(desk: Desk, latch: Latch) -> None:
    log.critical("hard stop latched: cancelling resting orders and flattening", reason=latch.reason)
    _cancel_resting(desk)
    desk.exits.flatten_all(f"hard stop: {latch.reason}")


def _cancel_resting(desk: Desk) -> int:
    resting = [o for o in desk.tracker.handle.pending_orders() if o.phase is OrderPhase.RESTING and o.oid]
    for order in resting:
        desk.scheduler.submit_cancel(CancelRequest(order.coin, order.asset, order.oid, order.cloid))
    return len(resting)


def _action_poster(http: HttpClient, nonces: NonceManager, key: SigningKey, cfg: Config) -> Any:
    """Sign an action with a fresh nonce and post it over HTTP (for the dead-man switch)."""

    async def post(action: dict[str, Any]) -> Any:
        nonce = nonces.next()
        vault = cfg.account.vault_address
        signature = sign_l1_action(
            key, action, nonce=nonce, vault_address=vault, is_mainnet=cfg.network.is_mainnet
        )
        return await http.exchange(
            exchange_request(action, dict(signature), nonce=nonce, vault_address=vault)
        )

    return post


def _dex_coins(specs: Mapping[str, MarketSpec]) -> dict[str, frozenset[str]]:
    by_dex: dict[str, set[str]] = {}
    for coin, spec in specs.items():
        by_dex.setdefault(spec.key.dex, set()).add(coin)
    return {dex: frozenset(coins) for dex, coins in by_dex.items()}


def _limits(cfg: Config) -> Limits:
    p = cfg.position
    return Limits(p.max_notional_per_market, p.max_total_notional, p.max_concurrent_positions)


def _exit_settings(cfg: Config) -> ExitSettings:
    t, m = cfg.time_stop, cfg.mark_regression
    return ExitSettings(
        time_stop_threshold_ms=t.threshold_ms,
        reduce_only_timeout_ms=t.reduce_only_timeout_ms,
        time_stop_slippage_bps=t.slippage_bps,
        mark_regression_enabled=m.enabled,
        exit_threshold_bps=m.exit_threshold_bps,
        min_holding_time_ms=m.min_holding_time_ms,
        mark_regression_slippage_bps=m.slippage_bps,
        retry_base_s=cfg.risk_monitor.flatten_retry_base_delay_ms / 1000,
    )


def _monitor_settings(cfg: Config) -> MonitorSettings:
    r = cfg.risk_monitor
    return MonitorSettings(
        max_loss_usd=r.max_loss_usd,
        window_s=float(r.window_seconds),
        max_losing_streak=r.max_consecutive_failures,
        max_flatten_failures=r.max_flatten_failed,
        max_alarming_rejects=r.max_alarming_rejects,
        max_signer_errors=r.max_signer_errors,
        fee_bps=float(cfg.detector.taker_fee_bps),
    )


# -- tasks ----------------------------------------------------------------------------------------------


async def start_services(desk: Desk, services: trio.Nursery, ws: WsConnection) -> None:
    """What must outlive the body: the tracker, the user stream, the sender (before the socket starts)."""
    await services.start(desk.tracker.run)
    await services.start(
        lambda task_status: run_user_stream(ws, desk.tracker.handle, desk.account, task_status=task_status)
    )
    await services.start(desk.sender.run)


async def start_body(desk: Desk, body: trio.Nursery, ws: WsConnection, http: HttpClient) -> None:
    cfg = desk.cfg
    sync_request = {"type": "clearinghouseState", "user": desk.account}
    await body.start(
        lambda task_status: run_clock_sync(
            desk.nonces, http.info, sync_request, desk.wall_ms, interval_s=60, task_status=task_status
        )
    )
    await body.start(_watch_clock_skew, desk)
    await body.start(
        lambda task_status: desk.resyncer.run(
            interval_s=cfg.position.position_resync_interval_secs,
            ws_status=ws.status,
            synced=desk.synced,
            hold_until=desk.reconciled,
            task_status=task_status,
        )
    )
    await body.start(_reconcile_after_reconnects, desk, ws, http)
    await body.start(desk.exits.run)
    if cfg.deadman.enabled:
        await body.start(desk.deadman.run)


async def _watch_clock_skew(
    desk: Desk, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Hand the nonce manager's skew verdict to the risk monitor (a blocking skew latches the hard stop)."""
    task_status.started()
    while True:
        desk.monitor.on_clock_skew(desk.nonces.blocked_reason)
        await trio.sleep(SKEW_CHECK_S)


async def _reconcile_after_reconnects(
    desk: Desk,
    ws: WsConnection,
    http: HttpClient,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """The first connection needs no reconcile (start-up resync covers it); each later one does, before
    entries resume: open orders, fills during the gap, positions."""
    status = await ws.wait_live()
    desk.reconciled.set(True)
    task_status.started()
    epoch, since_ms = status.epoch, desk.wall_ms()
    while True:
        await ws.status.wait_for(_newer_than(epoch))
        desk.reconciled.set(False)
        status = await ws.wait_live(after_epoch=epoch)
        epoch = status.epoch
        since_ms = await _reconcile_until_done(desk, http, since_ms)
        desk.reconciled.set(True)


def _newer_than(epoch: int) -> Callable[[Status], bool]:
    return lambda status: status.epoch > epoch


async def _reconcile_until_done(desk: Desk, http: HttpClient, since_ms: int) -> int:
    while True:
        try:
            report = await reconcile(
                desk.tracker.handle,
                http.info,
                desk.account,
                {spec.key.dex for spec in desk.specs.values()},
                desk.resyncer,
                since_ms=since_ms,
                cancel_unknown=lambda orders: _cancel_unknown(desk, orders),
            )
        except Exception as exc:  # retried: entries stay stopped until a reconcile succeeds
            log.warning("reconcile failed, retrying", error=str(exc))
            await trio.sleep(1.0)
            continue
        log.info("reconciled after reconnect", ended=len(report.ended), unknown=len(report.unknown))
        return report.last_fill_ms or since_ms


async def _cancel_unknown(desk: Desk, orders: Any) -> None:
    for order in orders:
        spec = desk.specs.get(order.coin)
        if spec is None:
            log.warning("unknown open order on a market we do not watch", coin=order.coin, oid=order.oid)
            continue
        desk.scheduler.submit_cancel(CancelRequest(order.coin, spec.asset_id, order.oid, order.cloid))
    await trio.lowlevel.checkpoint()


# -- shutdown -------------------------------------------------------------------------------------------


def shutdown_steps(desk: Desk) -> ShutdownSteps:
    async def stop_entries() -> None:
        desk.shutting_down = True
        await trio.lowlevel.checkpoint()

    async def cancel_resting() -> None:
        _cancel_resting(desk)
        await _until(
            lambda: not any(o.phase is OrderPhase.RESTING for o in desk.tracker.handle.pending_orders())
        )

    async def flatten() -> None:
        desk.exits.flatten_all("shutdown")
        await _until(desk.exits.is_flat)

    async def flush() -> None:
        await trio.lowlevel.checkpoint()  # the writers flush when the service nursery stops them

    return ShutdownSteps(
        stop_entries=stop_entries,
        cancel_resting=cancel_resting,
        flatten=flatten,
        clear_deadman=desk.deadman.clear,
        flush=flush,
        flatten_enabled=desk.cfg.shutdown.flatten,
    )


async def _until(done: Any) -> None:
    """Poll a condition of the tracker or exits (they offer no change event); bounded by the deadline."""
    while not done():  # noqa: ASYNC110
        await trio.sleep(UNTIL_DONE_POLL_S)


async def graceful_shutdown(desk: Desk) -> None:
    report = await shut_down(shutdown_steps(desk), deadline_s=desk.cfg.shutdown.deadline_s)
    log.info(
        "shutdown sequence done", clean=report.clean, steps=[(s.name, s.outcome.value) for s in report.steps]
    )


__all__ = ["Desk", "build_desk", "graceful_shutdown", "start_body", "start_services"]
