"""docs/configuration.md, generated from the configuration schema so that it cannot drift from the code.

`hip3 docs-config` calls `write_configuration_doc`; a test compares the committed page with a fresh render.
Every section appears with its description, then every key with its type, default, allowed values and
description, in the order the schema (and `hip3 check-config`) lists them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Final

from hip3.config import ACCOUNT_ADDRESS_ENV, TRADING_KEY_ENV, SchemaField, schema_fields, schema_sections

CONFIGURATION_DOC: Final = Path("docs/configuration.md")
GENERATOR_COMMAND: Final = "hip3 docs-config"
DASHBOARD_TOKEN_ENV: Final = "HIP3_DASHBOARD_TOKEN"

_TABLE_HEADER: Final = ("| key | type | default | allowed | description |", "|---|---|---|---|---|")


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ") or "—"


def _code(text: str) -> str:
    return f"`{text}`" if text else "—"


def _default(text: str) -> str:
    """A TOML default as code; the words "not set", "required" and "derived from …" as text."""
    words = text in ("not set", "required") or text.startswith("derived ")
    return text if words else _code(text)


def _table(rows: Iterable[SchemaField]) -> list[str]:
    lines = list(_TABLE_HEADER)
    for row in rows:
        cells = (_code(row.key), row.type, _default(row.default), row.allowed, row.doc)
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return lines


def _rows_of(section: str) -> list[SchemaField]:
    return [row for row in schema_fields() if row.section == section]


def _subsections_of(section: str) -> list[str]:
    seen: dict[str, None] = {}
    for row in schema_fields():
        if row.section.startswith(section + "."):
            seen.setdefault(row.section)
    return list(seen)


def _preamble() -> list[str]:
    return [
        "# Configuration",
        "",
        f"<!-- Generated from the schema (hip3/config/schema.py) by `{GENERATOR_COMMAND}`. "
        "Do not edit by hand: change the schema and run the command again. -->",
        "",
        f"This page is generated from the configuration schema by `{GENERATOR_COMMAND}`; a test fails "
        "when it is out of date.",
        "",
        "A configuration is one TOML file. Every key below is optional unless its description says "
        "otherwise; `hip3 check-config FILE` prints the effective configuration with every default "
        "filled in. Unknown keys, wrong types and out-of-range values are errors that name the key.",
        "",
        "Secrets never go in the file (a `private_key` entry anywhere stops loading). They come from the "
        "environment:",
        "",
        f"- `{TRADING_KEY_ENV}`: the signing key (or `account.key_file`), trading mode only",
        f"- `{ACCOUNT_ADDRESS_ENV}`: the account traded, when the file does not set "
        "`account.account_address`",
        f"- `{DASHBOARD_TOKEN_ENV}`: the token the dashboard's hard-stop buttons require",
    ]


def _section_lines(section: str, description: str) -> Iterator[str]:
    yield from ("", f"## `[{section}]`", "", description[:1].upper() + description[1:] + ".", "")
    yield from _table(_rows_of(section))
    for subsection in _subsections_of(section):
        yield from ("", f"### `[[{subsection}]]` entries", "")
        yield from _table(_rows_of(subsection))


def render_configuration_doc() -> str:
    """The whole of docs/configuration.md."""
    lines = _preamble()
    top_level = _rows_of("")
    if top_level:
        lines.extend(["", "## Top-level keys", "", *_table(top_level)])
    for section, description in schema_sections():
        lines.extend(_section_lines(section, description))
    return "\n".join(lines) + "\n"


def write_configuration_doc(path: Path | str = CONFIGURATION_DOC) -> bool:
    """Write the page to `path`; True when its content changed (False: it was already current)."""
    target = Path(path)
    text = render_configuration_doc()
    if target.exists() and target.read_text(encoding="utf-8") == text:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return True


__all__ = ["CONFIGURATION_DOC", "GENERATOR_COMMAND", "render_configuration_doc", "write_configuration_doc"]
