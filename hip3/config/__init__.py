"""hip3's configuration: the schema, loading with errors that name the key, warnings, and rendering.

    config = load_config("config/default.toml")   # raises ConfigError listing every problem
    for warning in config_warnings(config): ...
    print(render_effective(config))               # TOML, defaults filled in, no secrets

Keys are documented on the schema fields (`schema_fields()` lists them for docs/configuration.md).
Signing keys never come from a config file: a `private_key` entry anywhere stops loading, and its value is
never echoed.
"""

from hip3.config.errors import ACCOUNT_ADDRESS_ENV, TRADING_KEY_ENV, ConfigError, ConfigProblem
from hip3.config.loading import load_config, parse_config
from hip3.config.render import SchemaField, render_effective, schema_fields, schema_sections
from hip3.config.rules import TRADING_REQUIRED_KEYS, config_warnings
from hip3.config.schema import (
    AccountConfig,
    AlertsConfig,
    Config,
    DashboardConfig,
    DeadmanConfig,
    DetectorConfig,
    HttpConfig,
    MarketEntry,
    MarketsConfig,
    MarkRegressionConfig,
    NetworkConfig,
    PersistenceConfig,
    PositionConfig,
    RiskConfig,
    RiskMonitorConfig,
    ShutdownConfig,
    TelemetryConfig,
    TimeStopConfig,
    WebSocketConfig,
)

__all__ = [
    "ACCOUNT_ADDRESS_ENV",
    "TRADING_KEY_ENV",
    "TRADING_REQUIRED_KEYS",
    "AccountConfig",
    "AlertsConfig",
    "Config",
    "ConfigError",
    "ConfigProblem",
    "DashboardConfig",
    "DeadmanConfig",
    "DetectorConfig",
    "HttpConfig",
    "MarkRegressionConfig",
    "MarketEntry",
    "MarketsConfig",
    "NetworkConfig",
    "PersistenceConfig",
    "PositionConfig",
    "RiskConfig",
    "RiskMonitorConfig",
    "SchemaField",
    "ShutdownConfig",
    "TelemetryConfig",
    "TimeStopConfig",
    "WebSocketConfig",
    "config_warnings",
    "load_config",
    "parse_config",
    "render_effective",
    "schema_fields",
    "schema_sections",
]
