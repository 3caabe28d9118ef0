"""Integration tests of the simulated exchange over its in-memory adapters, on Trio's MockClock.

Every test starts the whole exchange with `nursery.start(run_memory_sim, …)`, talks to it only through the
in-memory WebSocket and httpx transports, and asserts exact virtual times. Times are compared as the driver
computes them (`start + ms / 1000`), so equality is exact, not approximate.

Reading frames up to a deadline: the market process only acts on whole milliseconds after the start, so
every deadline here sits half a millisecond past one (`until_ms`) and never races an event due at the same
instant.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_DOWN, Decimal
from typing import Any

import attrs
import trio
import trio_websocket

from hip3.core.order import Side, Tif
from hip3.protocol.actions import OrderRequest, exchange_request, order_action
from hip3.protocol.signing import SigningKey, sign_l1_action
from hip3.sim.harness import MemorySim
from hip3.sim.scenario import Scenario
from hip3.sim.scenario_file import parse_scenario
from hip3.sim.ws_session import GREETING

TSLA = "xyz:TSLA"
TSLA_ASSET = 110_000  # HIP-3 asset id: 100000 + perp dex index 1 · 10000 + meta index 0
BPS = Decimal(10_000)
CENT = Decimal("0.01")  # TSLA's price tick between 100 and 1000 (5 significant figures)
HALF_MS = 0.0005  # seconds: deadlines sit off the whole-millisecond grid the market process runs on

# Key #1 of the protocol reference (§2.1) is the funded trader; OTHER_KEY signs for no account at all.
KEY = SigningKey.from_hex("0x0123456789012345678901234567890123456789012345678901234567890123")
OTHER_KEY = SigningKey.from_hex("e908f86dbb4d55ac876378565aafeabc187f6690f046459397b17d9b9a19688e")
TRADER = KEY.address  # lower-case 0x…
FUNDING = ((TRADER, Decimal(10_000)),)

# Two markets whose oracles never move unless a test forces a jump: every price below is predictable.
QUIET_SCENARIO_TEXT = """
seed = 5
oracle_interval_ms = 3000

[process_defaults]
volatility_bps = 0.0
jump_probability = 0.0
quote_lag_ms = 1000
catch_up_ms = 1000
spread_bps = 10.0
levels = 5
level_step_bps = 3.0
level_notional_usd = 2000

[[dexes]]
name = ""

[[dexes.markets]]
name = "BTC"
sz_decimals = 5
max_leverage = 40
start_price = 95000
only_isolated = false
margin_mode = "none"

[[dexes]]
name = "xyz"
full_name = "XYZ"
deployer = "0x5e89b26d8d66da9888c835c9bfcc2aa51813e152"

[[dexes.markets]]
name = "TSLA"
sz_decimals = 3
max_leverage = 10
start_price = 430.55
oi_cap_usd = 50_000_000
"""
QUIET_START_PX = Decimal("430.55")
QUIET_HALF_SPREAD = Decimal(5) / BPS
QUIET_LAG_MS = 1000
QUIET_CATCH_UP_MS = 1000
CATCH_UP_STEPS = 4  # 1000 ms in 250 ms steps
ORACLE_INTERVAL_MS = 3000


def quiet_scenario() -> Scenario:
    return parse_scenario(QUIET_SCENARIO_TEXT, source="tests/sim_integration (quiet)")


def at_ms(start: float, ms: int) -> float:
    """The virtual time `ms` after `start`, computed exactly as the driver computes its wake-ups."""
    return start + ms / 1000


# --- expected maker quotes in the quiet scenario (independent arithmetic, TSLA only) ----------------------


def nearest_cent(price: Decimal) -> Decimal:
    """The market process's nearest price on the 0.01 grid (ties go down)."""
    return price.quantize(CENT, rounding=ROUND_HALF_DOWN)


