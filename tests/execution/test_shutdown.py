"""The graceful shutdown sequence with fake steps under MockClock, and the signal handling with real signals.

Each fake step sleeps a known virtual time (or forever) and records when it ran, so the order, the start and
end of every step and the deadline are asserted exactly. The signal tests send this process real signals,
only while `wait_for_signals` has its receiver installed (it reports started() after installing it).
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap

import attrs
import trio
import trio.lowlevel
import trio.testing

from hip3.execution.shutdown import (
    ShutdownReport,
    ShutdownSteps,
    Step,
    StepOutcome,
    StepReport,
    shut_down,
    wait_for_signals,
)
from tests.conftest import REPO_ROOT

HANGS = math.inf


@attrs.define
class FakeSteps:
    """Steps that take the given virtual seconds (math.inf: never end) or raise; calls are recorded."""

    durations: dict[str, float] = attrs.Factory(dict)
    failing: frozenset[str] = frozenset()
    start: float = attrs.Factory(trio.current_time)
    calls: list[tuple[float, str]] = attrs.Factory(list)

    def step(self, name: str) -> Step:
        async def run() -> None:
            self.calls.append((trio.current_time() - self.start, name))
            await trio.sleep(self.durations.get(name, 1.0))
            if name in self.failing:
                raise RuntimeError(f"{name} broke")

        return run

    def steps(self, *, flatten_enabled: bool = True) -> ShutdownSteps:
        return ShutdownSteps(
            stop_entries=self.step("stop_entries"),
            cancel_resting=self.step("cancel_resting"),
            flatten=self.step("flatten"),
            clear_deadman=self.step("clear_deadman"),
            flush=self.step("flush"),
            flatten_enabled=flatten_enabled,
        )

    def relative(self, report: ShutdownReport) -> list[tuple[str, StepOutcome, float | None, float | None]]:
        def since_start(at: float | None) -> float | None:
            return None if at is None else at - self.start

        return [(s.name, s.outcome, since_start(s.started_at), since_start(s.ended_at)) for s in report.steps]


C, T, S, D, F = (
    StepOutcome.COMPLETED,
    StepOutcome.TIMED_OUT,
    StepOutcome.SKIPPED,
    StepOutcome.DISABLED,
    StepOutcome.FAILED,
)


async def test_steps_run_in_order_one_after_another(autojump_clock: trio.testing.MockClock) -> None:
    fake = FakeSteps(
        {"stop_entries": 0.5, "cancel_resting": 2, "flatten": 3, "clear_deadman": 1, "flush": 0.25}
    )
    report = await shut_down(fake.steps(), deadline_s=30)

    assert fake.relative(report) == [
        ("stop_entries", C, 0.0, 0.5),
        ("cancel_resting", C, 0.5, 2.5),
        ("flatten", C, 2.5, 5.5),
        ("clear_deadman", C, 5.5, 6.5),
        ("flush", C, 6.5, 6.75),
    ]
    assert report.clean
    assert report.deadline == fake.start + 30


async def test_a_hanging_step_is_abandoned_at_the_deadline_and_later_steps_skipped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeSteps({"cancel_resting": 2, "flatten": HANGS})
    report = await shut_down(fake.steps(), deadline_s=10)
    returned_at = trio.current_time() - fake.start

    assert fake.relative(report) == [
        ("stop_entries", C, 0.0, 1.0),
        ("cancel_resting", C, 1.0, 3.0),
        ("flatten", T, 3.0, 10.0),
        ("clear_deadman", S, None, None),
        ("flush", S, None, None),
    ]
    assert returned_at == 10.0
    assert [name for _, name in fake.calls] == ["stop_entries", "cancel_resting", "flatten"]
    assert report.steps[3].detail == "deadline passed"
    assert not report.clean


async def test_steps_are_shielded_from_outer_cancellation(autojump_clock: trio.testing.MockClock) -> None:
    fake = FakeSteps({"cancel_resting": 4})
    reports: list[ShutdownReport] = []
    with trio.CancelScope() as outer:
        outer.deadline = fake.start + 2  # e.g. the body's scope cancelled while the cancels are in flight
        reports.append(await shut_down(fake.steps(), deadline_s=30))
        await trio.lowlevel.checkpoint()  # the outer cancellation lands here, after the sequence
        raise AssertionError("not reached")

    assert outer.cancelled_caught
    assert [outcome for _, outcome, _, _ in fake.relative(reports[0])] == [C] * 5
    assert trio.current_time() - fake.start == 8.0


async def test_failed_cancels_keep_the_deadman_armed_and_the_rest_still_runs(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeSteps(failing=frozenset({"cancel_resting"}))
    report = await shut_down(fake.steps(), deadline_s=30)

    assert fake.relative(report) == [
        ("stop_entries", C, 0.0, 1.0),
        ("cancel_resting", F, 1.0, 2.0),
        ("flatten", C, 2.0, 3.0),
        ("clear_deadman", S, None, None),
        ("flush", C, 3.0, 4.0),
    ]
    assert report.steps[1].detail == "RuntimeError('cancel_resting broke')"
    assert report.outcome("clear_deadman") is S
    assert report.steps[3].detail is not None and "armed switch stays" in report.steps[3].detail


async def test_flatten_runs_only_when_configured(autojump_clock: trio.testing.MockClock) -> None:
    fake = FakeSteps()
    report = await shut_down(fake.steps(flatten_enabled=False), deadline_s=30)

    assert report.steps[2] == StepReport("flatten", D, None, None, "shutdown.flatten is off")
    assert [name for _, name in fake.calls] == ["stop_entries", "cancel_resting", "clear_deadman", "flush"]
    assert report.clean


async def test_first_signal_starts_the_sequence_and_a_second_one_ends_it() -> None:
    firsts: list[int] = []
    seconds: list[int] = []
    first_seen, second_seen = trio.Event(), trio.Event()

    def on_first(signum: int) -> None:
        firsts.append(signum)
        first_seen.set()

    def on_second(signum: int) -> None:
        seconds.append(signum)
        second_seen.set()

    handler_before = signal.getsignal(signal.SIGINT)
    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: wait_for_signals(on_first, on_second=on_second, task_status=task_status)
        )
        os.kill(os.getpid(), signal.SIGTERM)
        await first_seen.wait()
        os.kill(os.getpid(), signal.SIGINT)
        await second_seen.wait()

    assert firsts == [signal.SIGTERM]
    assert seconds == [signal.SIGINT]
    assert signal.getsignal(signal.SIGINT) is handler_before  # the receiver put Trio's own handler back


CHILD = textwrap.dedent(
    """
    import os, signal, trio
    from hip3.execution.shutdown import wait_for_signals

    async def main():
        async with trio.open_nursery() as nursery:
            await nursery.start(wait_for_signals, lambda signum: print("graceful", signum, flush=True))
            os.kill(os.getpid(), signal.SIGTERM)
            await trio.sleep(0.5)
            os.kill(os.getpid(), signal.SIGINT)
            await trio.sleep(30)
            print("still running", flush=True)

    trio.run(main)
    """
)


def test_a_second_signal_exits_the_process_at_once() -> None:
    child = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=REPO_ROOT, capture_output=True, text=True, timeout=20, check=False
    )

    assert child.returncode == 128 + signal.SIGINT
    printed = child.stdout.splitlines()  # with the log lines
    assert f"graceful {int(signal.SIGTERM)}" in printed
    assert "still running" not in printed
