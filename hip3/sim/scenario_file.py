"""Scenario files: TOML text → a checked `Scenario`, with every problem reported at once.

Format (all keys optional unless said; defaults are those of hip3.sim.scenario):

    seed = 7
    oracle_interval_ms = 3000
    max_oracle_move = 0.01            # decimals: a TOML float, an integer or a string ("0.01")
    [fees]                            # taker_bps, maker_bps
    [process_defaults]                # MarketProcessDef fields applied to every market
    [[dexes]]                         # the first dex has name = "" and comes first; builder dexes follow
    name = "xyz"                      # full_name, deployer, deployer_fee_scale
    [[dexes.markets]]                 # name, sz_decimals, max_leverage, start_price (all required),
    name = "TSLA"                     # only_isolated, margin_mode ("strictIsolated" | "noCross" | "normal" |
    [dexes.markets.process]           # "none": no marginMode in meta), is_delisted, growth_mode, oi_cap_usd,
    spread_bps = 8                    # funding_multiplier; `process` overrides process_defaults
    [[accounts]]                      # address, usdc
    address = "0x…"
    [[faults]]                        # at_ms (after start), kind (a hip3.sim.faults.SimFaults method name)
    at_ms = 30000                     # and that method's arguments as further keys, e.g.
    kind = "halt_market"              # coin = "xyz:TSLA"
    coin = "xyz:TSLA"

Decimal fields keep the literal exactly: TOML floats are read with `parse_float=Decimal`, so `0.1` is
Decimal("0.1"), never the binary float. The random process's statistics (volatility_bps, jump_probability, …)
are floats. Errors name the dotted path (`dexes[1].markets[2].sz_decimals: …`), and unknown keys the nearest
valid one.
"""

from __future__ import annotations

import difflib
import importlib.resources
import re
import tomllib
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import attrs

from hip3.core.market import PERP_MAX_DECIMALS, MarketKey, MarketSpec
from hip3.core.rounding import is_valid_price
from hip3.sim.faults import fault_problem
from hip3.sim.scenario import AccountDef, DexDef, FaultDef, FeeDef, MarketDef, MarketProcessDef, Scenario

SCENARIO_PACKAGE = "hip3.sim"
SCENARIO_DIR = "scenarios"
NO_MARGIN_MODE = "none"  # margin_mode value for a meta entry without marginMode
MARGIN_MODES = ("strictIsolated", "noCross", "normal", NO_MARGIN_MODE)
MAX_DEPLOYER_FEE_SCALE = Decimal(3)
MAX_GROWTH_DEPLOYER_FEE_SCALE = Decimal(10)
_ADDRESS_RE = re.compile(r"0x[0-9a-fA-F]{40}")
_DEX_NAME_RE = re.compile(r"[a-z][a-z0-9]{1,5}")
_MARKET_NAME_RE = re.compile(r"[A-Za-z0-9]+")


