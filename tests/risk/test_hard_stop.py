"""The hard-stop latch: persisted before anyone hears of it, restored on restart, fail-closed when corrupt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio
from structlog.testing import capture_logs

from hip3.risk.hard_stop import (
    LOSING_STREAK,
    MANUAL,
    REALIZED_LOSS,
    UNREADABLE_STATE,
    HardStop,
    Latch,
    read_persisted,
    reset_persisted,
)

NOW_MS = 1_767_225_600_000
LOSS_REASON = "realised loss 21.30 USD over the last 3600 s exceeds 20"


def fixed_clock() -> int:
    return NOW_MS


@pytest.fixture
def state_file(tmp_path: Path) -> Path:
    return tmp_path / "state" / "hardstop.json"


def test_a_fresh_stop_without_a_file_is_clear(state_file: Path) -> None:
    stop = HardStop(state_file, wall_ms=fixed_clock)
    assert stop.reason() is None
    assert stop.state.value is None
    assert not state_file.exists()


def test_a_restart_comes_back_latched_with_the_same_latch(state_file: Path) -> None:
    assert HardStop(state_file, wall_ms=fixed_clock).latch(REALIZED_LOSS, LOSS_REASON)

    restarted = HardStop(state_file, wall_ms=lambda: NOW_MS + 60_000)

    assert restarted.state.value == Latch(LOSS_REASON, REALIZED_LOSS, NOW_MS)
    assert restarted.reason() == LOSS_REASON


def test_the_file_holds_plain_json_and_no_temporary_file_is_left(state_file: Path) -> None:
    HardStop(state_file, wall_ms=fixed_clock).latch(MANUAL, "operator pressed stop")

    assert json.loads(state_file.read_text()) == {
        "reason": "operator pressed stop",
        "trigger": MANUAL,
        "latched_at_ms": NOW_MS,
    }
    assert [p.name for p in state_file.parent.iterdir()] == [state_file.name]


def test_the_first_latch_wins(state_file: Path) -> None:
    stop = HardStop(state_file, wall_ms=fixed_clock)
    assert stop.latch(REALIZED_LOSS, LOSS_REASON) is True

    assert stop.latch(LOSING_STREAK, "6 losing round trips in a row exceed 5") is False

    assert stop.reason() == LOSS_REASON
    assert read_persisted(state_file) == Latch(LOSS_REASON, REALIZED_LOSS, NOW_MS)


def test_listeners_hear_once_and_only_after_the_file_is_written(state_file: Path) -> None:
    stop = HardStop(state_file, wall_ms=fixed_clock)
    heard: list[tuple[Latch, Latch | None, Latch | None]] = []
    stop.listeners.append(lambda latch: heard.append((latch, read_persisted(state_file), stop.state.value)))

    stop.latch(REALIZED_LOSS, LOSS_REASON)
    stop.latch(MANUAL, "again")

    expected = Latch(LOSS_REASON, REALIZED_LOSS, NOW_MS)
    assert heard == [(expected, expected, expected)]


def test_a_failing_listener_does_not_keep_the_others_from_hearing(state_file: Path) -> None:
    stop = HardStop(state_file, wall_ms=fixed_clock)
    heard: list[str] = []

    def broken(_latch: Latch) -> None:
        raise RuntimeError("alert channel down")

    stop.listeners.extend([broken, lambda latch: heard.append(latch.trigger)])
    with capture_logs() as logs:
        assert stop.latch(MANUAL, "stop")

    assert heard == [MANUAL]
    assert any(entry["event"] == "hard stop listener failed" for entry in logs)


def test_latching_logs_a_critical_line(state_file: Path) -> None:
    with capture_logs() as logs:
        HardStop(state_file, wall_ms=fixed_clock).latch(REALIZED_LOSS, LOSS_REASON)

    critical = [entry for entry in logs if entry["log_level"] == "critical"]
    assert critical == [
        {
            "event": "HARD STOP LATCHED",
            "log_level": "critical",
            "trigger": REALIZED_LOSS,
            "reason": LOSS_REASON,
            "latched_at_ms": NOW_MS,
        }
    ]


def test_reset_clears_the_latch_and_the_file(state_file: Path) -> None:
    stop = HardStop(state_file, wall_ms=fixed_clock)
    cleared: list[Latch] = []
    stop.reset_listeners.append(cleared.append)
    stop.latch(REALIZED_LOSS, LOSS_REASON)

    with capture_logs() as logs:
        assert stop.reset(operator="alice") == Latch(LOSS_REASON, REALIZED_LOSS, NOW_MS)

    assert stop.reason() is None
    assert not state_file.exists()
    assert cleared == [Latch(LOSS_REASON, REALIZED_LOSS, NOW_MS)]
    assert logs[0]["operator"] == "alice"
    assert HardStop(state_file, wall_ms=fixed_clock).reason() is None
    assert stop.reset(operator="alice") is None
    assert cleared == [Latch(LOSS_REASON, REALIZED_LOSS, NOW_MS)]


def test_after_a_reset_the_next_trigger_latches_and_is_heard_again(state_file: Path) -> None:
    stop = HardStop(state_file, wall_ms=fixed_clock)
    heard: list[str] = []
    stop.listeners.append(lambda latch: heard.append(latch.trigger))
    stop.latch(REALIZED_LOSS, LOSS_REASON)
    stop.reset(operator="alice")

    assert stop.latch(MANUAL, "again")

    assert heard == [REALIZED_LOSS, MANUAL]
    assert read_persisted(state_file) == Latch("again", MANUAL, NOW_MS)


def test_reset_persisted_clears_a_file_without_a_running_bot(state_file: Path) -> None:
    HardStop(state_file, wall_ms=fixed_clock).latch(REALIZED_LOSS, LOSS_REASON)

    assert reset_persisted(state_file) == Latch(LOSS_REASON, REALIZED_LOSS, NOW_MS)

    assert not state_file.exists()
    assert reset_persisted(state_file) is None
    assert HardStop(state_file, wall_ms=fixed_clock).reason() is None


CORRUPT_CONTENTS = {
    "garbage": b"{not json",
    "empty": b"",
    "not_an_object": b"[1, 2]",
    "missing_reason": json.dumps({"trigger": MANUAL, "latched_at_ms": 1}).encode(),
    "ms_not_an_int": json.dumps({"reason": "r", "trigger": MANUAL, "latched_at_ms": "1"}).encode(),
    "ms_a_bool": json.dumps({"reason": "r", "trigger": MANUAL, "latched_at_ms": True}).encode(),
    "not_utf8": b"\xff\xfe\x00",
}


@pytest.mark.parametrize("content", CORRUPT_CONTENTS.values(), ids=CORRUPT_CONTENTS.keys())
def test_a_corrupt_file_fails_closed(state_file: Path, content: bytes) -> None:
    state_file.parent.mkdir()
    state_file.write_bytes(content)

    with capture_logs() as logs:
        stop = HardStop(state_file, wall_ms=fixed_clock)

    latch = stop.state.value
    assert latch is not None
    assert latch.trigger == UNREADABLE_STATE
    assert latch.reason.startswith(f"unreadable hard-stop file: {state_file}: ")
    assert stop.reason() == latch.reason
    assert [entry["log_level"] for entry in logs] == ["critical", "critical"]
    assert stop.latch(MANUAL, "later trigger") is False


def test_a_corrupt_file_is_cleared_by_an_operator_reset(state_file: Path) -> None:
    state_file.parent.mkdir()
    state_file.write_bytes(b"\x00garbage")
    stop = HardStop(state_file, wall_ms=fixed_clock)

    cleared = stop.reset(operator="alice")

    assert cleared is not None and cleared.trigger == UNREADABLE_STATE
    assert not state_file.exists()
    assert HardStop(state_file, wall_ms=fixed_clock).reason() is None


def test_reset_persisted_clears_a_corrupt_file_and_reports_it(state_file: Path) -> None:
    state_file.parent.mkdir()
    state_file.write_bytes(b"{")

    cleared = reset_persisted(state_file)

    assert cleared is not None and cleared.trigger == UNREADABLE_STATE
    assert not state_file.exists()


def test_a_file_that_cannot_be_written_still_latches_in_memory(state_file: Path) -> None:
    stop = HardStop(state_file, wall_ms=fixed_clock)
    state_file.parent.write_text("")  # its directory's place is taken by a file: the write fails
    heard: list[Latch] = []
    stop.listeners.append(heard.append)

    with capture_logs() as logs:
        assert stop.latch(MANUAL, "stop")

    assert stop.reason() == "stop"
    assert heard == [Latch("stop", MANUAL, NOW_MS)]
    assert logs[0]["event"].startswith("hard stop state file could not be written")


async def test_a_task_waiting_on_the_state_wakes_when_it_latches(state_file: Path) -> None:
    stop = HardStop(state_file, wall_ms=fixed_clock)
    woke: list[Latch | None] = []

    async def wait_for_latch() -> None:
        woke.append(await stop.state.wait_for(lambda latch: latch is not None))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(wait_for_latch)
        await trio.testing.wait_all_tasks_blocked()
        stop.latch(MANUAL, "stop")

    assert woke == [Latch("stop", MANUAL, NOW_MS)]
