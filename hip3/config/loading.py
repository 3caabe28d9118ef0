"""Loading a configuration: TOML text → plain Python (tomlkit) → checked attrs objects (cattrs).

Every problem of a file is collected before anything is raised, so the operator sees them all at once:
key material anywhere in the file, unknown keys (with the nearest valid name), wrong types, out-of-range
values, and the cross-field rules of `hip3.config.rules`. Values that look like key material are never
echoed, and `ConfigError` is raised outside any `except` block so that no parser exception rides along in
`__context__`.
"""

import difflib
import os
import re
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import GenericAlias
from typing import Any, Literal, cast, get_args, get_origin

import attrs
import cattrs
import tomlkit
import tomlkit.exceptions
from cattrs.errors import (
    AttributeValidationNote,
    ClassValidationError,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn, override
from tomlkit import items

from hip3.config.errors import (
    ACCOUNT_ADDRESS_ENV,
    NO_KEYS_IN_FILES,
    ConfigError,
    ConfigProblem,
    looks_like_key_material,
    scrub,
    show,
    toml_type,
)
from hip3.config.rules import cross_field_problems
from hip3.config.schema import ADDRESS, Check, Config, field_type, is_section

RawTable = dict[str, Any]

# Names refused wherever they appear (compared without case, "_" or "-"): key material, and other secrets.
KEY_MATERIAL_NAMES = frozenset({"privatekey", "secretkey", "apisecret", "mnemonic", "seedphrase"})
OTHER_SECRET_NAMES = frozenset({"password", "secret", "token", "apikey"})
NO_SECRETS_IN_FILES = "secrets are never read from config files"

# Keys of the predecessor bot, or of older habits, that mean something else here.
RETIRED_KEYS: dict[str, str] = {
    "ws_url": "set network.name; network.ws_url is derived from it",
    "info_url": "set network.name; network.api_url is derived from it",
    "is_mainnet": "set network.name",
    "user_address": "renamed account.account_address",
    "signer_address": "moved to account.signer_address",
    "vault_address": "moved to account.vault_address",
    "xyz_pattern": "list builder dexes in markets.dexes",
    "executor": "orders go out as soon as they are queued; there is no batching interval",
    "risk.max_oracle_age_ms": "data age is bounded by risk.max_ctx_age_ms",
    "risk.min_buffer_ratio": "no such gate",
    "risk.max_oi_fraction": "replaced by risk.oi_cap_fraction (a fraction of the market's open-interest cap)",
    "telemetry.metrics_port": "metrics are served at /metrics on the dashboard's port",
    "time_stop.check_interval_ms": "the time stop fires at its deadline, not on a polling interval",
    "mark_regression.check_interval_ms": "mark regression is checked on every update of a held market",
    "dashboard.username": "the dashboard's write actions use the token in HIP3_DASHBOARD_TOKEN",
    "dashboard.password": "the dashboard's write actions use the token in HIP3_DASHBOARD_TOKEN",
}


# Public entry points


def load_config(path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None) -> Config:
    """Read and check the configuration file at `path`; raise ConfigError listing every problem.

    `env` (default: the process environment) may supply HIP3_ACCOUNT_ADDRESS.
    """
    text = _read_text(Path(path))
    if isinstance(text, ConfigProblem):
        raise ConfigError([text], source=str(path))
    return parse_config(text, source=str(path), env=env)


def parse_config(text: str, *, source: str = "<string>", env: Mapping[str, str] | None = None) -> Config:
    """Check configuration text; raise ConfigError listing every problem. See `load_config`."""
    document = _parse_toml(text)
    if isinstance(document, list):
        raise ConfigError(document, source=source)
    raw = _plain(document)
    problems = [*_take_secrets(raw, ""), *_apply_account_env(raw, os.environ if env is None else env)]
    problems += _old_markets_format(raw)
    problems += _unknown_keys(raw, Config, "")
    config, failed, structure_problems = _structure_config(raw)
    problems += structure_problems
    problems += cross_field_problems(config, raw, failed)
    if problems:
        raise ConfigError(problems, source=source)
    return config


# Text and TOML


def _read_text(path: Path) -> str | ConfigProblem:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ConfigProblem("", f"configuration file not found: {path}")
    except UnicodeDecodeError:
        return ConfigProblem("", f"configuration file is not UTF-8 text: {path}")
    except OSError as error:
        return ConfigProblem("", f"cannot read configuration file {path}: {error.strerror or error}")


_SECRET_LINE = re.compile(
    r"^\s*[\"']?(private[_-]?key|secret[_-]?key|api[_-]?secret|mnemonic)[\"']?\s*=", re.I | re.M
)


def _parse_toml(text: str) -> tomlkit.TOMLDocument | list[ConfigProblem]:
    try:
        return tomlkit.parse(text)
    except tomlkit.exceptions.ParseError as error:
        reason = re.sub(r" at line \d+ col \d+$", "", str(error))
        where = f"TOML syntax error at line {error.line}, column {error.col}"
        problems = [ConfigProblem("", f"{where}: {scrub(reason)}")]
    except tomlkit.exceptions.TOMLKitError as error:
        problems = [ConfigProblem("", f"TOML error: {scrub(str(error))}")]
    # The file did not parse, so the tables cannot be scanned for secrets: look for the names on the lines.
    if _SECRET_LINE.search(text):
        problems.append(ConfigProblem("", f"the file has a private_key-like entry: {NO_KEYS_IN_FILES}"))
    return problems


def _plain(value: Any) -> Any:
    """tomlkit items → plain Python; floats become Decimal from their source text, so 0.1 stays 0.1."""
    if isinstance(value, items.Float):
        return Decimal(value.as_string().replace("_", ""))
    if isinstance(value, items.Bool):
        return bool(value)
    if isinstance(value, items.Integer):
        return int(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, list):
        return [_plain(element) for element in value]
    if isinstance(value, Mapping):
        return {str(key): _plain(element) for key, element in value.items()}
    if isinstance(value, items.Item):
        return value.unwrap()
    return value


# Checks on the raw tables, before structuring


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _secret_name_problem(key: str, path: str) -> ConfigProblem | None:
    name = re.sub(r"[_\-\s]", "", key.lower())
    if name in KEY_MATERIAL_NAMES:
        return ConfigProblem(path, NO_KEYS_IN_FILES)
    if name in OTHER_SECRET_NAMES:
        hint = f": {RETIRED_KEYS[path]}" if path in RETIRED_KEYS else ""
        return ConfigProblem(path, NO_SECRETS_IN_FILES + hint)
    return None


def _take_secrets(node: Any, path: str) -> Iterator[ConfigProblem]:
    """Find and remove key-named entries and key-like values anywhere; the values never reach a message."""
    children: list[tuple[Any, str]] = []
    if isinstance(node, dict):
        children = [(key, _join(path, key)) for key in node]
    elif isinstance(node, list):
        children = [(index, f"{path}[{index}]") for index in range(len(node))]
    doomed = []
    for child, child_path in children:
        value = node[child]
        named_secret = _secret_name_problem(child, child_path) if isinstance(child, str) else None
        if named_secret:
            yield named_secret
            doomed.append(child)
        elif looks_like_key_material(value):
            yield ConfigProblem(child_path, f"the value looks like key material; {NO_KEYS_IN_FILES}")
            doomed.append(child)
        else:
            yield from _take_secrets(value, child_path)
    for child in reversed(doomed):
        del node[child]


def _apply_account_env(raw: RawTable, env: Mapping[str, str]) -> list[ConfigProblem]:
    """Let HIP3_ACCOUNT_ADDRESS supply account.account_address; a conflict with the file is an error."""
    value = env.get(ACCOUNT_ADDRESS_ENV, "").strip()
    account = raw.setdefault("account", {}) if value else None
    if not isinstance(account, dict):
        return []
    path = "account.account_address"
    if not re.fullmatch(ADDRESS.pattern, value):
        return [ConfigProblem(path, f"{ACCOUNT_ADDRESS_ENV}={show(value)} is not {ADDRESS.what}")]
    written = account.get("account_address")
    if isinstance(written, str) and written.lower() != value.lower():
        message = f"the file says {show(written)} but {ACCOUNT_ADDRESS_ENV} says {show(value)}; keep one"
        return [ConfigProblem(path, message)]
    account["account_address"] = value
    return []


def _old_markets_format(raw: RawTable) -> list[ConfigProblem]:
    if not isinstance(raw.get("markets"), list):
        return []
    del raw["markets"]
    message = "[[markets]] is the old format; use a [markets] table with [[markets.allowlist]] entries"
    return [ConfigProblem("markets", message)]


def _schema_class(kind: Any) -> type | None:
    """The attrs class a field holds, directly or as the element of a tuple."""
    if is_section(kind):
        return cast(type, kind)
    if get_origin(kind) is tuple:
        return _schema_class(get_args(kind)[0])
    return None


def _unknown_keys(raw: RawTable, cls: type, path: str) -> Iterator[ConfigProblem]:
    fields = {field.name: field for field in attrs.fields(cls)}
    for key, value in raw.items():
        key_path = _join(path, key)
        if key in fields:
            yield from _unknown_keys_below(value, field_type(fields[key]), key_path)
        elif key_path in RETIRED_KEYS:
            yield ConfigProblem(key_path, f"not used by hip3: {RETIRED_KEYS[key_path]}")
        else:
            what = "unknown section" if not path and isinstance(value, dict) else "unknown key"
            yield ConfigProblem(key_path, what + _suggestion(key, list(fields)))


def _unknown_keys_below(value: Any, kind: Any, path: str) -> Iterator[ConfigProblem]:
    cls = _schema_class(kind)
    if cls is None:
        return
    if isinstance(value, dict):
        yield from _unknown_keys(value, cls, path)
    elif isinstance(value, list):
        for index, element in enumerate(value):
            if isinstance(element, dict):
                yield from _unknown_keys(element, cls, f"{path}[{index}]")


def _suggestion(word: str, choices: list[str]) -> str:
    by_lower = {choice.lower(): choice for choice in choices}
    close = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
    return f" (did you mean '{by_lower[close[0]]}'?)" if close else ""


# Structuring with cattrs


class InvalidValue(ValueError):
    """A value the schema refuses; `problems` holds (path suffix, message) pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(message for _, message in problems))


def _expected(what: str, value: Any) -> InvalidValue:
    return InvalidValue([("", f"expected {what}, got {show(value)} ({toml_type(value)})")])


def _structure_int(value: Any, _kind: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _expected("an integer", value)
    return value


def _structure_bool(value: Any, _kind: Any) -> bool:
    if not isinstance(value, bool):
        raise _expected("true or false", value)
    return value


def _structure_str(value: Any, _kind: Any) -> str:
    if not isinstance(value, str):
        raise _expected("a string", value)
    return value


def _structure_path(value: Any, _kind: Any) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise _expected("a path (a non-empty string)", value)
    return Path(value)


def _number_or_problem(value: Any) -> Decimal | InvalidValue:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        return _expected("a number", value)
    try:
        number = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        return _expected("a number", value)
    if not number.is_finite():
        return InvalidValue([("", f"{show(value)} is not a finite number")])
    return number


def _structure_decimal(value: Any, _kind: Any) -> Decimal:
    number = _number_or_problem(value)
    if isinstance(number, InvalidValue):
        raise number
    return number


def _structure_float(value: Any, _kind: Any) -> float:
    return float(_structure_decimal(value, _kind))


def _literal_hook(kind: Any) -> Callable[[Any, Any], Any]:
    choices = [str(choice) for choice in get_args(kind)]

    def structure(value: Any, _kind: Any) -> Any:
        if value not in choices:
            allowed = ", ".join(f'"{choice}"' for choice in choices)
            hint = _suggestion(value, choices) if isinstance(value, str) else ""
            raise InvalidValue([("", f"{show(value)} is not one of {allowed}{hint}")])
        return value

    return structure


def _tuple_hook(kind: Any, converter: cattrs.Converter) -> Callable[[Any, Any], Any]:
    as_list = GenericAlias(list, (get_args(kind)[0],))
    structure_list = converter.get_structure_hook(as_list)

    def structure(value: Any, _kind: Any) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise _expected("an array", value)
        return tuple(structure_list(value, as_list))

    return structure


def _checked(hook: Callable[[Any, Any], Any], checks: tuple[Check, ...]) -> Callable[[Any, Any], Any]:
    def structure(value: Any, kind: Any) -> Any:
        result = hook(value, kind)
        found = [problem for check in checks for problem in check.problems(result)]
        if found:
            raise InvalidValue(found)
        return result

    return structure


def _class_hook(cls: type, converter: cattrs.Converter) -> Callable[[Any, Any], Any]:
    overrides: dict[str, Any] = {
        field.name: override(struct_hook=_checked(converter.get_structure_hook(field_type(field)), checks))
        for field in attrs.fields(cls)
        if (checks := field.metadata.get("checks"))
    }
    structure_table: Callable[[Any, Any], Any] = make_dict_structure_fn(cls, converter, **overrides)

    def structure(value: Any, _kind: Any) -> Any:
        if not isinstance(value, dict):
            raise _expected("a table", value)
        return structure_table(value, cls)

    return structure


def _is_literal(kind: Any) -> bool:
    return get_origin(kind) is Literal


def _is_array(kind: Any) -> bool:
    """tuple[X, ...]: how the schema spells a TOML array."""
    return get_origin(kind) is tuple and get_args(kind)[1:] == (...,)


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(detailed_validation=True)
    for kind, hook in [
        (int, _structure_int),
        (bool, _structure_bool),
        (str, _structure_str),
        (Path, _structure_path),
        (Decimal, _structure_decimal),
        (float, _structure_float),
    ]:
        converter.register_structure_hook(kind, hook)
    converter.register_structure_hook_factory(_is_literal, _literal_hook)
    converter.register_structure_hook_factory(_is_array, _tuple_hook)
    converter.register_structure_hook_factory(is_section, _class_hook)
    return converter


_CONVERTER = _make_converter()


def _problems_of(error: BaseException, path: str) -> Iterator[ConfigProblem]:
    """Flatten cattrs' nested validation errors into problems with dotted paths."""
    if isinstance(error, ClassValidationError | IterableValidationError):
        with_notes, without_notes = error.group_exceptions()
        for sub_error, note in with_notes:
            if isinstance(note, AttributeValidationNote):
                yield from _problems_of(sub_error, _join(path, note.name))
            elif isinstance(note, IterableValidationNote):
                yield from _problems_of(sub_error, f"{path}[{note.index}]")
        for sub_error in without_notes:
            yield from _problems_of(sub_error, path)
    elif isinstance(error, InvalidValue):
        for suffix, message in error.problems:
            yield ConfigProblem(path + suffix, message)
    elif isinstance(error, KeyError):
        yield ConfigProblem(path, "required key is missing")
    else:
        yield ConfigProblem(path, scrub(str(error)) or type(error).__name__)


def _structure_config(raw: RawTable) -> tuple[Config, frozenset[str], list[ConfigProblem]]:
    """Structure each top-level key on its own, so one bad section does not hide the problems of the others.

    A section that fails is replaced by its defaults and named in the returned set, so that the cross-field
    rules that read it are skipped.
    """
    values: dict[str, Any] = {}
    failed: set[str] = set()
    problems: list[ConfigProblem] = []
    for field in attrs.fields(Config):
        if field.name not in raw:
            continue
        try:
            values[field.name] = _CONVERTER.structure(raw[field.name], field_type(field))
        except Exception as error:  # every failure becomes a problem for the operator
            failed.add(field.name)
            problems.extend(_problems_of(error, field.name))
    return Config(**values), frozenset(failed), problems
