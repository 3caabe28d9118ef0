"""The configuration schema: one frozen attrs class per TOML section, each key with a default and a doc line.

Key names and defaults follow the predecessor bot where it had them (shared/reference/predecessor.md §1.19).
Money, prices and bps are `Decimal`; durations are integers whose name carries the unit; floats are used only
for statistics parameters. Each field's metadata holds `doc` (one line, for docs/configuration.md),
`checks` (value constraints reported by the loader and enforced on direct construction) and, for computed
defaults, `derived` (how the default is found).
"""

# ruff: noqa: RUF009  (setting() and section() return attrs.field(...), which ruff cannot see through)

import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, Protocol

import attrs

from hip3.config.errors import show

Mode = Literal["observation", "trading"]
NetworkName = Literal["mainnet", "testnet", "local"]
SigningNetwork = Literal["mainnet", "testnet"]
LogLevel = Literal["debug", "info", "warning", "error"]
LogFormat = Literal["json", "console"]
AlertFormat = Literal["generic", "discord", "slack"]

Number = int | Decimal | float

NETWORK_URLS: dict[str, tuple[str, str]] = {
    "mainnet": ("https://api.hyperliquid.xyz", "wss://api.hyperliquid.xyz/ws"),
    "testnet": ("https://api.hyperliquid-testnet.xyz", "wss://api.hyperliquid-testnet.xyz/ws"),
}
ZERO_ADDRESS = "0x" + "0" * 40
EXCHANGE_MIN_ORDER_NOTIONAL = Decimal(10)


# Value checks: each yields (path suffix, message) for a bad value and describes what is allowed.


class Check(Protocol):
    def problems(self, value: Any) -> Iterator[tuple[str, str]]: ...

    def describe(self) -> str: ...


def _number(value: Number) -> str:
    return repr(value) if isinstance(value, float) else str(value)


@attrs.frozen
class Range:
    """A number within bounds; `low_open` makes the lower bound exclusive."""

    low: Number | None = None
    high: Number | None = None
    low_open: bool = False

    def problems(self, value: Any) -> Iterator[tuple[str, str]]:
        if value is None:
            return
        too_low = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        too_high = self.high is not None and value > self.high
        if too_low or too_high:
            yield "", f"{show(value)} is out of range (allowed: {self.describe()})"

    def describe(self) -> str:
        if self.low is not None and self.high is not None and not self.low_open:
            return f"{_number(self.low)} to {_number(self.high)}"
        low = None if self.low is None else f"{'>' if self.low_open else '≥'} {_number(self.low)}"
        high = None if self.high is None else f"≤ {_number(self.high)}"
        return " and ".join(bound for bound in (low, high) if bound) or "any number"


@attrs.frozen
class Matches:
    """A string that matches a pattern; `what` says in words what the pattern accepts."""

    pattern: str
    what: str

    def problems(self, value: Any) -> Iterator[tuple[str, str]]:
        if value is not None and not re.fullmatch(self.pattern, str(value)):
            yield "", f"{show(str(value))} is not {self.what}"

    def describe(self) -> str:
        return self.what


@attrs.frozen
class Each:
    """Every element of an array passes `check`."""

    check: Check

    def problems(self, value: Any) -> Iterator[tuple[str, str]]:
        for index, element in enumerate(value):
            for suffix, message in self.check.problems(element):
                yield f"[{index}]{suffix}", message

    def describe(self) -> str:
        return f"each {self.check.describe()}"


def _validator(checks: tuple[Check, ...]) -> Any:
    def validate(_instance: object, attribute: "attrs.Attribute[Any]", value: Any) -> None:
        found = [
            f"{attribute.name}{suffix}: {message}"
            for check in checks
            for suffix, message in check.problems(value)
        ]
        if found:
            raise ValueError("; ".join(found))

    return validate


def setting(
    default: Any, doc: str, *checks: Check, derived: str = "", converter: Any = None, redact: bool = False
) -> Any:
    """A configuration key: its default (`attrs.NOTHING`: required), a one-line description and the
    constraints on its value; `redact` hides the value when the configuration is shown."""
    return attrs.field(
        default=default,
        validator=_validator(checks) if checks else None,
        converter=converter,
        metadata={"doc": doc, "checks": checks, "derived": derived, "redact": redact},
    )


