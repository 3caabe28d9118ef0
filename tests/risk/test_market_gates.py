"""The market risk gates with exact figures: each gate blocks, recovers (or latches), and 0 disables it.

States are filled through `MarketFeed.apply`, the same path live frames take. The reference market quotes
99.95 / 100.05 (mid 100, spread 10 bps) with mark = oracle = 100 and 1000 contracts of open interest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal

import attrs
import pytest
from structlog.testing import capture_logs

from hip3.core.market import MarketKey, MarketSpec
from hip3.market.feed import MarketFeed
from hip3.market.registry import MarketRegistry, apply_refresh
from hip3.market.state import MarketState
from hip3.protocol.messages import AssetCtx, Bbo, Level
from hip3.protocol.meta import PerpDex
from hip3.risk.market_gates import MarketRiskGates, RiskBlocked, RiskClear, RiskGate, RiskSettings

TSLA = "xyz:TSLA"
GOLD = "xyz:GOLD"
T0 = 100.0  # virtual seconds of the first frames
MS0 = 1_767_225_600_000  # exchange time of the first bbo
TSLA_OI_CAP = Decimal(50_000_000)
FULL = RiskClear(1.0)


def spec(coin: str, meta_index: int, *, delisted: bool = False) -> MarketSpec:
    return MarketSpec(
        coin, MarketKey("xyz", 1, meta_index), sz_decimals=3, max_leverage=10, is_delisted=delisted
    )


SPECS = {TSLA: spec(TSLA, 0), GOLD: spec(GOLD, 1)}


def registry(*specs: MarketSpec) -> MarketRegistry:
    dexes = [PerpDex(0, ""), PerpDex(1, "xyz", oi_caps={TSLA: TSLA_OI_CAP})]  # GOLD has no cap listed
    return MarketRegistry(dexes, specs or SPECS.values())


def bbo(coin: str, bid: str | None, ask: str | None, exchange_ms: int = MS0) -> Bbo:
    def level(px: str | None) -> Level | None:
        return None if px is None else Level(Decimal(px), Decimal(10), 1)

    return Bbo(coin, exchange_ms, level(bid), level(ask))


def ctx(coin: str, *, oracle: str = "100", mark: str = "100", open_interest: str = "1000") -> AssetCtx:
    return AssetCtx(
        coin=coin,
        oracle_px=Decimal(oracle),
        mark_px=Decimal(mark),
        mid_px=Decimal(100),
        open_interest=Decimal(open_interest),
        funding=Decimal(0),
        premium=None,
        day_ntl_vlm=Decimal(0),
        prev_day_px=None,
        impact_bid=None,
        impact_ask=None,
    )


def healthy_feed(at: float = T0) -> MarketFeed:
    feed = MarketFeed(SPECS)
    for coin in SPECS:
        feed.apply(bbo(coin, "99.95", "100.05"), at)
        feed.apply(ctx(coin), at)
    return feed


def gates(reg: MarketRegistry | None = None, **settings: float) -> MarketRiskGates:
    return MarketRiskGates(RiskSettings(**settings), reg or registry())


def tsla(feed: MarketFeed) -> MarketState:
    return feed.states[TSLA]


def gate_of(verdict: RiskClear | RiskBlocked) -> RiskGate | None:
    return verdict.gate if isinstance(verdict, RiskBlocked) else None


# ------------------------------------------------------------------ order and counters


def test_a_healthy_market_is_clear_at_full_size() -> None:
    assert gates().check(tsla(healthy_feed()), T0) == FULL


def test_first_block_wins_in_the_documented_order() -> None:
    reg = registry()
    reg.block(TSLA, "spec changed: max_leverage 10 → 5")
    market_gates = gates(reg)
    feed = MarketFeed(SPECS)
    seen: list[RiskGate | None] = []

    def step(*frames: Bbo | AssetCtx) -> None:
        for frame in frames:
            feed.apply(frame, T0)
        seen.append(gate_of(market_gates.check(tsla(feed), T0)))

    step()
    step(bbo(TSLA, "99.95", "100.05", MS0 + 10))
    step(ctx(TSLA, mark="101", open_interest="500000"), bbo(TSLA, "99.95", "100.05", MS0))
    step(bbo(TSLA, "99.95", "100.05", MS0 + 10))
    step(ctx(TSLA, open_interest="500000"))  # passes 1–4, so this one seeds the spread EWMA at 10 bps
    step(bbo(TSLA, "99.60", "100.40", MS0 + 20))  # 80 bps > 2 × 3 × 10
    step(bbo(TSLA, "99.95", "100.05", MS0 + 30))
    step(ctx(TSLA))
    apply_refresh(reg, registry(spec(TSLA, 0, delisted=True), SPECS[GOLD]))
    step()

    assert seen == [
        RiskGate.BBO_AGE,
        RiskGate.CTX_AGE,
        RiskGate.TIME_REGRESSION,
        RiskGate.MARK_MID_DIVERGENCE,
        RiskGate.OI_CAP,
        RiskGate.SPREAD_SHOCK,
        RiskGate.OI_CAP,
        RiskGate.PARAMETER_CHANGE,
        RiskGate.HALTED,
    ]
    assert dict(market_gates.counters) == {gate: 2 if gate is RiskGate.OI_CAP else 1 for gate in RiskGate}


def test_the_first_verdicts_say_what_is_missing() -> None:
    feed, market_gates = MarketFeed(SPECS), gates()
    assert market_gates.check(tsla(feed), T0) == RiskBlocked(RiskGate.BBO_AGE, "no bbo yet")
    feed.apply(bbo(TSLA, "99.95", "100.05"), T0)
    assert market_gates.check(tsla(feed), T0) == RiskBlocked(RiskGate.CTX_AGE, "no asset context yet")


def test_only_the_first_blocking_gate_counts() -> None:
    feed = healthy_feed()
    market_gates = gates()
    for _ in range(3):
        assert gate_of(market_gates.check(tsla(feed), T0 + 9)) is RiskGate.BBO_AGE
    assert dict(market_gates.counters) == {RiskGate.BBO_AGE: 3}  # ctx is stale too, but never reached


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="max_bbo_age_ms must be ≥ 0"):
        RiskSettings(max_bbo_age_ms=-1)
    with pytest.raises(ValueError, match=r"spread_ewma_alpha must be in \(0, 1\]"):
        RiskSettings(spread_ewma_alpha=0)


# ------------------------------------------------------------------ 1. bbo age


def test_bbo_age_blocks_after_2000_ms_and_recovers_with_the_next_bbo() -> None:
    feed, market_gates = healthy_feed(), gates(max_ctx_age_ms=0)
    assert market_gates.check(tsla(feed), T0 + 2.0) == FULL
    assert market_gates.check(tsla(feed), T0 + 2.001) == RiskBlocked(
        RiskGate.BBO_AGE, "last bbo 2001 ms ago (max 2000 ms)"
    )
    feed.apply(bbo(TSLA, "99.95", "100.05", MS0 + 2500), T0 + 2.5)
    assert market_gates.check(tsla(feed), T0 + 2.5) == FULL
    assert market_gates.check(tsla(feed), T0 + 4.5) == FULL
    assert market_gates.check(tsla(feed), T0 + 4.501) == RiskBlocked(
        RiskGate.BBO_AGE, "last bbo 2001 ms ago (max 2000 ms)"
    )


def test_bbo_age_0_disables_the_age_but_a_market_without_a_bbo_stays_blocked() -> None:
    feed, market_gates = healthy_feed(), gates(max_bbo_age_ms=0, max_ctx_age_ms=0)
    assert market_gates.check(tsla(feed), T0 + 3600) == FULL
    no_bbo = MarketFeed(SPECS)
    no_bbo.apply(ctx(TSLA), T0)
    assert market_gates.check(tsla(no_bbo), T0) == RiskBlocked(RiskGate.BBO_AGE, "no bbo yet")


# ------------------------------------------------------------------ 2. ctx age


def test_ctx_age_blocks_after_8000_ms_and_recovers_with_the_next_message() -> None:
    feed, market_gates = healthy_feed(), gates(max_bbo_age_ms=0)
    assert market_gates.check(tsla(feed), T0 + 8.0) == FULL
    assert market_gates.check(tsla(feed), T0 + 8.001) == RiskBlocked(
        RiskGate.CTX_AGE, "last asset context 8001 ms ago (max 8000 ms)"
    )
    feed.apply(ctx(TSLA), T0 + 9)
    assert market_gates.check(tsla(feed), T0 + 9) == FULL


def test_a002_an_unchanged_oracle_every_second_is_never_stale() -> None:
    feed, market_gates = healthy_feed(), gates()
    for second in range(1, 61):
        now = T0 + second
        feed.apply(ctx(TSLA), now)  # the oracle stays at 100: a closed market
        feed.apply(bbo(TSLA, "99.95", "100.05", MS0 + second * 1000), now)
        assert market_gates.check(tsla(feed), now + 0.999) == FULL
    assert tsla(feed).oracle_updates == 1 and tsla(feed).oracle_changed_at == T0
    last = T0 + 60
    assert market_gates.check(tsla(feed), last + 8.0) == RiskBlocked(
        RiskGate.BBO_AGE, "last bbo 8000 ms ago (max 2000 ms)"
    )
    ctx_only = gates(max_bbo_age_ms=0)
    assert ctx_only.check(tsla(feed), last + 8.0) == FULL
    assert ctx_only.check(tsla(feed), last + 8.001) == RiskBlocked(
        RiskGate.CTX_AGE, "last asset context 8001 ms ago (max 8000 ms)"
    )


def test_ctx_age_0_disables_the_age_but_a_market_without_a_ctx_stays_blocked() -> None:
    feed, market_gates = healthy_feed(), gates(max_bbo_age_ms=0, max_ctx_age_ms=0)
    assert market_gates.check(tsla(feed), T0 + 3600) == FULL
    no_ctx = MarketFeed(SPECS)
    no_ctx.apply(bbo(TSLA, "99.95", "100.05"), T0)
    assert market_gates.check(tsla(no_ctx), T0) == RiskBlocked(RiskGate.CTX_AGE, "no asset context yet")


# ------------------------------------------------------------------ 3. exchange-time regression


def test_a_bbo_older_than_the_newest_seen_blocks_until_a_newer_one_arrives() -> None:
    feed, market_gates = healthy_feed(), gates()
    feed.apply(bbo(TSLA, "99.95", "100.05", MS0 + 500), T0)
    feed.apply(bbo(TSLA, "99.90", "100.00", MS0 + 499), T0 + 0.1)
    assert market_gates.check(tsla(feed), T0 + 0.1) == RiskBlocked(
        RiskGate.TIME_REGRESSION,
        f"bbo exchange time {MS0 + 499} ms is before {MS0 + 500} ms seen earlier",
    )
    feed.apply(bbo(TSLA, "99.95", "100.05", MS0 + 500), T0 + 0.2)  # the same time again is no regression
    assert market_gates.check(tsla(feed), T0 + 0.2) == FULL
    assert tsla(feed).last_exchange_ms == MS0 + 500


# ------------------------------------------------------------------ 4. mark–mid divergence and invalid books


def test_mark_mid_divergence_blocks_above_50_bps_and_recovers() -> None:
    feed, market_gates = healthy_feed(), gates()
    feed.apply(ctx(TSLA, mark="100.50"), T0)
    assert market_gates.check(tsla(feed), T0) == FULL  # exactly 50 bps
    feed.apply(ctx(TSLA, mark="100.51"), T0 + 1)
    assert market_gates.check(tsla(feed), T0 + 1) == RiskBlocked(
        RiskGate.MARK_MID_DIVERGENCE, "mark 100.51 is 51.00 bps from mid 100.00 (max 50 bps)"
    )
    feed.apply(ctx(TSLA, mark="99.50"), T0 + 1.5)
    assert market_gates.check(tsla(feed), T0 + 1.5) == FULL
    feed.apply(ctx(TSLA, mark="99.49"), T0 + 2)
    assert gate_of(market_gates.check(tsla(feed), T0 + 2)) is RiskGate.MARK_MID_DIVERGENCE


@pytest.mark.parametrize(
    ("bid", "ask", "reason"),
    [
        (None, "100.05", "invalid bbo: no bid"),
        ("99.95", None, "invalid bbo: no ask"),
        (None, None, "invalid bbo: empty book"),
        ("100.05", "99.95", "invalid bbo: crossed or locked (bid 100.05 ≥ ask 99.95)"),
        ("100.00", "100.00", "invalid bbo: crossed or locked (bid 100.00 ≥ ask 100.00)"),
    ],
)
@pytest.mark.parametrize("max_divergence", [50.0, 0.0])
def test_an_invalid_book_is_reported_by_the_divergence_gate_even_when_disabled(
    bid: str | None, ask: str | None, reason: str, max_divergence: float
) -> None:
    feed = healthy_feed()
    market_gates = gates(max_mark_mid_divergence_bps=max_divergence)
    assert market_gates.check(tsla(feed), T0) == FULL  # seeds the spread EWMA
    feed.apply(bbo(TSLA, bid, ask, MS0 + 1), T0 + 1)
    assert market_gates.check(tsla(feed), T0 + 1) == RiskBlocked(RiskGate.MARK_MID_DIVERGENCE, reason)
    assert tsla(feed).spread_ewma_bps == 10.0  # a blocked evaluation leaves the EWMA alone


def test_divergence_0_disables_the_threshold() -> None:
    feed = healthy_feed()
    feed.apply(ctx(TSLA, mark="200"), T0)
    assert gates(max_mark_mid_divergence_bps=0).check(tsla(feed), T0) == FULL


# ------------------------------------------------------------------ 5. spread shock, per market


def test_spread_shock_cuts_size_above_3x_the_ewma_and_blocks_above_6x() -> None:
    feed, market_gates = healthy_feed(), gates()
    state = tsla(feed)
    steps = [  # (bid, ask) around mid 100 → spread bps, verdict, EWMA after
        (("99.95", "100.05"), FULL, 10.0),  # the first sample seeds the EWMA
        (("99.85", "100.15"), FULL, 11.0),  # 30 bps = 3 × 10: not above
        (("99.78", "100.22"), RiskClear(0.75), 12.65),  # 44 bps > 33: size 33 / 44
        (("99.60", "100.40"), None, 0.05 * 80 + 0.95 * 12.65),  # 80 bps > 2 × 37.95 = 75.9
        (("99.95", "100.05"), FULL, 0.05 * 10 + 0.95 * (0.05 * 80 + 0.95 * 12.65)),
    ]
    for step, ((bid, ask), verdict, ewma_after) in enumerate(steps):
        feed.apply(bbo(TSLA, bid, ask, MS0 + step), T0 + step * 0.1)
        result = market_gates.check(state, T0 + step * 0.1)
        if verdict is None:
            assert result == RiskBlocked(
                RiskGate.SPREAD_SHOCK, "spread 80.00 bps is above 75.90 bps (2 × 3 × EWMA)"
            )
        else:
            assert result == verdict
        assert state.spread_ewma_bps == pytest.approx(ewma_after, rel=1e-12)


def test_the_same_bbo_evaluated_again_keeps_its_verdict_and_is_sampled_once() -> None:
    feed, market_gates = healthy_feed(), gates()
    market_gates.check(tsla(feed), T0)
    feed.apply(bbo(TSLA, "99.78", "100.22", MS0 + 1), T0 + 0.1)
    for second in range(5):  # e.g. ctx frames mark the market dirty while the book stands still
        feed.apply(ctx(TSLA), T0 + 0.1 + second * 0.1)
        assert market_gates.check(tsla(feed), T0 + 0.5) == RiskClear(10.0 * 3 / 44.0)
    assert tsla(feed).spread_ewma_bps == pytest.approx(0.05 * 44 + 0.95 * 10, rel=1e-12)


def test_each_market_keeps_its_own_spread_ewma() -> None:
    feed, market_gates = healthy_feed(), gates()
    feed.apply(bbo(GOLD, "99.80", "100.20"), T0)  # GOLD is a 40 bps market
    assert market_gates.check(tsla(feed), T0) == FULL
    assert market_gates.check(feed.states[GOLD], T0) == FULL
    feed.apply(bbo(TSLA, "99.80", "100.20", MS0 + 1), T0 + 0.1)
    feed.apply(bbo(GOLD, "99.80", "100.20", MS0 + 1), T0 + 0.1)
    assert market_gates.check(tsla(feed), T0 + 0.1) == RiskClear(0.75)  # 40 > 3 × 10: cut to 30 / 40
    assert market_gates.check(feed.states[GOLD], T0 + 0.1) == FULL  # its usual spread
    assert tsla(feed).spread_ewma_bps == pytest.approx(11.5, rel=1e-12)
    assert feed.states[GOLD].spread_ewma_bps == pytest.approx(40.0, rel=1e-12)


def test_the_ewma_moves_only_when_the_earlier_gates_pass() -> None:
    feed, market_gates = healthy_feed(), gates()
    market_gates.check(tsla(feed), T0)
    feed.apply(bbo(TSLA, "99.60", "100.40", MS0 + 1), T0 + 0.1)
    assert gate_of(market_gates.check(tsla(feed), T0 + 2.2)) is RiskGate.BBO_AGE
    feed.apply(ctx(TSLA, mark="101"), T0 + 0.1)
    assert gate_of(market_gates.check(tsla(feed), T0 + 0.1)) is RiskGate.MARK_MID_DIVERGENCE
    assert tsla(feed).spread_ewma_bps == 10.0


def test_spread_multiplier_0_disables_the_gate() -> None:
    feed, market_gates = healthy_feed(), gates(spread_shock_multiplier=0)
    market_gates.check(tsla(feed), T0)
    feed.apply(bbo(TSLA, "99.60", "100.40", MS0 + 1), T0)
    assert market_gates.check(tsla(feed), T0) == FULL


# ------------------------------------------------------------------ 6. open interest near the cap


def test_open_interest_at_95_percent_of_the_cap_blocks_and_recovers() -> None:
    feed, market_gates = healthy_feed(), gates()
    feed.apply(ctx(TSLA, open_interest="474999"), T0)  # 47 499 900 USD
    assert market_gates.check(tsla(feed), T0) == FULL
    feed.apply(ctx(TSLA, open_interest="475000"), T0 + 1)  # 47 500 000 = 0.95 × 50 000 000
    assert market_gates.check(tsla(feed), T0 + 1) == RiskBlocked(
        RiskGate.OI_CAP, "open interest 47500000 USD is at or above 47500000.00 (0.95 × 50000000)"
    )
    feed.apply(ctx(TSLA, open_interest="400000"), T0 + 2)
    assert market_gates.check(tsla(feed), T0 + 2) == FULL


def test_no_listed_cap_or_fraction_0_disables_the_oi_gate() -> None:
    feed = healthy_feed()
    feed.apply(ctx(GOLD, open_interest="10000000000"), T0)
    feed.apply(ctx(TSLA, open_interest="10000000000"), T0)
    assert gates().check(feed.states[GOLD], T0) == FULL
    assert gates(oi_cap_fraction=0).check(tsla(feed), T0) == FULL


# ------------------------------------------------------------------ 7. parameter change (latched)


def test_a_parameter_change_latches_until_the_registry_unblocks() -> None:
    reg = registry()
    feed, market_gates = healthy_feed(), gates(reg)
    reg.block(TSLA, "spec changed: sz_decimals 3 → 2")
    blocked = RiskBlocked(RiskGate.PARAMETER_CHANGE, "spec changed: sz_decimals 3 → 2")
    for second in range(30):
        now = T0 + second
        feed.apply(bbo(TSLA, "99.95", "100.05", MS0 + second * 1000), now)
        feed.apply(ctx(TSLA), now)
        assert market_gates.check(tsla(feed), now) == blocked
    assert market_gates.check(feed.states[GOLD], T0) == FULL  # only the changed market
    reg.unblock(TSLA)
    assert market_gates.check(tsla(feed), T0 + 29) == FULL


# ------------------------------------------------------------------ 8. halted / delisted


def test_a_delisted_market_is_halted_not_a_parameter_change() -> None:
    reg = registry()
    delisted_read = registry(spec(TSLA, 0, delisted=True), SPECS[GOLD])
    apply_refresh(reg, delisted_read)  # blocks TSLA with "spec changed: listing listed → delisted"
    assert gates(reg).check(tsla(healthy_feed()), T0) == RiskBlocked(
        RiskGate.HALTED, "spec changed: listing listed → delisted"
    )
    reg.unblock(TSLA)  # an operator cannot unblock a delisting
    assert gates(reg).check(tsla(healthy_feed()), T0) == RiskBlocked(RiskGate.HALTED, "xyz:TSLA is delisted")


def test_a_market_the_registry_does_not_know_is_halted() -> None:
    reg = registry(SPECS[GOLD])
    assert gates(reg).check(tsla(healthy_feed()), T0) == RiskBlocked(
        RiskGate.HALTED, "xyz:TSLA is not a discovered market"
    )


# ------------------------------------------------------------------ logging on state changes


def _gate_logs(logs: Sequence[Mapping[str, object]]) -> list[tuple[object, ...]]:
    return [(entry["log_level"], entry["event"], entry["market"], entry["gate"]) for entry in logs]


def test_a003_a_thousand_blocked_evaluations_log_one_warning() -> None:
    feed, market_gates = healthy_feed(), gates(max_ctx_age_ms=0)
    with capture_logs() as logs:
        for step in range(1000):
            market_gates.check(tsla(feed), T0 + 3 + step * 0.01)
        assert market_gates.counters[RiskGate.BBO_AGE] == 1000
        feed.apply(bbo(TSLA, "99.95", "100.05", MS0 + 20_000), T0 + 20)
        for _ in range(10):
            assert market_gates.check(tsla(feed), T0 + 20) == FULL
        for _ in range(10):
            market_gates.check(tsla(feed), T0 + 23)
    assert _gate_logs(logs) == [
        ("warning", "market gate blocking", TSLA, "bbo_age"),
        ("info", "market gate cleared", TSLA, "bbo_age"),
        ("warning", "market gate blocking", TSLA, "bbo_age"),
    ]
    assert logs[0]["reason"] == "last bbo 3000 ms ago (max 2000 ms)"
    assert market_gates.counters[RiskGate.BBO_AGE] == 1010


def test_logging_is_per_market_and_gate() -> None:
    feed, market_gates = healthy_feed(), gates()
    with capture_logs() as logs:
        for _ in range(5):
            market_gates.check(tsla(feed), T0 + 3)  # TSLA: bbo age
            market_gates.check(feed.states[GOLD], T0 + 9)  # GOLD: bbo age
        feed.apply(bbo(TSLA, "99.95", "100.05", MS0 + 1), T0 + 9)
        for _ in range(5):
            market_gates.check(tsla(feed), T0 + 9)  # TSLA: now ctx age
        feed.apply(ctx(TSLA), T0 + 9)
        market_gates.check(tsla(feed), T0 + 9)  # clear: both of TSLA's gates are reported cleared
    assert _gate_logs(logs) == [
        ("warning", "market gate blocking", TSLA, "bbo_age"),
        ("warning", "market gate blocking", GOLD, "bbo_age"),
        ("warning", "market gate blocking", TSLA, "ctx_age"),
        ("info", "market gate cleared", TSLA, "bbo_age"),
        ("info", "market gate cleared", TSLA, "ctx_age"),
    ]
    assert dict(market_gates.counters) == {RiskGate.BBO_AGE: 10, RiskGate.CTX_AGE: 5}


def test_settings_are_frozen() -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        RiskSettings().max_bbo_age_ms = 1  # type: ignore[misc]
