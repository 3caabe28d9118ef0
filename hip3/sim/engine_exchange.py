"""The trading core of the simulated exchange: markets, accounts, orders, matching, fills and their events.

Nothing here knows about signatures or HTTP: `SimExchange` (engine.py) authenticates a request and calls
`place_order`, `cancel`, … with the resolved user. Every public method runs to completion synchronously and
emits its events in order before it returns.
"""

from __future__ import annotations

import hashlib
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from decimal import ROUND_FLOOR, Decimal
from typing import Any, Final

import attrs

from hip3.core.market import MarketSpec
from hip3.core.rounding import is_valid_price, to_wire
from hip3.sim import errors_text
from hip3.sim.book import Book, RestingOrder
from hip3.sim.canonical import parse_number
from hip3.sim.events import (
    AssetCtxChanged,
    BookChanged,
    MidsChanged,
    OrderUpdated,
    SimEvent,
    TradesPrinted,
    UserFilled,
)
from hip3.sim.ledger import (
    ZERO,
    Account,
    FeeSplit,
    amount_wire,
    apply_fill,
    fee_split,
    increase_of,
    usdc,
    wire_price,
)
from hip3.sim.scenario import DexDef, MarketDef, Scenario, market_spec

MARKET_MAKER: Final = "0x00000000000000000000000000000000000000aa"
FILLS_KEPT: Final = 10_000
MAX_DEFAULT_LEVERAGE: Final = 20
SCHEDULE_CANCEL_MIN_LEAD_MS: Final = 5_000
DAY_MS: Final = 86_400_000
TID_MASK: Final = (1 << 50) - 1
ONE_PERCENT: Final = Decimal("0.01")

Level = tuple[Decimal, Decimal, int]
Status = dict[str, Any]


def _level_wire(level: Level | None) -> dict[str, Any] | None:
    if level is None:
        return None
    return {"px": to_wire(level[0]), "sz": to_wire(level[1]), "n": level[2]}


def _median3(a: Decimal, b: Decimal, c: Decimal) -> Decimal:
    return sorted((a, b, c))[1]


@attrs.define(slots=True, eq=False)
class Market:
    coin: str
    dex: DexDef
    definition: MarketDef
    spec: MarketSpec
    taker_fee: FeeSplit
    maker_fee: FeeSplit
    book: Book
    oracle_px: Decimal
    mark_px: Decimal
    prev_day_px: Decimal
    last_trade_px: Decimal | None = None
    halted: bool = False
    open_interest: Decimal = ZERO  # total long size
    day_ntl_vlm: Decimal = ZERO
    day_base_vlm: Decimal = ZERO
    reported_top: tuple[Level | None, Level | None] = (None, None)
    reported_mid: Decimal | None = None

    def mid(self) -> Decimal | None:
        bid, ask = self.book.best_bid(), self.book.best_ask()
        if bid is not None and ask is not None:
            return (bid + ask) / 2
        return self.last_trade_px


@attrs.define(slots=True, eq=False)
class OrderRecord:
    order: RestingOrder
    status: str
    status_timestamp: int


@attrs.define(slots=True, eq=False)
class MarketAudit:
    max_position_notional: Decimal = ZERO
    max_open_order_notional: Decimal = ZERO
    orders: int = 0
    fills: int = 0
    fill_sum: Decimal = ZERO  # signed sum of this user's fill sizes


@attrs.define(slots=True, eq=False)
class UserState:
    account: Account
    records: dict[int, OrderRecord] = attrs.field(factory=dict)
    cloids: dict[str, int] = attrs.field(factory=dict)
    open_orders: dict[int, RestingOrder] = attrs.field(factory=dict)
    open_notional: dict[str, Decimal] = attrs.field(factory=dict)  # per coin
    fills: deque[dict[str, Any]] = attrs.field(factory=lambda: deque(maxlen=FILLS_KEPT))
    cum_volume: Decimal = ZERO
    requests_used: int = 0
    schedule_cancel_at: int | None = None
    schedule_cancel_day: int = -1
    schedule_cancel_triggers: int = 0
    audit: dict[str, MarketAudit] = attrs.field(factory=dict)
    rejects: Counter[str] = attrs.field(factory=Counter)
    nonce_rejects: int = 0

    @property
    def address(self) -> str:
        return self.account.address

    def market_audit(self, coin: str) -> MarketAudit:
        audit = self.audit.get(coin)
        if audit is None:
            audit = self.audit[coin] = MarketAudit()
        return audit