def maker_top(reference: Decimal) -> tuple[Decimal, Decimal]:
    """Best bid and ask the quiet makers quote around `reference`: ±5 bps, bid rounded down, ask up."""
    bid = (reference * (1 - QUIET_HALF_SPREAD)).quantize(CENT, rounding=ROUND_FLOOR)
    ask = (reference * (1 + QUIET_HALF_SPREAD)).quantize(CENT, rounding=ROUND_CEILING)
    return bid, ask


def walk_references(origin: Decimal, target: Decimal) -> list[Decimal]:
    """The makers' reference after each catch-up step from `origin` to `target`."""
    return [
        nearest_cent(origin + (target - origin) * step / CATCH_UP_STEPS) for step in range(1, CATCH_UP_STEPS)
    ] + [target]


# --- WebSocket client --------------------------------------------------------------------------------------


@attrs.frozen
class Frame:
    """One frame the client received, with the virtual time it arrived at."""

    at: float
    text: str

    @property
    def message(self) -> Any:
        return json.loads(self.text)

    @property
    def channel(self) -> str:
        return str(self.message["channel"])

    @property
    def data(self) -> Any:
        return self.message["data"]


class SimClient:
    """A WebSocket client of the in-memory exchange that reads frames one at a time, on the test's task."""

    def __init__(self, ws: trio_websocket.WebSocketConnection) -> None:
        self.ws = ws

    @classmethod
    async def connect(cls, sim: MemorySim, nursery: trio.Nursery) -> SimClient:
        """Connect and consume the greeting, which must arrive at once."""
        connected_at = trio.current_time()
        ws = await sim.ws_server.connect(nursery)
        assert await ws.get_message() == GREETING
        assert trio.current_time() == connected_at
        return cls(ws)

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send_message(json.dumps(message))

    async def subscribe(self, *subscriptions: dict[str, Any]) -> None:
        for subscription in subscriptions:
            await self.send({"method": "subscribe", "subscription": subscription})

    async def receive(self) -> Frame:
        text = await self.ws.get_message()
        assert isinstance(text, str)
        return Frame(trio.current_time(), text)

    async def receive_until(self, deadline: float) -> list[Frame]:
        """Every frame that arrives before `deadline` (absolute virtual time, off the millisecond grid)."""
        frames: list[Frame] = []
        with trio.move_on_at(deadline):
            while True:
                frames.append(await self.receive())
        return frames

    async def receive_where(self, wanted: Callable[[Frame], bool]) -> tuple[Frame, list[Frame]]:
        """Read until a frame satisfies `wanted`; returns it and the frames read before it."""
        skipped: list[Frame] = []
        while not wanted(frame := await self.receive()):
            skipped.append(frame)
        return frame, skipped


def until_ms(start: float, ms: int) -> float:
    """A deadline half a millisecond after `ms`: frames due at `ms` are in, none is racing it."""
    return at_ms(start, ms) + HALF_MS


def on_channel(frames: Iterable[Frame], channel: str) -> list[Frame]:
    return [frame for frame in frames if frame.channel == channel]


def ack(subscription: dict[str, Any], method: str = "subscribe") -> dict[str, Any]:
    return {"channel": "subscriptionResponse", "data": {"method": method, "subscription": subscription}}


def top_of(bbo_frame: Frame) -> tuple[Decimal, Decimal]:
    bid, ask = bbo_frame.data["bbo"]
    return Decimal(bid["px"]), Decimal(ask["px"])


# --- signed requests ---------------------------------------------------------------------------------------


def signed_order(
    sim: MemorySim,
    side: Side,
    price: str,
    size: str,
    tif: Tif,
    *,
    key: SigningKey = KEY,
    asset: int = TSLA_ASSET,
    nonce_offset: int = 0,
) -> dict[str, Any]:
    """An /exchange body for one limit order, nonced with the exchange's own wall clock (+ `nonce_offset`)."""
    action = order_action([OrderRequest(asset, side, Decimal(price), Decimal(size), tif)])
    nonce = sim.exchange.now_ms() + nonce_offset
    signature = sign_l1_action(key, action, nonce=nonce, is_mainnet=False)
    return exchange_request(action, dict(signature), nonce=nonce)
