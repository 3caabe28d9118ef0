"""Operations tasks: the disconnect alert, the daily summary, and the metrics that are sampled, not pushed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping

import structlog
import trio

from hip3.core.clock import WallClock
from hip3.core.watched import Watched
from hip3.net.ws import ConnectionState, Status
from hip3.ops.alerts import DAILY_SUMMARY, DISCONNECT, AlertSender
from hip3.ops.metrics import Metrics
from hip3.risk.monitor import RiskFigures

log = structlog.get_logger(__name__)

DAY_MS = 86_400_000
SAMPLE_INTERVAL_S = 1.0


def _is_live(status: Status) -> bool:
    return status.state is ConnectionState.LIVE


def _is_down(status: Status) -> bool:
    return status.state is not ConnectionState.LIVE


async def watch_connection(
    status: Watched[Status],
    alerts: AlertSender,
    metrics: Metrics,
    *,
    alert_after_s: float,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Alert when the socket stays down longer than `alert_after_s` (and again when it is back); count
    reconnects."""
    task_status.started()
    first_live = await status.wait_for(_is_live)
    last_epoch = first_live.epoch
    while True:
        await status.wait_for(_is_down)
        down_at = trio.current_time()
        with trio.move_on_after(alert_after_s):
            await status.wait_for(_is_live)
        # Judged on the status itself: the wait may be cancelled just after the link came back.
        if not _is_live(status.value):
            alerts.notify(DISCONNECT, "WebSocket down", f"no live connection for {alert_after_s:g} s")
            await status.wait_for(_is_live)
            down_s = trio.current_time() - down_at
            alerts.notify(DISCONNECT, "WebSocket back", f"live again after {down_s:.0f} s")
        if status.value.epoch > last_epoch:
            metrics.reconnect("dropped")
            last_epoch = status.value.epoch


def ms_to_next_utc_midnight(now_ms: int) -> int:
    return DAY_MS - now_ms % DAY_MS


async def send_daily_summaries(
    alerts: AlertSender,
    figures: Callable[[], RiskFigures],
    counts: Callable[[], Mapping[str, int]],
    *,
    wall_ms: WallClock,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """At each 00:00 UTC (by the injected wall clock) send the day's summary."""
    task_status.started()
    while True:
        await trio.sleep(ms_to_next_utc_midnight(wall_ms()) / 1000)
        alerts.notify(
            DAILY_SUMMARY,
            "hip3 daily summary",
            "totals since the bot started",
            summary_fields(figures(), counts()),
        )
        await trio.sleep(1.0)  # past midnight: the next wait is a whole day


def summary_fields(figures: RiskFigures, counts: Mapping[str, int]) -> dict[str, str]:
    rate = figures.win_rate
    return {
        **{name: str(value) for name, value in counts.items()},
        "round_trips": str(figures.round_trips),
        "win_rate": "-" if rate is None else f"{rate:.0%}",
        "realized_pnl_usd": str(figures.realized_pnl_total_usd),
        "fees_usd": str(figures.fees_usd),
    }


class CounterDeltas:
    """Turns a component's running totals into metric increments (each total is read, not pushed)."""

    def __init__(self) -> None:
        self._seen: Counter[str] = Counter()

    def new_since_last(self, totals: Mapping[str, int]) -> dict[str, int]:
        fresh = {name: total - self._seen[name] for name, total in totals.items() if total > self._seen[name]}
        self._seen.update(fresh)
        return fresh


async def sample_metrics(
    sample: Callable[[], None],
    *,
    interval_s: float = SAMPLE_INTERVAL_S,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Call `sample` (which refreshes the gauges and the sampled counters) every `interval_s`."""
    task_status.started()
    while True:
        sample()
        await trio.sleep(interval_s)
