"""Faults the simulated exchange can inject, by name, from tests or from the scenario file.

Engine faults (halt, szDecimals change, clock skew, forced rejects) live on `SimExchange`, market-data faults
on `MarketProcess`, transport faults (dropped sockets, delayed or dropped frames, 429s) in `TransportFaults`,
which the WebSocket sessions and HTTP fronts consult. `SimFaults` puts them behind one set of names.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Mapping, Sequence
from decimal import Decimal

import attrs
import trio

from hip3.sim.engine import SimExchange
from hip3.sim.market_process import MarketProcess
from hip3.sim.scenario import FaultDef
from hip3.sim.transport_faults import TransportFaults


class UnknownFault(ValueError):
    """A fault name or parameter the simulator does not have."""


@attrs.frozen
class SimFaults:
    exchange: SimExchange
    process: MarketProcess
    transport: TransportFaults

    def drop_websockets(self) -> None:
        self.transport.drop_connections()

    def drop_websockets_after_frames(self, frames: int) -> None:
        self.transport.drop_after_frames = frames

    def drop_post_responses(self, count: int) -> None:
        self.transport.drop_post_responses = count

    def delay_post_responses(self, seconds: float) -> None:
        self.transport.post_response_delay_s = seconds

    def drop_order_updates(self, count: int) -> None:
        self.transport.drop_order_updates = count

    def duplicate_user_fills(self, count: int) -> None:
        self.transport.duplicate_user_fills = count

    def delay_user_fills(self, seconds: float) -> None:
        self.transport.user_fills_delay_s = seconds

    def rate_limit_rest(self, count: int) -> None:
        self.transport.rest_rate_limited = count

    def stop_market_data(self, coin: str, stopped: bool = True) -> None:
        self.process.stop_market_data(coin, stopped)

    def halt_market(self, coin: str, halted: bool = True) -> None:
        self.exchange.set_halted(coin, halted)

    def change_sz_decimals(self, coin: str, sz_decimals: int) -> None:
        self.exchange.set_sz_decimals(coin, sz_decimals)

    def skew_clock(self, skew_ms: int) -> None:
        self.exchange.set_clock_skew_ms(skew_ms)

    def reject_next_orders(self, count: int, text: str) -> None:
        self.exchange.reject_next_orders(count, text)

    def apply(self, kind: str, params: Mapping[str, object]) -> None:
        """Inject the fault named `kind` with keyword parameters, as a scenario file names it."""
        method = getattr(self, kind, None) if kind in FAULT_KINDS else None
        if method is None:
            raise UnknownFault(f"unknown fault {kind!r}; the simulator has: {', '.join(sorted(FAULT_KINDS))}")
        try:
            method(**params)
        except TypeError as exc:
            raise UnknownFault(f"fault {kind!r}: {exc}") from None


FAULT_KINDS = frozenset(
    {
        "drop_websockets",
        "drop_websockets_after_frames",
        "drop_post_responses",
        "delay_post_responses",
        "drop_order_updates",
        "duplicate_user_fills",
        "delay_user_fills",
        "rate_limit_rest",
        "stop_market_data",
        "halt_market",
        "change_sz_decimals",
        "skew_clock",
        "reject_next_orders",
    }
)


def fault_problem(kind: str, params: Mapping[str, object]) -> str | None:
    """Why `kind(**params)` cannot be injected, or None when it can (checked when a scenario loads)."""
    if kind not in FAULT_KINDS:
        close = difflib.get_close_matches(kind, FAULT_KINDS, n=1)
        hint = (
            f"did you mean {close[0]!r}?" if close else f"the simulator has: {', '.join(sorted(FAULT_KINDS))}"
        )
        return f"unknown fault {kind!r}; {hint}"
    try:
        inspect.signature(getattr(SimFaults, kind)).bind(None, **fault_params_as_python(params))
    except TypeError as exc:
        return f"fault {kind!r}: {exc}"
    return None


async def run_fault_schedule(
    schedule: Sequence[FaultDef],
    faults: SimFaults,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Inject each scheduled fault at its time after start, on Trio's clock."""
    start = trio.current_time()
    task_status.started()
    for fault in sorted(schedule, key=lambda f: f.at_ms):
        await trio.sleep_until(start + fault.at_ms / 1000)
        faults.apply(fault.kind, fault_params_as_python(fault.params))


def fault_params_as_python(params: Mapping[str, object]) -> dict[str, object]:
    """Scenario files give numbers as Decimal; fault methods take int or float."""
    return {
        key: (int(value) if value == value.to_integral_value() else float(value))
        if isinstance(value, Decimal)
        else value
        for key, value in params.items()
    }
