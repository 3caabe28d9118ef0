"""Graceful shutdown: the steps from SIGTERM or SIGINT to exit, in order, within one deadline.

`shut_down` runs stop entries → cancel resting orders → flatten (when configured) → clear the dead-man switch
→ flush the journal. Each step is shielded from outer cancellation (a second Ctrl-C is handled by the signal
task, not by cancelling a half-sent cancel) and every step shares one deadline, `deadline_s` from the start,
as Hypercorn bounds its graceful drain: a step still running at the deadline is abandoned, the steps after
it are skipped, and the report says which. A step that raises is reported as failed and the next one runs.

The dead-man switch is cleared only when the cancels completed: otherwise orders may still rest, and the
armed switch is what will cancel them. The caller keeps the socket and HTTP client up until this returns
(services outlive the body, tricycle-style).

`wait_for_signals` owns the signal handlers: the first SIGTERM/SIGINT calls `on_first` (start the sequence),
a second one calls `on_second`, by default an immediate exit. Trio coalesces a signal repeated before it is
read, so two quick SIGTERMs may count as one; a SIGTERM then a SIGINT are always two.
"""

from __future__ import annotations

import enum
import os
import signal
from collections.abc import Awaitable, Callable, Sequence

import attrs
import structlog
import trio

log = structlog.get_logger(__name__)

Step = Callable[[], Awaitable[None]]
SIGNALS = (signal.SIGTERM, signal.SIGINT)
STEP_NAMES = ("stop_entries", "cancel_resting", "flatten", "clear_deadman", "flush")


class StepOutcome(enum.Enum):
    COMPLETED = "completed"
    FAILED = "failed"  # raised; the sequence went on
    TIMED_OUT = "timed_out"  # still running at the deadline: abandoned
    SKIPPED = "skipped"  # not started: past the deadline, or its precondition did not hold
    DISABLED = "disabled"  # not configured (flatten off)


@attrs.frozen
class ShutdownSteps:
    stop_entries: Step
    cancel_resting: Step
    flatten: Step
    clear_deadman: Step
    flush: Step
    flatten_enabled: bool

    def in_order(self) -> list[tuple[str, Step]]:
        return [(name, getattr(self, name)) for name in STEP_NAMES]


@attrs.frozen
class StepReport:
    name: str
    outcome: StepOutcome
    started_at: float | None  # trio.current_time(); None when not started
    ended_at: float | None
    detail: str | None = None  # the error, or why it was skipped


@attrs.frozen
class ShutdownReport:
    steps: tuple[StepReport, ...]
    deadline: float

    def outcome(self, name: str) -> StepOutcome:
        return next(step.outcome for step in self.steps if step.name == name)

    @property
    def clean(self) -> bool:
        """Every configured step completed."""
        return all(step.outcome in (StepOutcome.COMPLETED, StepOutcome.DISABLED) for step in self.steps)


async def shut_down(steps: ShutdownSteps, *, deadline_s: float) -> ShutdownReport:
    """Run the steps in order, each shielded, all bounded by `deadline_s` from now."""
    deadline = trio.current_time() + deadline_s
    done: list[StepReport] = []
    for name, step in steps.in_order():
        reason_not_to_run = _reason_not_to_run(name, steps, done, deadline)
        if reason_not_to_run is None:
            report = await _run_step(name, step, deadline)
        else:
            disabled = name == "flatten" and not steps.flatten_enabled
            outcome = StepOutcome.DISABLED if disabled else StepOutcome.SKIPPED
            report = StepReport(name, outcome, None, None, reason_not_to_run)
        log.info("shutdown step", step=name, outcome=report.outcome.value, detail=report.detail)
        done.append(report)
    return ShutdownReport(tuple(done), deadline)


def _reason_not_to_run(
    name: str, steps: ShutdownSteps, done: Sequence[StepReport], deadline: float
) -> str | None:
    if name == "flatten" and not steps.flatten_enabled:
        return "shutdown.flatten is off"
    if trio.current_time() >= deadline:
        return "deadline passed"
    cancels = next((step for step in done if step.name == "cancel_resting"), None)
    if name == "clear_deadman" and cancels is not None and cancels.outcome is not StepOutcome.COMPLETED:
        return "cancels did not complete: the armed switch stays to cancel what may rest"
    return None


async def _run_step(name: str, step: Step, deadline: float) -> StepReport:
    started_at = trio.current_time()
    with trio.CancelScope(deadline=deadline, shield=True) as scope:
        try:
            await step()
        except Exception as exc:  # a failed step is reported; the later steps still run
            log.exception("shutdown step failed", step=name)
            return StepReport(name, StepOutcome.FAILED, started_at, trio.current_time(), repr(exc))
    outcome = StepOutcome.TIMED_OUT if scope.cancelled_caught else StepOutcome.COMPLETED
    return StepReport(name, outcome, started_at, trio.current_time())


def exit_at_once(signum: int) -> None:
    """A second signal: leave now, without running anything else (exit status 128 + signal number)."""
    log.warning("second signal, exiting at once", signal=signal.Signals(signum).name)
    os._exit(128 + signum)


async def wait_for_signals(
    on_first: Callable[[int], None],
    *,
    on_second: Callable[[int], None] = exit_at_once,
    signals: Sequence[signal.Signals] = SIGNALS,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Install the handlers (reported through started()), then call `on_first` on the first signal and
    `on_second` on the next; returns after the second (if `on_second` returns at all)."""
    with trio.open_signal_receiver(*signals) as received:
        task_status.started()
        seen = 0
        async for signum in received:
            seen += 1
            if seen > 1:
                on_second(signum)
                return
            log.info("signal received, shutting down", signal=signal.Signals(signum).name)
            on_first(signum)