def section(cls: type, doc: str) -> Any:
    """A section of the file (a TOML table) holding the keys of `cls`."""
    return attrs.field(factory=cls, metadata={"doc": doc, "checks": (), "derived": ""})


NON_NEGATIVE = Range(0)
POSITIVE = Range(0, low_open=True)
FRACTION = Range(0, 1)
POSITIVE_FRACTION = Range(0, 1, low_open=True)
BPS = Range(0, 10_000)
PORT = Range(1, 65_535)
ADDRESS = Matches(r"0x[0-9a-fA-F]{40}", "an address (0x followed by 40 hex digits)")
HTTP_URL = Matches(r"(https?://[^\s<>]+)?", "an http:// or https:// URL")
WS_URL = Matches(r"(wss?://[^\s<>]+)?", "a ws:// or wss:// URL")
DEX_NAME = Matches(r"[a-z][a-z0-9]{0,7}", "a builder dex name (lower-case letters and digits, e.g. xyz)")
COIN = Matches(
    r"[a-z][a-z0-9]{0,7}:[A-Za-z0-9][A-Za-z0-9_.\-]*", "a HIP-3 market name dex:COIN (e.g. xyz:SILVER)"
)
NOT_BLANK = Matches(r"\S+", "a non-empty string without spaces")


def field_type(field: "attrs.Attribute[Any]") -> Any:
    """The annotated type of a schema field (the schema uses no string annotations, so it is always set)."""
    return field.type


def is_section(kind: Any) -> bool:
    return isinstance(kind, type) and attrs.has(kind)


def _lower(value: str | None) -> str | None:
    return value.lower() if isinstance(value, str) else value


def _without_trailing_slash(value: str) -> str:
    return value.rstrip("/") if isinstance(value, str) else value


# Sections


def _derived_api_url(network: "NetworkConfig") -> str:
    return NETWORK_URLS.get(network.name, ("", ""))[0]


def _derived_ws_url(network: "NetworkConfig") -> str:
    return NETWORK_URLS.get(network.name, ("", ""))[1]


def _derived_sign_as(network: "NetworkConfig") -> str:
    return network.name if network.name in NETWORK_URLS else "testnet"


@attrs.frozen(kw_only=True)
class NetworkConfig:
    name: NetworkName = setting(
        "mainnet",
        "exchange to use; required in trading mode; local: a simulator or other server at api_url/ws_url",
    )
    api_url: str = setting(
        attrs.Factory(_derived_api_url, takes_self=True),
        "HTTP base URL for /info and /exchange; fixed for mainnet and testnet, required for local",
        HTTP_URL,
        derived="from name",
        converter=_without_trailing_slash,
    )
    ws_url: str = setting(
        attrs.Factory(_derived_ws_url, takes_self=True),
        "WebSocket URL; fixed for mainnet and testnet, required for local",
        WS_URL,
        derived="from name",
        converter=_without_trailing_slash,
    )
    sign_as: SigningNetwork = setting(
        attrs.Factory(_derived_sign_as, takes_self=True),
        "network whose signatures actions carry (source 'a' or 'b'); follows name, settable only for local",
        derived='from name ("testnet" for local)',
    )

    @property
    def is_mainnet(self) -> bool:
        """Whether actions are signed for mainnet."""
        return self.sign_as == "mainnet"


@attrs.frozen(kw_only=True)
class AccountConfig:
    account_address: str | None = setting(
        None,
        "account traded and queried (main or sub-account); required in trading mode; "
        "HIP3_ACCOUNT_ADDRESS supplies it when the file does not",
        ADDRESS,
        converter=_lower,
    )
    signer_address: str | None = setting(
        None,
        "address of the signing key (the account or an approved API wallet); the key must match it when set",
        ADDRESS,
        converter=_lower,
    )
    vault_address: str | None = setting(
        None,
        "vault or sub-account the orders are for (sent as vaultAddress); unset: none",
        ADDRESS,
        converter=_lower,
    )
    key_file: Path | None = setting(
        None, "file holding the signing key (readable by its owner only); the alternative to HIP3_TRADING_KEY"
    )


