"""hip3.ops.logging: JSON and console lines, stdlib routing, level filtering, and no key in any shape."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from hip3.ops.logging import REDACTED, configure_logging, redact_value, scrub_text
from hip3.protocol.signing import SigningKey

TEST_KEY = "0x0123456789012345678901234567890123456789012345678901234567890123"  # the SDK's public test key
KEY_DIGITS = TEST_KEY[2:]


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


def lines_of(stream: io.StringIO) -> list[str]:
    return [line for line in stream.getvalue().splitlines() if line]


def json_lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in lines_of(stream)]


def configured(level: str = "info", fmt: str = "json") -> io.StringIO:
    stream = io.StringIO()
    configure_logging(level=level, fmt=fmt, stream=stream)  # type: ignore[arg-type]
    return stream


def test_json_lines_carry_timestamp_level_event_logger_and_fields() -> None:
    stream = configured()
    structlog.get_logger("hip3.test").info("order sent", coin="xyz:SILVER", size=3)
    [line] = json_lines(stream)
    assert line["event"] == "order sent"
    assert line["level"] == "info"
    assert line["logger"] == "hip3.test"
    assert line["coin"] == "xyz:SILVER" and line["size"] == 3
    assert isinstance(line["timestamp"], str) and line["timestamp"].endswith("Z")


def test_stdlib_records_are_formatted_the_same_way() -> None:
    stream = configured()
    logging.getLogger("hip3.plain").warning("disk %s is slow", "sda")
    [line] = json_lines(stream)
    assert line == {**line, "event": "disk sda is slow", "level": "warning", "logger": "hip3.plain"}


def test_library_loggers_are_kept_at_warning() -> None:
    stream = configured(level="debug")
    logging.getLogger("httpx").info("HTTP Request: POST https://example.invalid")
    logging.getLogger("hypercorn.error").warning("worker restarted")
    assert [line["event"] for line in json_lines(stream)] == ["worker restarted"]


def test_level_filtering() -> None:
    stream = configured(level="warning")
    log = structlog.get_logger("hip3.levels")
    log.debug("d")
    log.info("i")
    log.warning("w")
    log.error("e")
    logging.getLogger("hip3.levels").info("stdlib info")
    assert [line["event"] for line in json_lines(stream)] == ["w", "e"]


def test_console_output_is_readable() -> None:
    stream = configured(fmt="console")
    structlog.get_logger("hip3.demo").info("fill", coin="xyz:TSLA", px="250.5")
    [line] = lines_of(stream)
    assert "fill" in line and "coin=xyz:TSLA" in line and "px=250.5" in line and "[hip3.demo]" in line
    assert "\x1b[" not in line  # no colour codes when the stream is not a terminal
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_a_second_configuration_replaces_the_first() -> None:
    first = configured()
    second = configured()
    structlog.get_logger("hip3.twice").info("once")
    assert lines_of(first) == [] and len(lines_of(second)) == 1


def test_bad_level_or_format_is_refused() -> None:
    with pytest.raises(ValueError, match="log level"):
        configure_logging(level="verbose")
    with pytest.raises(ValueError, match="log format"):
        configure_logging(fmt="xml")  # type: ignore[arg-type]


def log_the_key_in_every_shape() -> None:
    key = SigningKey.from_hex(TEST_KEY)
    log = structlog.get_logger("hip3.leak")
    log.info("key object", key=key)
    log.info("string field", value=TEST_KEY, bare=KEY_DIGITS)
    log.info("nested", payload={"wallet": {"k": TEST_KEY}, "list": [TEST_KEY, (KEY_DIGITS,)]})
    log.info("named", private_key="not hex at all", token="abc", password="p", authorization="Bearer x")
    log.info(f"in the event itself {TEST_KEY}")
    log.info("positional %s", TEST_KEY)
    log.info("error object", error=ValueError(f"bad key {TEST_KEY}"))
    log.info("raw bytes", raw=bytes.fromhex(KEY_DIGITS))
    log.info("unknown object", thing=type("Holder", (), {"__repr__": lambda self: f"Holder({TEST_KEY})"})())
    try:
        raise RuntimeError(f"signing failed with {TEST_KEY}")
    except RuntimeError:
        log.exception("exception through structlog")
        logging.getLogger("hip3.leak.stdlib").exception("exception through stdlib")
    logging.getLogger("hip3.leak.stdlib").warning("stdlib message %s", TEST_KEY)
    logging.getLogger("httpx").error("library message %s", KEY_DIGITS)


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_the_key_never_appears(fmt: str) -> None:
    stream = configured(level="debug", fmt=fmt)
    log_the_key_in_every_shape()
    output = stream.getvalue()
    assert KEY_DIGITS not in output
    assert KEY_DIGITS.upper() not in output.upper()
    assert "not hex at all" not in output and "Bearer x" not in output
    assert output.count(REDACTED) >= 15
    assert "signing failed with" in output and "Traceback" in output  # the exception is still there
    if fmt == "json":
        assert len(json_lines(stream)) == 13


def test_the_address_of_a_key_object_is_not_logged_either() -> None:
    stream = configured()
    key = SigningKey.from_hex(TEST_KEY)
    structlog.get_logger("hip3.leak").info("key object", key=key)
    [line] = json_lines(stream)
    assert line["key"] == REDACTED


def test_scrub_text_leaves_shorter_hex_alone() -> None:
    address, cloid = "0x" + "ab" * 20, "0x" + "cd" * 16
    assert scrub_text(f"{address} {cloid}") == f"{address} {cloid}"
    assert scrub_text(f"key={TEST_KEY}.") == f"key={REDACTED}."
    assert scrub_text(f"x{KEY_DIGITS}y") == f"x{REDACTED}y"


def test_redact_value_recurses() -> None:
    value = {"outer": [{"secret_thing": 1}, {TEST_KEY}], "n": 1.5}
    assert redact_value(value) == {"outer": [{"secret_thing": REDACTED}, {REDACTED}], "n": 1.5}
