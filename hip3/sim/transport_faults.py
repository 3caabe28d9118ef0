"""Transport faults: what the WebSocket sessions and HTTP fronts drop, delay, duplicate or refuse."""

from __future__ import annotations

import attrs
import trio


@attrs.define
class TransportFaults:
    """Counters and delays the transports apply. A count is how many more frames or requests it hits."""

    drop_order_updates: int = 0
    duplicate_user_fills: int = 0
    user_fills_delay_s: float = 0.0
    drop_post_responses: int = 0
    post_response_delay_s: float = 0.0
    rest_rate_limited: int = 0
    drop_after_frames: int | None = None  # each live connection closes after sending this many more frames
    disconnect: trio.Event = attrs.field(factory=trio.Event)  # set: every live connection is dropped now

    def take(self, counter: str) -> bool:
        """Use one unit of a counted fault; False when none is left."""
        remaining: int = getattr(self, counter)
        if remaining <= 0:
            return False
        setattr(self, counter, remaining - 1)
        return True

    def spend_frame(self) -> bool:
        """Count a frame against `drop_after_frames`; True when the connection must drop, not send."""
        if self.drop_after_frames is None:
            return False
        if self.drop_after_frames == 0:
            self.drop_after_frames = None
            return True
        self.drop_after_frames -= 1
        return False

    def drop_connections(self) -> None:
        self.disconnect.set()
        self.disconnect = trio.Event()