@attrs.frozen(kw_only=True)
class MarketEntry:
    coin: str = setting(attrs.NOTHING, "market name as dex:COIN, e.g. xyz:SILVER", COIN)
    threshold_bps: Decimal | None = setting(
        None,
        "entry threshold in bps for this market, replacing taker fee + slippage + min edge",
        Range(0, 10_000, low_open=True),
    )


@attrs.frozen(kw_only=True)
class MarketsConfig:
    dexes: tuple[str, ...] = setting(
        (), 'builder dexes to discover, e.g. ["xyz"]; empty discovers every builder dex', Each(DEX_NAME)
    )
    allowlist: tuple[MarketEntry, ...] = setting(
        (),
        "markets to trade, as [[markets.allowlist]] tables; empty observes every market of the dexes; "
        "trading needs at least one",
    )
    spec_refresh_interval_s: int = setting(
        300,
        "seconds between re-reads of market specs, to catch deployer parameter changes",
        Range(10, 86_400),
    )


@attrs.frozen(kw_only=True)
class WebSocketConfig:
    heartbeat_interval_ms: int = setting(
        45_000,
        "send a ping after this long without sending (the server closes idle connections after 60 s)",
        Range(1_000, 55_000),
    )
    pong_timeout_ms: int = setting(
        10_000, "reconnect when a ping gets no pong within this", Range(100, 60_000)
    )
    connect_timeout_ms: int = setting(10_000, "time allowed to open the connection", Range(100, 120_000))
    subscribe_timeout_ms: int = setting(
        10_000,
        "time allowed for every subscription to be acknowledged before reconnecting",
        Range(100, 120_000),
    )
    reconnect_base_delay_ms: int = setting(
        1_000, "first reconnect delay; doubles per failed attempt", Range(10, 60_000)
    )
    reconnect_max_delay_ms: int = setting(60_000, "longest reconnect delay", Range(10, 3_600_000))
    reconnect_jitter: float = setting(0.2, "random fraction (±) applied to each reconnect delay", FRACTION)
    healthy_reset_ms: int = setting(
        30_000, "a connection that stays up this long resets the reconnect backoff", Range(0, 3_600_000)
    )
    max_reconnect_attempts: int = setting(
        0, "consecutive failed reconnects before giving up (0 = never give up)", NON_NEGATIVE
    )
    post_timeout_ms: int = setting(
        5_000, "time a post request may wait for its response", Range(100, 120_000)
    )
    max_inflight_posts: int = setting(
        100, "post requests awaiting a response at once (exchange limit 100)", Range(1, 100)
    )
    messages_per_minute: int = setting(
        2_000,
        "messages sent in any minute, pings and posts included (exchange limit 2000 per IP)",
        Range(1, 2_000),
    )
    outbound_queue_size: int = setting(1_000, "messages that may wait for the writer task", Range(1, 100_000))


@attrs.frozen(kw_only=True)
class HttpConfig:
    timeout_ms: int = setting(10_000, "time allowed for one HTTP request", Range(100, 120_000))
    retries: int = setting(3, "retries after a 429, a 5xx or a dropped connection", Range(0, 20))
    retry_base_delay_ms: int = setting(500, "first retry delay; doubles per retry", Range(0, 60_000))
    retry_max_delay_ms: int = setting(10_000, "longest retry delay", Range(0, 600_000))
    weight_per_minute: int = setting(
        1_200, "request weight spent per minute (exchange limit 1200 per IP)", Range(1, 1_200)
    )


