"""Signing against published vectors (SDK-made l1-signing.json, protocol reference §2) and key hygiene."""

from __future__ import annotations

import copy
import hashlib
import io
import json
import logging
import pickle
import subprocess
import sys
import traceback
import types
from collections.abc import Mapping
from typing import Any

import msgpack
import pytest
import structlog
from Crypto.Hash import keccak

from hip3.protocol import signing
from hip3.protocol.signing import (
    APPROVE_AGENT_PRIMARY_TYPE,
    APPROVE_AGENT_TYPES,
    USD_SEND_PRIMARY_TYPE,
    USD_SEND_TYPES,
    WITHDRAW_PRIMARY_TYPE,
    WITHDRAW_TYPES,
    SignatureError,
    SigningKey,
    action_hash,
    l1_action_digest,
    prepare_user_signed_action,
    recover_l1_signer,
    recover_user_signed_signer,
    sign_l1_action,
    sign_user_signed_action,
    user_signed_action_digest,
)
from tests.conftest import SHARED_DIR, VECTORS_FILE

# Public test keys of the official SDKs (protocol reference §2.1); never real accounts.
PY_KEY = "0x0123456789012345678901234567890123456789012345678901234567890123"
PY_ADDRESS = "0x14791697260e4c9a71f18484c9f997b308e59325"
RS_KEY = "e908f86dbb4d55ac876378565aafeabc187f6690f046459397b17d9b9a19688e"
RS_ADDRESS = "0xcd49bbac6e85fdeb167eb7ca41a945d2b8758f6f"
TS_KEY = "0x822e9959e022b78423eb653a62ea0020cd283e71a2a8133a6ff2aeffaf373cff"
TS_ADDRESS = "0xe5ca49fb3bd9a581f0d1ef9cb5d7177da08bf901"
SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def keccak256(data: bytes) -> bytes:
    return keccak.new(digest_bits=256, data=data).digest()


def h(hex_text: str) -> bytes:
    return bytes.fromhex(hex_text.removeprefix("0x"))


def assert_same_signature(actual: Mapping[str, Any], r: str, s: str, v: int) -> None:
    assert int(actual["r"], 16) == int(r, 16)
    assert int(actual["s"], 16) == int(s, 16)
    assert actual["v"] == v


def assert_wire_format(signature: Mapping[str, Any]) -> None:
    for part in ("r", "s"):
        assert signature[part].startswith("0x") and len(signature[part]) == 66
        assert signature[part][2:] == signature[part][2:].lower()
    assert signature["v"] in (27, 28)


# ------------------------------------------------------------------------ l1-signing.json (SDK output)


def _vector_cases() -> list[Any]:
    cases = json.loads(VECTORS_FILE.read_text())["cases"]
    net = {True: "main", False: "test"}
    return [
        pytest.param(case, id=f"{i:02d}-{case['name']}-{net[case['is_mainnet']]}")
        for i, case in enumerate(cases)
    ]


@pytest.mark.parametrize("case", _vector_cases())
def test_sdk_vector(case: dict[str, Any]) -> None:
    context = {
        "vault_address": case["vault_address"],
        "nonce": case["nonce"],
        "expires_after": case["expires_after"],
        "is_mainnet": case["is_mainnet"],
    }
    connection_id = action_hash(case["action"], case["vault_address"], case["nonce"], case["expires_after"])
    assert "0x" + connection_id.hex() == case["connection_id"]

    signature = sign_l1_action(SigningKey.from_hex(case["private_key"]), case["action"], **context)
    assert_same_signature(signature, **case["signature"])
    assert_wire_format(signature)
    assert sign_l1_action(case["private_key"], case["action"], **context) == signature

    assert recover_l1_signer(case["action"], case["signature"], **context) == case["address"]
    assert recover_l1_signer(case["action"], signature, **context) == case["address"]


# ------------------------------------------------------------------ protocol reference §1.4 and §2.1–§2.2


AGENT_TYPE_HASH = "26f05c2f7239b6983075e58321292d77b3aa173d19b27257ac96ab362570f508"
EXCHANGE_DOMAIN_SEPARATOR = "d79297fcdf2ffcd4ae223d01edaa2ba214ff8f401d7c9300d995d17c82aa4040"
USER_SIGNED_DOMAIN_SEPARATOR_0X66EEE = "feb1393ca4412a4ca577bd51d04f0a77033514c602f4d0a11490fb95f7428df6"


@pytest.mark.parametrize(
    ("key", "address"),
    [(PY_KEY, PY_ADDRESS), (RS_KEY, RS_ADDRESS), (TS_KEY, TS_ADDRESS)],
    ids=["py", "rs", "ts"],
)
def test_key_addresses(key: str, address: str) -> None:
    assert SigningKey.from_hex(key).address == address


def test_eip712_constants() -> None:
    assert keccak256(b"Agent(string source,bytes32 connectionId)").hex() == AGENT_TYPE_HASH
    connection_id = bytes(range(32))
    for is_mainnet, source in ((True, b"a"), (False, b"b")):
        struct_hash = keccak256(h(AGENT_TYPE_HASH) + keccak256(source) + connection_id)
        expected = keccak256(b"\x19\x01" + h(EXCHANGE_DOMAIN_SEPARATOR) + struct_hash)
        assert l1_action_digest(connection_id, is_mainnet=is_mainnet) == expected


