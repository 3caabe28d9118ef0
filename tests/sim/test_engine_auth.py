from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from hip3.core.order import Side, Tif
from hip3.protocol.actions import exchange_request, noop_action
from hip3.protocol.signing import SigningKey, recover_l1_signer, sign_l1_action
from tests.sim import AGENT_KEY, DESERIALIZE, KEY, OTHER_KEY, START_MS, TSLA, USER, Harness

DAY = 86_400_000
OK = (200, {"status": "ok", "response": {"type": "default"}})


def err(text: str) -> tuple[int, dict[str, Any]]:
    return 200, {"status": "err", "response": text}


def order_wire() -> dict[str, Any]:
    return {"a": TSLA, "b": True, "p": "429", "s": "0.1", "r": False, "t": {"limit": {"tif": "Gtc"}}}


def test_tampered_signature_answers_unknown_wallet_with_the_recovered_address() -> None:
    h = Harness()
    body = h.signed({"type": "order", "orders": [order_wire()], "grouping": "na"})
    body["action"]["orders"][0]["p"] = "428"
    recovered = recover_l1_signer(body["action"], body["signature"], nonce=body["nonce"], is_mainnet=False)
    assert recovered != USER
    assert h.sim.exchange(body) == err(f"User or API Wallet {recovered} does not exist.")


def test_action_hashed_in_another_key_order_recovers_another_address() -> None:
    h = Harness()
    swapped = {"type": "order", "grouping": "na", "orders": [order_wire()]}
    body = h.signed(swapped)
    canonical = {"type": "order", "orders": [order_wire()], "grouping": "na"}
    recovered = recover_l1_signer(canonical, body["signature"], nonce=body["nonce"], is_mainnet=False)
    assert h.sim.exchange(body) == err(f"User or API Wallet {recovered} does not exist.")
    wire = order_wire()
    reordered_wire = {k: wire[k] for k in ("b", "a", "p", "s", "r", "t")}
    body = h.signed({"type": "order", "orders": [reordered_wire], "grouping": "na"})
    assert h.sim.exchange(body)[1]["status"] == "err"


def test_the_canonical_order_is_accepted_whatever_the_posted_order() -> None:
    h = Harness()
    body = h.signed({"type": "order", "orders": [order_wire()], "grouping": "na"})
    body["action"] = {"grouping": "na", "orders": body["action"]["orders"], "type": "order"}
    assert h.sim.exchange(body)[1]["status"] == "ok"


def test_mainnet_signature_on_a_testnet_exchange_is_an_unknown_wallet() -> None:
    h = Harness()
    nonce = h.next_nonce()
    sig = sign_l1_action(KEY, noop_action(), nonce=nonce, is_mainnet=True)
    _, body = h.sim.exchange(exchange_request(noop_action(), dict(sig), nonce=nonce))
    assert body["response"].startswith("User or API Wallet 0x") and USER not in body["response"]


def test_replayed_nonce() -> None:
    h = Harness()
    body = h.signed(noop_action())
    assert h.sim.exchange(body) == OK
    assert h.sim.exchange(body) == err(f"Invalid nonce: duplicate nonce {body['nonce']}")
    assert h.sim.audit(USER)["nonce_rejects"] == 1


def test_nonce_too_low_and_too_high() -> None:
    h = Harness()
    low = START_MS - 2 * DAY
    assert h.post(noop_action(), nonce=low) == err(f"Invalid nonce: nonce too low {low} < {low}")
    high = START_MS + DAY
    assert h.post(noop_action(), nonce=high) == err(f"Invalid nonce: nonce too high {high} > {high}")
    assert h.post(noop_action(), nonce=high - 1) == OK


def test_nonce_too_low_against_the_kept_set() -> None:
    h = Harness()
    for _ in range(100):
        assert h.post(noop_action()) == OK
    smallest = START_MS + 1
    assert h.post(noop_action(), nonce=START_MS) == err(
        f"Invalid nonce: nonce too low {START_MS} < {smallest}"
    )


def test_clock_skew_moves_the_nonce_window() -> None:
    h = Harness()
    h.sim.set_clock_skew_ms(-DAY)
    nonce = START_MS + 5
    assert h.post(noop_action(), nonce=nonce) == err(f"Invalid nonce: nonce too high {nonce} > {START_MS}")
    h.sim.set_clock_skew_ms(0)
    assert h.post(noop_action(), nonce=nonce) == OK


