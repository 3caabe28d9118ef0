"""Configuration: defaults, errors that name the key, secrets refused, rendering, and the shipped files."""

import traceback
from decimal import Decimal
from pathlib import Path

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hip3.config import (
    TRADING_REQUIRED_KEYS,
    Config,
    ConfigError,
    PositionConfig,
    config_warnings,
    load_config,
    parse_config,
    render_effective,
    schema_fields,
    schema_sections,
)

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"
ACCOUNT = "0x" + "Ab" * 20
KEY_VALUE = "0x" + "5e3c" * 16  # 64 hex digits, shaped like a private key
NO_ACCOUNT_ENV: dict[str, str] = {}

TRADING = """
mode = "trading"
[network]
name = "testnet"
[account]
account_address = "0xabababababababababababababababababababab"
[markets]
dexes = ["xyz"]
[[markets.allowlist]]
coin = "xyz:SILVER"
[position]
max_notional_per_market = 20
max_total_notional = 20
max_concurrent_positions = 2
[risk_monitor]
max_loss_usd = 20
[detector]
max_notional = 11
"""

# A value other than the default in every section, so a round trip exercises all of them.
EVERY_SECTION = """
mode = "trading"
[network]
name = "local"
api_url = "http://127.0.0.1:8545/"
ws_url = "ws://127.0.0.1:8545/ws"
sign_as = "testnet"
[account]
account_address = "0xABABABABABABABABABABABABABABABABABABABAB"
signer_address = "0xcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
vault_address = "0xefefefefefefefefefefefefefefefefefefefef"
key_file = "/etc/hip3/key"
[markets]
dexes = ["xyz", "flx"]
allowlist = [{ coin = "xyz:SILVER", threshold_bps = 40.5 }, { coin = "flx:CL" }]
spec_refresh_interval_s = 60
[websocket]
heartbeat_interval_ms = 30000
reconnect_jitter = 0.35
max_reconnect_attempts = 7
[http]
retries = 5
weight_per_minute = 600
[risk]
max_bbo_age_ms = 1500
max_mark_mid_divergence_bps = 12.25
spread_ewma_alpha = 0.1
clock_skew_block_ms = 4000
[detector]
taker_fee_bps = 0.1
sizing_alpha = 0.25
max_notional = 11
baseline_tracking = false
[position]
max_notional_per_market = 20
max_total_notional = 40.75
max_concurrent_positions = 2
position_resync_interval_secs = 0
[time_stop]
threshold_ms = 20000
slippage_bps = 10
[mark_regression]
exit_threshold_bps = 2.5
[risk_monitor]
max_loss_usd = 20
max_alarming_rejects = 4
[persistence]
data_dir = "/var/lib/hip3"
followup_offsets_ms = [500, 2000]
[telemetry]
log_level = "debug"
log_format = "console"
[dashboard]
enabled = true
port = 9000
update_interval_ms = 250
[deadman]
arm_ahead_ms = 60000
daily_trigger_cap = 5
[shutdown]
deadline_s = 45
flatten = false
[alerts]
format = "discord"
disconnect_alert_s = 120
daily_summary = false
"""


def problems(text: str, *, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, env=NO_ACCOUNT_ENV if env is None else env)
    return [str(problem) for problem in caught.value.problems]


def parse(text: str, *, env: dict[str, str] | None = None) -> Config:
    return parse_config(text, env=NO_ACCOUNT_ENV if env is None else env)


def without_line(text: str, line: str) -> str:
    assert line in text
    return text.replace(line + "\n", "")


# Defaults and derived values