ORDER_GTC = {
    "type": "order",
    "orders": [{"a": 1, "b": True, "p": "100", "s": "100", "r": False, "t": {"limit": {"tif": "Gtc"}}}],
    "grouping": "na",
}
ORDER_CLOID = {
    "type": "order",
    "orders": [
        {
            "a": 1,
            "b": True,
            "p": "100",
            "s": "100",
            "r": False,
            "t": {"limit": {"tif": "Gtc"}},
            "c": "0x00000000000000000000000000000001",
        }
    ],
    "grouping": "na",
}
ORDER_TPSL = {
    "type": "order",
    "orders": [
        {
            "a": 1,
            "b": True,
            "p": "100",
            "s": "100",
            "r": False,
            "t": {"trigger": {"isMarket": True, "triggerPx": "103", "tpsl": "sl"}},
        }
    ],
    "grouping": "na",
}
DUMMY = {"type": "dummy", "num": 100000000000}
VAULT = "0x1719884eb866cb12b2287399b15f7db5e7d775ea"
SUB_ACCOUNT_TRANSFER = {
    "type": "subAccountTransfer",
    "subAccountUser": "0x1d9470d4b963f552e6f671a81619d395877bf409",
    "isDeposit": True,
    "usd": 10,
}
ORDER_GTC_HASHED = (
    "83a474797065a56f72646572a66f72646572739186a16101a162c3a170a3313030a173a3313030a172c2a17481a56c696d6974"
    "81a3746966a3477463a867726f7570696e67a26e61000000000000000000"
)
# §2.2 prints the cloid bytes with one "30" missing (31 digits after a str8 length of 0x22 = 34); its
# connectionId (checked in test_intermediate_digests) is that of the full 34-character cloid used here.
ORDER_CLOID_HASHED = ORDER_GTC_HASHED.replace("9186", "9187").replace(
    "a867726f", "a163d922" + b"0x00000000000000000000000000000001".hex() + "a867726f"
)

# (action, vault, nonce, expires_after, hashed bytes) — §2.2 "Hashed byte strings" and test (a).
HASHED_INPUTS = {
    "production-ioc": (
        {
            "type": "order",
            "orders": [
                {"a": 4, "b": True, "p": "1670.1", "s": "0.0147", "r": False, "t": {"limit": {"tif": "Ioc"}}}
            ],
            "grouping": "na",
        },
        None,
        1677777606040,
        None,
        "83a474797065a56f72646572a66f72646572739186a16104a162c3a170a6313637302e31a173a6302e30313437a172c2a174"
        "81a56c696d697481a3746966a3496f63a867726f7570696e67a26e6100000186a356959800",
    ),
    "dummy": (DUMMY, None, 0, None, "82a474797065a564756d6d79a36e756dcf000000174876e800000000000000000000"),
    "dummy-vault": (
        DUMMY,
        VAULT,
        0,
        None,
        "82a474797065a564756d6d79a36e756dcf000000174876e8000000000000000000011719884eb866cb12b2287399b15f7db5e7d775ea",
    ),
    "order-gtc": (ORDER_GTC, None, 0, None, ORDER_GTC_HASHED),
    "order-cloid": (ORDER_CLOID, None, 0, None, ORDER_CLOID_HASHED),
    "schedule-cancel": (
        {"type": "scheduleCancel"},
        None,
        0,
        None,
        "81a474797065ae7363686564756c6543616e63656c000000000000000000",
    ),
    "schedule-cancel-expires": (
        {"type": "scheduleCancel"},
        None,
        0,
        1700000000000,
        "81a474797065ae7363686564756c6543616e63656c000000000000000000000000018bcfe56800",
    ),
}
KNOWN_CONNECTION_IDS = {
    "production-ioc": "0fcbeda5ae3c4950a548021552a4fea2226858c4453571bf3f24ba017eac2908",
    "schedule-cancel-expires": "8cc3467cfd87118031e1d129c7545dfd2c3e15589eb7d11f59836558a8c620a3",
}


@pytest.mark.parametrize("name", list(HASHED_INPUTS))
def test_hashed_bytes(name: str) -> None:
    action, vault, nonce, expires_after, hashed_hex = HASHED_INPUTS[name]
    hashed = h(hashed_hex)
    packed = msgpack.packb(action)
    assert hashed.startswith(packed)
    assert signing._PACKER.pack(action) == packed  # the reused Packer emits packb's bytes
    assert action_hash(action, vault, nonce, expires_after) == keccak256(hashed)
    if name in KNOWN_CONNECTION_IDS:
        assert action_hash(action, vault, nonce, expires_after).hex() == KNOWN_CONNECTION_IDS[name]


# (action, vault, connectionId, digest mainnet, digest testnet) — §2.2 "Intermediate values", nonce 0.
INTERMEDIATE = {
    "dummy": (
        DUMMY,
        None,
        "f528daee6a0bd11407b483cfcd9a48c56884180b70ee86f124053e5fc1bf4d57",
        "e0aabfac88a47d3e7028b6ba6a94b30c8afcfffac26cbce788cf362b1312eafa",
        "c05ce2df9d9d18fab3570746cc27e1136a4020a28561171a24f60c2258989224",
    ),
    "dummy-vault": (
        DUMMY,
        VAULT,
        "de9e09a7a3da45cc694096d4bfdcd89bc1b892d05497c5ecc1f56c335945184c",
        "fc2d745b97fc2d89fbca951d3665f56f14e8b2fa19d21dbd137ab115fcd5b4f1",
        "ae91fb8ce73153ef15612f60dea044c325a342b9a8b0cbd0df8d3c8c66bef395",
    ),
    "order-gtc": (
        ORDER_GTC,
        None,
        "884f2c32bb6dbdd65f6033e32fb28c0cb6f5b345db0f6471fd3366d85c9252c1",
        "a5cfed1f2d7948de30aecacc7fea3c5e05c1e759020e96239847879b906f801e",
        "606be2d25f68768f876dc04a2c3c86ceafd2d6a3c3cbb963454462d6734ebfa6",
    ),
    "order-cloid": (
        ORDER_CLOID,
        None,
        "0ba500cedd8f4ba6ded620a0b1cd04f124d9ba745e2e2893fcc763bcc1444af5",
        "54a60f6e5107c3ebbd5600ce51c5c208b66c4acdaddf159d34f380f4985f4a3f",
        "40529778f312dd898fe2e3b86a6f8ad38db2e4fb6e2d8012349b6021407c5328",
    ),
    "tpsl": (
        ORDER_TPSL,
        None,
        "430a86fb9876e901920d931f5bb20c9d011f6389bd179f39a73c09e6219adcad",
        "012ce9a26d8326e9de0e2e76709c076b94cec6b137031928ec7334c8f3c4028f",
        "28f89042e8188e26f18fb164d9c705db8dcfd6a7e74e793d4917a318dd45f799",
    ),
    "create-sub-account": (
        {"type": "createSubAccount", "name": "example"},
        None,
        "9a7b5272baf65d28b0589bd50863a42ac35897553a6beb274e625b6faf7d6bb1",
        "4423e9ec1018e626f959974e00f3715aa1d91ad58815ae8f11f8c7283e70973c",
        "1467a6a95a4a57ea2b1cb7af29b52aa9922df169c5ee945f641d10ccee9d6c21",
    ),
    "sub-account-transfer": (
        SUB_ACCOUNT_TRANSFER,
        None,
        "d12f71eba9e3e792812bfdf01a6a92f4d4016bb0541e850b41f770891c0cc447",
        "16d4f3be13b4dfbbe7015924637e6b2cbf8f63eb3c21538c3f5ad73a4b5022c4",
        "16771266fdd99cee549b98d7e3aa30dcace521c450372abf12c3f804a3e96304",
    ),
    "schedule-cancel": (
        {"type": "scheduleCancel"},
        None,
        "a2887a3147b6542306b61d311a056fd1753913d63cc904f30cba61712a98f4ae",
        "b2501a589d58456ff3fcb01a4b5e82f70745856837c35dc88c9dc8eb0262cd4f",
        "7ed5032a58c1a14bffb06942a63f6ea3cbc688352cb7cf0b76c26ec80c6a16ee",
    ),
    "schedule-cancel-time": (
        {"type": "scheduleCancel", "time": 123456789},
        None,
        "4be18e445114437c5d1d9dd35a09f5601a3cc34ed4ac94a0281251b9bd8f6832",
        "9393b4b91056b0153438d4e16380db88f41a0e56d8d9e508084748b19e475598",
        "40daefeaa4ffca7e11aa99be35f1afc0a15ec5137f3240f778284d8bd6d42639",
    ),
}


