"""Rules that relate keys to each other, and warnings about legal but risky settings.

Each rule names the top-level keys it reads; the loader skips a rule when one of them failed to load (it was
replaced by defaults), so every other rule still reports in the same run. Rules may look at the raw tables to
tell a written key from a defaulted one: trading mode needs certain keys written out (predecessor S-2).
"""

import ipaddress
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import Any

import attrs

from hip3.config.errors import ACCOUNT_ADDRESS_ENV, ConfigProblem, show
from hip3.config.schema import NETWORK_URLS, ZERO_ADDRESS, Config, field_type

RawTable = dict[str, Any]
RuleCheck = Callable[[Config, RawTable], Iterable[ConfigProblem]]

# Keys trading mode needs written in the file: a default could be larger than the operator meant.
TRADING_REQUIRED_KEYS = (
    "network.name",
    "position.max_notional_per_market",
    "position.max_total_notional",
    "position.max_concurrent_positions",
    "risk_monitor.max_loss_usd",
)
LARGE_TOTAL_NOTIONAL = Decimal(10_000)


@attrs.frozen
class Rule:
    reads: frozenset[str]
    check: RuleCheck


RULES: list[Rule] = []


def rule(*reads: str) -> Callable[[RuleCheck], RuleCheck]:
    def register(check: RuleCheck) -> RuleCheck:
        RULES.append(Rule(frozenset(reads), check))
        return check

    return register


def cross_field_problems(config: Config, raw: RawTable, failed: frozenset[str]) -> list[ConfigProblem]:
    """Problems from every rule whose inputs loaded."""
    return [problem for each in RULES if not each.reads & failed for problem in each.check(config, raw)]


def is_written(raw: RawTable, dotted: str) -> bool:
    *sections, key = dotted.split(".")
    table: Any = raw
    for name in sections:
        table = table.get(name) if isinstance(table, dict) else None
    return isinstance(table, dict) and key in table


def _default_of(dotted: str) -> Any:
    section_name, key = dotted.split(".")
    section_class = field_type(attrs.fields_dict(Config)[section_name])
    return attrs.fields_dict(section_class)[key].default


# Trading mode


@rule("mode")
def _trading_keys_written(config: Config, raw: RawTable) -> Iterator[ConfigProblem]:
    if not config.is_trading:
        return
    for dotted in TRADING_REQUIRED_KEYS:
        if not is_written(raw, dotted):
            default = _default_of(dotted)
            shown = f"; observation mode defaults to {show(default)}" if dotted != "network.name" else ""
            yield ConfigProblem(dotted, f"required in trading mode: write the value you mean{shown}")


@rule("mode", "account")
def _trading_account(config: Config, _raw: RawTable) -> Iterator[ConfigProblem]:
    if config.is_trading and config.account.account_address is None:
        message = f"required in trading mode: set account.account_address or {ACCOUNT_ADDRESS_ENV}"
        yield ConfigProblem("account.account_address", message)


@rule("mode", "markets")
def _trading_allowlist(config: Config, _raw: RawTable) -> Iterator[ConfigProblem]:
    if config.is_trading and not config.markets.allowlist:
        yield ConfigProblem(
            "markets.allowlist", "trading mode needs at least one [[markets.allowlist]] market"
        )


@rule("mode", "detector", "position")
def _order_cap_within_market_cap(config: Config, _raw: RawTable) -> Iterator[ConfigProblem]:
    order_cap, market_cap = config.detector.max_notional, config.position.max_notional_per_market
    if config.is_trading and order_cap > market_cap:
        message = (
            f"{order_cap} is above position.max_notional_per_market ({market_cap}); lower it to at most that"
        )
        yield ConfigProblem("detector.max_notional", message)


# Within and between sections


@rule("account")
def _no_zero_addresses(config: Config, _raw: RawTable) -> Iterator[ConfigProblem]:
    for key in ("account_address", "signer_address", "vault_address"):
        if getattr(config.account, key) == ZERO_ADDRESS:
            yield ConfigProblem(f"account.{key}", "the zero address is a placeholder; write the real address")


@rule("network")
def _network_urls(config: Config, _raw: RawTable) -> Iterator[ConfigProblem]:
    network = config.network
    if network.name == "local":
        examples = {"api_url": "http://127.0.0.1:8545", "ws_url": "ws://127.0.0.1:8545/ws"}
        for key, example in examples.items():
            if not getattr(network, key):
                yield ConfigProblem(
                    f"network.{key}", f'required when network.name = "local" (e.g. "{example}")'
                )
        return
    api_url, ws_url = NETWORK_URLS[network.name]
    fixed = {"api_url": api_url, "ws_url": ws_url, "sign_as": network.name}
    for key, expected in fixed.items():
        written = getattr(network, key)
        if written != expected:
            message = (
                f'{show(written)} does not match network.name = "{network.name}" (expected "{expected}"); '
                'use name = "local" for another exchange'
            )
            yield ConfigProblem(f"network.{key}", message)


@rule("markets")
def _markets_unique_and_discovered(config: Config, _raw: RawTable) -> Iterator[ConfigProblem]:
    markets = config.markets
    first_index: dict[str, int] = {}
    for index, dex in enumerate(markets.dexes):
        if dex in first_index:
            yield ConfigProblem(f"markets.dexes[{index}]", f'"{dex}" is listed twice')
        first_index.setdefault(dex, index)
    first_seen: dict[str, int] = {}
    for index, entry in enumerate(markets.allowlist):
        path = f"markets.allowlist[{index}].coin"
        if entry.coin in first_seen:
            yield ConfigProblem(
                path, f'"{entry.coin}" is listed twice (also markets.allowlist[{first_seen[entry.coin]}])'
            )
        first_seen.setdefault(entry.coin, index)
        dex = entry.coin.split(":", 1)[0]
        if markets.dexes and dex not in markets.dexes:
            yield ConfigProblem(path, f'"{entry.coin}" is on dex "{dex}", which markets.dexes does not list')


