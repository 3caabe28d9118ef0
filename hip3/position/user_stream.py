"""The user's own events from the socket (orderUpdates, userFills) into the tracker, in arrival order.

Sends to the tracker are awaited: when its inbox is full this task waits and the socket applies backpressure
(design: user-stream → tracker). Nothing is dropped.
"""

from __future__ import annotations

import trio

from hip3.net.ws import WsConnection
from hip3.position.tracker import TrackerHandle
from hip3.protocol.messages import OrderUpdates, UserFills


async def run_user_stream(
    ws: WsConnection,
    handle: TrackerHandle,
    user: str,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    ws.subscribe({"type": "orderUpdates", "user": user})
    ws.subscribe({"type": "userFills", "user": user})
    frames = ws.frames(OrderUpdates, UserFills)
    task_status.started()
    async for frame in frames:
        if isinstance(frame, UserFills):
            await handle.user_fills(frame)
        else:
            await handle.order_updates(frame)