@pytest.mark.parametrize("name", list(INTERMEDIATE))
def test_intermediate_digests(name: str) -> None:
    action, vault, connection_id_hex, digest_main, digest_test = INTERMEDIATE[name]
    connection_id = action_hash(action, vault, 0, None)
    assert connection_id.hex() == connection_id_hex
    assert l1_action_digest(connection_id, is_mainnet=True).hex() == digest_main
    assert l1_action_digest(connection_id, is_mainnet=False).hex() == digest_test


# §2.3: unmerged Python TWAP tests, key #1, nonce 0: (action, (r, s, v) mainnet, (r, s, v) testnet).
TWAP_VECTORS = {
    "twap-order": (
        {"type": "twapOrder", "twap": {"a": 0, "b": True, "s": "1.5", "r": False, "m": 10, "t": False}},
        (
            "0x459e5dd4a30e60252536cf864a946be1a69da80d937f7841382a1bb471a6ccef",
            "0x37229416621aaab0b74e4377e87a01e88cb5f946c0eeed4581b640aa859a9bfc",
            27,
        ),
        (
            "0x8c99939356b65ea42731d12d5dcecf9c750ab49c9f5112e5356f13d6b94077c2",
            "0x1523831a22a41779ae772cdba6206eaba1cef79081d965bf912a16fd9a6363ab",
            28,
        ),
    ),
    "twap-cancel": (
        {"type": "twapCancel", "a": 10001, "t": 12345},
        (
            "0x459fdfa693f77f07defb7e4bf9302f5f887234d31129cdd0bb9894e0888af54d",
            "0x46c4f00b90a53c9b51d8825e899188eab52671206a2cb39bcb1e3fade009a1da",
            27,
        ),
        (
            "0x638e0b4fa50bef42ce84ef765423670c6f25da43a9af1c9cfb9f367d628b3226",
            "0x7ffb43b336be19ada86138bd79cde5c6680e97bb479ab222f6e3055daa83bb9e",
            28,
        ),
    ),
}


@pytest.mark.parametrize("name", list(TWAP_VECTORS))
def test_twap_vectors(name: str) -> None:
    action, mainnet, testnet = TWAP_VECTORS[name]
    key = SigningKey.from_hex(PY_KEY)
    for is_mainnet, (r, s, v) in ((True, mainnet), (False, testnet)):
        assert_same_signature(sign_l1_action(key, action, nonce=0, is_mainnet=is_mainnet), r, s, v)


# ------------------------------------------------------------------------------- §2.4 Rust SDK vectors


def _rust_order(order_type: dict[str, Any], cloid: str | None = None) -> dict[str, Any]:
    order: dict[str, Any] = {"a": 1, "b": True, "p": "2000.0", "s": "3.5", "r": False, "t": order_type}
    if cloid is not None:
        order["c"] = cloid
    return {"type": "order", "orders": [order], "grouping": "na"}