def test_empty_file_gives_the_predecessors_defaults() -> None:
    config = parse("")
    assert config == Config()
    assert config.mode == "observation"
    assert (config.network.api_url, config.network.ws_url) == (
        "https://api.hyperliquid.xyz",
        "wss://api.hyperliquid.xyz/ws",
    )
    assert config.network.is_mainnet
    position = config.position
    assert (position.max_notional_per_market, position.max_total_notional) == (Decimal(50), Decimal(100))
    assert (position.max_concurrent_positions, position.position_resync_interval_secs) == (5, 60)
    assert config.time_stop.threshold_ms == 30_000
    assert config.risk.max_bbo_age_ms == 0  # off by default: bbo frames come only on change
    assert config.risk.clock_skew_warn_ms == 2_000
    assert config.detector.max_notional <= position.max_notional_per_market
    ws = config.websocket
    assert (ws.heartbeat_interval_ms, ws.pong_timeout_ms, ws.reconnect_base_delay_ms) == (
        45_000,
        10_000,
        1_000,
    )
    assert (ws.max_reconnect_attempts, ws.max_inflight_posts, ws.messages_per_minute) == (0, 100, 2_000)
    assert config.http.weight_per_minute == 1_200
    assert (config.dashboard.host, config.dashboard.port, config.dashboard.update_interval_ms) == (
        "127.0.0.1",
        8080,
        100,
    )
    assert config.deadman.daily_trigger_cap == 10
    assert config.persistence.journal_path == Path("data/journal.sqlite3")
    assert config_warnings(config) == []


def test_testnet_urls_and_signing_are_derived() -> None:
    network = parse('[network]\nname = "testnet"').network
    assert network.api_url == "https://api.hyperliquid-testnet.xyz"
    assert network.ws_url == "wss://api.hyperliquid-testnet.xyz/ws"
    assert network.sign_as == "testnet"
    assert not network.is_mainnet


def test_local_network_takes_its_urls_and_signs_for_testnet_by_default() -> None:
    network = parse(
        '[network]\nname = "local"\napi_url = "http://127.0.0.1:8545"\nws_url = "ws://127.0.0.1:8545/ws"'
    ).network
    assert (network.api_url, network.ws_url, network.sign_as) == (
        "http://127.0.0.1:8545",
        "ws://127.0.0.1:8545/ws",
        "testnet",
    )
    assert not network.is_mainnet


def test_local_network_without_urls_names_both() -> None:
    assert problems('[network]\nname = "local"') == [
        'network.api_url: required when network.name = "local" (e.g. "http://127.0.0.1:8545")',
        'network.ws_url: required when network.name = "local" (e.g. "ws://127.0.0.1:8545/ws")',
    ]


def test_mainnet_refuses_other_urls_and_signing() -> None:
    found = problems('[network]\nname = "mainnet"\napi_url = "https://example.org"\nsign_as = "testnet"')
    assert [line.split(":")[0] for line in found] == ["network.api_url", "network.sign_as"]
    assert 'expected "https://api.hyperliquid.xyz"' in found[0]


def test_addresses_are_stored_lower_case() -> None:
    config = parse(f'[account]\naccount_address = "{ACCOUNT}"')
    assert config.account.account_address == ACCOUNT.lower()


def test_direct_construction_checks_values_too() -> None:
    with pytest.raises(ValueError, match="max_total_notional"):
        PositionConfig(max_total_notional=Decimal(-1))


# Rendering


def test_every_section_round_trips_through_render_effective() -> None:
    config = parse(EVERY_SECTION)
    for name, _doc in schema_sections():
        assert getattr(config, name) != getattr(Config(), name), f"[{name}] keeps its defaults"
    assert parse(render_effective(config)) == config


def test_render_lists_every_key_in_schema_order() -> None:
    rendered = render_effective(Config())
    keys = [
        line.split(" ")[0] for line in rendered.splitlines() if " = " in line and not line.startswith("#")
    ]
    expected = [field.key for field in schema_fields() if field.section != "markets.allowlist"]
    expected = [key for key in expected if key not in {"account_address", "signer_address", "vault_address"}]
    expected = [key for key in expected if key not in {"key_file", "webhook_url"}]  # unset: shown as comments
    assert keys == expected
    assert "# account_address is not set" in rendered


