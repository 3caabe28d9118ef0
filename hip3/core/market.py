"""Markets: where a market lives (dex and index) and what the exchange says about it (its spec)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import attrs

FIRST_DEX_INDEX = 0
BUILDER_ASSET_BASE = 100_000
BUILDER_DEX_STRIDE = 10_000
PERP_MAX_DECIMALS = 6

BPS = 10_000.0  # basis points per unit, for statistics (floats)
BPS_DECIMAL = Decimal(10_000)  # the same for money (Decimal)


@attrs.frozen(slots=True, order=True)
class MarketKey:
    """A perp market: its dex (name and position in perpDexs) and its index in that dex's meta.

    The first perp dex has the empty name and index 0; its assets use the plain meta index as asset id.
    Builder (HIP-3) dexes use `100000 + dex_index * 10000 + meta_index`. The meta index is the market's
    position in `meta(dex)`, never its position in perpDexs' OI-cap lists (predecessor W-011).
    """

    dex: str
    dex_index: int
    meta_index: int

    def __attrs_post_init__(self) -> None:
        if self.dex_index < 0 or self.meta_index < 0:
            raise ValueError(f"dex_index and meta_index must be ≥ 0, got {self.dex_index}, {self.meta_index}")
        if self.meta_index >= BUILDER_DEX_STRIDE:
            raise ValueError(f"meta_index must be < {BUILDER_DEX_STRIDE}, got {self.meta_index}")
        if (self.dex_index == FIRST_DEX_INDEX) != (self.dex == ""):
            raise ValueError(
                f"only the first dex (index 0) has an empty name: dex={self.dex!r}, index={self.dex_index}"
            )

    @property
    def asset_id(self) -> int:
        if self.dex_index == FIRST_DEX_INDEX:
            return self.meta_index
        return BUILDER_ASSET_BASE + self.dex_index * BUILDER_DEX_STRIDE + self.meta_index

    @property
    def is_builder_dex(self) -> bool:
        return self.dex_index != FIRST_DEX_INDEX


class MarginMode(enum.Enum):
    """How margin may be used on a market, as meta's `marginMode` says (absent means normal)."""

    NORMAL = "normal"
    STRICT_ISOLATED = "strictIsolated"
    NO_CROSS = "noCross"


@attrs.frozen(slots=True)
class MarketSpec:
    """What the exchange's meta says about one market, plus where it lives."""

    name: str
    key: MarketKey
    sz_decimals: int
    max_leverage: int
    only_isolated: bool = False
    margin_mode: MarginMode = MarginMode.NORMAL
    is_delisted: bool = False
    growth_mode: bool = False
    margin_table_id: int | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict, eq=False)

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.sz_decimals <= PERP_MAX_DECIMALS:
            raise ValueError(
                f"{self.name}: szDecimals must be in [0, {PERP_MAX_DECIMALS}], got {self.sz_decimals}"
            )
        if self.max_leverage < 1:
            raise ValueError(f"{self.name}: maxLeverage must be ≥ 1, got {self.max_leverage}")

    @property
    def asset_id(self) -> int:
        return self.key.asset_id

    @property
    def max_price_decimals(self) -> int:
        return PERP_MAX_DECIMALS - self.sz_decimals

    @property
    def isolated_only(self) -> bool:
        return self.only_isolated or self.margin_mode is not MarginMode.NORMAL