RUST_VECTORS = {
    "limit-ioc": (
        _rust_order({"limit": {"tif": "Ioc"}}),
        "5983a9453b8d32668daefa9310e1a81bc1f4d7da50a9ad8869a4011d12068ea0",
        "77957e58e70f43b6b68581f2dc42011fc384538a2e5b7bf42d5b936f19fbb67360721a8598727230f67080efee48c812a6a4442013fd3b0eed509171bef9f23f1c",
        "cd0925372ff1ed499e54883e9a6205ecfadec748f80ec463fe2f84f1209648776377961965cb7b12414186b1ea291e95fd512722427efcbcfb3b0b2bcd4d79d01c",
    ),
    "limit-ioc-cloid": (
        _rust_order({"limit": {"tif": "Ioc"}}, "0x1e60610f0b3d420597c88c1fed2ad5ee"),
        "c5fe546c778ef44d4804681e65bdbc5cd678cbbbcdc13d1b80eabf0d5a188704",
        "d3e894092eb27098077145714630a77bbe3836120ee29df7d935d8510b03a08f456de5ec1be82aa65fc6ecda9ef928b0445e212517a98858cfaa251c4cd7552b1c",
        "3768349dbb22a7fd770fc9fc50c7b5124a7da342ea579b309f58002ceae49b4357badc7909770919c45d850aabb08474ff2b7b3204ae5b66d9f7375582981f111c",
    ),
    "trigger-tp": (
        _rust_order({"trigger": {"isMarket": True, "triggerPx": "2000.0", "tpsl": "tp"}}),
        "ce28b892ad1b09ae7a2a50faa6802f3fa1b0e76ab9dd60b98f423673cba01fc4",
        "b91e5011dff15e4b4a40753730bda44972132e7b75641f3cac58b66159534a170d422ee1ac3c7a7a2e11e298108a2d6b8da8612caceaeeb3e571de3b2dfda9e41b",
        "6df38b609904d0d4439884756b8f366f22b3a081801dbdd23f279094a2299fac6424cb0cdc48c3706aeaa368f81959e91059205403d3afd23a55983f710aee871b",
    ),
    "trigger-sl": (
        _rust_order({"trigger": {"isMarket": True, "triggerPx": "2000.0", "tpsl": "sl"}}),
        "93c6fc867458280be8fa653623dab767b96d63c2b049d7d1800cdaddb6759d6f",
        "8456d2ace666fce1bee1084b00e9620fb20e810368841e9d4dd80eb29014611a0843416e51b1529c22dd2fc28f7ff8f6443875635c72011f60b62cbb8ce90e2d1c",
        "eb5bdb52297c1d19da45458758bd569dcb24c07e5c7bd52cf76600fd92fdd8213e661e21899c985421ec018a9ee7f3790e7b7d723a9932b7b5adcd7def5354601c",
    ),
    "cancel": (
        {"type": "cancel", "cancels": [{"a": 1, "o": 82382}]},
        "a53262329d1e221a88ff73e5ce330e0e47fb646091cae7020c34c346e592b77e",
        "02f76cc5b16e0810152fa0e14e7b219f49c361e3325f771544c6f54e157bf9fa17ed0afc11a98596be85d5cd9f86600aad515337318f7ab346e5ccc1b03425d51b",
        "6ffebadfd48067663390962539fbde76cfa36f53be65abe2ab72c9db6d0db44457720db9d7c4860f142a484f070c84eb4b9694c3a617c83f0d698a27e55fd5e01c",
    ),
    "claim-rewards": (
        {"type": "claimRewards"},
        "e7116fe27a8f1fc959de19f565fd16658b4d1fa6ea874b0eb64375f833ef8389",
        "e13542800ba5ec821153401e1cafac484d1f861adbbb86c00b580ec2560c153248b8d9f0e004ecc86959c07d44b591861ebab2167b54651a81367e2c3d472d4e1c",
        "16de9b346ddd8e200492a2db45ec9104dcdfc7fbfdbcd85890a6063bdd56df2c44846714c261a431de7095ad52e07143346eb26d9e66c6aed4674f120a1048131c",
    ),
}
RUST_NONCE = 1583838


@pytest.mark.parametrize("name", list(RUST_VECTORS))
def test_rust_sdk_vectors(name: str) -> None:
    action, connection_id, rsv_main, rsv_test = RUST_VECTORS[name]
    assert action_hash(action, None, RUST_NONCE, None).hex() == connection_id
    key = SigningKey.from_hex(RS_KEY)
    for is_mainnet, rsv_hex in ((True, rsv_main), (False, rsv_test)):
        rsv = h(rsv_hex)
        signature = sign_l1_action(key, action, nonce=RUST_NONCE, is_mainnet=is_mainnet)
        assert h(signature["r"]) + h(signature["s"]) + bytes([signature["v"]]) == rsv
        as_posted = {"r": "0x" + rsv[:32].hex(), "s": "0x" + rsv[32:64].hex(), "v": rsv[64]}
        assert recover_l1_signer(action, as_posted, nonce=RUST_NONCE, is_mainnet=is_mainnet) == RS_ADDRESS


# ----------------------------------------------------------------- §2.5 TS SDK vectors: vault + expiresAfter


TS_ORDER = {
    "type": "order",
    "orders": [{"a": 0, "b": True, "p": "30000", "s": "0.1", "r": False, "t": {"limit": {"tif": "Gtc"}}}],
    "grouping": "na",
}
TS_NONCE = 1234567890
TS_VAULT = "0x1234567890123456789012345678901234567890"
TS_EXPIRES_AFTER = 1234567890
TS_VECTORS = {
    "none": (
        None,
        None,
        "25367e0dba84351148288c2233cd6130ed6cec5967ded0c0b7334f36f957cc90",
        (
            "0x61078d8ffa3cb591de045438a1ae2ed299b271891d1943a33901e7cfb3a31ed8",
            "0x0e91df4f9841641d3322dad8d932874b74d7e082cdb5b533f804964a6963aef9",
            28,
        ),
        (
            "0x6b0283a894d87b996ad0182b86251cc80d27d61ef307449a2ed249a508ded1f7",
            "0x6f884e79f4a0a10af62db831af6f8e03b3f11d899eb49b352f836746ee9226da",
            27,
        ),
    ),
    "vault": (
        TS_VAULT,
        None,
        "214e2ea3270981b6fd18174216691e69f56872663139d396b10ded319cb4bb1e",
        (
            "0x77151b3ae29b83c8affb3791568c6452019ba8c30019236003abb1efcd809433",
            "0x55668c02f6ad4a1c335ce99987b7545984c4edc1765fe52cf115a423dc8279bb",
            27,
        ),
        (
            "0x294a6cf713483c129be9af5c7450aca59c9082f391f02325715c0d04b7f48ac1",
            "0x119cfd947dcd2da1d1064a9d08bcf07e01fc9b72dd7cca69a988c74249e300f0",
            27,
        ),
    ),
    "expires-after": (
        None,
        TS_EXPIRES_AFTER,
        "c30b002ba3775e4c31c43c1dfd3291dfc85c6ae06c6b9f393991de86cad5fac7",
        (
            "0x162a52128fb58bc6adb783e3d36913c53127851144fc45c5603a51e97b9202fd",
            "0x469571eb0a2101a32f81f9584e15fd35c723a6089e106f4f33798dbccf7cd416",
            28,
        ),
        (
            "0x5094989a7c0317db6553f21dd7f90d43415e8bd01af03829de249d4ea0aa5f66",
            "0x491d04966e81662bd4e70d607fac30e71803c01733f4f66ff7299b0470675b8b",
            27,
        ),
    ),
    "vault-expires-after": (
        TS_VAULT,
        TS_EXPIRES_AFTER,
        "2d62412aa0fc57441b5189841d81554a6a9680bf07204e1454983a9ca44f0744",
        (
            "0x78fcca006d7fdfaf1f66978ef7a60280246fc3e7a5b39a68a1656c3e42c58bf1",
            "0x61a09957de7f0886c2bdffb7a94e3a257bf240796883ea6ceaf4d0be37055cdd",
            27,
        ),
        (
            "0x3a0bbbd9fadca54f58a2b7050899cecb97f68b2f693c63e91ca60510427326d7",
            "0x60f75f12cae7b9dc18b889406192afcaf13f40d2f8c68cc01f7f83f3fb5deb23",
            27,
        ),
    ),
}


