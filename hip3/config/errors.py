"""Problems found in a configuration file, and how values are shown in them without leaking key material."""

import json
import re
from collections.abc import Iterable
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import attrs

TRADING_KEY_ENV = "HIP3_TRADING_KEY"
ACCOUNT_ADDRESS_ENV = "HIP3_ACCOUNT_ADDRESS"
NO_KEYS_IN_FILES = f"keys are never read from config files; set {TRADING_KEY_ENV} or account.key_file"

# A private key is 64 hex digits; any run of 48 or more (well past an address's 40) is treated as one.
_HEX_RUN = re.compile(r"(0x)?[0-9a-fA-F]{48,}")
_MNEMONIC = re.compile(r"[a-z]+(\s+[a-z]+){11,}")
_HUGE_INT = 2**128
_SHOWN_CHARS = 60


@attrs.frozen
class ConfigProblem:
    """One thing wrong with a configuration: the dotted path of the key ("" for the whole file) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(Exception):
    """A configuration that cannot be used; `problems` holds every problem found, `str()` lists them."""

    def __init__(self, problems: Iterable[ConfigProblem], *, source: str = "<string>") -> None:
        self.problems = list(problems)
        self.source = source
        count = len(self.problems)
        header = f"{source}: {count} configuration problem{'s' if count != 1 else ''}"
        super().__init__("\n".join([header, *(f"  {problem}" for problem in self.problems)]))


def looks_like_key_material(value: object) -> bool:
    """True for values shaped like a private key or a seed phrase: never echoed, never accepted."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return abs(value) >= _HUGE_INT
    if isinstance(value, str):
        text = value.strip()
        return bool(_HEX_RUN.search(text) or _MNEMONIC.fullmatch(text))
    return False


def scrub(text: str) -> str:
    """Blank out key-like runs of hex digits in a message taken from elsewhere (e.g. a parser)."""
    return _HEX_RUN.sub("<redacted>", text)


def toml_type(value: object) -> str:
    """The TOML name of a parsed value's type."""
    names: list[tuple[type | tuple[type, ...], str]] = [
        (bool, "boolean"),
        (int, "integer"),
        ((Decimal, float), "float"),
        (str, "string"),
        (list, "array"),
        (dict, "table"),
        ((datetime, date, time), "date/time"),
    ]
    for kind, name in names:
        if isinstance(value, kind):
            return name
    return type(value).__name__


def show(value: Any) -> str:
    """A value as it would be written in TOML, redacted if it looks like key material, shortened if long."""
    if looks_like_key_material(value):
        return "<redacted: looks like key material>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        shown = value if len(value) <= _SHOWN_CHARS else value[:_SHOWN_CHARS] + "…"
        return json.dumps(shown, ensure_ascii=False)
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return str(value)
