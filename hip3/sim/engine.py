"""SimExchange: the simulated Hyperliquid exchange's request handlers and the market process hooks.

Pure and synchronous: no I/O, no clock of its own (`wall_ms` is injected; the server's clock is
`wall_ms() + skew`). `info(request)` and `exchange(body)` take decoded JSON and return (HTTP status, body);
nothing escapes them: an unexpected failure answers 500 (info) or 422 (exchange) and is counted in simAudit's
`internal_errors`.

Differences from the real exchange (facts: shared/reference/hyperliquid-protocol.md):
- One USDC balance per account, shared by every dex (the real exchange keeps a clearinghouse per dex);
  clearinghouseState of each dex shows that shared balance. Isolated margin only; no funding, no liquidation
  (liquidationPx is null), no transfers; margin is checked at placement only (position value / leverage
  plus open-order notional / leverage against account value). Default leverage: min(20, maxLeverage).
- Texts chosen here where the real one is unknown (errors_text.py): lot `Order has invalid size.`, unknown
  asset `Order has invalid asset.`, halted `Trading is halted for this asset.`, expiresAfter in the past
  `Action already expired` (3p), unrecoverable signature `Unable to recover signer.` (3p), scheduleCancel
  daily cap, updateLeverage refusals, trigger orders (not supported: `Trigger orders are not supported by the
  simulator.`). vaultAddress is refused with the real `Vault not registered: 0x…` (no vaults exist here).
- Validation order per order: forced rejection (reject_next_orders) → asset → halted → trigger → tick → lot
  → zero size → $10 minimum (reduce-only orders too) → reduce-only (also rejects a flip) → OI cap
  (an order that would grow the user's position while (OI + growth) × oracle > cap) → margin → TIF.
- A Gtc that partly fills and rests answers `resting`; an Ioc that partly fills answers `filled` with the
  filled size and its record ends `canceled`. Rejected orders get an oid, a record with the §4.7 `*Rejected`
  status (others: `rejected`) and an orderUpdate. Resting reduce-only orders are not re-checked at fill time.
- Fills: `dir` of a flip is "Long > Short" / "Short > Long"; `hash` is the action's (sha256 of signer and
  nonce), `tid` a 50-bit hash shared by both sides of a trade. No `cloid` on fills. Market-maker fills are
  not reported. userFillsByTime answers oldest first; userFills newest first; the last 10000 fills are kept.
- Market maker (MARKET_MAKER) has unlimited margin, no events, no audit. set_maker_quotes never crosses
  resting user orders: bid levels at or above the best user ask, and ask levels at or below the best bid,
  are skipped; so are levels at an invalid tick, and sizes are floored to the lot (zero ⇒ skipped).
- Mark price: at each set_oracle, median(oracle, best bid, best ask) with a two-sided book (else the
  oracle), moved at most 1 % from the previous mark. Mid: book mid, else last trade, else (allMids only)
  the oracle. premium null, funding 0, impactPxs = the best bid and ask.
- Halting a market cancels its orders (status `canceled`) and keeps positions (no settlement).
- Nonces: the "too low" bound is the binding lower bound (smallest kept nonce or now − window).
- scheduleCancel: the daily cap is checked when arming; a trigger counts on the UTC day it fires.
- approveAgent: the signer must be a funded account; its action nonce must equal the request nonce and its
  hyperliquidChain the exchange's; re-approving a name replaces that agent; no `valid_until`, no limit on
  the number of named agents. Agent nonce state is kept across re-approval (no pruning).
- l2Book of an unknown coin answers 200 null; nSigFigs/mantissa are ignored.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Final

from hip3.protocol.signing import (
    APPROVE_AGENT_PRIMARY_TYPE,
    APPROVE_AGENT_TYPES,
    SignatureError,
    recover_l1_signer,
    recover_user_signed_signer,
)
from hip3.sim import errors_text
from hip3.sim.canonical import MalformedAction, approve_agent_fields, canonical_l1_action
from hip3.sim.engine_exchange import MARKET_MAKER, TradingEngine, UserState
from hip3.sim.engine_info import InfoHandler, InfoRefused
from hip3.sim.events import SimEvent
from hip3.sim.nonces import NonceStore
from hip3.sim.scenario import Scenario

__all__ = ["MARKET_MAKER", "SimExchange"]

Reply = tuple[int, object]
DEFAULT_OK: Final = {"status": "ok", "response": {"type": "default"}}


def _err(text: str) -> Reply:
    return 200, {"status": "err", "response": text}


def _unprocessable(detail: str) -> Reply:
    return 422, f"{errors_text.DESERIALIZE_FAILURE}: {detail}"


class _Malformed(Exception):
    pass


def _envelope(body: object) -> tuple[dict[str, Any], int, Mapping[str, Any], str | None, int | None]:
    if not isinstance(body, Mapping):
        raise _Malformed("expected a JSON object")
    action, nonce, signature = body.get("action"), body.get("nonce"), body.get("signature")
    vault, expires = body.get("vaultAddress"), body.get("expiresAfter")
    if not isinstance(action, dict) or not isinstance(action.get("type"), str):
        raise _Malformed("field `action`: expected an object with a `type`")
    if type(nonce) is not int or nonce < 0:
        raise _Malformed("field `nonce`: expected an unsigned integer")
    if not isinstance(signature, Mapping) or not {"r", "s", "v"} <= signature.keys():
        raise _Malformed("field `signature`: expected {r, s, v}")
    if vault is not None and not isinstance(vault, str):
        raise _Malformed("field `vaultAddress`: expected an address or null")
    if expires is not None and (type(expires) is not int or expires < 0):
        raise _Malformed("field `expiresAfter`: expected an unsigned integer or null")
    return action, nonce, signature, vault, expires


class SimExchange:
    def __init__(self, scenario: Scenario, *, wall_ms: Callable[[], int]) -> None:
        self._wall_ms = wall_ms
        self._skew_ms = 0
        self._core = TradingEngine(scenario, now_ms=self.now_ms)
        self._nonces = NonceStore(
            size=scenario.nonce_set_size,
            window_back_ms=scenario.nonce_window_back_ms,
            window_ahead_ms=scenario.nonce_window_ahead_ms,
        )
        self._agents: dict[str, str] = {}  # agent address → master
        self._named_agents: dict[tuple[str, str], str] = {}  # (master, name) → agent address
        self._internal_errors = 0
        self._info = InfoHandler(self._core, internal_errors=lambda: self._internal_errors)

    def now_ms(self) -> int:
        return self._wall_ms() + self._skew_ms

    @property
    def core(self) -> TradingEngine:
        """The trading core (matching and accounting without authentication), for benchmarks and tests."""
        return self._core

    @property
    def coins(self) -> list[str]:
        return list(self._core.markets)

    # ------------------------------------------------------------------ requests

    def info(self, request: object) -> Reply:
        try:
            return self._info.handle(request)
        except InfoRefused as refused:
            return refused.status, refused.body
        except Exception:
            self._internal_errors += 1
            return 500, None

    def exchange(self, body: object) -> Reply:
        try:
            return self._exchange(body)
        except (_Malformed, MalformedAction) as exc:
            return _unprocessable(str(exc))
        except Exception as exc:
            self._internal_errors += 1
            return _unprocessable(f"internal error: {type(exc).__name__}")

    def _exchange(self, body: object) -> Reply:
        action, nonce, signature, vault, expires = _envelope(body)
        user_signed = action["type"] == "approveAgent"
        hashed = action if user_signed else canonical_l1_action(action)
        if user_signed:
            approve_agent_fields(action)
        try:
            signer = self._recover(hashed, signature, nonce, vault, expires, user_signed=user_signed)
        except SignatureError:
            return _err(errors_text.UNRECOVERABLE_SIGNATURE)
        user = self._resolve(signer, user_signed=user_signed)
        if user is None:
            return _err(errors_text.UNKNOWN_SIGNER.format(address=signer))
        refusal = self._envelope_refusal(action, nonce, vault, expires, user_signed=user_signed)
        if refusal is None:
            refusal = self._nonces.use(signer, nonce, self.now_ms())
            if refusal is not None:
                user.nonce_rejects += 1
        if refusal is not None:
            return _err(refusal)
        user.requests_used += len(hashed.get("orders", hashed.get("cancels", [None])))
        tx_hash = "0x" + hashlib.sha256(f"{signer}:{nonce}".encode()).hexdigest()
        try:
            return self._dispatch(user, hashed, tx_hash)
        finally:
            self._core.flush()

    def _recover(
        self,
        action: dict[str, Any],
        signature: Mapping[str, Any],
        nonce: int,
        vault: str | None,
        expires: int | None,
        *,
        user_signed: bool,
    ) -> str:
        is_mainnet = self._core.scenario.is_mainnet
        if user_signed:
            return recover_user_signed_signer(
                {"agentName": "", **action},
                signature,
                payload_types=APPROVE_AGENT_TYPES,
                primary_type=APPROVE_AGENT_PRIMARY_TYPE,
                is_mainnet=is_mainnet,
            )
        return recover_l1_signer(
            action, signature, vault_address=vault, nonce=nonce, expires_after=expires, is_mainnet=is_mainnet
        )

    def _resolve(self, signer: str, *, user_signed: bool) -> UserState | None:
        user = self._core.user(signer)
        if user is not None or user_signed:
            return user
        master = self._agents.get(signer)
        return None if master is None else self._core.user(master)

    def _envelope_refusal(
        self, action: dict[str, Any], nonce: int, vault: str | None, expires: int | None, *, user_signed: bool
    ) -> str | None:
        if vault is not None:
            return errors_text.VAULT_NOT_REGISTERED.format(address=vault.lower())
        if user_signed:
            chain = "Mainnet" if self._core.scenario.is_mainnet else "Testnet"
            if action.get("hyperliquidChain") != chain:
                return errors_text.WRONG_CHAIN.format(expected=chain)
            if action.get("nonce") != nonce:
                return errors_text.USER_SIGNED_NONCE_MISMATCH
            if expires is not None:
                return errors_text.USER_SIGNED_EXPIRES_AFTER
        if expires is not None and expires < self.now_ms():
            return errors_text.EXPIRED
        return None

    def _dispatch(self, user: UserState, action: dict[str, Any], tx_hash: str) -> Reply:
        kind = action["type"]
        if kind == "order":
            statuses = [self._core.place_order(user, wire, tx_hash) for wire in action["orders"]]
            return 200, {"status": "ok", "response": {"type": "order", "data": {"statuses": statuses}}}
        if kind in ("cancel", "cancelByCloid"):
            return 200, {
                "status": "ok",
                "response": {"type": "cancel", "data": {"statuses": self._cancel(user, action)}},
            }
        if kind == "approveAgent":
            return self._approve_agent(user, action)
        refusal = None
        if kind == "scheduleCancel":
            refusal = self._core.schedule_cancel(user, action.get("time"))
        elif kind == "updateLeverage":
            refusal = self._core.update_leverage(user, action["asset"], action["isCross"], action["leverage"])
        return (200, DEFAULT_OK) if refusal is None else _err(refusal)

    def _cancel(self, user: UserState, action: dict[str, Any]) -> list[object]:
        if action["type"] == "cancel":
            return [self._core.cancel_oid(user, c["a"], c["o"]) for c in action["cancels"]]
        return [self._core.cancel_cloid(user, c["asset"], c["cloid"]) for c in action["cancels"]]

    def _approve_agent(self, user: UserState, action: dict[str, Any]) -> Reply:
        agent, name = approve_agent_fields(action)
        if self._core.user(agent) is not None:
            return _err(errors_text.AGENT_IS_USER)
        previous = self._named_agents.get((user.address, name))
        self._named_agents[(user.address, name)] = agent
        if previous is not None and previous not in self._named_agents.values():
            self._agents.pop(previous, None)
        self._agents[agent] = user.address
        return 200, DEFAULT_OK

    # ------------------------------------------------------------------ listeners and hooks

    def add_listener(self, listener: Callable[[SimEvent], None]) -> Callable[[], None]:
        return self._core.add_listener(listener)

    def set_oracle(self, coin: str, oracle_px: Decimal) -> None:
        self._core.set_oracle(coin, oracle_px)

    def set_maker_quotes(
        self, coin: str, bids: Sequence[tuple[Decimal, Decimal]], asks: Sequence[tuple[Decimal, Decimal]]
    ) -> None:
        self._core.set_maker_quotes(coin, bids, asks)

    def on_time(self) -> None:
        self._core.fire_scheduled_cancels()

    def fund(self, user: str, usdc: Decimal) -> None:
        self._core.fund(user, usdc)

    def audit(self, user: str) -> dict[str, object]:
        return self._info.audit(user.lower())

    # ------------------------------------------------------------------ faults

    def set_halted(self, coin: str, halted: bool) -> None:
        self._core.set_halted(coin, halted)

    def set_sz_decimals(self, coin: str, sz_decimals: int) -> None:
        self._core.set_sz_decimals(coin, sz_decimals)

    def set_clock_skew_ms(self, skew_ms: int) -> None:
        self._skew_ms = skew_ms

    def reject_next_orders(self, count: int, text: str) -> None:
        self._core.reject_next_orders(count, text)