def test_order_by_an_approved_agent() -> None:
    h = Harness()
    h.quotes("xyz:TSLA", [("429.9", "1")], [("430.1", "1")])
    assert h.order(TSLA, Side.BUY, "431", "0.1", Tif.IOC, key=AGENT_KEY) == {
        "status": "err",
        "response": f"User or API Wallet {AGENT_KEY.address} does not exist.",
    }
    assert h.approve_agent(AGENT_KEY.address) == OK
    assert h.order_status(TSLA, Side.BUY, "431", "0.1", Tif.IOC, key=AGENT_KEY) == {
        "filled": {"totalSz": "0.1", "avgPx": "430.1", "oid": 3}
    }
    assert h.info(type="userFills", user=USER)[0]["oid"] == 3
    assert h.info(type="userFills", user=AGENT_KEY.address) == []


def test_a_new_unnamed_agent_replaces_the_old_one_and_named_agents_stay() -> None:
    h = Harness()
    assert h.approve_agent(AGENT_KEY.address, "bot") == OK
    assert h.approve_agent(AGENT_KEY.address) == OK
    stranger = "0x" + "11" * 20
    assert h.approve_agent(stranger) == OK  # replaces the unnamed AGENT_KEY …
    assert h.post(noop_action(), AGENT_KEY) == OK  # … which is still the named "bot"


def test_approve_agent_must_be_signed_by_a_funded_account() -> None:
    h = Harness()
    _, body = h.approve_agent(KEY.address, key=AGENT_KEY)
    assert body == {"status": "err", "response": f"User or API Wallet {AGENT_KEY.address} does not exist."}


def test_approving_a_user_as_agent_is_refused() -> None:
    h = Harness()
    assert h.approve_agent(OTHER_KEY.address) == err("Cannot approve an existing user as an agent.")


def test_expired_action_and_vault() -> None:
    h = Harness()
    assert h.post(noop_action(), expires_after=START_MS - 1) == err("Action already expired")
    assert h.post(noop_action(), expires_after=START_MS + 1) == OK
    vault = "0x" + "ab" * 20
    assert h.post(noop_action(), vault_address=vault) == err(f"Vault not registered: {vault}")


def test_funding_an_address_makes_it_a_user() -> None:
    h = Harness()
    fresh = SigningKey.from_bytes(bytes(31) + b"\x07")
    assert h.post(noop_action(), fresh)[1]["status"] == "err"
    h.sim.fund(fresh.address, D(100))
    assert h.post(noop_action(), fresh) == OK


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        "text",
        {},
        {"action": {"type": "noop"}, "nonce": 1},
        {"action": {"type": "noop"}, "nonce": "1", "signature": {"r": "0x1", "s": "0x1", "v": 27}},
        {"action": {"type": "noop"}, "nonce": True, "signature": {"r": "0x1", "s": "0x1", "v": 27}},
        {"action": {"type": "bogus"}, "nonce": 1, "signature": {"r": "0x1", "s": "0x1", "v": 27}},
        {"action": "noop", "nonce": 1, "signature": {"r": "0x1", "s": "0x1", "v": 27}},
        {
            "action": {"type": "order", "orders": [], "grouping": "na"},
            "nonce": 1,
            "signature": {"r": "0x1", "s": "0x1", "v": 27},
        },
        {
            "action": {"type": "order", "orders": [{"a": "x"}], "grouping": "na"},
            "nonce": 1,
            "signature": {"r": "1", "s": "1", "v": 27},
        },
        {
            "action": {"type": "cancel", "cancels": [{"a": 1, "o": -1}]},
            "nonce": 1,
            "signature": {"r": "1", "s": "1", "v": 27},
        },
        {
            "action": {"type": "noop"},
            "nonce": 1,
            "signature": {"r": "1", "s": "1", "v": 27},
            "expiresAfter": "x",
        },
    ],
)
def test_malformed_bodies_answer_422(body: object) -> None:
    status, text = Harness().sim.exchange(body)
    assert status == 422 and isinstance(text, str) and text.startswith(DESERIALIZE)


def test_an_unrecoverable_signature_is_a_clear_error() -> None:
    body = {"action": {"type": "noop"}, "nonce": START_MS, "signature": {"r": "0xzz", "s": "0x1", "v": 27}}
    assert Harness().sim.exchange(body) == err("Unable to recover signer.")


def test_batch_of_orders_by_cloid_and_agent_key_uses_its_own_nonce_set() -> None:
    h = Harness()
    h.approve_agent(AGENT_KEY.address)
    nonce = h.next_nonce()
    assert h.post(noop_action(), KEY, nonce=nonce) == OK
    assert h.post(noop_action(), AGENT_KEY, nonce=nonce) == OK  # nonces are per signer