def test_render_never_shows_the_webhook_token_and_its_redacted_form_does_not_load() -> None:
    token = "T0KEN-abc/def"
    config = parse(f'[alerts]\nwebhook_url = "https://hooks.slack.com/services/{token}"')
    rendered = render_effective(config)
    assert token not in rendered
    assert 'webhook_url = "https://hooks.slack.com/<redacted>"' in rendered
    assert problems(rendered)[0].startswith("alerts.webhook_url: ")


def test_schema_fields_document_every_key() -> None:
    fields = schema_fields()
    assert {field.section for field in fields} >= {name for name, _ in schema_sections()}
    assert all(field.doc for field in fields)
    by_key = {(field.section, field.key): field for field in fields}
    assert by_key[("dashboard", "port")].allowed == "1 to 65535"
    assert by_key[("", "mode")].allowed == 'one of "observation", "trading"'
    assert by_key[("network", "api_url")].default == "derived from name"
    assert by_key[("markets.allowlist", "coin")].default == "required"
    assert by_key[("position", "max_total_notional")].type == "decimal"


# Errors that name the key


def test_typo_names_the_nearest_key() -> None:
    assert problems("[detector]\nmax_notionl = 5") == [
        "detector.max_notionl: unknown key (did you mean 'max_notional'?)"
    ]


def test_unknown_section_names_the_nearest_section() -> None:
    assert problems("[detectr]\nmax_notional = 5") == ["detectr: unknown section (did you mean 'detector'?)"]


def test_unknown_key_in_an_allowlist_entry() -> None:
    text = '[[markets.allowlist]]\ncoin = "xyz:CL"\nthreshhold_bps = 3'
    assert problems(text) == [
        "markets.allowlist[0].threshhold_bps: unknown key (did you mean 'threshold_bps'?)"
    ]


def test_predecessor_keys_explain_what_replaced_them() -> None:
    assert problems("[telemetry]\nmetrics_port = 9090") == [
        "telemetry.metrics_port: not used by hip3: metrics are served at /metrics on the dashboard's port"
    ]
    assert problems('[[markets]]\ncoin = "xyz:CL"')[0].startswith("markets: [[markets]] is the old format")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[position]\nmax_concurrent_positions = "5"',
            'position.max_concurrent_positions: expected an integer, got "5"',
        ),
        (
            "[websocket]\nheartbeat_interval_ms = 1.5",
            "websocket.heartbeat_interval_ms: expected an integer, got 1.5",
        ),
        ('[dashboard]\nenabled = "false"', 'dashboard.enabled: expected true or false, got "false" (string)'),
        ("[detector]\ntaker_fee_bps = true", "detector.taker_fee_bps: expected a number, got true (boolean)"),
        (
            '[detector]\ntaker_fee_bps = "lots"',
            'detector.taker_fee_bps: expected a number, got "lots" (string)',
        ),
        ("[risk]\nspread_ewma_alpha = nan", "risk.spread_ewma_alpha: NaN is not a finite number"),
        ('[markets]\ndexes = "xyz"', 'markets.dexes: expected an array, got "xyz" (string)'),
        ("[markets]\ndexes = [1]", "markets.dexes[0]: expected a string, got 1 (integer)"),
        ('detector = "fast"', 'detector: expected a table, got "fast" (string)'),
        (
            "[telemetry]\nlog_level = 3",
            'telemetry.log_level: 3 is not one of "debug", "info", "warning", "error"',
        ),
    ],
)
def test_wrong_type_names_path_value_and_expected_type(text: str, expected: str) -> None:
    (found,) = problems(text)
    assert found.startswith(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[dashboard]\nport = 70000", "dashboard.port: 70000 is out of range (allowed: 1 to 65535)"),
        (
            "[dashboard]\nupdate_interval_ms = 50",
            "dashboard.update_interval_ms: 50 is out of range (allowed: 100 to",
        ),
        (
            "[position]\nmax_total_notional = 0",
            "position.max_total_notional: 0 is out of range (allowed: > 0)",
        ),
        (
            "[detector]\nmin_order_notional = 5",
            "detector.min_order_notional: 5 is out of range (allowed: ≥ 10)",
        ),
        (
            "[websocket]\nmax_inflight_posts = 101",
            "websocket.max_inflight_posts: 101 is out of range (allowed: 1 to 100)",
        ),
        (
            "[deadman]\ndaily_trigger_cap = 11",
            "deadman.daily_trigger_cap: 11 is out of range (allowed: 1 to 10)",
        ),
        (
            "[persistence]\nfollowup_offsets_ms = [1000, 0]",
            "persistence.followup_offsets_ms[1]: 0 is out of range",
        ),
        ("[markets]\ndexes = ['XYZ']", 'markets.dexes[0]: "XYZ" is not a builder dex name'),
        (
            '[[markets.allowlist]]\ncoin = "SILVER"',
            'markets.allowlist[0].coin: "SILVER" is not a HIP-3 market name',
        ),
        ("[[markets.allowlist]]\nthreshold_bps = 5", "markets.allowlist[0].coin: required key is missing"),
    ],
)
def test_out_of_range_names_path_value_and_what_is_allowed(text: str, expected: str) -> None:
    (found,) = problems(text)
    assert found.startswith(expected)


