"""The dead-man switch: the exchange's scheduleCancel, kept armed while any order of ours can rest.

If the bot dies or loses the exchange, the scheduled cancel fires and the exchange cancels every open order of
the account (protocol reference §4.3). While `orders_can_rest()` holds, the switch is armed `arm_ahead_s`
ahead and re-armed once less than `refresh_margin_s` remains.

The exchange allows a limited number of *triggers* a day (10, the counter resets at 00:00 UTC); a trigger is
counted when a scheduled cancel fires, not when it is set (the simulator does the same: arming is free and
refused only once the day's triggers are used up). So an armed switch is never left to expire for nothing:
when no order can rest at refresh time, it is cleared instead of refreshed (a clear is free too). It is not
cleared the moment nothing can rest, which would cost one action per taker order; it stays armed until its
refresh point. A fire we did not prevent (a refresh that could not reach the exchange in time) is counted
against `daily_cap`; once the count reaches the cap the switch no longer arms until the next UTC day. A
refusal that says the day's triggers are used up sets the count to the cap.

`wall_ms` must be the exchange's time as we know it (our clock plus the measured offset): the armed time is
compared with the exchange's clock. `clear()` is for a clean exit after our own cancels: it clears the
switch (also one a previous process may have left armed) and stops `run()` from arming it again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import structlog
import trio

from hip3.core.clock import WallClock
from hip3.core.watched import Watched
from hip3.protocol.actions import MIN_SCHEDULE_CANCEL_LEAD_MS, schedule_cancel_action
from hip3.protocol.messages import ExchangeErr, ExchangeOk, parse_exchange_response

log = structlog.get_logger(__name__)

DAY_MS = 86_400_000
CHECK_INTERVAL_S = 1.0  # how often an unarmed switch asks whether an order can rest (poke() wakes it sooner)
RETRY_S = 1.0  # after a failed arm, refresh or clear
CAP_REFUSAL_WORDS = ("per day", "today", "daily")

PostAction = Callable[[dict[str, Any]], Awaitable[Any]]


class DeadmanError(Exception):
    """The exchange refused a scheduleCancel, or its answer could not be read."""


@attrs.frozen
class DeadmanState:
    """What the dashboard shows."""

    armed_until_ms: int | None  # exchange time the scheduled cancel fires at; None when not armed
    triggers_today: int  # fires counted this UTC day
    daily_cap: int
    last_error: str | None = None

    @property
    def capped(self) -> bool:
        return self.triggers_today >= self.daily_cap


class DeadmanSwitch:
    def __init__(
        self,
        post_action: PostAction,
        *,
        wall_ms: WallClock,
        arm_ahead_s: float,
        refresh_margin_s: float,
        daily_cap: int,
        orders_can_rest: Callable[[], bool],
        check_interval_s: float = CHECK_INTERVAL_S,
        retry_s: float = RETRY_S,
    ) -> None:
        """`post_action(action)` signs the action with a fresh nonce, posts it and returns the /exchange
        response body (or a WebSocket post's payload)."""
        _check_timing(arm_ahead_s, refresh_margin_s, daily_cap)
        self._post_action = post_action
        self._wall_ms = wall_ms
        self._arm_ahead_ms = round(arm_ahead_s * 1000)
        self._refresh_margin_ms = round(refresh_margin_s * 1000)
        self._orders_can_rest = orders_can_rest
        self._check_interval_s = check_interval_s
        self._retry_s = retry_s
        self.state = Watched(DeadmanState(None, 0, daily_cap))
        self._trigger_day = wall_ms() // DAY_MS
        self._may_be_armed = (
            True  # unknown at start (a previous process may have armed it) and after failures
        )
        self._finished = False
        self._lock = trio.Lock()  # one scheduleCancel in flight: a clear must not be overtaken by an arm
        self._poked = trio.Event()

    def poke(self) -> None:
        """Decide now rather than at the next check (call when an order that can rest is registered)."""
        self._poked.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep the switch armed while orders can rest; returns once `clear()` has been called."""
        task_status.started()
        while not self._finished:
            async with self._lock:
                wait_s = await self._step()
            await self._sleep(wait_s)

    async def clear(self) -> None:
        """Clear the scheduled cancel for good (a clean exit, after our own cancels)."""
        async with self._lock:
            self._finished = True
            self._poked.set()
            if not await self._post_schedule(None):
                raise DeadmanError(self.state.value.last_error or "scheduleCancel clear failed")

    # -- one decision ---------------------------------------------------------------------------------

    async def _step(self) -> float:
        """Arm, refresh, clear or wait; returns how long to sleep before the next decision."""
        if self._finished:
            return 0.0
        now = self._wall_ms()
        self._note_fired(now)
        self._roll_day(now)
        armed_until = self.state.value.armed_until_ms
        if armed_until is not None and armed_until - now > self._refresh_margin_ms:
            return self._seconds_until_refresh(armed_until, now)
        if self._orders_can_rest() and not self.state.value.capped:
            done = await self._post_schedule(now + self._arm_ahead_ms)
        elif armed_until is not None or self._may_be_armed:
            done = await self._post_schedule(None)
        else:
            return self._check_interval_s
        if not done:
            return self._retry_s
        armed_until = self.state.value.armed_until_ms
        if armed_until is None:
            return self._check_interval_s
        return self._seconds_until_refresh(armed_until, self._wall_ms())

    def _seconds_until_refresh(self, armed_until: int, now: int) -> float:
        return max(0, armed_until - self._refresh_margin_ms - now) / 1000

    def _note_fired(self, now: int) -> None:
        """An armed time that has passed means the exchange fired (we could not refresh or clear in time)."""
        armed_until = self.state.value.armed_until_ms
        if armed_until is None or armed_until > now:
            return
        self._roll_day(armed_until)
        triggers = self.state.value.triggers_today + 1
        self._update(armed_until_ms=None, triggers_today=triggers)
        log.warning("dead-man switch fired", fired_at_ms=armed_until, triggers_today=triggers)

    def _roll_day(self, now: int) -> None:
        day = now // DAY_MS
        if day > self._trigger_day:
            self._trigger_day = day
            self._update(triggers_today=0)

    # -- talking to the exchange --------------------------------------------------------------------------

    async def _post_schedule(self, time_ms: int | None) -> bool:
        """Send scheduleCancel (arm at `time_ms`, or clear with None); True when the exchange accepted it."""
        try:
            body = await self._post_action(schedule_cancel_action(time_ms))
        except Exception as exc:  # any failure to reach the exchange: the outcome is unknown, try again later
            return self._failed(f"scheduleCancel not confirmed: {exc}")
        response = parse_exchange_response(body)
        if isinstance(response, ExchangeOk):
            self._may_be_armed = False
            self._update(armed_until_ms=time_ms, last_error=None)
            log.info(
                "dead-man switch cleared" if time_ms is None else "dead-man switch armed", until_ms=time_ms
            )
            return True
        if isinstance(response, ExchangeErr):
            self._refused(response.text)
            return False
        return self._failed(f"scheduleCancel answer unreadable: {response.reason}")

    def _failed(self, reason: str) -> bool:
        self._may_be_armed = True
        self._update(last_error=reason)
        log.warning("dead-man switch request failed", error=reason)
        return False

    def _refused(self, text: str) -> None:
        """A refusal leaves the exchange's switch as it was."""
        if any(word in text.lower() for word in CAP_REFUSAL_WORDS):
            self._update(triggers_today=self.state.value.daily_cap, last_error=text)
            log.warning("dead-man switch refused: daily trigger cap reached", error=text)
        else:
            self._update(last_error=text)
            log.warning("dead-man switch refused", error=text)

    def _update(self, **changes: Any) -> None:
        self.state.set(attrs.evolve(self.state.value, **changes))

    async def _sleep(self, seconds: float) -> None:
        with trio.move_on_after(seconds):
            await self._poked.wait()
        self._poked = trio.Event()


def _check_timing(arm_ahead_s: float, refresh_margin_s: float, daily_cap: int) -> None:
    if arm_ahead_s * 1000 <= MIN_SCHEDULE_CANCEL_LEAD_MS:
        raise ValueError(f"arm_ahead_s must exceed the exchange's 5 s minimum, got {arm_ahead_s}")
    if not 0 < refresh_margin_s < arm_ahead_s:
        raise ValueError(f"need 0 < refresh_margin_s < arm_ahead_s, got {refresh_margin_s} and {arm_ahead_s}")
    if daily_cap < 1:
        raise ValueError(f"daily_cap must be ≥ 1, got {daily_cap}")