@attrs.frozen(slots=True)
class OrderIntent:
    """One order wire, read: `a, b, p, s, r, t[, c]`."""

    asset: int
    is_buy: bool
    px: Decimal
    sz: Decimal
    reduce_only: bool
    tif: str | None  # None: a trigger order
    cloid: str | None

    @classmethod
    def from_wire(cls, wire: dict[str, Any]) -> OrderIntent:
        limit = wire["t"].get("limit")
        return cls(
            asset=wire["a"],
            is_buy=wire["b"],
            px=parse_number(wire["p"]),
            sz=parse_number(wire["s"]),
            reduce_only=wire["r"],
            tif=None if limit is None else limit["tif"],
            cloid=wire.get("c"),
        )


def _build_markets(scenario: Scenario) -> list[Market]:
    markets = []
    for dex_index, dex in enumerate(scenario.dexes):
        for meta_index, definition in enumerate(dex.markets):
            markets.append(_build_market(scenario, dex, dex_index, meta_index, definition))
    return markets


def _build_market(scenario: Scenario, dex: DexDef, dex_index: int, meta_index: int, d: MarketDef) -> Market:
    spec = market_spec(d, dex.name, dex_index, meta_index)
    coin = spec.name
    builder = dex_index != 0

    def split(bps: Decimal) -> FeeSplit:
        scale = dex.deployer_fee_scale
        return fee_split(bps, builder_dex=builder, deployer_scale=scale, growth_mode=d.growth_mode)

    return Market(
        coin=coin,
        dex=dex,
        definition=d,
        spec=spec,
        taker_fee=split(scenario.fees.taker_bps),
        maker_fee=split(scenario.fees.maker_bps),
        book=Book(coin),
        oracle_px=d.start_price,
        mark_px=d.start_price,
        prev_day_px=d.start_price,
        halted=d.is_delisted,
    )


