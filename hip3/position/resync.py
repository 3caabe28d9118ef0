"""Keeping the tracker's positions equal to the exchange's: at start-up, periodically, after every reconnect.

A resync asks clearinghouseState for every dex traded (with `dex`: without it only the first dex answers,
predecessor J-005) and hands each snapshot to the tracker's actor, which merges it (it does not replace fills
newer than the snapshot). `synced` is False from a disconnect until the first resync after the reconnect has
been applied, so entries resume only on positions the exchange has confirmed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import attrs
import structlog
import trio

from hip3.core.watched import Watched
from hip3.net.ws import ConnectionState, Status
from hip3.position.tracker import TrackerHandle
from hip3.protocol.account import parse_account_state

log = structlog.get_logger(__name__)

InfoCall = Callable[[Mapping[str, Any]], Awaitable[Any]]
RETRY_S = 1.0


@attrs.frozen
class Resyncer:
    handle: TrackerHandle
    info: InfoCall
    user: str
    dex_coins: Mapping[str, frozenset[str]]  # dex name ("" for the first dex) -> its markets

    async def once(self) -> None:
        """One snapshot per dex traded, each applied by the actor; returns once all are applied."""
        for dex, coins in self.dex_coins.items():
            request: dict[str, Any] = {"type": "clearinghouseState", "user": self.user}
            if dex:
                request["dex"] = dex
            requested_at = trio.current_time()
            state = parse_account_state(await self.info(request))
            await self.handle.resync(coins, state.positions, state.time_ms, requested_at=requested_at)
        await self.handle.settled()

    async def run(
        self,
        *,
        interval_s: float,
        ws_status: Watched[Status],
        synced: Watched[bool],
        hold_until: Watched[bool] | None = None,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Resync at start, every `interval_s` (0: not periodically), and whenever a new connection is LIVE.

        `synced` holds only while the last successful resync started and ended on the connection that is
        LIVE now: fills during a gap are then in the snapshot or in that connection's stream.

        After the first, a resync waits while `hold_until` is False (trading: the reconnect's reconcile is
        running). The reconcile applies the gap's fills, then resyncs itself; a snapshot accepted before those
        fills would hold them already, so the tracker would rightly not apply them, and they would reach
        neither the journal nor the risk monitor.
        """
        live_epoch, failed = await self._attempt(ws_status, synced)
        task_status.started()
        while True:
            if failed:
                await trio.sleep(RETRY_S)
            await _until_resync_due(ws_status, live_epoch, interval_s, synced)
            if hold_until is not None:
                await hold_until.wait_for(bool)
            live_epoch, failed = await self._attempt(ws_status, synced)

    async def _attempt(self, ws_status: Watched[Status], synced: Watched[bool]) -> tuple[int | None, bool]:
        """Resync; return (epoch of the LIVE connection it covered or None, whether it failed)."""
        before = ws_status.value
        try:
            await self.once()
        except Exception as exc:  # one failed resync: say so; the loop tries again after RETRY_S
            log.warning("resync failed", error=str(exc))
            synced.set(False)
            return None, True
        covered = before.state is ConnectionState.LIVE and ws_status.value == before
        synced.set(covered)
        return (before.epoch if covered else None), False


async def _until_resync_due(
    ws_status: Watched[Status], live_epoch: int | None, interval_s: float, synced: Watched[bool]
) -> None:
    """Return at the next periodic resync, or as soon as a connection other than the synced one is LIVE."""
    deadline = trio.current_time() + interval_s if interval_s > 0 else float("inf")
    with trio.move_on_at(deadline):
        while True:
            status = ws_status.value
            if not (status.state is ConnectionState.LIVE and status.epoch == live_epoch):
                synced.set(False)
                if status.state is ConnectionState.LIVE:
                    return
            await ws_status.wait_change()
