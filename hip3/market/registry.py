"""Market discovery and the spec table: which markets exist, where they live, what the exchange says of them.

`discover` reads `perpDexs`, then `meta` with `dex` for each builder dex wanted, and builds the registry.
Every lookup (by name or asset id) returns the same `MarketSpec` object, so the key a market is stored under
and the key it is looked up with cannot drift apart (predecessor "U DEX id mismatch").

Specs are re-read periodically (`run_spec_refresh`). A refresh that finds a changed szDecimals, leverage,
asset id or listing status blocks that market for new entries until an operator unblocks it; other changes
are reported only. Exits and rounding always use the latest spec.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Protocol

import attrs
import structlog
import trio

from hip3.core.market import MarketSpec
from hip3.protocol.meta import PerpDex, parse_meta, parse_perp_dexs

log = structlog.get_logger(__name__)


class InfoSource(Protocol):
    """Anything that answers an /info request with the decoded JSON body (the HTTP client, a test adapter)."""

    async def info(self, request: Mapping[str, Any]) -> Any: ...


# ------------------------------------------------------------------ changes

LISTED = "listed"
DELISTED = "delisted"
ABSENT = "absent"  # not in meta(dex): a market that vanished, or the "before" of a new one

BLOCKING_FIELDS = frozenset({"sz_decimals", "max_leverage", "listing", "asset_id"})


@attrs.frozen(slots=True)
class SpecChange:
    """One field of one market that differs between the spec table and a fresh read of the exchange."""

    coin: str
    field: str
    old: object
    new: object

    @property
    def blocks_entries(self) -> bool:
        return self.field in BLOCKING_FIELDS

    def describe(self) -> str:
        return f"{self.field} {self.old} → {self.new}"


def _listing(spec: MarketSpec | None) -> str:
    if spec is None:
        return ABSENT
    return DELISTED if spec.is_delisted else LISTED


def _spec_changes(coin: str, old: MarketSpec, new: MarketSpec) -> list[SpecChange]:
    fields = (
        ("sz_decimals", old.sz_decimals, new.sz_decimals),
        ("max_leverage", old.max_leverage, new.max_leverage),
        ("asset_id", old.asset_id, new.asset_id),
        ("listing", _listing(old), _listing(new)),
        ("only_isolated", old.only_isolated, new.only_isolated),
        ("margin_mode", old.margin_mode.value, new.margin_mode.value),
        ("growth_mode", old.growth_mode, new.growth_mode),
    )
    return [SpecChange(coin, name, before, after) for name, before, after in fields if before != after]


# ------------------------------------------------------------------ the table


class MarketRegistry:
    """The spec table of the discovered markets. Reads are plain dict lookups, fit for the hot path.

    `dexes` are all dexes `perpDexs` listed; `specs` are the markets of the dexes that were discovered.
    A market that later vanishes from meta keeps its last spec here (positions on it still need one) and is
    blocked for good. Duplicate names keep their first entry for lookups; `duplicate_names` lists them.
    """

    def __init__(self, dexes: Iterable[PerpDex], specs: Iterable[MarketSpec]) -> None:
        self._dexes: dict[str, PerpDex] = {dex.name: dex for dex in dexes}
        self._blocked: dict[str, str] = {}
        self._vanished: set[str] = set()
        self._load(list(specs))

    def _load(self, specs: list[MarketSpec]) -> None:
        self._as_listed = tuple(specs)  # duplicates included, so a refresh carries them into duplicate_names
        by_coin: dict[str, MarketSpec] = {}
        for spec in specs:
            by_coin.setdefault(spec.name, spec)
        self._by_coin = by_coin
        self._by_asset = {spec.asset_id: spec for spec in reversed(by_coin.values())}
        self._coins = tuple(by_coin)
        self._duplicates = _duplicate_names(spec.name for spec in specs)
        dexes_with_markets = {spec.key.dex for spec in specs}
        self._oi_caps = {
            coin: cap
            for dex in self._dexes.values()
            if dex.name in dexes_with_markets
            for coin, cap in dex.oi_caps.items()
        }

    # --- hot-path reads

    def spec(self, coin: str) -> MarketSpec | None:
        return self._by_coin.get(coin)

    def by_asset(self, asset_id: int) -> MarketSpec | None:
        return self._by_asset.get(asset_id)

    def oi_cap(self, coin: str) -> Decimal | None:
        return self._oi_caps.get(coin)

    def is_blocked(self, coin: str) -> str | None:
        """Why new entries on `coin` are not allowed, or None. Unknown markets are blocked too."""
        reason = self._blocked.get(coin)
        if reason is not None:
            return reason
        spec = self._by_coin.get(coin)
        if spec is None:
            return f"{coin} is not a discovered market"
        if coin in self._vanished:
            return f"{coin} is no longer listed in meta(dex={spec.key.dex!r})"
        if spec.is_delisted:
            return f"{coin} is delisted"
        return None

    # --- the rest

    @property
    def coins(self) -> tuple[str, ...]:
        """Every market in the table, in discovery order (a vanished market stays until restart)."""
        return self._coins

    @property
    def specs(self) -> tuple[MarketSpec, ...]:
        return tuple(self._by_coin.values())

    @property
    def dexes(self) -> tuple[PerpDex, ...]:
        """Every dex `perpDexs` listed, discovered or not (the first dex has name "")."""
        return tuple(self._dexes.values())

    @property
    def duplicate_names(self) -> tuple[str, ...]:
        """Names occurring more than once (compared case-insensitively), spelled as the exchange does."""
        return self._duplicates

    def dex(self, name: str) -> PerpDex | None:
        return self._dexes.get(name)

    def block(self, coin: str, reason: str) -> None:
        """Block new entries on `coin`; a second reason is appended to the first."""
        earlier = self._blocked.get(coin)
        self._blocked[coin] = reason if earlier is None else f"{earlier}; {reason}"

    def unblock(self, coin: str) -> None:
        """Operator action: clear blocks from spec changes. Delisted and vanished markets stay blocked."""
        self._blocked.pop(coin, None)

    def _listed_spec(self, coin: str) -> MarketSpec | None:
        """The spec of a market meta still lists (delisted included), or None."""
        return None if coin in self._vanished else self._by_coin.get(coin)

    def _replace_with(self, fresh: MarketRegistry, vanished: Iterable[MarketSpec]) -> None:
        kept = list(vanished)
        self._dexes = dict(fresh._dexes)
        self._vanished = {spec.name for spec in kept}
        # Vanished markets go last so a fresh market that took over their asset id wins `by_asset`.
        self._load([*fresh._as_listed, *kept])


def _duplicate_names(names: Iterable[str]) -> tuple[str, ...]:
    by_folded: dict[str, list[str]] = {}
    for name in names:
        by_folded.setdefault(name.casefold(), []).append(name)
    return tuple(name for group in by_folded.values() if len(group) > 1 for name in group)


# ------------------------------------------------------------------ discovery


def _meta_request(dex: str) -> dict[str, str]:
    # `dex` defaults to the first dex; leaving it out is the documented way to ask for that one.
    return {"type": "meta", "dex": dex} if dex else {"type": "meta"}


def _selected_dexes(listed: Sequence[PerpDex], wanted: Sequence[str]) -> list[PerpDex]:
    if not wanted:
        return [dex for dex in listed if not dex.is_first]
    return [dex for dex in listed if dex.name in wanted]


async def discover(source: InfoSource, *, dexes: Sequence[str] = ()) -> MarketRegistry:
    """Read `perpDexs`, then `meta(dex)` for each wanted dex, in perpDexs order.

    `dexes` names builder dexes; empty means every builder dex. The first (validator) dex is read only when
    `""` is among `dexes`. A named dex that perpDexs does not list is skipped here; preflight reports it.
    """
    listed = parse_perp_dexs(await source.info({"type": "perpDexs"}))
    specs: list[MarketSpec] = []
    for dex in _selected_dexes(listed, dexes):
        body = await source.info(_meta_request(dex.name))
        specs.extend(parse_meta(body, dex=dex.name, dex_index=dex.index))
    return MarketRegistry(listed, specs)


# ------------------------------------------------------------------ refresh


def _market_changes(registry: MarketRegistry, fresh: MarketRegistry) -> list[SpecChange]:
    changes: list[SpecChange] = []
    for coin in dict.fromkeys([*registry.coins, *fresh.coins]):
        old, new = registry._listed_spec(coin), fresh.spec(coin)
        if old is not None and new is not None:
            changes.extend(_spec_changes(coin, old, new))
        elif old is not new:
            changes.append(SpecChange(coin, "listing", _listing(old), _listing(new)))
        if registry.oi_cap(coin) != fresh.oi_cap(coin):
            changes.append(SpecChange(coin, "oi_cap", registry.oi_cap(coin), fresh.oi_cap(coin)))
    return changes


def apply_refresh(registry: MarketRegistry, fresh: MarketRegistry) -> list[SpecChange]:
    """Make `registry` hold the specs of `fresh` and return what changed, in table order.

    Changes of szDecimals, max leverage, asset id or listing status (delisted, vanished, new) block the
    market for new entries; margin mode, growth mode and OI-cap changes are only reported.
    """
    changes = _market_changes(registry, fresh)
    vanished = [spec for spec in registry.specs if fresh.spec(spec.name) is None]
    registry._replace_with(fresh, vanished)
    for change in changes:
        if change.blocks_entries:
            registry.block(change.coin, f"spec changed: {change.describe()}")
    return changes


def _next_slot(previous: float, interval_s: float, now: float) -> float:
    """The next slot of the fixed schedule after `now`: a slow refresh skips slots rather than bunching up."""
    slot = previous + interval_s
    while slot <= now:
        slot += interval_s
    return slot


async def _refresh_once(
    registry: MarketRegistry,
    source: InfoSource,
    dexes: Sequence[str],
    on_change: Callable[[list[SpecChange]], None],
    timeout_s: float,
) -> None:
    fresh: MarketRegistry | None = None
    with trio.move_on_after(timeout_s):
        try:
            fresh = await discover(source, dexes=dexes)
        except Exception as exc:  # a failed refresh must never end the task; the next interval retries
            log.warning("spec_refresh_failed", error=repr(exc))
            return
    if fresh is None:
        log.warning("spec_refresh_timed_out", timeout_s=timeout_s)
        return
    changes = apply_refresh(registry, fresh)
    if changes:
        log.warning("spec_changes", changes=[f"{c.coin}: {c.describe()}" for c in changes])
        on_change(changes)


async def run_spec_refresh(
    registry: MarketRegistry,
    source: InfoSource,
    *,
    interval_s: float,
    dexes: Sequence[str] = (),
    on_change: Callable[[list[SpecChange]], None],
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Re-read specs at start + interval_s, + 2·interval_s, … on Trio's clock, until cancelled.

    Reports started at once. A refresh that fails or takes longer than `interval_s` is logged and left to the
    next slot. `on_change` gets every non-empty list of changes (operator events); an error it raises
    propagates, since that is a bug in the caller rather than a failed refresh.
    """
    if interval_s <= 0:
        raise ValueError(f"interval_s must be > 0, got {interval_s}")
    task_status.started()
    slot = trio.current_time() + interval_s
    while True:
        await trio.sleep_until(slot)
        await _refresh_once(registry, source, dexes, on_change, timeout_s=interval_s)
        slot = _next_slot(slot, interval_s, trio.current_time())