def test_bad_enum_lists_the_choices_and_the_nearest() -> None:
    assert problems('mode = "tradng"') == [
        'mode: "tradng" is not one of "observation", "trading" (did you mean \'trading\'?)'
    ]


@pytest.mark.parametrize("address", ["0x12", "abababababababababababababababababababab", "0x" + "g" * 40])
def test_bad_address(address: str) -> None:
    assert problems(f'[account]\nsigner_address = "{address}"') == [
        f'account.signer_address: "{address}" is not an address (0x followed by 40 hex digits)'
    ]


def test_zero_address_is_a_placeholder() -> None:
    found = problems('[account]\naccount_address = "0x0000000000000000000000000000000000000000"')
    assert found == ["account.account_address: the zero address is a placeholder; write the real address"]


def test_syntax_error_gives_line_and_column() -> None:
    (found,) = problems('mode = "observation"\n[detector]\nmax_notional = = 5')
    assert found.startswith("TOML syntax error at line 3, column ")


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nope.toml")
    assert [str(problem) for problem in caught.value.problems] == [
        f"configuration file not found: {tmp_path / 'nope.toml'}"
    ]


def test_several_problems_are_reported_at_once_one_per_line() -> None:
    text = """
mode = "trading"
[detector]
max_notionl = 5
[dashboard]
port = 0
[telemetry]
log_format = "xml"
[position]
max_notional_per_market = 200
max_total_notional = 100
"""
    with pytest.raises(ConfigError) as caught:
        parse_config(text, env=NO_ACCOUNT_ENV)
    paths = [problem.path for problem in caught.value.problems]
    for path in [
        "detector.max_notionl",
        "dashboard.port",
        "telemetry.log_format",
        "position.max_notional_per_market",  # a cross-field rule still runs beside the other sections' errors
        "position.max_concurrent_positions",
        "network.name",
        "account.account_address",
        "markets.allowlist",
    ]:
        assert path in paths
    lines = str(caught.value).splitlines()
    assert lines[0] == f"<string>: {len(paths)} configuration problems"
    assert [line.strip() for line in lines[1:]] == [str(problem) for problem in caught.value.problems]


# Secrets


def assert_value_hidden(error: ConfigError, value: str) -> None:
    rendered = "".join(traceback.format_exception(error))
    for text in (str(error), repr(error), repr(error.args), rendered):
        assert value not in text
        assert value[2:20] not in text
    assert error.__cause__ is None
    assert error.__context__ is None