@pytest.mark.parametrize("name", list(TS_VECTORS))
def test_ts_sdk_vectors(name: str) -> None:
    vault, expires_after, connection_id, mainnet, testnet = TS_VECTORS[name]
    assert action_hash(TS_ORDER, vault, TS_NONCE, expires_after).hex() == connection_id
    key = SigningKey.from_hex(TS_KEY)
    for is_mainnet, (r, s, v) in ((True, mainnet), (False, testnet)):
        context: dict[str, Any] = {
            "vault_address": vault,
            "nonce": TS_NONCE,
            "expires_after": expires_after,
            "is_mainnet": is_mainnet,
        }
        signature = sign_l1_action(key, TS_ORDER, **context)
        assert signature == {"r": r, "s": s, "v": v}  # the TS SDK pads like we do: exact strings
        assert recover_l1_signer(TS_ORDER, signature, **context) == TS_ADDRESS


# ---------------------------------------------------------------------- user-signed (§2.2 and §2.5 bottom)


PY_TRANSFER: dict[str, Any] = {
    "destination": "0x5e9ee1089755c3435139848e47e6635505d5a13a",
    "amount": "1",
    "time": 1687816341423,
}
USER_SIGNED_VECTORS = {
    "py-usd-send": (
        PY_KEY,
        PY_TRANSFER,
        USD_SEND_TYPES,
        USD_SEND_PRIMARY_TYPE,
        False,
        "cacf7585cc49ca60c6c5fb3001e226c0ca03c46252c893eea574c78907b7cebe",
        (
            "0x637b37dd731507cdd24f46532ca8ba6eec616952c56218baeff04144e4a77073",
            "0x11a6a24900e6e314136d2592e2f8d502cd89b7c15b198e1bee043c9589f9fad7",
            27,
        ),
    ),
    "py-withdraw": (
        PY_KEY,
        PY_TRANSFER,
        WITHDRAW_TYPES,
        WITHDRAW_PRIMARY_TYPE,
        False,
        "8080d06f566813165cec60d85300445133b3439e9c92e10b93ed510372608899",
        (
            "0x8363524c799e90ce9bc41022f7c39b4e9bdba786e5f9c72b20e43e1462c37cf9",
            "0x58b1411a775938b83e29182e8ef74975f9054c8e97ebf5ec2dc8d51bfc893881",
            28,
        ),
    ),
    "ts-usd-send": (
        TS_KEY,
        {"destination": "0x1234567890123456789012345678901234567890", "amount": "1000", "time": 1234567890},
        USD_SEND_TYPES,
        USD_SEND_PRIMARY_TYPE,
        True,
        None,
        (
            "0xf777c38efe7c24cc71209526ae608f4e384d0586edf578f0e97b4b9f7c7adcc6",
            "0x104a4a97c48ae77bf5bd777bdd45fe72d8f5ff29116b5ff64fd8cfe4ea610786",
            28,
        ),
    ),
}


@pytest.mark.parametrize("name", list(USER_SIGNED_VECTORS))
def test_user_signed_vectors(name: str) -> None:
    key_hex, message, types, primary_type, is_mainnet, digest, (r, s, v) = USER_SIGNED_VECTORS[name]
    action = prepare_user_signed_action({"type": "x", **message}, is_mainnet=is_mainnet)
    eip712: dict[str, Any] = {"payload_types": types, "primary_type": primary_type, "is_mainnet": is_mainnet}
    if digest is not None:
        assert user_signed_action_digest(action, **eip712).hex() == digest
    key = SigningKey.from_hex(key_hex)
    signature = sign_user_signed_action(key, action, **eip712)
    assert_same_signature(signature, r, s, v)
    assert_wire_format(signature)
    assert recover_user_signed_signer(action, signature, **eip712) == key.address


def test_user_signed_digest_by_hand() -> None:
    """The UsdSend digest rebuilt from the EIP-712 rules and the §1.6 domain separator."""
    members = "string hyperliquidChain,string destination,string amount,uint64 time"
    type_hash = keccak256(f"HyperliquidTransaction:UsdSend({members})".encode())
    struct_hash = keccak256(
        type_hash
        + keccak256(b"Testnet")
        + keccak256(PY_TRANSFER["destination"].encode())
        + keccak256(b"1")
        + PY_TRANSFER["time"].to_bytes(32, "big")
    )
    expected = keccak256(b"\x19\x01" + h(USER_SIGNED_DOMAIN_SEPARATOR_0X66EEE) + struct_hash)
    action = prepare_user_signed_action(PY_TRANSFER, is_mainnet=False)
    digest = user_signed_action_digest(
        action, payload_types=USD_SEND_TYPES, primary_type=USD_SEND_PRIMARY_TYPE, is_mainnet=False
    )
    assert digest == expected


def test_prepare_user_signed_action_returns_a_new_dict() -> None:
    original = {"type": "usdSend", **PY_TRANSFER}
    snapshot = copy.deepcopy(original)
    prepared = prepare_user_signed_action(original, is_mainnet=True, signature_chain_id="0xa4b1")
    assert original == snapshot
    assert prepared == {**snapshot, "signatureChainId": "0xa4b1", "hyperliquidChain": "Mainnet"}
    assert prepare_user_signed_action(original, is_mainnet=False)["hyperliquidChain"] == "Testnet"
    with pytest.raises(ValueError, match="signature_chain_id"):
        prepare_user_signed_action(original, is_mainnet=True, signature_chain_id="66eee")