@attrs.frozen(kw_only=True)
class RiskConfig:
    max_bbo_age_ms: int = setting(
        0,
        "block a market whose best bid/offer is older than this (0, the default, disables it: bbo frames "
        "come only when the top changes, so this measures a quiet book, and a dislocation is a book that has "
        "not moved; max_ctx_age_ms catches a dead feed)",
        NON_NEGATIVE,
    )
    max_ctx_age_ms: int = setting(
        8_000, "block a market whose last asset-context message is older than this (0 disables)", NON_NEGATIVE
    )
    max_mark_mid_divergence_bps: Decimal = setting(
        Decimal(50), "block a market whose mark is further than this from its mid (0 disables)", BPS
    )
    spread_shock_multiplier: Decimal = setting(
        Decimal(3),
        "spread above this multiple of the market's spread EWMA cuts size, above 2x it blocks (0 disables)",
        NON_NEGATIVE,
    )
    spread_ewma_alpha: float = setting(
        0.05, "weight of the newest spread in each market's spread EWMA", POSITIVE_FRACTION
    )
    oi_cap_fraction: Decimal = setting(
        Decimal("0.95"),
        "block new entries once open interest reaches this fraction of the market's cap (0 disables)",
        FRACTION,
    )
    clock_skew_warn_ms: int = setting(
        2_000, "warn when the local clock and the exchange's differ by more than this", NON_NEGATIVE
    )
    clock_skew_block_ms: int = setting(
        5_000, "block trading while the local clock and the exchange's differ by more than this", POSITIVE
    )


@attrs.frozen(kw_only=True)
class DetectorConfig:
    taker_fee_bps: Decimal = setting(
        Decimal(4), "effective taker fee in bps (HIP-3 deployer share included) in the default threshold", BPS
    )
    slippage_bps: Decimal = setting(Decimal(2), "expected slippage in bps in the default threshold", BPS)
    min_edge_bps: Decimal = setting(Decimal(5), "edge in bps required beyond fee and slippage", BPS)
    sizing_alpha: Decimal = setting(
        Decimal("0.10"), "fraction of the visible size on the taken side to take", POSITIVE_FRACTION
    )
    max_notional: Decimal = setting(
        Decimal(50),
        "per-order cap in USD (orders use 99 % of it); at most position.max_notional_per_market",
        POSITIVE,
    )
    min_order_notional: Decimal = setting(
        Decimal(11),
        "smallest order in USD; smaller ones are raised to it when caps and book allow (exchange minimum 10)",
        Range(EXCHANGE_MIN_ORDER_NOTIONAL),
    )
    min_book_notional: Decimal = setting(
        Decimal(500), "no signal when the taken side of the book shows less than this in USD", NON_NEGATIVE
    )
    normal_book_notional: Decimal = setting(
        Decimal(5_000),
        "book notional in USD at which sizing_alpha applies in full (scaled down linearly below it)",
        POSITIVE,
    )
    oracle_direction_filter: bool = setting(True, "buy only while the oracle rises, sell only while it falls")
    oracle_velocity_filter: bool = setting(False, "require the oracle to have moved min_oracle_change_bps")
    min_oracle_change_bps: Decimal = setting(
        Decimal(3), "oracle move in bps the velocity filter requires", BPS
    )
    consecutive_moves_filter: bool = setting(
        True, "require min_consecutive_oracle_moves oracle moves in the signal's direction"
    )
    min_consecutive_oracle_moves: int = setting(
        2, "oracle moves in a row the consecutive-moves filter requires", Range(1, 100)
    )
    oracle_move_min_bps: Decimal = setting(
        Decimal(2), "smallest oracle change in bps that counts as a move", BPS
    )
    baseline_tracking: bool = setting(
        True, "measure edge above the market's usual oracle-mid gap (the structural-baseline correction)"
    )
    baseline_alpha: float = setting(
        0.001, "weight of the newest sample in the oracle-mid baseline EWMA", POSITIVE_FRACTION
    )
    baseline_min_samples: int = setting(
        100, "samples a market needs before its baseline is applied", Range(1, 1_000_000)
    )
    min_edge_above_baseline_bps: Decimal = setting(
        Decimal(0), "edge in bps required above the baseline when the correction applies", BPS
    )


@attrs.frozen(kw_only=True)
class PositionConfig:
    max_notional_per_market: Decimal = setting(
        Decimal(50),
        "cap in USD on position plus pending orders in one market; required in trading mode",
        POSITIVE,
    )
    max_total_notional: Decimal = setting(
        Decimal(100),
        "cap in USD on positions plus pending orders over all markets; required in trading mode",
        POSITIVE,
    )
    max_concurrent_positions: int = setting(
        5, "markets that may hold a position at once; required in trading mode", Range(1, 1_000)
    )
    position_resync_interval_secs: int = setting(
        60, "seconds between position resyncs with the exchange in trading mode (0 disables)", NON_NEGATIVE
    )


