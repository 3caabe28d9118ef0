"""Engine tests: a small scenario, a fake wall clock, and real signed requests."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

from hip3.core.order import Cloid, Side, Tif
from hip3.protocol.actions import OrderRequest, approve_agent_action, exchange_request, order_action
from hip3.protocol.signing import (
    APPROVE_AGENT_PRIMARY_TYPE,
    APPROVE_AGENT_TYPES,
    SigningKey,
    prepare_user_signed_action,
    sign_l1_action,
    sign_user_signed_action,
)
from hip3.sim.engine import SimExchange
from hip3.sim.events import SimEvent
from hip3.sim.scenario import AccountDef, DexDef, FeeDef, MarketDef, Scenario

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
KEY = SigningKey.from_hex("0x0123456789012345678901234567890123456789012345678901234567890123")
AGENT_KEY = SigningKey.from_hex("0x822e9959e022b78423eb653a62ea0020cd283e71a2a8133a6ff2aeffaf373cff")
OTHER_KEY = SigningKey.from_hex("e908f86dbb4d55ac876378565aafeabc187f6690f046459397b17d9b9a19688e")
USER = KEY.address
OTHER = OTHER_KEY.address
BTC, TSLA, SILVER = 0, 110000, 110001
DESERIALIZE = "Failed to deserialize the JSON body into the target type"  # the node's 422 text, spelled out


def scenario(
    *, scale: D = D(1), growth: bool = False, oi_cap: D | None = None, cap: int = 10, usdc: D = D(10_000)
) -> Scenario:
    return Scenario(
        fees=FeeDef(taker_bps=D("4.5"), maker_bps=D("1.5")),
        schedule_cancel_daily_cap=cap,
        dexes=(
            DexDef(
                name="",
                markets=(
                    MarketDef(
                        name="BTC",
                        sz_decimals=5,
                        max_leverage=40,
                        start_price=D(90000),
                        only_isolated=False,
                        margin_mode=None,
                    ),
                ),
            ),
            DexDef(
                name="xyz",
                full_name="XYZ",
                deployer="0x5e89b26d8d66da9888c835c9bfcc2aa51813e152",
                deployer_fee_scale=scale,
                markets=(
                    MarketDef(
                        name="TSLA",
                        sz_decimals=3,
                        max_leverage=10,
                        start_price=D(430),
                        growth_mode=growth,
                        oi_cap_usd=oi_cap,
                    ),
                    MarketDef(name="SILVER", sz_decimals=2, max_leverage=20, start_price=D(32)),
                ),
            ),
        ),
        accounts=(AccountDef(address=USER, usdc=usdc), AccountDef(address=OTHER, usdc=usdc)),
    )


class Harness:
    """A SimExchange on a fake clock, a recorder of its events, and signed requests."""

    def __init__(self, sc: Scenario | None = None) -> None:
        self.clock = [START_MS]
        self.sim = SimExchange(sc or scenario(), wall_ms=lambda: self.clock[0])
        self.events: list[SimEvent] = []
        self.sim.add_listener(self.events.append)
        self.nonce = START_MS

    def next_nonce(self) -> int:
        self.nonce += 1
        return self.nonce

    def signed(
        self, action: dict[str, Any], key: SigningKey = KEY, nonce: int | None = None, **kw: Any
    ) -> Any:
        nonce = self.next_nonce() if nonce is None else nonce
        sig = sign_l1_action(key, action, nonce=nonce, is_mainnet=False, **kw)
        return exchange_request(action, dict(sig), nonce=nonce, **kw)

    def post(self, action: dict[str, Any], key: SigningKey = KEY, **kw: Any) -> tuple[int, Any]:
        return self.sim.exchange(self.signed(action, key, **kw))

    def order(
        self,
        asset: int,
        side: Side,
        px: str,
        sz: str,
        tif: Tif = Tif.GTC,
        *,
        reduce_only: bool = False,
        cloid: Cloid | None = None,
        key: SigningKey = KEY,
    ) -> Any:
        request = OrderRequest(asset, side, D(px), D(sz), tif, reduce_only=reduce_only, cloid=cloid)
        status, body = self.post(order_action([request]), key)
        assert status == 200, body
        return body

    def order_status(self, *args: Any, **kw: Any) -> Any:
        body = self.order(*args, **kw)
        assert body["status"] == "ok", body
        return body["response"]["data"]["statuses"][0]

    def approve_agent(self, agent: str, name: str = "", key: SigningKey = KEY) -> tuple[int, Any]:
        nonce = self.next_nonce()
        action = prepare_user_signed_action(approve_agent_action(agent, name, nonce), is_mainnet=False)
        sig = sign_user_signed_action(
            key,
            action,
            payload_types=APPROVE_AGENT_TYPES,
            primary_type=APPROVE_AGENT_PRIMARY_TYPE,
            is_mainnet=False,
        )
        if name == "":
            del action["agentName"]  # as the official SDK does
        return self.sim.exchange(exchange_request(action, dict(sig), nonce=nonce))

    def info(self, **request: Any) -> Any:
        status, body = self.sim.info(request)
        assert status == 200, (status, body)
        return body

    def quotes(self, coin: str, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> None:
        self.sim.set_maker_quotes(coin, [(D(p), D(s)) for p, s in bids], [(D(p), D(s)) for p, s in asks])

    def of_type(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]
