"""Tests of market discovery, the spec table, refresh and preflight.

Discovery depends only on the `InfoSource` protocol. `SimInfo` adapts the in-memory simulator's httpx client
to it; `CannedInfo` answers from fixed bodies, counts calls on Trio's clock and can fail on demand.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import httpx
import trio


@attrs.frozen
class SimInfo:
    """An `InfoSource` over the simulator's in-process HTTP transport."""

    client: httpx.AsyncClient

    async def info(self, request: Mapping[str, Any]) -> Any:
        response = await self.client.post("/info", json=dict(request))
        response.raise_for_status()
        return response.json()


class InfoUnavailable(Exception):
    """What `CannedInfo` raises when told to fail."""


@attrs.define
class CannedInfo:
    """An `InfoSource` answering `perpDexs` and `meta(dex)` from fixed bodies (edit them between calls)."""

    perp_dexs: list[Any]
    metas: dict[str, Any]
    failures_left: int = 0
    delay_s: float = 0.0
    perp_dexs_times: list[float] = attrs.field(factory=list)

    async def info(self, request: Mapping[str, Any]) -> Any:
        if request["type"] == "perpDexs":
            self.perp_dexs_times.append(trio.current_time())
        if self.delay_s:
            await trio.sleep(self.delay_s)
        if self.failures_left:
            self.failures_left -= 1
            raise InfoUnavailable("503 from /info")
        if request["type"] == "perpDexs":
            return self.perp_dexs
        return self.metas[request.get("dex", "")]