@attrs.frozen(kw_only=True)
class TimeStopConfig:
    threshold_ms: int = setting(
        30_000, "close a position held longer than this since its entry", Range(100, 86_400_000)
    )
    reduce_only_timeout_ms: int = setting(
        60_000, "cancel and re-send an exit order that has rested longer than this", Range(100, 3_600_000)
    )
    slippage_bps: Decimal = setting(
        Decimal(50), "time-stop and hard-stop exits are priced at mark ± this many bps", Range(0, 5_000)
    )


@attrs.frozen(kw_only=True)
class MarkRegressionConfig:
    enabled: bool = setting(True, "exit when the book has caught up with the oracle")
    exit_threshold_bps: Decimal = setting(
        Decimal(5), "exit a long when the bid is within this of the oracle, a short when the ask is", BPS
    )
    min_holding_time_ms: int = setting(
        1_000, "hold at least this long before this exit applies", NON_NEGATIVE
    )
    slippage_bps: Decimal = setting(
        Decimal(50), "exits are priced at the touch ± this many bps", Range(0, 5_000)
    )


@attrs.frozen(kw_only=True)
class RiskMonitorConfig:
    max_loss_usd: Decimal = setting(
        Decimal(1_000),
        "realised loss in USD (fees included) within window_seconds that latches the hard stop; "
        "required in trading mode",
        POSITIVE,
    )
    window_seconds: int = setting(
        3_600,
        "window in seconds over which losses, rejects and signer errors are counted",
        Range(60, 604_800),
    )
    max_consecutive_failures: int = setting(
        5, "losing round trips in a row allowed; one more latches the hard stop (0 disables)", NON_NEGATIVE
    )
    max_flatten_failed: int = setting(
        3, "flatten failures within window_seconds allowed; one more latches the hard stop", Range(1, 1_000)
    )
    max_alarming_rejects: int = setting(
        10,
        "non-benign order rejects within window_seconds allowed; one more latches the hard stop (0 disables)",
        NON_NEGATIVE,
    )
    max_signer_errors: int = setting(
        1,
        "signature or nonce rejects within window_seconds allowed; one more latches the hard stop",
        Range(1, 1_000),
    )
    flatten_retry_base_delay_ms: int = setting(
        500, "first delay before retrying an exit; doubles per retry", Range(10, 60_000)
    )
    flatten_retry_max_delay_ms: int = setting(
        10_000, "longest delay between exit retries", Range(10, 600_000)
    )


def _derived_journal_path(persistence: "PersistenceConfig") -> Path:
    return persistence.data_dir / "journal.sqlite3"


@attrs.frozen(kw_only=True)
class PersistenceConfig:
    data_dir: Path = setting(
        Path("data"), "directory for the journal and recordings (relative to the working dir)"
    )
    journal_path: Path = setting(
        attrs.Factory(_derived_journal_path, takes_self=True),
        "SQLite journal: orders, fills, round trips, signals, risk events, the hard-stop latch",
        derived="data_dir/journal.sqlite3",
    )
    record_market_data: bool = setting(
        True, "record raw bbo and asset-context frames (compressed) for replay"
    )
    buffer_size: int = setting(100, "records written per batch", Range(1, 100_000))
    flush_interval_ms: int = setting(1_000, "longest a record waits before it is written", Range(10, 60_000))
    queue_size: int = setting(
        10_000, "records that may wait for the writer before producers wait", Range(1, 1_000_000)
    )
    followup_offsets_ms: tuple[int, ...] = setting(
        (1_000, 3_000, 5_000),
        "delays after a signal at which its followups are recorded",
        Each(Range(1, 600_000)),
    )


@attrs.frozen(kw_only=True)
class TelemetryConfig:
    log_level: LogLevel = setting("info", "lowest level logged")
    log_format: LogFormat = setting("json", "json: one JSON object per line; console: readable lines")