class ScenarioError(ValueError):
    """A scenario file that cannot be used; `problems` lists every `path: message`."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(f"{source}: {count}:\n" + "\n".join(f"  {problem}" for problem in problems))


class _Invalid(Exception):
    """A value that cannot be converted; the message says what was expected."""


# --- value converters -------------------------------------------------------------------------------------


def _describe(value: object) -> str:
    kinds = {bool: "boolean", int: "integer", Decimal: "float", str: "string", list: "array", dict: "table"}
    return f"{value!r} ({kinds.get(type(value), type(value).__name__)})"


def _integer(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid(f"expected an integer, got {_describe(value)}")
    return value


def _boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(f"expected true or false, got {_describe(value)}")
    return value


def _string(value: object) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"expected a string, got {_describe(value)}")
    return value


def _decimal(value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise _Invalid(f"expected a number, got {_describe(value)}")
    try:
        number = Decimal(value.strip().replace("_", "")) if isinstance(value, str) else Decimal(value)
    except InvalidOperation:
        raise _Invalid(f"expected a number, got {_describe(value)}") from None
    if not number.is_finite():
        raise _Invalid(f"expected a finite number, got {value}")
    return number


def _real(value: object) -> float:
    return float(_decimal(value))


def _address(value: object) -> str:
    text = _string(value)
    if not _ADDRESS_RE.fullmatch(text):
        raise _Invalid(f"expected 0x followed by 40 hex digits, got {text!r}")
    return text.lower()


def _margin_mode(value: object) -> str | None:
    text = _string(value)
    if text not in MARGIN_MODES:
        raise _Invalid(f"expected one of {', '.join(MARGIN_MODES)}, got {text!r}")
    return None if text == NO_MARGIN_MODE else text


# --- range checks -----------------------------------------------------------------------------------------

Check = Callable[[Any], str | None]


def _at_least(low: int | Decimal) -> Check:
    return lambda value: None if value >= low else f"must be ≥ {low}, got {value}"


def _positive(value: Any) -> str | None:
    return None if value > 0 else f"must be > 0, got {value}"


def _between(low: int | Decimal, high: int | Decimal) -> Check:
    return lambda value: None if low <= value <= high else f"must be in [{low}, {high}], got {value}"


@attrs.frozen
class _Field:
    convert: Callable[[object], Any]
    check: Check | None = None


TOP_FIELDS: Mapping[str, _Field] = {
    "seed": _Field(_integer),
    "is_mainnet": _Field(_boolean),
    "oracle_interval_ms": _Field(_integer, _positive),
    "max_oracle_move": _Field(_decimal, lambda v: _positive(v) or _between(0, 1)(v)),
    "min_order_notional": _Field(_decimal, _at_least(0)),
    "nonce_set_size": _Field(_integer, _at_least(1)),
    "nonce_window_back_ms": _Field(_integer, _at_least(0)),
    "nonce_window_ahead_ms": _Field(_integer, _at_least(0)),
    "schedule_cancel_daily_cap": _Field(_integer, _at_least(0)),
    "ws_idle_timeout_s": _Field(_real, _positive),
}
TOP_TABLES = ("fees", "process_defaults", "dexes", "accounts", "faults")
FEE_FIELDS: Mapping[str, _Field] = {"taker_bps": _Field(_decimal), "maker_bps": _Field(_decimal)}
PROCESS_FIELDS: Mapping[str, _Field] = {
    "volatility_bps": _Field(_real, _at_least(0)),
    "jump_probability": _Field(_real, _between(0, 1)),
    "jump_bps": _Field(_real, _at_least(0)),
    "quote_lag_ms": _Field(_integer, _at_least(0)),
    "catch_up_ms": _Field(_integer, _at_least(0)),
    "spread_bps": _Field(_real, _between(0, 5000)),
    "levels": _Field(_integer, _between(1, 100)),
    "level_step_bps": _Field(_real, _positive),
    "level_notional_usd": _Field(_decimal, _positive),
    "quote_offset_bps": _Field(_real, _between(-1000, 1000)),
}
DEX_FIELDS: Mapping[str, _Field] = {
    "name": _Field(_string),
    "full_name": _Field(_string),
    "deployer": _Field(_address),
    "deployer_fee_scale": _Field(_decimal, _between(0, MAX_GROWTH_DEPLOYER_FEE_SCALE)),
}
MARKET_FIELDS: Mapping[str, _Field] = {
    "name": _Field(_string, lambda v: None if _MARKET_NAME_RE.fullmatch(v) else "must be letters and digits"),
    "sz_decimals": _Field(_integer, _between(0, PERP_MAX_DECIMALS)),
    "max_leverage": _Field(_integer, _between(1, 100)),
    "start_price": _Field(_decimal, _positive),
    "only_isolated": _Field(_boolean),
    "margin_mode": _Field(_margin_mode),
    "is_delisted": _Field(_boolean),
    "growth_mode": _Field(_boolean),
    "oi_cap_usd": _Field(_decimal, _positive),
    "funding_multiplier": _Field(_decimal, _between(0, 10)),
}
MARKET_REQUIRED = ("name", "sz_decimals", "max_leverage", "start_price")
ACCOUNT_FIELDS: Mapping[str, _Field] = {"address": _Field(_address), "usdc": _Field(_decimal, _at_least(0))}


# --- reading tables ---------------------------------------------------------------------------------------


@attrs.define
class _Reader:
    problems: list[str] = attrs.field(factory=list)

    def add(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    def fields(
        self,
        table: Mapping[str, Any],
        fields: Mapping[str, _Field],
        path: str,
        *,
        tables: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        """The converted values of `table`'s known scalar keys; unknown keys and bad values are problems."""
        values: dict[str, Any] = {}
        for key, raw in table.items():
            where = f"{path}.{key}" if path else key
            if key in tables:
                continue
            if key not in fields:
                self.add(where, _unknown_key(key, [*fields, *tables]))
                continue
            try:
                value = fields[key].convert(raw)
            except _Invalid as error:
                self.add(where, str(error))
                continue
            check = fields[key].check
            if check is not None and (message := check(value)) is not None:
                self.add(where, message)
                continue
            values[key] = value
        return values

    def table(self, parent: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
        value = parent.get(key, {})
        if not isinstance(value, dict):
            self.add(path, f"expected a table ([{key}]), got {_describe(value)}")
            return {}
        return value

    def array_of_tables(self, parent: Mapping[str, Any], key: str, path: str) -> list[Mapping[str, Any]]:
        value = parent.get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            self.add(path, f"expected an array of tables ([[{key}]]), got {_describe(value)}")
            return []
        return value


def _unknown_key(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    if close:
        return f"unknown key {key!r}; did you mean {close[0]!r}?"
    return f"unknown key {key!r}; valid keys: {', '.join(valid)}"


# --- the scenario -----------------------------------------------------------------------------------------


def parse_scenario(text: str, *, source: str) -> Scenario:
    """Parse and check a scenario; raise ScenarioError listing every problem."""
    try:
        document = tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as error:
        raise ScenarioError(source, [f"TOML syntax: {error}"]) from None
    reader = _Reader()
    scenario = _read_scenario(document, reader)
    if reader.problems or scenario is None:
        raise ScenarioError(source, reader.problems)
    return scenario


def load_scenario(path: str | Path) -> Scenario:
    path = Path(path)
    return parse_scenario(path.read_text(encoding="utf-8"), source=str(path))


def shipped_scenario(name: str) -> Scenario:
    """A scenario shipped in hip3/sim/scenarios/, by file stem ("default", "calm", "jumpy", "two_dex")."""
    resource = importlib.resources.files(SCENARIO_PACKAGE).joinpath(SCENARIO_DIR, f"{name}.toml")
    if not resource.is_file():
        raise FileNotFoundError(f"no shipped scenario {name!r} (hip3/sim/{SCENARIO_DIR}/{name}.toml)")
    return parse_scenario(resource.read_text(encoding="utf-8"), source=f"hip3/sim/{SCENARIO_DIR}/{name}.toml")


def default_scenario() -> Scenario:
    return shipped_scenario("default")


def _read_scenario(document: Mapping[str, Any], reader: _Reader) -> Scenario | None:
    top = reader.fields(document, TOP_FIELDS, "", tables=TOP_TABLES)
    fees = FeeDef(**reader.fields(reader.table(document, "fees", "fees"), FEE_FIELDS, "fees"))
    defaults = reader.fields(
        reader.table(document, "process_defaults", "process_defaults"), PROCESS_FIELDS, "process_defaults"
    )
    dexes = _read_dexes(document, defaults, reader)
    accounts = _read_accounts(document, reader)
    faults = _read_faults(document, reader)
    if reader.problems:
        return None
    return Scenario(**top, fees=fees, dexes=dexes, accounts=accounts, faults=faults)


def _read_dexes(document: Mapping[str, Any], defaults: dict[str, Any], reader: _Reader) -> tuple[DexDef, ...]:
    before = len(reader.problems)
    tables = reader.array_of_tables(document, "dexes", "dexes")
    if not tables and len(reader.problems) == before:
        reader.add("dexes", 'at least one dex is required (the first dex, name = "")')
    dexes = {index: _read_dex(table, index, defaults, reader) for index, table in enumerate(tables)}
    _check_unique({index: dex.name for index, dex in dexes.items() if dex}, "dexes", "dex name", reader)
    return tuple(dex for dex in dexes.values() if dex is not None)


def _read_dex(
    table: Mapping[str, Any], index: int, defaults: dict[str, Any], reader: _Reader
) -> DexDef | None:
    path = f"dexes[{index}]"
    values = reader.fields(table, DEX_FIELDS, path, tables=("markets",))
    name = values.get("name")
    if name is None and "name" not in table:
        reader.add(f"{path}.name", 'required ("" for the first dex)')
    elif name is not None:
        _check_dex_name(name, index, path, reader)
    tables = reader.array_of_tables(table, "markets", f"{path}.markets")
    read = {
        i: _read_market(market, f"{path}.markets[{i}]", defaults, reader) for i, market in enumerate(tables)
    }
    _check_unique(
        {i: market.name for i, market in read.items() if market}, f"{path}.markets", "market name", reader
    )
    markets = [market for market in read.values() if market is not None]
    scale = values.get("deployer_fee_scale", Decimal(1))
    if scale > MAX_DEPLOYER_FEE_SCALE and not any(market.growth_mode for market in markets):
        reader.add(f"{path}.deployer_fee_scale", f"must be ≤ {MAX_DEPLOYER_FEE_SCALE} without growth mode")
    if name is None:
        return None
    return DexDef(**values, markets=tuple(markets))


def _check_dex_name(name: str, index: int, path: str, reader: _Reader) -> None:
    if index == 0 and name != "":
        reader.add(f"{path}.name", f'the first dex must have the empty name "", got {name!r}')
    elif index > 0 and not _DEX_NAME_RE.fullmatch(name):
        reader.add(f"{path}.name", f"a builder dex needs 2–6 lower-case letters or digits, got {name!r}")


def _read_market(
    table: Mapping[str, Any], path: str, defaults: dict[str, Any], reader: _Reader
) -> MarketDef | None:
    before = len(reader.problems)
    values = reader.fields(table, MARKET_FIELDS, path, tables=("process",))
    for key in MARKET_REQUIRED:
        if key not in table:
            reader.add(f"{path}.{key}", "required")
    overrides = reader.fields(
        reader.table(table, "process", f"{path}.process"), PROCESS_FIELDS, f"{path}.process"
    )
    process = {**defaults, **overrides}
    if len(reader.problems) > before:
        return None
    _check_start_price(values, path, reader)
    return MarketDef(**values, process=MarketProcessDef(**process))


def _check_start_price(values: Mapping[str, Any], path: str, reader: _Reader) -> None:
    spec = MarketSpec(
        name=values["name"], key=MarketKey("", 0, 0), sz_decimals=values["sz_decimals"], max_leverage=1
    )  # only the tick rule is wanted here: the rest of the market may still be invalid
    if not is_valid_price(values["start_price"], spec):
        reader.add(
            f"{path}.start_price",
            f"{values['start_price']} is not a valid price for szDecimals {values['sz_decimals']} "
            f"(5 significant figures, at most {spec.max_price_decimals} decimals)",
        )


def _read_accounts(document: Mapping[str, Any], reader: _Reader) -> tuple[AccountDef, ...]:
    accounts: dict[int, AccountDef] = {}
    for index, table in enumerate(reader.array_of_tables(document, "accounts", "accounts")):
        path = f"accounts[{index}]"
        values = reader.fields(table, ACCOUNT_FIELDS, path)
        missing = [key for key in ACCOUNT_FIELDS if key not in table]
        for key in missing:
            reader.add(f"{path}.{key}", "required")
        if len(values) == len(ACCOUNT_FIELDS):
            accounts[index] = AccountDef(**values)
    _check_unique(
        {index: account.address for index, account in accounts.items()}, "accounts", "address", reader
    )
    return tuple(accounts.values())


def _read_faults(document: Mapping[str, Any], reader: _Reader) -> tuple[FaultDef, ...]:
    faults: list[FaultDef] = []
    for index, table in enumerate(reader.array_of_tables(document, "faults", "faults")):
        path = f"faults[{index}]"
        at_ms, kind = table.get("at_ms"), table.get("kind")
        if type(at_ms) is not int or at_ms < 0:
            reader.add(
                f"{path}.at_ms", f"required: whole milliseconds after start, ≥ 0, got {_describe(at_ms)}"
            )
            continue
        if not isinstance(kind, str):
            reader.add(f"{path}.kind", f"required: the name of a fault, got {_describe(kind)}")
            continue
        params = {key: value for key, value in table.items() if key not in ("at_ms", "kind")}
        if (problem := fault_problem(kind, params)) is not None:
            reader.add(path, problem)
            continue
        faults.append(FaultDef(at_ms=at_ms, kind=kind, params=params))
    return tuple(faults)


def _check_unique(names: Mapping[int, str], path: str, what: str, reader: _Reader) -> None:
    """`names` by their index in the file's array, so a problem points at the right element."""
    seen: set[str] = set()
    for index, name in names.items():
        if name in seen:
            reader.add(f"{path}[{index}]", f"duplicate {what} {name!r}")
        seen.add(name)
