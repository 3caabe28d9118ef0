"""hip3 signing against the official SDK as an oracle, on random actions, keys, nonces, vaults and networks.

The SDK (hyperliquid-python-sdk, with eth_account) is a test dependency only; hip3 itself never imports it.
"""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import eth_account
import pytest
from eth_utils.address import to_checksum_address
from hyperliquid.utils import signing as sdk
from hypothesis import given, settings
from hypothesis import strategies as st

from hip3.protocol.signing import (
    APPROVE_AGENT_PRIMARY_TYPE,
    APPROVE_AGENT_TYPES,
    USD_SEND_PRIMARY_TYPE,
    USD_SEND_TYPES,
    WITHDRAW_PRIMARY_TYPE,
    WITHDRAW_TYPES,
    Signature,
    SigningKey,
    prepare_user_signed_action,
    recover_l1_signer,
    recover_user_signed_signer,
    sign_l1_action,
    sign_user_signed_action,
)

SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

private_keys = st.integers(min_value=1, max_value=SECP256K1_ORDER - 1).map(lambda k: k.to_bytes(32, "big"))
addresses = st.binary(min_size=20, max_size=20).map(lambda raw: "0x" + raw.hex())
cloids = st.binary(min_size=16, max_size=16).map(lambda raw: "0x" + raw.hex())
nonces = st.integers(min_value=0, max_value=2**53)
asset_ids = st.one_of(
    st.integers(min_value=0, max_value=200),
    st.builds(
        lambda dex, index: 100_000 + dex * 10_000 + index,
        st.integers(min_value=1, max_value=5),
        st.integers(min_value=0, max_value=9_999),
    ),
)


def _wire(value: Decimal) -> str:
    """A price or size as the wire wants it: no exponent, no trailing zeros."""
    return f"{value.normalize():f}"


wire_numbers = st.decimals(
    min_value=Decimal("0.00000001"),
    max_value=Decimal("10000000"),
    places=8,
    allow_nan=False,
    allow_infinity=False,
).map(_wire)


@st.composite
def order_wires(draw: st.DrawFn) -> dict[str, Any]:
    wire: dict[str, Any] = {
        "a": draw(asset_ids),
        "b": draw(st.booleans()),
        "p": draw(wire_numbers),
        "s": draw(wire_numbers),
        "r": draw(st.booleans()),
        "t": {"limit": {"tif": draw(st.sampled_from(["Gtc", "Ioc", "Alo"]))}},
    }
    if draw(st.booleans()):
        wire["c"] = draw(cloids)
    return wire


order_actions = st.builds(
    lambda orders: {"type": "order", "orders": orders, "grouping": "na"},
    st.lists(order_wires(), min_size=1, max_size=3),
)
cancel_actions = st.builds(
    lambda cancels: {"type": "cancel", "cancels": cancels},
    st.lists(st.builds(lambda a, o: {"a": a, "o": o}, asset_ids, nonces), min_size=1, max_size=3),
)
cancel_by_cloid_actions = st.builds(
    lambda cancels: {"type": "cancelByCloid", "cancels": cancels},
    st.lists(st.builds(lambda a, c: {"asset": a, "cloid": c}, asset_ids, cloids), min_size=1, max_size=3),
)
schedule_cancel_actions = st.one_of(
    st.just({"type": "scheduleCancel"}),
    st.builds(lambda time: {"type": "scheduleCancel", "time": time}, nonces),
)
l1_actions = st.one_of(order_actions, cancel_actions, cancel_by_cloid_actions, schedule_cancel_actions)


def assert_signatures_equal(ours: dict[str, Any], sdks: dict[str, Any]) -> None:
    assert int(ours["r"], 16) == int(sdks["r"], 16)
    assert int(ours["s"], 16) == int(sdks["s"], 16)
    assert ours["v"] == sdks["v"]
    assert len(ours["r"]) == len(ours["s"]) == 66