@pytest.mark.parametrize(
    ("text", "path"),
    [
        (f'[account]\nprivate_key = "{KEY_VALUE}"', "account.private_key"),
        (f'Private_Key = "{KEY_VALUE}"', "Private_Key"),
        (f'[detector]\nPRIVATE-KEY = "{KEY_VALUE}"', "detector.PRIVATE-KEY"),
        (f'[account]\nwallet = {{ secret_key = "{KEY_VALUE}" }}', "account.wallet.secret_key"),
        (
            f'[[markets.allowlist]]\ncoin = "xyz:CL"\napi_secret = "{KEY_VALUE}"',
            "markets.allowlist[0].api_secret",
        ),
        (f"[account]\nprivate_key = {KEY_VALUE}", "account.private_key"),  # an unquoted hex integer
    ],
)
def test_private_key_anywhere_stops_loading_without_echoing_it(text: str, path: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, env=NO_ACCOUNT_ENV)
    assert f"{path}: keys are never read from config files; set HIP3_TRADING_KEY or account.key_file" in [
        str(problem) for problem in caught.value.problems
    ]
    assert_value_hidden(caught.value, KEY_VALUE)


def test_key_shaped_value_under_any_name_is_refused_and_hidden() -> None:
    quoted_and_bare = [f'[account]\nsigner_address = "{KEY_VALUE}"', f'[account]\nkey = "{KEY_VALUE}"']
    for text in [*quoted_and_bare, f"[detector]\nseed = {KEY_VALUE}"]:
        with pytest.raises(ConfigError) as caught:
            parse_config(text, env=NO_ACCOUNT_ENV)
        assert "looks like key material" in str(caught.value)
        assert_value_hidden(caught.value, KEY_VALUE)


def test_seed_phrase_is_refused_and_hidden() -> None:
    phrase = "abandon ability able about above absent absorb abstract absurd abuse access accident"
    with pytest.raises(ConfigError) as caught:
        parse_config(f'[account]\nmnemonic = "{phrase}"', env=NO_ACCOUNT_ENV)
    assert "account.mnemonic: keys are never read" in str(caught.value)
    assert phrase.split()[3] not in str(caught.value)


def test_private_key_in_a_file_that_does_not_parse_is_still_refused() -> None:
    text = f'[account]\nprivate_key = "{KEY_VALUE}" trailing'
    with pytest.raises(ConfigError) as caught:
        parse_config(text, env=NO_ACCOUNT_ENV)
    assert "private_key-like entry" in str(caught.value)
    assert_value_hidden(caught.value, KEY_VALUE)


# Trading mode


def test_minimal_trading_config_loads() -> None:
    config = parse(TRADING)
    assert config.is_trading
    assert config.position.max_total_notional == Decimal(20)
    assert config.markets.allowlist[0].coin == "xyz:SILVER"


@pytest.mark.parametrize(
    "line",
    [
        "max_notional_per_market = 20",
        "max_total_notional = 20",
        "max_concurrent_positions = 2",
        "max_loss_usd = 20",
        'name = "testnet"',
    ],
)
def test_trading_refuses_limits_left_to_defaults(line: str) -> None:
    key = line.split(" = ", maxsplit=1)[0]
    found = problems(without_line(TRADING, line))
    required = [problem for problem in found if "required in trading mode" in problem]
    assert len(required) == 1
    assert required[0].split(":")[0].endswith("." + key)


def test_trading_without_any_position_section_names_every_limit() -> None:
    text = TRADING.split("[position]", maxsplit=1)[0] + "[risk_monitor]\nmax_loss_usd = 20\n"
    found = problems(text)
    named = [line.split(":")[0] for line in found]
    assert named == [
        "position.max_notional_per_market",
        "position.max_total_notional",
        "position.max_concurrent_positions",
    ]
    assert "observation mode defaults to 50" in found[0]
    assert set(TRADING_REQUIRED_KEYS) >= set(named)


