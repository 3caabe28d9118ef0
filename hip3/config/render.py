"""The effective configuration as TOML, and the schema as rows for generated documentation.

`render_effective` writes every key in schema order with defaults filled in; its output loads back to an equal
`Config`. The schema holds no key material; the one value that carries a token (alerts.webhook_url) is shown
redacted, in a form the loader refuses, so the redacted text cannot be used by mistake.
"""

import urllib.parse
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import attrs
import tomlkit

from hip3.config.schema import Config, field_type, is_section

REDACTED = "<redacted>"


# Rendering


def render_effective(config: Config) -> str:
    """The configuration as TOML with every key, defaults included, in schema order; never a secret."""
    lines = ["# hip3 effective configuration: every key, defaults filled in"]
    tables = []
    for field in attrs.fields(Config):
        value = getattr(config, field.name)
        if attrs.has(type(value)):
            tables.append((field.name, value))
        else:
            lines.extend(_key_lines(field, value))
    for name, table in tables:
        lines.extend(["", f"[{name}]"])
        for field in attrs.fields(type(table)):
            lines.extend(_key_lines(field, getattr(table, field.name)))
    return "\n".join(lines) + "\n"


def _key_lines(field: "attrs.Attribute[Any]", value: Any) -> list[str]:
    if value is None:
        return [f"# {field.name} is not set"]
    if field.metadata.get("redact"):
        value = _redacted_url(value)
    if isinstance(value, tuple) and value and attrs.has(type(value[0])):
        return [f"{field.name} = [", *(f"    {_inline_table(element)}," for element in value), "]"]
    return [f"{field.name} = {toml_value(value)}"]


def _inline_table(entry: Any) -> str:
    values = [(field.name, getattr(entry, field.name)) for field in attrs.fields(type(entry))]
    return (
        "{ "
        + ", ".join(f"{name} = {toml_value(value)}" for name, value in values if value is not None)
        + " }"
    )


def _redacted_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}/{REDACTED}"


def toml_value(value: Any) -> str:
    """One value as TOML text; Decimals in plain notation so they read back exactly."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str | Path):
        return tomlkit.string(str(value)).as_string()
    if isinstance(value, tuple | list):
        return "[" + ", ".join(toml_value(element) for element in value) + "]"
    raise TypeError(f"no TOML form for {type(value).__name__}")


# Schema rows for documentation


@attrs.frozen
class SchemaField:
    """One key of the schema; `section` is "" for top-level keys, "markets.allowlist" for its entries."""

    section: str
    key: str
    type: str
    default: str
    allowed: str
    doc: str


def schema_sections() -> list[tuple[str, str]]:
    """(section, one-line description) for every section, in file order."""
    return [
        (field.name, field.metadata["doc"]) for field in attrs.fields(Config) if is_section(field_type(field))
    ]


def schema_fields() -> list[SchemaField]:
    """Every key of the schema in file order, with type, default, allowed values and description."""
    rows = [_row("", field) for field in attrs.fields(Config) if not is_section(field_type(field))]
    for section_name, _ in schema_sections():
        section_class = field_type(attrs.fields_dict(Config)[section_name])
        for field in attrs.fields(section_class):
            rows.append(_row(section_name, field))
            element = _element_class(field_type(field))
            if element is not None:
                rows.extend(_row(f"{section_name}.{field.name}", entry) for entry in attrs.fields(element))
    return rows


def _element_class(kind: Any) -> type | None:
    if get_origin(kind) is tuple and is_section(get_args(kind)[0]):
        element: type = get_args(kind)[0]
        return element
    return None


def _row(section: str, field: "attrs.Attribute[Any]") -> SchemaField:
    return SchemaField(
        section=section,
        key=field.name,
        type=_type_name(field_type(field)),
        default=_default_text(field),
        allowed=_allowed_text(field),
        doc=field.metadata["doc"],
    )


def _type_name(kind: Any) -> str:
    names = {int: "integer", Decimal: "decimal", float: "float", bool: "boolean", str: "string", Path: "path"}
    if kind in names:
        return names[kind]
    if get_origin(kind) is Literal:
        return "string"
    if get_origin(kind) is tuple:
        element = get_args(kind)[0]
        return "array of tables" if is_section(element) else f"array of {_type_name(element)}"
    optional = [arg for arg in get_args(kind) if arg is not type(None)]
    if len(optional) == 1:
        return _type_name(optional[0])
    return str(kind)


def _default_text(field: "attrs.Attribute[Any]") -> str:
    if field.metadata.get("derived"):
        return f"derived {field.metadata['derived']}"
    default = field.default
    if default is attrs.NOTHING:
        return "required"
    if default is None:
        return "not set"
    return toml_value(default)


def _allowed_text(field: "attrs.Attribute[Any]") -> str:
    kind = field_type(field)
    literal = next((arg for arg in [kind, *get_args(kind)] if get_origin(arg) is Literal), None)
    if literal is not None:
        return "one of " + ", ".join(f'"{choice}"' for choice in get_args(literal))
    return "; ".join(check.describe() for check in field.metadata["checks"])