# Keys that must not exceed another key of the same section: (section, smaller, larger, strictly smaller).
ORDERED_KEYS = [
    ("position", "max_notional_per_market", "max_total_notional", False),
    ("detector", "min_order_notional", "max_notional", False),
    ("detector", "min_book_notional", "normal_book_notional", True),
    ("websocket", "reconnect_base_delay_ms", "reconnect_max_delay_ms", False),
    ("websocket", "pong_timeout_ms", "heartbeat_interval_ms", False),
    ("http", "retry_base_delay_ms", "retry_max_delay_ms", False),
    ("risk", "clock_skew_warn_ms", "clock_skew_block_ms", False),
    ("risk_monitor", "flatten_retry_base_delay_ms", "flatten_retry_max_delay_ms", False),
    ("deadman", "refresh_margin_ms", "arm_ahead_ms", True),
]


def _ordered(section: str, low_key: str, high_key: str, strict: bool) -> RuleCheck:
    def check(config: Config, _raw: RawTable) -> Iterator[ConfigProblem]:
        table = getattr(config, section)
        low, high = getattr(table, low_key), getattr(table, high_key)
        if low > high or (strict and low == high):
            relation = "below" if strict else "at most"
            yield ConfigProblem(
                f"{section}.{low_key}", f"{low} must be {relation} {section}.{high_key} ({high})"
            )

    return check


for _section, _low_key, _high_key, _strict in ORDERED_KEYS:
    rule(_section)(_ordered(_section, _low_key, _high_key, _strict))


def config_warnings(config: Config) -> list[str]:
    """Legal settings an operator should look at twice, as "path: text" lines."""
    checks: list[Callable[[Config], Iterable[str]]] = [
        _warn_mainnet_trading,
        _warn_local_signs_for_mainnet,
        _warn_order_cap_above_market_cap,
        _warn_disabled_safeguards,
        _warn_large_caps,
        _warn_thresholds_below_cost,
        _warn_exposed_dashboard,
        _warn_plain_http_webhook,
    ]
    return [warning for check in checks for warning in check(config)]


def _warn_mainnet_trading(config: Config) -> Iterator[str]:
    if config.is_trading and config.network.is_mainnet:
        position, monitor = config.position, config.risk_monitor
        yield (
            f"mode: trading on mainnet with real money: ${position.max_notional_per_market} per market, "
            f"${position.max_total_notional} in total, "
            f"{position.max_concurrent_positions} positions at most, "
            f"hard stop after a ${monitor.max_loss_usd} loss"
        )


def _warn_local_signs_for_mainnet(config: Config) -> Iterator[str]:
    if config.network.name == "local" and config.network.sign_as == "mainnet":
        yield "network.sign_as: actions for a local exchange are signed for mainnet and are valid there too"


def _warn_order_cap_above_market_cap(config: Config) -> Iterator[str]:
    order_cap, market_cap = config.detector.max_notional, config.position.max_notional_per_market
    if not config.is_trading and order_cap > market_cap:
        yield (
            f"detector.max_notional: {order_cap} is above position.max_notional_per_market ({market_cap}); "
            "trading mode would refuse this"
        )


def _warn_disabled_safeguards(config: Config) -> Iterator[str]:
    zero_disables = {
        "risk.max_ctx_age_ms": config.risk.max_ctx_age_ms,
        "risk.max_mark_mid_divergence_bps": config.risk.max_mark_mid_divergence_bps,
        "risk.spread_shock_multiplier": config.risk.spread_shock_multiplier,
        "risk.oi_cap_fraction": config.risk.oi_cap_fraction,
        "risk_monitor.max_consecutive_failures": config.risk_monitor.max_consecutive_failures,
        "risk_monitor.max_alarming_rejects": config.risk_monitor.max_alarming_rejects,
    }
    for path, value in zero_disables.items():
        if value == 0:
            yield f"{path}: 0 disables this safeguard"
    if config.is_trading:
        switched_off = {
            "mark_regression.enabled": config.mark_regression.enabled,
            "deadman.enabled": config.deadman.enabled,
            "position.position_resync_interval_secs": config.position.position_resync_interval_secs,
        }
        for path, value in switched_off.items():
            if not value:
                yield f"{path}: off while trading"


def _warn_large_caps(config: Config) -> Iterator[str]:
    if config.is_trading and config.position.max_total_notional > LARGE_TOTAL_NOTIONAL:
        cap = config.position.max_total_notional
        yield f"position.max_total_notional: {cap} USD is a large cap; is it meant?"


def _warn_thresholds_below_cost(config: Config) -> Iterator[str]:
    cost = config.detector.taker_fee_bps + config.detector.slippage_bps
    for index, entry in enumerate(config.markets.allowlist):
        if entry.threshold_bps is not None and entry.threshold_bps < cost:
            yield (
                f"markets.allowlist[{index}].threshold_bps: {entry.threshold_bps} ({entry.coin}) is below "
                f"taker fee + slippage ({cost} bps): such trades lose money by design"
            )


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


def _warn_exposed_dashboard(config: Config) -> Iterator[str]:
    dashboard = config.dashboard
    if dashboard.enabled and not _is_loopback(dashboard.host):
        yield f"dashboard.host: {show(dashboard.host)} makes the dashboard reachable from other machines"


def _warn_plain_http_webhook(config: Config) -> Iterator[str]:
    url = config.alerts.webhook_url
    if url is not None and url.startswith("http://"):
        yield "alerts.webhook_url: alerts are sent unencrypted (http://)"