def test_observation_mode_takes_the_documented_limits() -> None:
    position = parse('mode = "observation"').position
    assert (
        position.max_notional_per_market,
        position.max_total_notional,
        position.max_concurrent_positions,
    ) == (
        Decimal(50),
        Decimal(100),
        5,
    )


def test_trading_needs_an_account_and_markets() -> None:
    text = without_line(TRADING, 'account_address = "0xabababababababababababababababababababab"')
    text = without_line(text, '[[markets.allowlist]]\ncoin = "xyz:SILVER"')
    assert problems(text) == [
        "account.account_address: required in trading mode: "
        "set account.account_address or HIP3_ACCOUNT_ADDRESS",
        "markets.allowlist: trading mode needs at least one [[markets.allowlist]] market",
    ]


def test_order_cap_above_market_cap_is_an_error_in_trading_and_a_warning_in_observation() -> None:
    trading = TRADING.replace("max_notional = 11", "max_notional = 25")
    assert problems(trading) == [
        "detector.max_notional: 25 is above position.max_notional_per_market (20); lower it to at most that"
    ]
    observation = parse("[detector]\nmax_notional = 60")
    assert config_warnings(observation) == [
        "detector.max_notional: 60 is above position.max_notional_per_market (50); "
        "trading mode would refuse this"
    ]


def test_market_cap_above_total_cap() -> None:
    assert problems("[position]\nmax_notional_per_market = 150") == [
        "position.max_notional_per_market: 150 must be at most position.max_total_notional (100)"
    ]


def test_account_address_from_the_environment() -> None:
    text = without_line(TRADING, 'account_address = "0xabababababababababababababababababababab"')
    config = parse(text, env={"HIP3_ACCOUNT_ADDRESS": "0x" + "CD" * 20})
    assert config.account.account_address == "0x" + "cd" * 20
    assert parse(TRADING, env={"HIP3_ACCOUNT_ADDRESS": ACCOUNT}).account.account_address == ACCOUNT.lower()
    conflict = problems(TRADING, env={"HIP3_ACCOUNT_ADDRESS": "0x" + "cd" * 20})
    assert conflict[0].startswith("account.account_address: the file says")
    assert problems("", env={"HIP3_ACCOUNT_ADDRESS": "nope"}) == [
        'account.account_address: HIP3_ACCOUNT_ADDRESS="nope" is not an address '
        "(0x followed by 40 hex digits)"
    ]


# Markets


def test_duplicate_allowlist_coin() -> None:
    entry = '[[markets.allowlist]]\ncoin = "xyz:SILVER"\n'
    text = entry + entry + "threshold_bps = 9"
    assert problems(text) == [
        'markets.allowlist[1].coin: "xyz:SILVER" is listed twice (also markets.allowlist[0])'
    ]


def test_allowlisted_market_on_a_dex_not_discovered() -> None:
    text = '[markets]\ndexes = ["xyz"]\n[[markets.allowlist]]\ncoin = "flx:CL"'
    assert problems(text) == [
        'markets.allowlist[0].coin: "flx:CL" is on dex "flx", which markets.dexes does not list'
    ]


# Decimal exactness


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("0.1", "0.1"),
        ("1_000.25", "1000.25"),
        ("1e-3", "0.001"),
        ('"0.3"', "0.3"),
        ("7", "7"),
        ("2.50", "2.50"),
    ],
)
def test_decimal_values_keep_their_written_digits(written: str, expected: str) -> None:
    value = parse(f"[detector]\ntaker_fee_bps = {written}").detector.taker_fee_bps
    assert isinstance(value, Decimal)
    assert value.as_tuple() == Decimal(expected).as_tuple()


@given(st.decimals(min_value=0, max_value=9_000, places=6, allow_nan=False, allow_infinity=False))
def test_any_valid_decimal_round_trips_exactly(fee: Decimal) -> None:
    config = parse(
        f"[detector]\ntaker_fee_bps = {fee}\n[[markets.allowlist]]\ncoin = 'xyz:A'\nthreshold_bps = {fee + 1}"
    )
    assert config.detector.taker_fee_bps == fee
    assert config.markets.allowlist[0].threshold_bps == fee + 1
    assert parse(render_effective(config)) == config