def test_user_signed_action_must_be_prepared_for_the_network() -> None:
    key = SigningKey.from_hex(PY_KEY)
    eip712: dict[str, Any] = {"payload_types": USD_SEND_TYPES, "primary_type": USD_SEND_PRIMARY_TYPE}
    with pytest.raises(ValueError, match="prepare_user_signed_action"):
        sign_user_signed_action(key, {"type": "usdSend", **PY_TRANSFER}, is_mainnet=True, **eip712)
    testnet_action = prepare_user_signed_action(PY_TRANSFER, is_mainnet=False)
    with pytest.raises(ValueError, match="does not match"):
        sign_user_signed_action(key, testnet_action, is_mainnet=True, **eip712)


def test_approve_agent_without_name_recovers_as_empty_name() -> None:
    key = SigningKey.from_hex(PY_KEY)
    eip712: dict[str, Any] = {
        "payload_types": APPROVE_AGENT_TYPES,
        "primary_type": APPROVE_AGENT_PRIMARY_TYPE,
        "is_mainnet": True,
    }
    signed = prepare_user_signed_action(
        {"type": "approveAgent", "agentAddress": TS_ADDRESS, "agentName": "", "nonce": 1700000000000},
        is_mainnet=True,
    )
    signature = sign_user_signed_action(key, signed, **eip712)
    posted = {k: v for k, v in signed.items() if k != "agentName"}
    assert recover_user_signed_signer(posted, signature, **eip712) == PY_ADDRESS
    assert sign_user_signed_action(key, posted, **eip712) == signature
    renamed = {**signed, "agentName": "bot"}
    assert recover_user_signed_signer(renamed, signature, **eip712) != PY_ADDRESS


def test_user_signed_recovery_uses_the_servers_network() -> None:
    key = SigningKey.from_hex(PY_KEY)
    eip712: dict[str, Any] = {"payload_types": USD_SEND_TYPES, "primary_type": USD_SEND_PRIMARY_TYPE}
    action = prepare_user_signed_action(PY_TRANSFER, is_mainnet=False)
    signature = sign_user_signed_action(key, action, is_mainnet=False, **eip712)
    assert recover_user_signed_signer(action, signature, is_mainnet=False, **eip712) == PY_ADDRESS
    assert recover_user_signed_signer(action, signature, is_mainnet=True, **eip712) != PY_ADDRESS


def test_unsupported_eip712_type_is_refused() -> None:
    action = prepare_user_signed_action({"x": [1]}, is_mainnet=True)
    types = [{"name": "hyperliquidChain", "type": "string"}, {"name": "x", "type": "uint64[]"}]
    with pytest.raises(ValueError, match="unsupported EIP-712 field type"):
        sign_user_signed_action(PY_KEY, action, payload_types=types, primary_type="T", is_mainnet=True)


# ---------------------------------------------------------------------------- formats and non-mutation


def test_r_and_s_are_zero_padded() -> None:
    """The SDK prints this r with 63 digits (§2.2 dummy); we always print 64."""
    signature = sign_l1_action(PY_KEY, DUMMY, nonce=0, is_mainnet=True)
    assert signature["r"] == "0x053749d5b30552aeb2fca34b530185976545bb22d0b3ce6f62e31be961a59298"


def test_key_forms_are_equivalent() -> None:
    reference = sign_l1_action(SigningKey.from_hex(PY_KEY), DUMMY, nonce=7, is_mainnet=False)
    for form in (
        PY_KEY,
        PY_KEY[2:],
        f"  {PY_KEY.upper().replace('0X', '0x')}\n",
        h(PY_KEY),
        bytearray(h(PY_KEY)),
    ):
        assert sign_l1_action(form, DUMMY, nonce=7, is_mainnet=False) == reference  # type: ignore[arg-type]


def test_inputs_are_not_mutated() -> None:
    key = SigningKey.from_hex(PY_KEY)
    action = copy.deepcopy(ORDER_CLOID)
    signature = sign_l1_action(key, action, vault_address=VAULT, nonce=5, expires_after=9, is_mainnet=True)
    frozen_signature = dict(signature)
    recover_l1_signer(action, signature, vault_address=VAULT, nonce=5, expires_after=9, is_mainnet=True)
    assert action == ORDER_CLOID
    assert signature == frozen_signature
    user_action = prepare_user_signed_action(PY_TRANSFER, is_mainnet=False)
    frozen_user_action = copy.deepcopy(user_action)
    eip712: dict[str, Any] = {
        "payload_types": USD_SEND_TYPES,
        "primary_type": USD_SEND_PRIMARY_TYPE,
        "is_mainnet": False,
    }
    user_signature = sign_user_signed_action(key, user_action, **eip712)
    recover_user_signed_signer(user_action, user_signature, **eip712)
    assert user_action == frozen_user_action


def test_keccak_backends_agree() -> None:
    for data in (b"", b"a", bytes(range(256)) * 3, h(ORDER_GTC_HASHED)):
        assert signing._keccak256(data) == signing._keccak256_pycryptodome(data) == keccak256(data)


def test_keccak_backend_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sha3", None)  # safe-pysha3 absent
    assert signing._load_keccak256() is signing._keccak256_pycryptodome
    impostor = types.ModuleType("sha3")
    impostor.keccak_256 = hashlib.sha3_256  # type: ignore[attr-defined]  # NIST SHA3, not Ethereum keccak
    monkeypatch.setitem(sys.modules, "sha3", impostor)
    assert signing._load_keccak256() is signing._keccak256_pycryptodome


