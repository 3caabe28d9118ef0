"""Parsing of the `perpDexs` and `meta` /info bodies into core types (protocol reference §6.1, §6.3, §9).

Pure functions, no I/O. A body that does not have the documented shape raises `MetaError` naming the request,
the path inside the body and what was found, so an operator can tell a protocol change from a bad response.

Asset ids come from a market's index in `meta(dex)`'s universe. `perpDexs` also lists markets (OI caps,
funding multipliers), but in its own order (sorted by name), which must never be used as an index (W-011).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any

import attrs

from hip3.core.market import FIRST_DEX_INDEX, MarginMode, MarketKey, MarketSpec

GROWTH_MODE_ON = "enabled"
KNOWN_UNIVERSE_FIELDS = frozenset(
    {
        "name",
        "szDecimals",
        "maxLeverage",
        "onlyIsolated",
        "marginMode",
        "isDelisted",
        "growthMode",
        "marginTableId",
    }
)


class MetaError(ValueError):
    """A `meta` or `perpDexs` body that does not have the documented shape."""


@attrs.frozen(slots=True)
class PerpDex:
    """One entry of `perpDexs`: its position there is the dex index used in asset ids."""

    index: int
    name: str
    full_name: str = ""
    deployer: str | None = None
    oi_caps: Mapping[str, Decimal] = attrs.field(factory=dict, eq=False)
    funding_multipliers: Mapping[str, Decimal] = attrs.field(factory=dict, eq=False)

    @property
    def is_first(self) -> bool:
        return self.index == FIRST_DEX_INDEX


def _describe(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _fail(where: str, expected: str, found: object) -> MetaError:
    return MetaError(f"{where}: expected {expected}, got {_describe(found)}")


def _require_int(where: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(where, "an integer", value)
    return value


def _require_str(where: str, value: object) -> str:
    if not isinstance(value, str):
        raise _fail(where, "a string", value)
    return value


def _require_bool(where: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise _fail(where, "true or false", value)
    return value


def _require_list(where: str, value: object) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(where, "a list", value)
    return value


def _require_object(where: str, value: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(where, "an object", value)
    return value


# ------------------------------------------------------------------ perpDexs


def _parse_amount(where: str, value: object) -> Decimal:
    try:
        amount = Decimal(_require_str(where, value))
    except InvalidOperation:
        raise _fail(where, "a decimal string", value) from None
    if not amount.is_finite() or amount < 0:
        raise _fail(where, "a finite amount ≥ 0", value)
    return amount


def _parse_coin_amounts(where: str, value: object) -> Mapping[str, Decimal]:
    """`[[coin, "amount"], ...]` → {coin: amount}; absent or null is empty."""
    if value is None:
        return MappingProxyType({})
    amounts: dict[str, Decimal] = {}
    for position, pair in enumerate(_require_list(where, value)):
        here = f"{where}[{position}]"
        if not isinstance(pair, list) or len(pair) != 2:
            raise _fail(here, "a [coin, amount] pair", pair)
        coin = _require_str(f"{here}[0]", pair[0])
        if coin in amounts:
            raise MetaError(f"{here}: {coin!r} is listed twice")
        amounts[coin] = _parse_amount(f"{here}[1]", pair[1])
    return MappingProxyType(amounts)


def _parse_builder_dex(index: int, entry: object) -> PerpDex:
    where = f"perpDexs[{index}]"
    fields = _require_object(where, entry)
    name = _require_str(f"{where}.name", fields.get("name"))
    if not name:
        raise _fail(f"{where}.name", "a non-empty dex name", name)
    deployer = fields.get("deployer")
    return PerpDex(
        index=index,
        name=name,
        full_name=_require_str(f"{where}.fullName", fields.get("fullName", "")),
        deployer=None if deployer is None else _require_str(f"{where}.deployer", deployer),
        oi_caps=_parse_coin_amounts(f"{where}.assetToStreamingOiCap", fields.get("assetToStreamingOiCap")),
        funding_multipliers=_parse_coin_amounts(
            f"{where}.assetToFundingMultiplier", fields.get("assetToFundingMultiplier")
        ),
    )


def parse_perp_dexs(body: object) -> tuple[PerpDex, ...]:
    """The dexes `perpDexs` lists, each with its index there; the first dex (a `null` entry) has name "".

    A `null` after the first entry is skipped: it holds no dex but still takes its index, so later dexes
    keep the index the exchange uses in their asset ids.
    """
    entries = _require_list("perpDexs", body)
    if not entries or entries[0] is not None:
        found = entries[0] if entries else entries
        raise _fail("perpDexs[0]", "null (the first dex)", found)
    dexes = [PerpDex(index=FIRST_DEX_INDEX, name="")]
    seen: set[str] = set()
    for index, entry in enumerate(entries[1:], start=1):
        if entry is None:
            continue
        dex = _parse_builder_dex(index, entry)
        if dex.name in seen:
            raise MetaError(f"perpDexs[{index}]: dex {dex.name!r} is listed twice")
        seen.add(dex.name)
        dexes.append(dex)
    return tuple(dexes)


# ------------------------------------------------------------------ meta


def _parse_margin_mode(where: str, value: object) -> MarginMode:
    if value is None:
        return MarginMode.NORMAL
    try:
        return MarginMode(_require_str(where, value))
    except ValueError:
        known = ", ".join(mode.value for mode in MarginMode)
        raise _fail(where, f"one of {known}", value) from None


def _check_name(where: str, name: str, dex: str) -> None:
    if not name:
        raise _fail(where, "a non-empty market name", name)
    # A builder dex's markets carry its prefix; a missing one means the body is not meta(dex) at all.
    if dex and not name.startswith(f"{dex}:"):
        raise _fail(where, f"a name starting with {dex + ':'!r} (meta of dex {dex!r})", name)


def _parse_universe_entry(where: str, entry: object, key: MarketKey) -> MarketSpec:
    fields = _require_object(where, entry)
    name = _require_str(f"{where}.name", fields.get("name"))
    _check_name(f"{where}.name", name, key.dex)
    table_id = fields.get("marginTableId")
    growth = fields.get("growthMode")
    try:
        return MarketSpec(
            name=name,
            key=key,
            sz_decimals=_require_int(f"{where}.szDecimals", fields.get("szDecimals")),
            max_leverage=_require_int(f"{where}.maxLeverage", fields.get("maxLeverage")),
            only_isolated=_require_bool(f"{where}.onlyIsolated", fields.get("onlyIsolated", False)),
            margin_mode=_parse_margin_mode(f"{where}.marginMode", fields.get("marginMode")),
            is_delisted=_require_bool(f"{where}.isDelisted", fields.get("isDelisted", False)),
            growth_mode=growth is not None and _require_str(f"{where}.growthMode", growth) == GROWTH_MODE_ON,
            margin_table_id=None if table_id is None else _require_int(f"{where}.marginTableId", table_id),
            extra=MappingProxyType({k: v for k, v in fields.items() if k not in KNOWN_UNIVERSE_FIELDS}),
        )
    except MetaError:
        raise
    except ValueError as exc:  # MarketSpec's own range checks
        raise MetaError(f"{where}: {exc}") from None


def _market_key(where: str, dex: str, dex_index: int, meta_index: int) -> MarketKey:
    try:
        return MarketKey(dex, dex_index, meta_index)
    except ValueError as exc:
        raise MetaError(f"{where}: {exc}") from None


def parse_meta(body: object, *, dex: str, dex_index: int) -> tuple[MarketSpec, ...]:
    """The markets of `meta(dex)`, in universe order; a market's position there is its meta index.

    `dex_index` is the dex's position in `perpDexs` (0 and "" for the first dex). Names are kept as given;
    a builder dex's market names must carry its `dex:` prefix. Duplicate names are kept (preflight
    reports them). Universe fields this parser does not know are kept in `MarketSpec.extra`.
    """
    request = f"meta(dex={dex!r})"
    universe = _require_list(f"{request}.universe", _require_object(request, body).get("universe"))
    specs = []
    for meta_index, entry in enumerate(universe):
        where = f"{request}.universe[{meta_index}]"
        specs.append(_parse_universe_entry(where, entry, _market_key(where, dex, dex_index, meta_index)))
    return tuple(specs)
