"""Logging set-up: structlog for the bot, the standard library's loggers routed through the same renderer.

    configure_logging(level="info", fmt="json")     # production: one JSON object per line on stderr
    configure_logging(level="debug", fmt="console")  # the demo: readable lines

Every line carries `timestamp` (ISO 8601, UTC), `level`, `event` and `logger`, then the call's fields.
Libraries that log through `logging` (httpx, hypercorn, trio-websocket) are formatted the same way and kept
at WARNING or above, whatever the bot's level.

Secrets never reach the output. `redact_secrets` replaces a `SigningKey` anywhere in the event, any value
under a key whose name says it is secret (private_key, secret, token, password, authorization, webhook…),
32 raw bytes, and any run of 64 or more hex digits inside any string (a private key, with or without 0x).
Exceptions are rendered to text before that pass, without local variables, so an exception message holding
a key is scrubbed too; and the rendered line gets the hex pass once more, which catches objects whose text
only appears at rendering. The cost of the rule: 32-byte hashes (transaction hashes, signature halves) are
redacted as well, since nothing distinguishes them from a key.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from hip3.protocol.signing import SigningKey

LogFormat = Literal["json", "console"]

REDACTED: Final = "<redacted>"
LIBRARY_LOGGERS: Final = ("httpx", "httpcore", "hypercorn", "trio-websocket", "trio_websocket", "asyncio")
LEVELS: Final = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

_LONG_HEX: Final = re.compile(r"(?<![0-9a-fA-F])(?:0[xX])?[0-9a-fA-F]{64,}(?![0-9a-fA-F])")
_SECRET_KEY_NAME: Final = re.compile(
    r"private[_-]?key|secret|token|passw(or)?d|authori[sz]ation|api[_-]?key|webhook|credential|mnemonic|seed",
    re.IGNORECASE,
)
_RAW_KEY_LENGTH: Final = 32


# Redaction


def scrub_text(text: str) -> str:
    """`text` with every run of 64+ hex digits (optionally 0x-prefixed) replaced by `<redacted>`."""
    return _LONG_HEX.sub(REDACTED, text)


def is_secret_key_name(name: object) -> bool:
    return isinstance(name, str) and _SECRET_KEY_NAME.search(name) is not None


def redact_value(value: Any) -> Any:
    """`value` with secrets replaced, recursing through mappings and sequences."""
    if isinstance(value, SigningKey):
        return REDACTED
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return REDACTED if len(value) == _RAW_KEY_LENGTH else value
    if isinstance(value, BaseException):
        return scrub_text(f"{type(value).__name__}: {value}")
    if isinstance(value, Mapping):
        return {
            key: REDACTED if is_secret_key_name(key) else redact_value(item) for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return type(value)(redact_value(item) for item in value) if not _is_namedtuple(value) else value
    return value


def _is_namedtuple(value: object) -> bool:
    return isinstance(value, tuple) and hasattr(value, "_fields")


def redact_secrets(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: replace secret values in the event (see the module docstring)."""
    for key in list(event_dict):
        if key.startswith("_"):  # structlog's own bookkeeping (_record, _from_structlog)
            continue
        event_dict[key] = REDACTED if is_secret_key_name(key) else redact_value(event_dict[key])
    return event_dict


def _scrubbed(renderer: Callable[..., Any]) -> Processor:
    """The renderer, with the hex pass applied to the line it produces."""

    def render(logger: WrappedLogger, method: str, event_dict: EventDict) -> str:
        return scrub_text(str(renderer(logger, method, event_dict)))

    return render


# Configuration


def _shared_processors() -> list[Processor]:
    """Applied to structlog's events and to records from the standard library alike."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,  # exceptions as text (no locals) before the redaction pass
        redact_secrets,
    ]


def _renderer(fmt: LogFormat, stream: TextIO) -> Processor:
    if fmt == "json":
        return _scrubbed(structlog.processors.JSONRenderer(serializer=json.dumps, default=str))
    colors = bool(getattr(stream, "isatty", lambda: False)())
    return _scrubbed(
        structlog.dev.ConsoleRenderer(colors=colors, exception_formatter=structlog.dev.plain_traceback)
    )


def _structlog_processors() -> list[Processor]:
    return [
        structlog.stdlib.filter_by_level,
        structlog.stdlib.PositionalArgumentsFormatter(),
        *_shared_processors(),
        structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
    ]


class _Hip3Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """The root handler configure_logging installs (marked so a second call replaces it)."""


def _install_root_handler(handler: logging.Handler, level: int) -> None:
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Hip3Handler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))


def configure_logging(*, level: str = "info", fmt: LogFormat = "json", stream: TextIO | None = None) -> None:
    """Send every log line, from structlog or the standard library, to `stream` (stderr) as `fmt`."""
    if level not in LEVELS:
        raise ValueError(f"unknown log level {level!r} (allowed: {', '.join(LEVELS)})")
    if fmt not in ("json", "console"):
        raise ValueError(f"unknown log format {fmt!r} (allowed: json, console)")
    stream = stream or sys.stderr
    numeric_level = LEVELS[level]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, _renderer(fmt, stream)],
    )
    handler = _Hip3Handler(stream)
    handler.setFormatter(formatter)
    _install_root_handler(handler, numeric_level)
    structlog.configure(
        processors=_structlog_processors(),
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        context_class=dict,
        cache_logger_on_first_use=False,  # tests reconfigure; module-level loggers must follow
    )


__all__ = ["REDACTED", "configure_logging", "redact_secrets", "redact_value", "scrub_text"]
