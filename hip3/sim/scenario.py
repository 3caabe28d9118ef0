"""What a simulated exchange holds and how its markets move: the scenario, as typed values.

The first dex (index 0 in perpDexs, empty name) comes first in `Scenario.dexes`; builder dexes follow in
perpDexs order, so a dex's position in the tuple is its perp_dex_index for asset ids. Market names are given
without the dex prefix; the exchange calls them `dex:NAME` on builder dexes.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

import attrs

from hip3.core.market import MarginMode, MarketKey, MarketSpec

DAY_MS = 86_400_000


@attrs.frozen(kw_only=True)
class MarketProcessDef:
    """How one market's oracle moves and how its simulated market makers quote it."""

    volatility_bps: float = 4.0  # standard deviation of the oracle's move per update, in bps
    jump_probability: float = 0.03  # chance per oracle update of a jump
    jump_bps: float = 60.0  # typical jump size; every move is clamped to the 1 % per-update cap
    quote_lag_ms: int = 1500  # how long makers keep quoting around the previous reference after a move
    catch_up_ms: int = 1500  # how long quotes take to walk from the old reference to the new one
    spread_bps: float = 8.0  # structural spread of the makers' best quotes around their reference
    levels: int = 5  # price levels per side
    level_step_bps: float = 3.0  # distance between levels
    level_notional_usd: Decimal = Decimal(2000)  # notional resting at each level
    quote_offset_bps: float = 0.0  # makers centre their quotes this far from the reference: a structural gap


@attrs.frozen(kw_only=True)
class MarketDef:
    name: str
    sz_decimals: int
    max_leverage: int
    start_price: Decimal
    only_isolated: bool = True
    margin_mode: str | None = "strictIsolated"  # None: the meta entry has no marginMode (normal)
    is_delisted: bool = False
    growth_mode: bool = False
    oi_cap_usd: Decimal | None = None  # perpDexs assetToStreamingOiCap; None: no cap listed
    funding_multiplier: Decimal = Decimal(1)
    process: MarketProcessDef = MarketProcessDef()


@attrs.frozen(kw_only=True)
class DexDef:
    name: str  # "" for the first perp dex
    full_name: str = ""
    deployer: str = "0x0000000000000000000000000000000000000000"
    deployer_fee_scale: Decimal = Decimal(1)  # HIP-3 deployer fee scale, 0..3 (0..10 in growth mode)
    markets: tuple[MarketDef, ...] = ()


@attrs.frozen(kw_only=True)
class FeeDef:
    """The user's base fee rates (x in the HIP-3 fee table), in bps of notional."""

    taker_bps: Decimal = Decimal("4.5")
    maker_bps: Decimal = Decimal("1.5")


@attrs.frozen(kw_only=True)
class AccountDef:
    address: str
    usdc: Decimal


@attrs.frozen(kw_only=True)
class FaultDef:
    """A fault injected `at_ms` after the exchange starts: a `SimFaults` method name and its arguments."""

    at_ms: int
    kind: str
    params: Mapping[str, object] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class Scenario:
    seed: int = 1
    is_mainnet: bool = False  # which signature source ("a" mainnet, "b" testnet) the exchange accepts
    oracle_interval_ms: int = 3000  # HIP-3 deployers update every ~3 s
    max_oracle_move: Decimal = Decimal("0.01")  # per update
    min_order_notional: Decimal = Decimal(10)
    nonce_set_size: int = 100
    nonce_window_back_ms: int = 2 * DAY_MS
    nonce_window_ahead_ms: int = DAY_MS
    schedule_cancel_daily_cap: int = 10
    ws_idle_timeout_s: float = 60.0
    fees: FeeDef = FeeDef()
    dexes: tuple[DexDef, ...] = ()
    accounts: tuple[AccountDef, ...] = ()
    faults: tuple[FaultDef, ...] = ()


def wire_name(dex: str, market: str) -> str:
    """A market's name on the wire: `dex:NAME` on a builder dex, the plain name on the first dex."""
    return f"{dex}:{market}" if dex else market


def market_spec(market: MarketDef, dex: str, dex_index: int, meta_index: int) -> MarketSpec:
    """The core MarketSpec of a scenario market: what meta says about it, and its tick and lot rules."""
    return MarketSpec(
        name=wire_name(dex, market.name),
        key=MarketKey(dex, dex_index, meta_index),
        sz_decimals=market.sz_decimals,
        max_leverage=market.max_leverage,
        only_isolated=market.only_isolated,
        margin_mode=MarginMode(market.margin_mode) if market.margin_mode else MarginMode.NORMAL,
        is_delisted=market.is_delisted,
        growth_mode=market.growth_mode,
        margin_table_id=market.max_leverage,
    )
