"""The risk monitor: turns the bot's own accounting into hard-stop triggers.

The predecessor's monitor only ever saw orderUpdates rejections, so its loss and flatten limits never fired.
This one is fed by every source that matters, and each limit latches the `HardStop` with a reason that names
the figure and the limit:

- fills (`PositionTracker.fill_listeners`): the realised PnL of the closed part minus the fee, the exchange's
  when the fill carries it, else estimated (|size| · px · fee_bps / 1e4: the response path carries no fee)
  and the journal does the same, so both show one PnL; the net goes into a rolling window; a net loss
  above `max_loss_usd` within the window latches. Every fill counts, opening ones by their fee.
- round trips: a market's position from flat back to flat (a flip ends one and starts the next; the fee of
  the flipping fill is split by size). Its PnL includes fees; < 0 is a loss, anything else a win. Losing
  round trips in a row above `max_losing_streak` latch; a win resets the streak. A position the bot did not
  see open (restored at start) ends a round trip holding only its closing leg. A round trip whose market
  turned flat without a fill we saw (a resync) is dropped when the market next opens from flat.
- rejects (`Sender.reject_listeners`): benign ones are only counted (predecessor "U benign rejections");
  every other reject counts toward `max_alarming_rejects` within the window, and signer or nonce rejects
  also toward `max_signer_errors` within the window.
- flatten failures: counted within the window against `max_flatten_failures`.
- clock skew: a blocking skew (`NonceManager.blocked_reason`) latches at once.

Every limit latches when the figure *exceeds* it (equal does not); 0 disables a limit. Windows run on
`trio.current_time()` in whole microseconds, so an entry leaves exactly `window_s` after it was added, with no
float noise deciding the boundary. An operator reset of the hard stop re-arms the monitor: windows and the
streak start from zero (totals are kept for the dashboard), otherwise the next event would latch again.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal
from typing import Final

import attrs
import structlog
import trio

from hip3.core.market import BPS_DECIMAL
from hip3.execution.rejects import RejectKind, classify_reject
from hip3.execution.sender import RejectEvent
from hip3.position.tracker import AppliedFill
from hip3.risk.hard_stop import (
    ALARMING_REJECTS,
    CLOCK_SKEW,
    FLATTEN_FAILURES,
    LOSING_STREAK,
    REALIZED_LOSS,
    SIGNER_ERRORS,
    HardStop,
    Latch,
)

log = structlog.get_logger(__name__)

ZERO = Decimal(0)
ONE = Decimal(1)
CENT = Decimal("0.01")
MICROS_PER_S = 1_000_000
SIGNER_REJECTS: Final = frozenset({RejectKind.SIGNER, RejectKind.NONCE})

_non_negative_count = attrs.validators.ge(0)


@attrs.frozen
class MonitorSettings:
    """The limits; 0 disables one. Counts and the loss are exceeded when strictly above the limit."""

    max_loss_usd: Decimal = attrs.field(validator=attrs.validators.ge(ZERO))
    window_s: float = attrs.field(validator=attrs.validators.gt(0))
    max_losing_streak: int = attrs.field(validator=_non_negative_count)
    max_flatten_failures: int = attrs.field(validator=_non_negative_count)
    max_alarming_rejects: int = attrs.field(validator=_non_negative_count)
    max_signer_errors: int = attrs.field(validator=_non_negative_count)
    fee_bps: float = attrs.field(validator=attrs.validators.ge(0.0))


@attrs.frozen
class RiskFigures:
    """What the dashboard shows. PnL figures are net of fees (the exchange's, else estimated); `fees_usd` is
    their total."""

    realized_pnl_window_usd: Decimal
    realized_pnl_total_usd: Decimal
    fees_usd: Decimal
    round_trips: int
    wins: int
    losses: int
    losing_streak: int
    alarming_rejects_window: int
    alarming_rejects_total: int
    benign_rejects_window: int
    benign_rejects_total: int
    signer_errors_window: int
    flatten_failures_window: int
    clock_skew: str | None

    @property
    def win_rate(self) -> float | None:
        """The share of round trips that did not lose; None before the first one ended."""
        return None if self.round_trips == 0 else self.wins / self.round_trips


class RollingWindow:
    """Values summed over the last `span_us` microseconds; an entry leaves at exactly its time + span."""

    def __init__(self, span_us: int) -> None:
        self._span_us = span_us
        self._entries: deque[tuple[int, Decimal]] = deque()
        self._total = ZERO

    def add(self, now_us: int, value: Decimal = ONE) -> None:
        self._expire(now_us)
        self._entries.append((now_us, value))
        self._total += value

    def total(self, now_us: int) -> Decimal:
        self._expire(now_us)
        return self._total

    def count(self, now_us: int) -> int:
        self._expire(now_us)
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()
        self._total = ZERO

    def _expire(self, now_us: int) -> None:
        while self._entries and self._entries[0][0] + self._span_us <= now_us:
            _, value = self._entries.popleft()
            self._total -= value


class RiskMonitor:
    def __init__(self, settings: MonitorSettings, hard_stop: HardStop) -> None:
        self._settings = settings
        self._hard_stop = hard_stop
        self._fee_rate = Decimal(str(settings.fee_bps)) / BPS_DECIMAL
        self._window_text = f"{settings.window_s:g}"
        span_us = round(settings.window_s * MICROS_PER_S)
        self._pnl_window = RollingWindow(span_us)
        self._alarming_window = RollingWindow(span_us)
        self._benign_window = RollingWindow(span_us)
        self._signer_window = RollingWindow(span_us)
        self._flatten_window = RollingWindow(span_us)
        self._open_trips: dict[str, Decimal] = {}  # coin -> net PnL so far of its open round trip
        self._pnl_total = ZERO
        self._fees_total = ZERO
        self._round_trips = self._wins = self._losses = self._streak = 0
        self._alarming_total = self._benign_total = 0
        self._clock_skew: str | None = None
        hard_stop.reset_listeners.append(self._on_hard_stop_reset)

    # -- inputs ------------------------------------------------------------------------------------------

    def on_fill(self, fill: AppliedFill) -> None:
        now_us = _now_us()
        fee = abs(fill.size) * fill.px * self._fee_rate if fill.fee is None else fill.fee
        net = fill.effect.realized_pnl - fee
        self._fees_total += fee
        self._pnl_total += net
        self._pnl_window.add(now_us, net)
        self._follow_round_trip(fill, fee)
        self._check_loss(now_us)

    def on_reject(self, event: RejectEvent) -> None:
        now_us = _now_us()
        if event.benign:
            self._benign_total += 1
            self._benign_window.add(now_us)
            return
        self._alarming_total += 1
        self._alarming_window.add(now_us)
        last = f"{event.coin}: {event.text}"
        if classify_reject(event.text) in SIGNER_REJECTS:
            self._signer_window.add(now_us)
            signer_errors = self._signer_window.count(now_us)
            self._check_count(SIGNER_ERRORS, signer_errors, self._settings.max_signer_errors, last)
        alarming = self._alarming_window.count(now_us)
        self._check_count(ALARMING_REJECTS, alarming, self._settings.max_alarming_rejects, last)

    def on_flatten_failure(self, coin: str, reason: str) -> None:
        now_us = _now_us()
        self._flatten_window.add(now_us)
        failures = self._flatten_window.count(now_us)
        log.warning("flatten failed", coin=coin, reason=reason, failures_in_window=failures)
        limit = self._settings.max_flatten_failures
        self._check_count(FLATTEN_FAILURES, failures, limit, f"{coin}: {reason}")

    def on_clock_skew(self, reason: str | None) -> None:
        """`reason` is `NonceManager.blocked_reason`: None while the skew is within the bound."""
        self._clock_skew = reason
        if reason is not None:
            self._latch(CLOCK_SKEW, reason)

    def rearm(self) -> None:
        """Start the windows and the streak from zero (after an operator reset of the hard stop)."""
        for window in (self._pnl_window, self._alarming_window, self._signer_window, self._flatten_window):
            window.clear()
        self._streak = 0
        log.info("risk monitor re-armed")

    # -- figures -----------------------------------------------------------------------------------------

    def figures(self) -> RiskFigures:
        now_us = _now_us()
        return RiskFigures(
            realized_pnl_window_usd=self._pnl_window.total(now_us),
            realized_pnl_total_usd=self._pnl_total,
            fees_usd=self._fees_total,
            round_trips=self._round_trips,
            wins=self._wins,
            losses=self._losses,
            losing_streak=self._streak,
            alarming_rejects_window=self._alarming_window.count(now_us),
            alarming_rejects_total=self._alarming_total,
            benign_rejects_window=self._benign_window.count(now_us),
            benign_rejects_total=self._benign_total,
            signer_errors_window=self._signer_window.count(now_us),
            flatten_failures_window=self._flatten_window.count(now_us),
            clock_skew=self._clock_skew,
        )

    # -- round trips -------------------------------------------------------------------------------------

    def _follow_round_trip(self, fill: AppliedFill, fee: Decimal) -> None:
        effect = fill.effect
        if fill.opens_from_flat and fill.coin in self._open_trips:
            log.info("round trip dropped: its market went flat without a fill we saw", coin=fill.coin)
            del self._open_trips[fill.coin]
        closing_fee = fee * effect.closed_size / fill.size
        so_far = self._open_trips.pop(fill.coin, ZERO) + effect.realized_pnl - closing_fee
        flipped = ZERO < effect.closed_size < fill.size
        if effect.closed_size > 0 and (effect.position is None or flipped):
            self._end_round_trip(fill.coin, so_far)
            so_far = ZERO
        if effect.position is not None:
            self._open_trips[fill.coin] = so_far - (fee - closing_fee)

    def _end_round_trip(self, coin: str, pnl: Decimal) -> None:
        self._round_trips += 1
        if pnl < 0:
            self._losses += 1
            self._streak += 1
        else:
            self._wins += 1
            self._streak = 0
        log.info("round trip ended", coin=coin, pnl_usd=str(pnl), losing_streak=self._streak)
        limit = self._settings.max_losing_streak
        if limit > 0 and self._streak > limit:
            self._latch(
                LOSING_STREAK,
                f"{self._streak} losing round trips in a row exceed {limit} (last: {coin} {_usd(pnl)} USD)",
            )

    # -- limits ------------------------------------------------------------------------------------------

    def _check_loss(self, now_us: int) -> None:
        limit = self._settings.max_loss_usd
        loss = -self._pnl_window.total(now_us)
        if limit > 0 and loss > limit:
            self._latch(
                REALIZED_LOSS,
                f"realised loss {_usd(loss)} USD over the last {self._window_text} s exceeds {limit}",
            )

    def _check_count(self, trigger: str, count: int, limit: int, last: str) -> None:
        if limit > 0 and count > limit:
            what = trigger.replace("_", " ")
            self._latch(
                trigger,
                f"{count} {what} over the last {self._window_text} s exceed {limit} (last: {last})",
            )

    def _latch(self, trigger: str, reason: str) -> None:
        if self._hard_stop.latched is None:  # already latched: the first reason stands, no need to repeat
            self._hard_stop.latch(trigger, reason)

    def _on_hard_stop_reset(self, _cleared: Latch) -> None:
        self.rearm()


def _usd(amount: Decimal) -> str:
    """Cents, unless that would hide the part that decides a boundary."""
    return f"{amount:.2f}" if amount == amount.quantize(CENT) else f"{amount.normalize():f}"


def _now_us() -> int:
    return round(trio.current_time() * MICROS_PER_S)