def check_l1_against_sdk(
    *,
    secret: bytes,
    action: dict[str, Any],
    vault_address: str | None,
    nonce: int,
    expires_after: int | None,
    is_mainnet: bool,
) -> Signature:
    """Sign with hip3 and the SDK, compare, recover both; returns hip3's signature."""
    wallet = eth_account.Account.from_key(secret)
    original = copy.deepcopy(action)
    context: dict[str, Any] = {
        "vault_address": vault_address,
        "nonce": nonce,
        "expires_after": expires_after,
        "is_mainnet": is_mainnet,
    }
    ours = sign_l1_action(SigningKey.from_bytes(secret), action, **context)
    theirs = sdk.sign_l1_action(
        wallet, copy.deepcopy(action), vault_address, nonce, expires_after, is_mainnet
    )
    assert_signatures_equal(dict(ours), theirs)
    assert action == original
    assert recover_l1_signer(action, ours, **context) == wallet.address.lower()
    assert recover_l1_signer(action, theirs, **context) == wallet.address.lower()
    return ours


@settings(max_examples=250, deadline=None)
@given(
    secret=private_keys,
    action=l1_actions,
    vault_address=st.one_of(st.none(), addresses),
    nonce=nonces,
    expires_after=st.one_of(st.none(), nonces),
    is_mainnet=st.booleans(),
)
def test_l1_signatures_match_sdk(
    *,
    secret: bytes,
    action: dict[str, Any],
    vault_address: str | None,
    nonce: int,
    expires_after: int | None,
    is_mainnet: bool,
) -> None:
    check_l1_against_sdk(
        secret=secret,
        action=action,
        vault_address=vault_address,
        nonce=nonce,
        expires_after=expires_after,
        is_mainnet=is_mainnet,
    )


agent_names = st.one_of(st.just(""), st.text(max_size=24), st.just("bot valid_until 1700000000000"))


@settings(max_examples=250, deadline=None)
@given(
    secret=private_keys,
    agent_address=addresses,
    checksummed=st.booleans(),
    agent_name=agent_names,
    nonce=nonces,
    is_mainnet=st.booleans(),
)
def test_approve_agent_matches_sdk(
    *, secret: bytes, agent_address: str, checksummed: bool, agent_name: str, nonce: int, is_mainnet: bool
) -> None:
    wallet = eth_account.Account.from_key(secret)
    address = to_checksum_address(agent_address) if checksummed else agent_address
    action = {"type": "approveAgent", "agentAddress": address, "agentName": agent_name, "nonce": nonce}
    eip712: dict[str, Any] = {
        "payload_types": APPROVE_AGENT_TYPES,
        "primary_type": APPROVE_AGENT_PRIMARY_TYPE,
        "is_mainnet": is_mainnet,
    }
    prepared = prepare_user_signed_action(action, is_mainnet=is_mainnet)
    ours = sign_user_signed_action(SigningKey.from_bytes(secret), prepared, **eip712)
    sdk_action = dict(action)
    theirs = sdk.sign_agent(wallet, sdk_action, is_mainnet)  # adds the chain fields in place
    assert_signatures_equal(dict(ours), theirs)
    assert prepared == sdk_action
    assert recover_user_signed_signer(prepared, theirs, **eip712) == wallet.address.lower()
    if agent_name == "":
        del sdk_action["agentName"]  # what the SDK posts for an unnamed agent
        assert recover_user_signed_signer(sdk_action, ours, **eip712) == wallet.address.lower()


HIP3_ORDER = {
    "type": "order",
    "orders": [
        {
            "a": 110_026,
            "b": False,
            "p": "431.55",
            "s": "0.12",
            "r": False,
            "t": {"limit": {"tif": "Ioc"}},
            "c": "0x1e60610f0b3d420597c88c1fed2ad5ee",
        }
    ],
    "grouping": "na",
}


@pytest.mark.parametrize("is_mainnet", [True, False], ids=["mainnet", "testnet"])
def test_hip3_order_with_vault_and_expiry_matches_sdk(is_mainnet: bool) -> None:
    secret = bytes.fromhex("0123456789012345678901234567890123456789012345678901234567890123")
    vault = "0x1719884eb866cb12b2287399b15f7db5e7d775ea"
    ours = check_l1_against_sdk(
        secret=secret,
        action=HIP3_ORDER,
        vault_address=vault,
        nonce=1_700_000_000_123,
        expires_after=1_700_000_060_000,
        is_mainnet=is_mainnet,
    )
    recovered = sdk.recover_agent_or_user_from_l1_action(
        HIP3_ORDER, dict(ours), vault, 1_700_000_000_123, 1_700_000_060_000, is_mainnet
    )
    assert recovered.lower() == "0x14791697260e4c9a71f18484c9f997b308e59325"


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (APPROVE_AGENT_TYPES, None),
        (USD_SEND_TYPES, sdk.USD_SEND_SIGN_TYPES),
        (WITHDRAW_TYPES, sdk.WITHDRAW_SIGN_TYPES),
    ],
    ids=["approve-agent", "usd-send", "withdraw"],
)
def test_type_lists_match_sdk(ours: Any, theirs: Any) -> None:
    if theirs is not None:
        assert [dict(field) for field in ours] == theirs
    assert all(set(field) == {"name", "type"} for field in ours)