class TradingEngine:
    def __init__(self, scenario: Scenario, *, now_ms: Callable[[], int]) -> None:
        self.scenario = scenario
        self.now_ms = now_ms
        self.markets: dict[str, Market] = {}
        self.markets_by_asset: dict[int, Market] = {}
        for market in _build_markets(scenario):
            self.markets[market.coin] = market
            self.markets_by_asset[market.spec.asset_id] = market
        self.users: dict[str, UserState] = {}
        for account in scenario.accounts:
            self.fund(account.address, account.usdc)
        self.maker = UserState(Account(MARKET_MAKER, ZERO))
        self._maker_oids: dict[str, list[int]] = {coin: [] for coin in self.markets}
        self._listeners: list[Callable[[SimEvent], None]] = []
        self._touched: dict[str, list[dict[str, Any]]] = {}
        self._next_oid = 1
        self._trade_seq = 0
        self._forced_rejections: list[str] = []

    # ------------------------------------------------------------------ accounts and listeners

    def fund(self, address: str, amount: Decimal) -> UserState:
        address = address.lower()
        user = self.users.get(address)
        if user is None:
            user = self.users[address] = UserState(Account(address, ZERO))
        user.account.balance += amount
        return user

    def user(self, address: str) -> UserState | None:
        return self.users.get(address.lower()) if isinstance(address, str) else None

    def add_listener(self, listener: Callable[[SimEvent], None]) -> Callable[[], None]:
        if not self._listeners:
            self._baseline_reported_markets()
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    def _baseline_reported_markets(self) -> None:
        """Without listeners nothing is flushed; start change detection from the books as they are now."""
        for market in self.markets.values():
            market.reported_top = (market.book.top(True), market.book.top(False))
            market.reported_mid = market.mid()

    def emit(self, event: SimEvent) -> None:
        for listener in list(self._listeners):
            listener(event)

    def reject_next_orders(self, count: int, text: str) -> None:
        self._forced_rejections.extend([text] * count)

    def _take_oid(self) -> int:
        oid = self._next_oid
        self._next_oid += 1
        return oid

    # ------------------------------------------------------------------ orders

    def place_order(self, user: UserState, wire: dict[str, Any], tx_hash: str) -> Status:
        """Place one canonical order wire for `user`; returns its status entry."""
        intent = OrderIntent.from_wire(wire)
        market = self.markets_by_asset.get(intent.asset)
        if market is not None:
            user.market_audit(market.coin).orders += 1
        if self._forced_rejections:
            return self._reject(user, market, intent, self._forced_rejections.pop(0))
        if market is None:
            return self._reject(user, None, intent, errors_text.UNKNOWN_ASSET)
        error = self._validate(user, market, intent)
        if error is not None:
            return self._reject(user, market, intent, error)
        return self._execute(user, market, intent, tx_hash)

    def _validate(self, user: UserState, market: Market, intent: OrderIntent) -> str | None:
        if market.halted:
            return errors_text.HALTED
        if intent.tif is None:
            return errors_text.TRIGGER_UNSUPPORTED
        if intent.px <= 0 or not is_valid_price(intent.px, market.spec):
            return errors_text.TICK
        if intent.sz != intent.sz.quantize(Decimal(1).scaleb(-market.spec.sz_decimals), rounding=ROUND_FLOOR):
            return errors_text.LOT
        if intent.sz == 0:
            return errors_text.ZERO_SIZE
        if intent.px * intent.sz < self.scenario.min_order_notional:
            return errors_text.MIN_NOTIONAL
        position = user.account.size(market.coin)
        if intent.reduce_only and (
            position == 0 or (position > 0) == intent.is_buy or intent.sz > abs(position)
        ):
            return errors_text.REDUCE_ONLY
        increase = increase_of(position, is_buy=intent.is_buy, sz=intent.sz)
        if increase > 0 and self._breaches_oi_cap(market, increase):
            return errors_text.OI_CAP
        if increase > 0 and increase * intent.px / self.leverage(user, market) > self.available_margin(user):
            return errors_text.PERP_MARGIN
        return None

    def _breaches_oi_cap(self, market: Market, increase: Decimal) -> bool:
        cap = market.definition.oi_cap_usd
        return cap is not None and (market.open_interest + increase) * market.oracle_px > cap

    def leverage(self, user: UserState, market: Market) -> int:
        return user.account.leverage.get(market.coin, min(MAX_DEFAULT_LEVERAGE, market.spec.max_leverage))

    def account_value(self, user: UserState, coins: Iterable[str] | None = None) -> Decimal:
        value = user.account.balance
        for coin, pos in user.account.positions.items():
            if pos.szi != 0 and (coins is None or coin in coins):
                value += pos.szi * (self.markets[coin].mark_px - pos.entry_px)
        return value

    def position_margin(self, user: UserState, coin: str) -> Decimal:
        pos = user.account.positions.get(coin)
        if pos is None or pos.szi == 0:
            return ZERO
        market = self.markets[coin]
        return abs(pos.szi) * market.mark_px / self.leverage(user, market)

    def order_margin(self, user: UserState) -> Decimal:
        return sum(
            (ntl / self.leverage(user, self.markets[coin]) for coin, ntl in user.open_notional.items()), ZERO
        )

    def available_margin(self, user: UserState) -> Decimal:
        used = sum((self.position_margin(user, coin) for coin in user.account.positions), ZERO)
        return self.account_value(user) - used - self.order_margin(user)

    def _reject(self, user: UserState, market: Market | None, intent: OrderIntent, text: str) -> Status:
        user.rejects[text] += 1
        if market is not None:
            order = self._new_order(user, market, intent)
            self._record(user, order, errors_text.rejected_status(text))
        return {"error": text}

    def _new_order(self, user: UserState, market: Market, intent: OrderIntent) -> RestingOrder:
        return RestingOrder(
            oid=self._take_oid(),
            user=user.address,
            coin=market.coin,
            is_buy=intent.is_buy,
            px=intent.px,
            sz=intent.sz,
            orig_sz=intent.sz,
            timestamp=self.now_ms(),
            tif=intent.tif or "Gtc",
            reduce_only=intent.reduce_only,
            cloid=intent.cloid,
        )

    def _record(self, user: UserState, order: RestingOrder, status: str) -> None:
        now = self.now_ms()
        record = user.records.get(order.oid)
        if record is None:
            user.records[order.oid] = OrderRecord(order, status, now)
            if order.cloid is not None:
                user.cloids[order.cloid] = order.oid
        else:
            record.status, record.status_timestamp = status, now
        if self._listeners:
            self.emit(OrderUpdated(user.address, order_update(order, status, now)))

    def _execute(self, user: UserState, market: Market, intent: OrderIntent, tx_hash: str) -> Status:
        book = market.book
        if intent.tif == "Alo":
            if book.would_cross(intent.is_buy, intent.px):
                return self._reject(user, market, intent, self._bad_alo_text(book))
            return self._rest(user, market, self._new_order(user, market, intent))
        if intent.tif == "Ioc" and not book.would_cross(intent.is_buy, intent.px):
            return self._reject(user, market, intent, errors_text.IOC_CANCEL)
        order = self._new_order(user, market, intent)
        filled, paid = self._take(user, market, order, tx_hash)
        if filled == 0 and intent.tif == "Ioc":
            user.rejects[errors_text.IOC_CANCEL] += 1
            self._record(user, order, errors_text.rejected_status(errors_text.IOC_CANCEL))
            return {"error": errors_text.IOC_CANCEL}
        if order.sz > 0 and intent.tif == "Gtc":
            return self._rest(user, market, order)
        self._record(user, order, "filled" if order.sz == 0 else "canceled")
        return self._with_cloid(
            {"totalSz": to_wire(filled), "avgPx": to_wire(wire_price(paid / filled))}, order
        )

    @staticmethod
    def _with_cloid(body: dict[str, Any], order: RestingOrder) -> Status:
        body["oid"] = order.oid
        if order.cloid is not None:
            body["cloid"] = order.cloid
        key = "resting" if "totalSz" not in body else "filled"
        return {key: body}

    @staticmethod
    def _bad_alo_text(book: Book) -> str:
        bid, ask = book.best_bid(), book.best_ask()
        return errors_text.BAD_ALO_PX.format(
            bid=to_wire(bid) if bid is not None else "None", ask=to_wire(ask) if ask is not None else "None"
        )

    def _rest(self, user: UserState, market: Market, order: RestingOrder) -> Status:
        market.book.add(order)
        user.open_orders[order.oid] = order
        self._add_open_notional(user, market.coin, order.px * order.sz)
        self._touch(market.coin)
        self._record(user, order, "open")
        return self._with_cloid({}, order)

    def _add_open_notional(self, user: UserState, coin: str, delta: Decimal) -> None:
        total = user.open_notional.get(coin, ZERO) + delta
        user.open_notional[coin] = total
        audit = user.market_audit(coin)
        audit.max_open_order_notional = max(audit.max_open_order_notional, total)

    # ------------------------------------------------------------------ matching and fills

    def _take(
        self, user: UserState, market: Market, order: RestingOrder, tx_hash: str
    ) -> tuple[Decimal, Decimal]:
        result = market.book.take(user.address, order.is_buy, order.px, order.sz)
        for canceled in result.self_trade_canceled:
            self._forget_resting(canceled, "selfTradeCanceled")
        paid = ZERO
        for match in result.matches:
            self._trade(
                market,
                taker=user,
                taker_order=order,
                maker_order=match.maker,
                px=match.px,
                sz=match.sz,
                tx_hash=tx_hash,
            )
            paid += match.px * match.sz
        order.sz -= result.filled
        if result.matches or result.self_trade_canceled:
            self._touch(market.coin)
        return result.filled, paid

    def _owner(self, address: str) -> UserState:
        return self.maker if address == MARKET_MAKER else self.users[address]

    def _forget_resting(self, order: RestingOrder, status: str) -> None:
        """Book-keeping for an order that has left the book (the caller removed it)."""
        owner = self._owner(order.user)
        if owner is self.maker:
            return
        if owner.open_orders.pop(order.oid, None) is not None:
            self._add_open_notional(owner, order.coin, -order.px * order.sz)
        self._record(owner, order, status)

    def _trade(
        self,
        market: Market,
        *,
        taker: UserState,
        taker_order: RestingOrder,
        maker_order: RestingOrder,
        px: Decimal,
        sz: Decimal,
        tx_hash: str,
    ) -> None:
        self._trade_seq += 1
        tid = _tid(taker_order.oid, maker_order.oid, self._trade_seq)
        maker = self._owner(maker_order.user)
        if maker is not self.maker:
            self._add_open_notional(maker, market.coin, -px * sz)
        self._fill(market, taker, taker_order, px, sz, crossed=True, tid=tid, tx_hash=tx_hash)
        self._fill(market, maker, maker_order, px, sz, crossed=False, tid=tid, tx_hash=tx_hash)
        if maker_order.sz == 0 and maker is not self.maker:
            maker.open_orders.pop(maker_order.oid, None)
            self._record(maker, maker_order, "filled")
        market.last_trade_px = px
        market.day_ntl_vlm += px * sz
        market.day_base_vlm += sz
        if self._listeners:
            buyer, seller = (taker, maker) if taker_order.is_buy else (maker, taker)
            trade = {
                "coin": market.coin,
                "side": "B" if taker_order.is_buy else "A",
                "px": to_wire(px),
                "sz": to_wire(sz),
                "hash": tx_hash,
                "time": self.now_ms(),
                "tid": tid,
                "users": [buyer.address, seller.address],
            }
            self._touched.setdefault(market.coin, []).append(trade)

    def _fill(
        self,
        market: Market,
        user: UserState,
        order: RestingOrder,
        px: Decimal,
        sz: Decimal,
        *,
        crossed: bool,
        tid: int,
        tx_hash: str,
    ) -> None:
        position = user.account.position(market.coin)
        long_before = max(position.szi, ZERO)
        effect = apply_fill(position, is_buy=order.is_buy, sz=sz, px=px)
        market.open_interest += max(position.szi, ZERO) - long_before
        rate = market.taker_fee.total if crossed else market.maker_fee.total
        fee = usdc(px * sz * rate)
        user.account.balance += effect.closed_pnl - fee
        if user is self.maker:
            return
        user.cum_volume += px * sz
        audit = user.market_audit(market.coin)
        audit.fills += 1
        audit.fill_sum += sz if order.is_buy else -sz
        audit.max_position_notional = max(audit.max_position_notional, abs(position.szi) * px)
        fill = {
            "coin": market.coin,
            "px": to_wire(px),
            "sz": to_wire(sz),
            "side": "B" if order.is_buy else "A",
            "time": self.now_ms(),
            "startPosition": to_wire(effect.start_position),
            "dir": effect.direction,
            "closedPnl": to_wire(effect.closed_pnl),
            "hash": tx_hash,
            "oid": order.oid,
            "crossed": crossed,
            "fee": to_wire(fee),
            "tid": tid,
            "feeToken": "USDC",
        }
        user.fills.append(fill)
        if self._listeners:
            self.emit(UserFilled(user.address, fill))

    # ------------------------------------------------------------------ cancels

    def cancel_oid(self, user: UserState, asset: int, oid: int) -> Status | str:
        order = user.open_orders.get(oid)
        market = self.markets_by_asset.get(asset)
        if order is None or market is None or order.coin != market.coin:
            return {"error": errors_text.CANCEL_MISSING}
        self._cancel_resting(order, "canceled")
        return "success"

    def cancel_cloid(self, user: UserState, asset: int, cloid: str) -> Status | str:
        oid = user.cloids.get(cloid.lower(), user.cloids.get(cloid))
        if oid is None:
            return {"error": errors_text.CANCEL_MISSING}
        return self.cancel_oid(user, asset, oid)

    def _cancel_resting(self, order: RestingOrder, status: str) -> None:
        self.markets[order.coin].book.remove(order.oid)
        self._touch(order.coin)
        self._forget_resting(order, status)

    def cancel_all(self, user: UserState, status: str, coin: str | None = None) -> int:
        orders = [o for o in user.open_orders.values() if coin is None or o.coin == coin]
        for order in orders:
            self._cancel_resting(order, status)
        return len(orders)

    # ------------------------------------------------------------------ scheduleCancel and leverage

    def schedule_cancel(self, user: UserState, time_ms: int | None) -> str | None:
        if time_ms is None:
            user.schedule_cancel_at = None
            return None
        now = self.now_ms()
        if time_ms < now + SCHEDULE_CANCEL_MIN_LEAD_MS:
            return errors_text.SCHEDULE_CANCEL_TOO_EARLY
        self._roll_trigger_day(user, now)
        if user.schedule_cancel_triggers >= self.scenario.schedule_cancel_daily_cap:
            return errors_text.SCHEDULE_CANCEL_CAP.format(cap=self.scenario.schedule_cancel_daily_cap)
        user.schedule_cancel_at = time_ms
        return None

    @staticmethod
    def _roll_trigger_day(user: UserState, now: int) -> None:
        day = now // DAY_MS
        if day != user.schedule_cancel_day:
            user.schedule_cancel_day, user.schedule_cancel_triggers = day, 0

    def fire_scheduled_cancels(self) -> None:
        now = self.now_ms()
        for user in self.users.values():
            if user.schedule_cancel_at is not None and user.schedule_cancel_at <= now:
                user.schedule_cancel_at = None
                self._roll_trigger_day(user, now)
                user.schedule_cancel_triggers += 1
                self.cancel_all(user, "scheduledCancel")
        self.flush()

    def update_leverage(self, user: UserState, asset: int, is_cross: bool, leverage: int) -> str | None:
        market = self.markets_by_asset.get(asset)
        if market is None:
            return errors_text.LEVERAGE_INVALID_ASSET
        if is_cross and market.spec.isolated_only:
            return errors_text.LEVERAGE_CROSS_NOT_ALLOWED
        if not 1 <= leverage <= market.spec.max_leverage:
            return errors_text.LEVERAGE_OUT_OF_RANGE
        previous = self.leverage(user, market)
        user.account.leverage[market.coin] = leverage
        if leverage < previous and self.available_margin(user) < 0:
            user.account.leverage[market.coin] = previous
            return errors_text.LEVERAGE_INSUFFICIENT_MARGIN
        return None

    # ------------------------------------------------------------------ market process hooks

    def set_maker_quotes(
        self, coin: str, bids: Sequence[tuple[Decimal, Decimal]], asks: Sequence[tuple[Decimal, Decimal]]
    ) -> None:
        market = self.markets[coin]
        book = market.book
        for oid in self._maker_oids[coin]:
            book.remove(oid)
        self._maker_oids[coin] = []
        if not market.halted:
            user_ask = book.best_ask()
            for px, sz in bids:
                if user_ask is None or px < user_ask:
                    self._add_maker_level(market, True, px, sz)
            top_bid = book.best_bid()
            for px, sz in asks:
                if top_bid is None or px > top_bid:
                    self._add_maker_level(market, False, px, sz)
        self._touch(coin)
        self.flush()

    def _add_maker_level(self, market: Market, is_buy: bool, px: Decimal, sz: Decimal) -> None:
        lot = Decimal(1).scaleb(-market.spec.sz_decimals)
        size = sz.quantize(lot, rounding=ROUND_FLOOR) if sz > 0 else ZERO
        if size <= 0 or px <= 0 or not is_valid_price(px, market.spec):
            return
        order = RestingOrder(
            oid=self._take_oid(),
            user=MARKET_MAKER,
            coin=market.coin,
            is_buy=is_buy,
            px=px,
            sz=size,
            orig_sz=size,
            timestamp=self.now_ms(),
            tif="Alo",
        )
        market.book.add(order)
        self._maker_oids[market.coin].append(order.oid)

    def set_oracle(self, coin: str, oracle_px: Decimal) -> None:
        market = self.markets[coin]
        market.oracle_px = oracle_px
        market.mark_px = self._next_mark(market)
        self.emit(AssetCtxChanged(coin, {"coin": coin, "ctx": self.asset_ctx(market)}))
        self._touch(coin)
        self.flush()

    @staticmethod
    def _next_mark(market: Market) -> Decimal:
        """median(oracle, bid, ask) with a two-sided book, else the oracle; ≤ 1 % move per update."""
        bid, ask = market.book.best_bid(), market.book.best_ask()
        target = market.oracle_px if bid is None or ask is None else _median3(market.oracle_px, bid, ask)
        limit = market.mark_px * ONE_PERCENT
        return wire_price(min(max(target, market.mark_px - limit), market.mark_px + limit))

    def set_halted(self, coin: str, halted: bool) -> None:
        market = self.markets[coin]
        market.halted = halted
        if halted:
            for user in self.users.values():
                self.cancel_all(user, "canceled", coin)
            for oid in self._maker_oids[coin]:
                market.book.remove(oid)
            self._maker_oids[coin] = []
            self._touch(coin)
        self.flush()

    def set_sz_decimals(self, coin: str, sz_decimals: int) -> None:
        market = self.markets[coin]
        market.spec = attrs.evolve(market.spec, sz_decimals=sz_decimals)

    # ------------------------------------------------------------------ views and events

    def asset_ctx(self, market: Market) -> dict[str, Any]:
        mid = market.mid()
        bid, ask = market.book.best_bid(), market.book.best_ask()
        return {
            "funding": "0.0",
            "openInterest": to_wire(market.open_interest),
            "prevDayPx": to_wire(market.prev_day_px),
            "dayNtlVlm": amount_wire(usdc(market.day_ntl_vlm)),
            "premium": None,
            "oraclePx": to_wire(market.oracle_px),
            "markPx": to_wire(market.mark_px),
            "midPx": None if mid is None else to_wire(wire_price(mid)),
            "impactPxs": None if bid is None or ask is None else [to_wire(bid), to_wire(ask)],
            "dayBaseVlm": amount_wire(market.day_base_vlm),
        }

    def l2_book(self, market: Market) -> dict[str, Any]:
        book = market.book
        return {
            "coin": market.coin,
            "time": self.now_ms(),
            "levels": [
                [_level_wire(lv) for lv in book.levels(True)],
                [_level_wire(lv) for lv in book.levels(False)],
            ],
        }

    def mids(self, dex: str) -> dict[str, str]:
        out = {}
        for market in self.markets.values():
            if market.dex.name == dex:
                mid = market.mid()
                out[market.coin] = to_wire(wire_price(mid if mid is not None else market.oracle_px))
        return out

    def _touch(self, coin: str) -> None:
        if self._listeners and coin not in self._touched:
            self._touched[coin] = []

    def flush(self) -> None:
        """Emit the market events (trades, book, bbo, mids) of everything touched since the last flush."""
        touched, self._touched = self._touched, {}
        for coin, trades in touched.items():
            market = self.markets[coin]
            if trades:
                self.emit(TradesPrinted(coin, trades))
            self._emit_book(market)
            mid = market.mid()
            if mid != market.reported_mid:
                market.reported_mid = mid
                self.emit(MidsChanged(market.dex.name, self.mids(market.dex.name)))

    def _emit_book(self, market: Market) -> None:
        book = market.book
        top = (book.top(True), book.top(False))
        bbo = None
        if top != market.reported_top:
            market.reported_top = top
            bbo = {
                "coin": market.coin,
                "time": self.now_ms(),
                "bbo": [_level_wire(top[0]), _level_wire(top[1])],
            }
        self.emit(BookChanged(market.coin, self.l2_book(market), bbo))


def _tid(taker_oid: int, maker_oid: int, seq: int) -> int:
    digest = hashlib.sha256(f"{taker_oid}:{maker_oid}:{seq}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & TID_MASK


def order_update(order: RestingOrder, status: str, timestamp: int) -> dict[str, Any]:
    return {"order": order_summary(order), "status": status, "statusTimestamp": timestamp}


def order_summary(order: RestingOrder) -> dict[str, Any]:
    """The openOrders / orderUpdates shape of an order."""
    body: dict[str, Any] = {
        "coin": order.coin,
        "side": "B" if order.is_buy else "A",
        "limitPx": to_wire(order.px),
        "sz": to_wire(order.sz),
        "oid": order.oid,
        "timestamp": order.timestamp,
        "origSz": to_wire(order.orig_sz),
    }
    if order.cloid is not None:
        body["cloid"] = order.cloid
    if order.reduce_only:
        body["reduceOnly"] = True
    return body
