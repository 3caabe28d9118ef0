"""From a signal to an entry order on the wire: size it, price it, admit it through the gates, queue it.

The order's limit is the taken quote moved by `slippage_bps` in the aggressive direction, rounded to the
market's tick the same way (a buy never below its intent: predecessor §6 item 18). Sizing floors to the lot
and respects the remaining cap; the gates register the order with the tracker in the same step as their
checks; a full inbox takes the actor-only path; a full scheduler ends the order at once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from decimal import Decimal

import structlog
import trio

from hip3.core.market import MarketSpec
from hip3.core.order import Cloid, Side, Tif
from hip3.core.rounding import RoundingError
from hip3.execution.gates import Admitted, EntryGates, Refused, Valuation
from hip3.execution.scheduler import Scheduler, SubmitResult
from hip3.execution.sizing import SizeDropped, size_entry
from hip3.position.exits import slipped_limit
from hip3.position.model import PendingOrder
from hip3.position.tracker import TrackerHandle
from hip3.protocol.messages import OrderState
from hip3.strategy.signal import Signal

log = structlog.get_logger(__name__)


class EntryPipeline:
    def __init__(
        self,
        gates: EntryGates,
        scheduler: Scheduler,
        tracker: TrackerHandle,
        specs: Mapping[str, MarketSpec],
        marks: Callable[[str], Decimal | None],
        *,
        max_order_notional: Decimal,
        slippage_bps: Decimal,
    ) -> None:
        self._gates = gates
        self._scheduler = scheduler
        self._tracker = tracker
        self._specs = specs
        self._marks = marks
        self._max_order_notional = max_order_notional
        self._slippage_bps = slippage_bps
        self.stats: Counter[str] = Counter()
        self.queued_listeners: list[Callable[[PendingOrder, Signal], None]] = []

    async def on_signal(self, signal: Signal) -> None:
        # One valuation for sizing and the gates: no await between here and `admit`, so it is still current.
        valuation = self._gates.value(signal.coin)
        order = self._order_for(signal, valuation)
        if order is None:
            return
        admitted = self._gates.admit(order, valuation)
        if not isinstance(admitted, Admitted):
            self.stats[f"refused_{admitted.gate.value}"] += 1
            return
        if not admitted.registered_fast:
            await self._tracker.register_actor_only(order)
        if self._scheduler.submit_new(order) is not SubmitResult.QUEUED:
            self.stats["scheduler_full"] += 1
            await self._tracker.order_ended(order.cloid, OrderState.REJECTED, "scheduler full")
            return
        self.stats["queued"] += 1
        for listener in self.queued_listeners:
            listener(order, signal)

    def _order_for(self, signal: Signal, valuation: Valuation | Refused) -> PendingOrder | None:
        spec, mark = self._specs.get(signal.coin), self._marks(signal.coin)
        if spec is None or mark is None:
            self.stats["no_spec_or_mark"] += 1
            return None
        room = self._gates.remaining_cap(signal.coin, valuation)
        cap = min(room, self._max_order_notional) if room is not None else Decimal(0)
        sized = size_entry(
            spec,
            suggested_size=signal.suggested_size,
            mark=mark,
            remaining_cap=cap,
            visible_size=signal.best_sz,
        )
        if isinstance(sized, SizeDropped):
            self.stats["size_dropped"] += 1
            log.info("entry dropped by sizing", coin=signal.coin, reason=sized.reason)
            return None
        limit = self._limit_price(spec, signal.side, signal.best_px)
        if limit is None:
            return None
        return PendingOrder(
            cloid=Cloid.new(),
            coin=signal.coin,
            asset=spec.asset_id,
            side=signal.side,
            size=sized.size,
            limit_px=limit,
            tif=Tif.IOC,
            reduce_only=False,
            registered_at=trio.current_time(),
        )

    def _limit_price(self, spec: MarketSpec, side: Side, best_px: Decimal) -> Decimal | None:
        try:
            return slipped_limit(best_px, side, self._slippage_bps, spec)
        except RoundingError as exc:
            self.stats["price_unroundable"] += 1
            log.warning("entry price cannot be rounded", coin=spec.name, error=str(exc))
            return None