@pytest.mark.parametrize(
    ("types", "primary_type", "sdk_sign"),
    [
        (USD_SEND_TYPES, USD_SEND_PRIMARY_TYPE, sdk.sign_usd_transfer_action),
        (WITHDRAW_TYPES, WITHDRAW_PRIMARY_TYPE, sdk.sign_withdraw_from_bridge_action),
    ],
    ids=["usd-send", "withdraw"],
)
@pytest.mark.parametrize("is_mainnet", [True, False], ids=["mainnet", "testnet"])
def test_transfers_match_sdk(types: Any, primary_type: str, sdk_sign: Any, is_mainnet: bool) -> None:
    secret = bytes.fromhex("822e9959e022b78423eb653a62ea0020cd283e71a2a8133a6ff2aeffaf373cff")
    action = {
        "type": "usdSend",
        "destination": "0x5e9ee1089755c3435139848e47e6635505d5a13a",
        "amount": "12.5",
        "time": 1_700_000_000_000,
    }
    prepared = prepare_user_signed_action(action, is_mainnet=is_mainnet)
    ours = sign_user_signed_action(
        SigningKey.from_bytes(secret),
        prepared,
        payload_types=types,
        primary_type=primary_type,
        is_mainnet=is_mainnet,
    )
    theirs = sdk_sign(eth_account.Account.from_key(secret), dict(action), is_mainnet)
    assert_signatures_equal(dict(ours), theirs)


OTHER_USER_SIGNED = {
    "usd-class-transfer (bool)": (
        {"type": "usdClassTransfer", "amount": "1.5", "toPerp": True, "nonce": 1_700_000_000_000},
        sdk.USD_CLASS_TRANSFER_SIGN_TYPES,
        "HyperliquidTransaction:UsdClassTransfer",
    ),
    "token-delegate (address, uint64, bool)": (
        {
            "type": "tokenDelegate",
            "validator": "0x5aC99df645F3414876C816Caa18b2d234024b487",
            "wei": 10**12,
            "isUndelegate": False,
            "nonce": 1_700_000_000_000,
        },
        sdk.TOKEN_DELEGATE_TYPES,
        "HyperliquidTransaction:TokenDelegate",
    ),
    "multi-sig envelope (bytes32)": (
        {"multiSigActionHash": bytes(range(32)), "nonce": 1_700_000_000_000},
        sdk.MULTI_SIG_ENVELOPE_SIGN_TYPES,
        "HyperliquidTransaction:SendMultiSig",
    ),
}


@pytest.mark.parametrize("name", list(OTHER_USER_SIGNED))
@pytest.mark.parametrize("is_mainnet", [True, False], ids=["mainnet", "testnet"])
def test_other_eip712_field_types_match_sdk(name: str, is_mainnet: bool) -> None:
    action, types, primary_type = OTHER_USER_SIGNED[name]
    secret = bytes.fromhex("e908f86dbb4d55ac876378565aafeabc187f6690f046459397b17d9b9a19688e")
    wallet = eth_account.Account.from_key(secret)
    eip712: dict[str, Any] = {"payload_types": types, "primary_type": primary_type, "is_mainnet": is_mainnet}
    prepared = prepare_user_signed_action(action, is_mainnet=is_mainnet)
    ours = sign_user_signed_action(SigningKey.from_bytes(secret), prepared, **eip712)
    theirs = sdk.sign_user_signed_action(wallet, dict(action), types, primary_type, is_mainnet)
    assert_signatures_equal(dict(ours), theirs)
    assert recover_user_signed_signer(prepared, theirs, **eip712) == wallet.address.lower()
    if isinstance(action.get("multiSigActionHash"), bytes):
        as_hex = {**prepared, "multiSigActionHash": "0x" + bytes(range(32)).hex()}
        assert recover_user_signed_signer(as_hex, theirs, **eip712) == wallet.address.lower()