@attrs.frozen(kw_only=True)
class DashboardConfig:
    enabled: bool = setting(False, "serve the dashboard, /api/snapshot, /healthz and /metrics")
    host: str = setting(
        "127.0.0.1", "address to bind; anything but loopback exposes it to the network", NOT_BLANK
    )
    port: int = setting(8080, "port to bind", PORT)
    update_interval_ms: int = setting(
        100, "interval between live pushes (at most 10 a second)", Range(100, 60_000)
    )
    max_connections: int = setting(10, "live push clients at once", Range(1, 1_000))


@attrs.frozen(kw_only=True)
class DeadmanConfig:
    enabled: bool = setting(
        True, "keep the exchange's scheduled cancel armed while any of our orders can rest"
    )
    arm_ahead_ms: int = setting(
        30_000,
        "how far ahead the scheduled cancel is set (the exchange needs at least 5 s)",
        Range(10_000, 86_400_000),
    )
    refresh_margin_ms: int = setting(10_000, "re-arm when less than this remains", Range(1_000, 86_400_000))
    daily_trigger_cap: int = setting(
        10, "scheduled-cancel triggers allowed per UTC day (exchange limit 10)", Range(1, 10)
    )


@attrs.frozen(kw_only=True)
class ShutdownConfig:
    deadline_s: int = setting(30, "seconds from SIGTERM or SIGINT to exit", Range(1, 600))
    flatten: bool = setting(True, "close every position on shutdown (resting orders are always cancelled)")


@attrs.frozen(kw_only=True)
class AlertsConfig:
    webhook_url: str | None = setting(
        None,
        "webhook that receives alerts; unset: no alerts (shown redacted: it holds a token)",
        HTTP_URL,
        redact=True,
    )
    format: AlertFormat = setting("generic", "payload shape: generic JSON, or Discord- or Slack-compatible")
    disconnect_alert_s: int = setting(
        60, "alert when the WebSocket stays down longer than this", Range(1, 86_400)
    )
    daily_summary: bool = setting(True, "send a daily summary at 00:00 UTC")
    timeout_ms: int = setting(
        5_000, "time allowed per delivery (failures never block trading)", Range(100, 60_000)
    )


@attrs.frozen(kw_only=True)
class Config:
    """The whole configuration of one bot process."""

    mode: Mode = setting("observation", "observation watches and records, never sends orders; trading trades")
    network: NetworkConfig = section(NetworkConfig, "which Hyperliquid exchange to talk to")
    account: AccountConfig = section(
        AccountConfig,
        "account and addresses; the key comes from HIP3_TRADING_KEY or key_file, never this file",
    )
    markets: MarketsConfig = section(MarketsConfig, "which markets to watch and trade")
    websocket: WebSocketConfig = section(
        WebSocketConfig, "the WebSocket: heartbeat, reconnects, posts, message budget"
    )
    http: HttpConfig = section(HttpConfig, "the HTTP client for /info and /exchange")
    risk: RiskConfig = section(RiskConfig, "per-market gates a signal must pass, and clock-skew bounds")
    detector: DetectorConfig = section(DetectorConfig, "finding a dislocation and sizing the order")
    position: PositionConfig = section(
        PositionConfig, "exposure limits (written out explicitly in trading mode)"
    )
    time_stop: TimeStopConfig = section(TimeStopConfig, "closing positions held too long")
    mark_regression: MarkRegressionConfig = section(
        MarkRegressionConfig, "closing positions when the book catches up with the oracle"
    )
    risk_monitor: RiskMonitorConfig = section(RiskMonitorConfig, "triggers that latch the hard stop")
    persistence: PersistenceConfig = section(PersistenceConfig, "the journal and the recordings")
    telemetry: TelemetryConfig = section(TelemetryConfig, "logging")
    dashboard: DashboardConfig = section(DashboardConfig, "the web dashboard and /metrics")
    deadman: DeadmanConfig = section(DeadmanConfig, "the exchange's scheduled cancel (dead-man switch)")
    shutdown: ShutdownConfig = section(ShutdownConfig, "graceful shutdown on SIGTERM or SIGINT")
    alerts: AlertsConfig = section(AlertsConfig, "webhook alerts")

    @property
    def is_trading(self) -> bool:
        return self.mode == "trading"