@given(
    heartbeat=st.integers(1_000, 55_000),
    alpha=st.floats(min_value=1e-9, max_value=1.0),
    cap=st.decimals(min_value=Decimal("0.01"), max_value=10**9, places=2),
    concurrent=st.integers(1, 1_000),
)
def test_any_valid_numbers_round_trip(heartbeat: int, alpha: float, cap: Decimal, concurrent: int) -> None:
    config = Config(
        websocket=attrs.evolve(Config().websocket, heartbeat_interval_ms=heartbeat, pong_timeout_ms=1_000),
        risk=attrs.evolve(Config().risk, spread_ewma_alpha=alpha),
        position=PositionConfig(
            max_notional_per_market=cap, max_total_notional=cap, max_concurrent_positions=concurrent
        ),
        detector=attrs.evolve(
            Config().detector, max_notional=max(cap, Decimal(11)), min_order_notional=Decimal(11)
        ),
    )
    assert parse(render_effective(config)) == config


# Warnings


def test_warnings_for_risky_but_legal_settings() -> None:
    text = TRADING.replace('name = "testnet"', 'name = "mainnet"') + (
        "[risk]\nmax_ctx_age_ms = 0\n"
        '[dashboard]\nenabled = true\nhost = "0.0.0.0"\n'
        "[mark_regression]\nenabled = false\n"
    )
    warnings = config_warnings(parse(text))
    assert [warning.split(":")[0] for warning in warnings] == [
        "mode",
        "risk.max_ctx_age_ms",
        "mark_regression.enabled",
        "dashboard.host",
    ]
    assert warnings[0].startswith("mode: trading on mainnet with real money: $20 per market, $20 in total")


# Shipped files


def test_default_config_loads_without_warnings() -> None:
    config = load_config(CONFIG_DIR / "default.toml", env=NO_ACCOUNT_ENV)
    assert config.mode == "observation"
    assert config.network.name == "mainnet"
    assert config.markets.dexes == ("xyz",)
    assert config.markets.allowlist == ()
    assert config_warnings(config) == []


def test_mainnet_micro_test_config_loads_once_the_account_is_given() -> None:
    path = CONFIG_DIR / "mainnet-test.toml"
    config = load_config(path, env={"HIP3_ACCOUNT_ADDRESS": ACCOUNT})
    assert (config.mode, config.network.name) == ("trading", "mainnet")
    assert [entry.coin for entry in config.markets.allowlist] == ["xyz:SILVER", "xyz:CL"]
    assert config.position.max_notional_per_market == config.position.max_total_notional == Decimal(20)
    assert config.position.max_concurrent_positions == 2
    assert config.detector.max_notional <= Decimal(20)
    assert config.risk_monitor.max_loss_usd == Decimal(20)
    with pytest.raises(ConfigError) as caught:
        load_config(path, env=NO_ACCOUNT_ENV)
    assert [problem.path for problem in caught.value.problems] == ["account.account_address"]


def test_testnet_config_loads_once_the_account_is_given() -> None:
    config = load_config(CONFIG_DIR / "testnet.toml", env={"HIP3_ACCOUNT_ADDRESS": ACCOUNT})
    assert (config.mode, config.network.name, config.network.is_mainnet) == ("trading", "testnet", False)
    assert config.position.max_total_notional <= Decimal(100)
    assert config_warnings(config) == []


@pytest.mark.parametrize("name", ["default.toml", "mainnet-test.toml", "testnet.toml"])
def test_shipped_files_round_trip_through_render(name: str) -> None:
    config = load_config(CONFIG_DIR / name, env={"HIP3_ACCOUNT_ADDRESS": ACCOUNT})
    assert parse(render_effective(config)) == config