def test_signing_module_does_not_import_the_sdk() -> None:
    probe = (
        "import sys, hip3.protocol.signing; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'hyperliquid', 'eth_account', 'eth_keys'}))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_packer_recovers_after_a_failed_pack() -> None:
    with pytest.raises(TypeError):
        action_hash({"type": "order", "bad": object()}, None, 0, None)
    assert action_hash(DUMMY, None, 0, None).hex() == INTERMEDIATE["dummy"][2]


def test_bad_vault_address_is_refused() -> None:
    for vault in ("0x1234", "0x" + "g" * 40, "0x" + "12" * 21, " " + VAULT):
        with pytest.raises(ValueError, match="vault_address"):
            action_hash(DUMMY, vault, 0, None)


# ------------------------------------------------------------------------------------------ key hygiene


SECRET_FORMS = (PY_KEY, PY_KEY[2:], PY_KEY[2:].upper())


def assert_no_secret(text: str) -> None:
    for secret in SECRET_FORMS:
        assert secret.lower() not in text.lower()


def test_key_never_prints() -> None:
    key = SigningKey.from_hex(PY_KEY)
    expected = f"SigningKey(address={PY_ADDRESS}, secret=<redacted>)"
    assert repr(key) == str(key) == format(key) == f"{key}" == f"{key!r}" == f"{key:>200}" == expected
    assert_no_secret("%s %r" % (key, key))  # noqa: UP031
    assert_no_secret("{} {!r}".format(key, key))  # noqa: UP032
    assert_no_secret(repr([key, {"key": key}]))
    with pytest.raises(TypeError):
        vars(key)
    assert not hasattr(key, "__dict__")


@pytest.mark.parametrize(
    "leak",
    [
        pickle.dumps,
        lambda key: pickle.dumps(key, protocol=0),
        copy.copy,
        copy.deepcopy,
        lambda key: key.__getstate__(),
        lambda key: key.__reduce_ex__(2),
    ],
    ids=["pickle", "pickle-0", "copy", "deepcopy", "getstate", "reduce-ex"],
)
def test_key_cannot_be_serialised_or_copied(leak: Any) -> None:
    with pytest.raises(TypeError) as caught:
        leak(SigningKey.from_hex(PY_KEY))
    assert_no_secret(str(caught.value))


def test_key_through_stdlib_logging() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("hip3.test.signing")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s %(key)s"))
    logger.addHandler(handler)
    try:
        key = SigningKey.from_hex(PY_KEY)
        logger.warning("key %s %r", key, key, extra={"key": key})
    finally:
        logger.removeHandler(handler)
    assert PY_ADDRESS in stream.getvalue()
    assert_no_secret(stream.getvalue())


def test_key_through_structlog_json() -> None:
    stream = io.StringIO()
    logger = structlog.wrap_logger(
        structlog.PrintLogger(stream),
        processors=[
            structlog.processors.dict_tracebacks,  # renders frame locals by default
            structlog.processors.JSONRenderer(),
        ],
    )
    key = SigningKey.from_hex(PY_KEY)
    logger.info("loaded", key=key, keys=[key], nested={"key": key})
    try:
        sign_l1_action(key, {"type": "order", "bad": object()}, nonce=0, is_mainnet=True)
    except TypeError:
        logger.exception("signing failed")
    output = stream.getvalue()
    assert PY_ADDRESS in output
    assert_no_secret(output)
    for line in output.splitlines():
        json.loads(line)


def test_key_through_structlog_console_and_capture() -> None:
    key = SigningKey.from_hex(PY_KEY)
    rendered = structlog.dev.ConsoleRenderer(colors=False)(None, "info", {"event": "loaded", "key": key})
    assert_no_secret(str(rendered))
    with structlog.testing.capture_logs() as captured:
        structlog.get_logger().info("loaded", key=key)
    assert_no_secret(json.dumps(captured, default=repr))


BAD_KEYS = [
    "",
    "0x",
    PY_KEY[:-1],
    PY_KEY + "0",
    PY_KEY[:-1] + "g",
    PY_KEY[:10] + " " + PY_KEY[10:],
    "0x" + "00" * 32,
    f"0x{SECP256K1_ORDER:064x}",
    "0x" + "ff" * 32,
]


@pytest.mark.parametrize("bad_key", BAD_KEYS, ids=[f"bad-{i}" for i in range(len(BAD_KEYS))])
def test_bad_key_errors_do_not_echo_input(bad_key: str) -> None:
    for attempt in (
        lambda: SigningKey.from_hex(bad_key),
        lambda: sign_l1_action(bad_key, DUMMY, nonce=0, is_mainnet=True),
        lambda: sign_user_signed_action(bad_key, {}, payload_types=(), primary_type="T", is_mainnet=True),
    ):
        with pytest.raises(ValueError, match="32 bytes") as caught:
            attempt()
        assert (bad_key.strip().removeprefix("0x") or "∅") not in str(caught.value)


@pytest.mark.parametrize(
    "bad_secret",
    [b"", b"\x01" * 31, b"\x01" * 33, bytes(32), SECP256K1_ORDER.to_bytes(32, "big"), "not-bytes"],
)
def test_bad_key_bytes(bad_secret: Any) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        SigningKey.from_bytes(bad_secret)


def _rendered_frames_inside_hip3(exc: BaseException) -> str:
    """Every frame below the test's own, with locals, the way rich/structlog tracebacks show them."""
    assert exc.__traceback__ is not None
    frames = traceback.TracebackException(type(exc), exc, exc.__traceback__.tb_next, capture_locals=True)
    return "".join(frames.format())


NEAR_MISS_KEY = PY_KEY[:-1]  # module-level, so the test frame's own locals never hold it


def test_rejected_key_is_not_in_traceback_locals() -> None:
    for attempt in (
        lambda: SigningKey.from_hex(NEAR_MISS_KEY),
        lambda: sign_l1_action(NEAR_MISS_KEY, DUMMY, nonce=0, is_mainnet=True),
        lambda: SigningKey.from_bytes(h(NEAR_MISS_KEY + "0")[:31]),
    ):
        with pytest.raises(ValueError) as caught:
            attempt()
        rendered = _rendered_frames_inside_hip3(caught.value)
        assert "signing.py" in rendered
        assert NEAR_MISS_KEY[2:] not in rendered
        assert repr(h(NEAR_MISS_KEY + "0")[:31])[2:-1] not in rendered


def test_raw_key_is_not_in_traceback_locals_after_signing_fails() -> None:
    with pytest.raises(TypeError) as caught:
        sign_l1_action(PY_KEY, {"type": "order", "bad": object()}, nonce=0, is_mainnet=True)
    rendered = _rendered_frames_inside_hip3(caught.value)
    assert "signing.py" in rendered
    assert_no_secret(rendered.replace(repr(PY_KEY), "").replace("lambda", ""))


# ------------------------------------------------------------------------------------ signature parsing


def _valid_dummy_signature() -> dict[str, Any]:
    return dict(sign_l1_action(PY_KEY, DUMMY, nonce=0, is_mainnet=True))


def test_recovery_accepts_padded_unpadded_and_v_as_parity() -> None:
    signature = _valid_dummy_signature()
    variants = [
        signature,
        {**signature, "r": hex(int(signature["r"], 16)), "s": hex(int(signature["s"], 16))},
        {**signature, "r": signature["r"][2:], "s": signature["s"].upper().replace("0X", "0x")},
        {**signature, "v": signature["v"] - 27},
    ]
    for variant in variants:
        assert recover_l1_signer(DUMMY, variant, nonce=0, is_mainnet=True) == PY_ADDRESS


def test_recovery_does_not_insist_on_low_s() -> None:
    """Like ecrecover: (r, n − s, flipped v) is the same signer."""
    signature = _valid_dummy_signature()
    high_s = {
        "r": signature["r"],
        "s": hex(SECP256K1_ORDER - int(signature["s"], 16)),
        "v": 55 - signature["v"],
    }
    assert recover_l1_signer(DUMMY, high_s, nonce=0, is_mainnet=True) == PY_ADDRESS


def _malformed_signatures() -> list[Any]:
    good = _valid_dummy_signature()
    without = {name: {k: v for k, v in good.items() if k != name} for name in ("r", "s", "v")}
    return [
        pytest.param(None, id="none"),
        pytest.param([good["r"], good["s"], good["v"]], id="list"),
        pytest.param(without["r"], id="no-r"),
        pytest.param(without["s"], id="no-s"),
        pytest.param(without["v"], id="no-v"),
        pytest.param({**good, "r": "0xzz"}, id="r-not-hex"),
        pytest.param({**good, "r": ""}, id="r-empty"),
        pytest.param({**good, "r": "0x"}, id="r-bare-prefix"),
        pytest.param({**good, "r": "0x_1"}, id="r-underscore"),
        pytest.param({**good, "r": " " + good["r"]}, id="r-space"),
        pytest.param({**good, "r": "0x1" + good["r"][2:]}, id="r-65-digits"),
        pytest.param({**good, "r": int(good["r"], 16)}, id="r-int"),
        pytest.param({**good, "r": "0x0"}, id="r-zero"),
        pytest.param({**good, "s": hex(SECP256K1_ORDER)}, id="s-equals-order"),
        pytest.param({**good, "v": 29}, id="v-29"),
        pytest.param({**good, "v": 2}, id="v-2"),
        pytest.param({**good, "v": "27"}, id="v-str"),
        pytest.param({**good, "v": 27.0}, id="v-float"),
        pytest.param({**good, "v": True}, id="v-bool"),
        pytest.param({**good, "r": "0x" + "ff" * 31 + "fe"}, id="r-not-an-x-coordinate"),
    ]


@pytest.mark.parametrize("signature", _malformed_signatures())
def test_malformed_signature_raises_signature_error(signature: Any) -> None:
    with pytest.raises(SignatureError):
        recover_l1_signer(DUMMY, signature, nonce=0, is_mainnet=True)
    user_action = prepare_user_signed_action(PY_TRANSFER, is_mainnet=True)
    with pytest.raises(SignatureError):
        recover_user_signed_signer(
            user_action,
            signature,
            payload_types=USD_SEND_TYPES,
            primary_type=USD_SEND_PRIMARY_TYPE,
            is_mainnet=True,
        )


@pytest.mark.parametrize(
    "context",
    [
        {"nonce": -1},
        {"nonce": 2**64},
        {"nonce": 1.5},
        {"nonce": "1"},
        {"nonce": 0, "expires_after": -5},
        {"nonce": 0, "vault_address": "0x12"},
        {"nonce": 0, "action": {"type": "order", "bad": {1, 2}}},
        {"nonce": 0, "action": {"type": "order", "big": 2**64}},
    ],
    ids=[
        "nonce-negative",
        "nonce-too-big",
        "nonce-float",
        "nonce-str",
        "expires-negative",
        "vault",
        "set",
        "int",
    ],
)
def test_unverifiable_l1_payload_raises_signature_error(context: dict[str, Any]) -> None:
    action = context.pop("action", DUMMY)
    with pytest.raises(SignatureError):
        recover_l1_signer(action, _valid_dummy_signature(), is_mainnet=True, **context)


@pytest.mark.parametrize(
    "broken",
    [
        {"signatureChainId": None},
        {"signatureChainId": "66eee"},
        {"destination": None},
        {"time": "1687816341423"},
        {"time": 2**64},
        {"amount": 1},
    ],
    ids=["no-chain-id", "chain-id-not-0x", "no-destination", "time-str", "time-too-big", "amount-int"],
)
def test_unverifiable_user_signed_action_raises_signature_error(broken: dict[str, Any]) -> None:
    action = {**prepare_user_signed_action(PY_TRANSFER, is_mainnet=True), **broken}
    action = {k: v for k, v in action.items() if v is not None}
    signature = _valid_dummy_signature()
    with pytest.raises(SignatureError, match="cannot hash the signed action"):
        recover_user_signed_signer(
            action,
            signature,
            payload_types=USD_SEND_TYPES,
            primary_type=USD_SEND_PRIMARY_TYPE,
            is_mainnet=True,
        )


def test_the_vector_copy_matches_the_shared_file() -> None:
    shared = SHARED_DIR / "vectors" / "l1-signing.json"
    if not shared.exists():
        pytest.skip("no shared/ folder beside this checkout to compare with")
    assert json.loads(VECTORS_FILE.read_text()) == json.loads(shared.read_text())
