"""READY for entries: connected and subscribed, positions synced since the last reconnect, clock in bounds."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from hip3.core.watched import Watched
from hip3.net.ws import ConnectionState, Status


class Readiness:
    def __init__(
        self,
        ws_status: Watched[Status],
        synced: Watched[bool],
        skew_blocked: Callable[[], str | None] = lambda: None,
        *,
        extra: Sequence[tuple[Watched[bool], str]] = (),
    ) -> None:
        """`extra`: further conditions, each a flag and the reason given while it is False."""
        self._ws_status = ws_status
        self._synced = synced
        self._skew_blocked = skew_blocked
        self._extra = tuple(extra)

    def not_ready(self) -> str | None:
        """Why entries must wait, or None when the bot is READY."""
        status = self._ws_status.value
        if status.state is not ConnectionState.LIVE:
            return f"websocket {status.state.value} (every subscription acknowledged is required)"
        if not self._synced.value:
            return "positions not synced since the last (re)connection"
        for flag, reason in self._extra:
            if not flag.value:
                return reason
        return self._skew_blocked()
