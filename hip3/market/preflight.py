"""Start-up checks of the configured markets against what discovery found.

`preflight` collects every problem at once, so an operator fixes the configuration in one pass; errors stop
the bot (`require_clean`), warnings are logged. It takes plain values (allowlisted coin names, the mode, the
dexes named in the configuration) so it does not depend on the config classes.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

import attrs

from hip3.core.market import MarketSpec
from hip3.market.registry import MarketRegistry

TRADING = "trading"
OBSERVATION = "observation"
MODES = (OBSERVATION, TRADING)
MAX_SUGGESTIONS = 3
SUGGESTION_CUTOFF = 0.6


@attrs.frozen
class PreflightReport:
    errors: list[str]
    warnings: list[str]

    @property
    def ok(self) -> bool:
        return not self.errors


class PreflightError(Exception):
    """Preflight found errors; the message lists all of them."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = list(errors)
        lines = "\n".join(f"  - {error}" for error in self.errors)
        super().__init__(f"preflight failed with {len(self.errors)} error(s):\n{lines}")


def require_clean(report: PreflightReport) -> None:
    if report.errors:
        raise PreflightError(report.errors)


def _symbol(coin: str) -> str:
    return coin.partition(":")[2] or coin


def _close_matches(coin: str, candidates: Sequence[str]) -> list[str]:
    """Discovered names whose symbol is like `coin`'s, on any dex, most alike first; case is ignored.

    Symbols are compared rather than whole names: a shared "xyz:" prefix would make unrelated markets of the
    same dex look alike, and a market configured on the wrong dex should still be found.
    """
    wanted = _symbol(coin).casefold()
    scored = []
    for name in candidates:
        score = difflib.SequenceMatcher(None, wanted, _symbol(name).casefold()).ratio()
        if score >= SUGGESTION_CUTOFF:
            whole = difflib.SequenceMatcher(None, coin.casefold(), name.casefold()).ratio()
            scored.append((-score, -whole, name))
    return [name for _, _, name in sorted(scored)[:MAX_SUGGESTIONS]]


def _missing_market(coin: str, registry: MarketRegistry) -> str:
    message = f"market {coin!r} was not found among the discovered markets"
    dex = coin.partition(":")[0] if ":" in coin else ""
    if registry.dex(dex) is not None and not any(spec.key.dex == dex for spec in registry.specs):
        message += f" (its dex {dex!r} was not discovered: add it to markets.dexes)"
    matches = _close_matches(coin, registry.coins)
    if matches:
        message += "; did you mean " + " or ".join(f'"{name}"' for name in matches) + "?"
    return message


def _mode_errors(allowlist: Sequence[str], mode: str) -> list[str]:
    if mode not in MODES:
        return [f"unknown mode {mode!r}; expected one of {', '.join(MODES)}"]
    if mode == TRADING and not allowlist:
        return ["trading mode needs an explicit, non-empty market allowlist ([[markets.allowlist]])"]
    return []


def _dex_errors(registry: MarketRegistry, dexes_named: Sequence[str]) -> list[str]:
    listed = [dex.name for dex in registry.dexes if not dex.is_first]
    return [
        f"dex {name!r} is configured but perpDexs does not list it (listed: {', '.join(listed) or 'none'})"
        for name in dexes_named
        if registry.dex(name) is None
    ]


def _duplicate_errors(registry: MarketRegistry, allowlist: Sequence[str]) -> list[str]:
    errors = [f"the exchange lists market name {name!r} more than once" for name in registry.duplicate_names]
    seen: set[str] = set()
    for coin in allowlist:
        if coin.casefold() in seen:
            errors.append(f"market {coin!r} is in the allowlist more than once")
        seen.add(coin.casefold())
    return errors


def _delisted_findings(specs: Sequence[MarketSpec], mode: str) -> tuple[list[str], list[str]]:
    delisted = [spec.name for spec in specs if spec.is_delisted]
    if mode == TRADING:
        return [f"market {name!r} is delisted and cannot be traded" for name in delisted], []
    return [], [f"market {name!r} is delisted; it has no live market to observe" for name in delisted]


def _isolated_warning(specs: Sequence[MarketSpec]) -> list[str]:
    isolated = [f"{spec.name} ({spec.margin_mode.value})" for spec in specs if spec.isolated_only]
    if not isolated:
        return []
    return [f"isolated margin will be used for the isolated-only markets: {', '.join(isolated)}"]


def _checked_specs(
    registry: MarketRegistry, found: list[MarketSpec], allowlist: Sequence[str], mode: str
) -> list[MarketSpec]:
    """The markets the bot will use: the allowlisted ones, or every market when observing whole dexes."""
    if allowlist:
        return found
    return list(registry.specs) if mode == OBSERVATION else []


def preflight(
    registry: MarketRegistry, *, allowlist: Sequence[str], mode: str, dexes_named: Sequence[str]
) -> PreflightReport:
    """Check the configuration against the registry; every finding, none raised.

    The markets checked for delisting and isolated margin are the allowlisted ones, or every discovered
    market when observing with an empty allowlist (whole dexes).
    """
    configured = list(dict.fromkeys(allowlist))
    missing = [coin for coin in configured if registry.spec(coin) is None]
    found = [spec for coin in configured if (spec := registry.spec(coin)) is not None]
    checked = _checked_specs(registry, found, allowlist, mode)
    delisted_errors, delisted_warnings = _delisted_findings(checked, mode)
    errors = [
        *_mode_errors(allowlist, mode),
        *_dex_errors(registry, dexes_named),
        *_duplicate_errors(registry, allowlist),
        *(_missing_market(coin, registry) for coin in missing),
        *delisted_errors,
    ]
    return PreflightReport(errors=errors, warnings=[*delisted_warnings, *_isolated_warning(checked)])
