"""Hyperliquid request signing: L1 actions (phantom agent) and user-signed actions (EIP-712). No I/O.

L1 actions (orders, cancels, scheduleCancel, …) are hashed as msgpack ‖ nonce ‖ vault ‖ [expiresAfter] into
a connectionId, which is signed as the EIP-712 struct `Agent(string source,bytes32 connectionId)` under the
`Exchange` domain (protocol reference §1.2–§1.5). User-signed actions (approveAgent, usdSend, withdraw3, …)
are signed field by field under the `HyperliquidSignTransaction` domain (§1.6). Signatures are deterministic
(RFC 6979, low-s), so they equal the official SDK's; r and s are `0x` + 64 lower-case hex digits.

The signing hot path is `sign_l1_action` with a `SigningKey`: one msgpack pack, three keccak-256 calls over
precomputed prefixes, and one libsecp256k1 signature. No generic typed-data machinery runs there.
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, NoReturn, TypedDict, final

import msgpack
from coincurve import PrivateKey, PublicKey
from Crypto.Hash import keccak as pycryptodome_keccak

__all__ = [
    "APPROVE_AGENT_PRIMARY_TYPE",
    "APPROVE_AGENT_TYPES",
    "DEFAULT_SIGNATURE_CHAIN_ID",
    "USD_SEND_PRIMARY_TYPE",
    "USD_SEND_TYPES",
    "WITHDRAW_PRIMARY_TYPE",
    "WITHDRAW_TYPES",
    "EIP712Fields",
    "Signature",
    "SignatureError",
    "SigningKey",
    "action_hash",
    "l1_action_digest",
    "prepare_user_signed_action",
    "recover_l1_signer",
    "recover_user_signed_signer",
    "sign_l1_action",
    "sign_user_signed_action",
    "user_signed_action_digest",
]


class Signature(TypedDict):
    """The `signature` object of an /exchange request."""

    r: str
    s: str
    v: int


class SignatureError(ValueError):
    """A signature, or the payload it is said to sign, is malformed and cannot be verified."""


# --------------------------------------------------------------------------------------------- keccak-256


def _keccak256_pycryptodome(data: bytes) -> bytes:
    return pycryptodome_keccak.new(digest_bits=256, data=data).digest()


_KECCAK256_OF_EMPTY: Final = bytes.fromhex("c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470")


def _load_keccak256() -> Callable[[bytes], bytes]:
    """safe-pysha3's C keccak when installed (about 6x faster on short inputs), else pycryptodome's."""
    try:
        pysha3_keccak_256 = importlib.import_module("sha3").keccak_256
    except (ImportError, AttributeError):
        return _keccak256_pycryptodome

    def keccak256_pysha3(data: bytes) -> bytes:
        digest: bytes = pysha3_keccak_256(data).digest()
        return digest

    # Another package may own the name `sha3`; only a real Ethereum keccak-256 is accepted.
    return keccak256_pysha3 if keccak256_pysha3(b"") == _KECCAK256_OF_EMPTY else _keccak256_pycryptodome


_keccak256: Final = _load_keccak256()


# ------------------------------------------------------------------------------------------- the key


_SECP256K1_ORDER: Final = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_SECRET_HEX: Final = re.compile(r"(?:0[xX])?([0-9a-fA-F]{64})")
_WORD_HEX: Final = re.compile(r"(?:0x)?([0-9a-fA-F]{64})")
_BAD_KEY_MESSAGE: Final = (
    "a signing key must be 32 bytes: 64 hex digits, optionally prefixed with 0x, "
    "encoding a number between 1 and the secp256k1 group order minus 1 (the input is not shown)"
)


def _private_key_or_none(secret: object) -> PrivateKey | None:
    """None instead of an exception, so callers can drop the raw secret before raising."""
    if not isinstance(secret, bytes | bytearray | memoryview) or len(secret) != 32:
        return None
    if not 0 < int.from_bytes(secret, "big") < _SECP256K1_ORDER:
        return None
    return PrivateKey(bytes(secret))


def _private_key_from_hex_or_none(secret_hex: object) -> PrivateKey | None:
    if not isinstance(secret_hex, str):
        return None
    match = _SECRET_HEX.fullmatch(secret_hex.strip())
    return None if match is None else _private_key_or_none(bytes.fromhex(match.group(1)))


def _address_from_public_key(public_key: PublicKey) -> str:
    return "0x" + _keccak256(public_key.format(compressed=False)[1:])[12:].hex()


@final
class SigningKey:
    """A secp256k1 private key that never shows its secret: not in repr/str/format, vars, pickle or copies."""

    __slots__ = ("_address", "_private_key")

    def __init__(self, private_key: PrivateKey) -> None:
        self._private_key = private_key
        self._address: str | None = None

    @classmethod
    def from_hex(cls, secret_hex: str) -> SigningKey:
        """From 64 hex digits, with or without `0x`, surrounding whitespace ignored."""
        private_key = _private_key_from_hex_or_none(secret_hex)
        del secret_hex  # a rejected key must not linger in traceback locals (rich/structlog show them)
        if private_key is None:
            raise ValueError(_BAD_KEY_MESSAGE)
        return cls(private_key)

    @classmethod
    def from_bytes(cls, secret: bytes) -> SigningKey:
        """From 32 raw bytes."""
        private_key = _private_key_or_none(secret)
        del secret  # see from_hex
        if private_key is None:
            raise ValueError(_BAD_KEY_MESSAGE)
        return cls(private_key)

    @property
    def address(self) -> str:
        """The key's address, lower-case with `0x`."""
        if self._address is None:
            self._address = _address_from_public_key(self._private_key.public_key)
        return self._address

    def _sign_digest(self, digest: bytes) -> Signature:
        """Sign a 32-byte digest as it is (no further hashing)."""
        rsv = self._private_key.sign_recoverable(digest, hasher=None)
        rs_hex = rsv[:64].hex()
        return {"r": "0x" + rs_hex[:64], "s": "0x" + rs_hex[64:], "v": 27 + rsv[64]}

    def __repr__(self) -> str:
        return f"SigningKey(address={self.address}, secret=<redacted>)"

    __str__ = __repr__

    def __format__(self, format_spec: str) -> str:
        return repr(self)

    def __reduce__(self) -> NoReturn:
        raise TypeError("SigningKey cannot be pickled")

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise TypeError("SigningKey cannot be pickled")

    def __getstate__(self) -> NoReturn:
        raise TypeError("SigningKey has no exportable state")

    def __copy__(self) -> NoReturn:
        raise TypeError("SigningKey cannot be copied; share the one instance")

    def __deepcopy__(self, memo: Any) -> NoReturn:
        raise TypeError("SigningKey cannot be copied; share the one instance")


def _as_signing_key_or_none(private_key: SigningKey | str | bytes) -> SigningKey | None:
    if isinstance(private_key, SigningKey):
        return private_key
    if isinstance(private_key, str):
        raw_key = _private_key_from_hex_or_none(private_key)
    else:
        raw_key = _private_key_or_none(private_key)
    return None if raw_key is None else SigningKey(raw_key)


# ------------------------------------------------------------------------------------------- L1 actions


# packb's defaults, so packb's bytes, without building a Packer per call. Sharing it is safe under the GIL:
# packing plain dicts, lists, str, int, bool and None runs in C without a thread switch.
_PACKER: Final = msgpack.Packer()
_NO_VAULT: Final = b"\x00"
_VAULT_FOLLOWS: Final = b"\x01"
_EXPIRES_AFTER_FOLLOWS: Final = b"\x00"


_ADDRESS_HEX: Final = re.compile(r"(?:0x)?([0-9a-fA-F]{40})")


def _address_bytes_or_none(address: object) -> bytes | None:
    match = _ADDRESS_HEX.fullmatch(address) if isinstance(address, str) else None
    return None if match is None else bytes.fromhex(match.group(1))


def _vault_bytes(vault_address: str) -> bytes:
    raw = _address_bytes_or_none(vault_address)
    if raw is None:
        raise ValueError(f"vault_address must be 0x + 40 hex digits, got {vault_address!r}")
    return raw


def action_hash(action: object, vault_address: str | None, nonce: int, expires_after: int | None) -> bytes:
    """The 32-byte connectionId of an L1 action (protocol reference §1.3)."""
    data = _PACKER.pack(action) + nonce.to_bytes(8, "big")
    data += _NO_VAULT if vault_address is None else _VAULT_FOLLOWS + _vault_bytes(vault_address)
    if expires_after is not None:
        data += _EXPIRES_AFTER_FOLLOWS + expires_after.to_bytes(8, "big")
    return _keccak256(data)


_EIP712_PREFIX: Final = b"\x19\x01"
_EIP712_DOMAIN_TYPE_HASH: Final = _keccak256(
    b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
_ZERO_ADDRESS_WORD: Final = bytes(32)


def _domain_separator(name: str, version: str, chain_id: int) -> bytes:
    return _keccak256(
        _EIP712_DOMAIN_TYPE_HASH
        + _keccak256(name.encode())
        + _keccak256(version.encode())
        + chain_id.to_bytes(32, "big")
        + _ZERO_ADDRESS_WORD
    )


_EXCHANGE_DIGEST_PREFIX: Final = _EIP712_PREFIX + _domain_separator("Exchange", "1", 1337)
_AGENT_TYPE_HASH: Final = _keccak256(b"Agent(string source,bytes32 connectionId)")
_AGENT_STRUCT_PREFIX_MAINNET: Final = _AGENT_TYPE_HASH + _keccak256(b"a")
_AGENT_STRUCT_PREFIX_TESTNET: Final = _AGENT_TYPE_HASH + _keccak256(b"b")


def l1_action_digest(connection_id: bytes, *, is_mainnet: bool) -> bytes:
    """The EIP-712 digest that is signed for an L1 action with this connectionId."""
    prefix = _AGENT_STRUCT_PREFIX_MAINNET if is_mainnet else _AGENT_STRUCT_PREFIX_TESTNET
    return _keccak256(_EXCHANGE_DIGEST_PREFIX + _keccak256(prefix + connection_id))


def sign_l1_action(
    private_key: SigningKey | str | bytes,
    action: object,
    *,
    vault_address: str | None = None,
    nonce: int,
    expires_after: int | None = None,
    is_mainnet: bool,
) -> Signature:
    """Sign an L1 action. Pass a `SigningKey` on hot paths; a hex str or raw bytes is parsed on every call."""
    signing_key = _as_signing_key_or_none(private_key)
    del private_key  # raw key material must not linger in traceback locals
    if signing_key is None:
        raise ValueError(_BAD_KEY_MESSAGE)
    connection_id = action_hash(action, vault_address, nonce, expires_after)
    return signing_key._sign_digest(l1_action_digest(connection_id, is_mainnet=is_mainnet))


def recover_l1_signer(
    action: object,
    signature: Mapping[str, object],
    *,
    vault_address: str | None = None,
    nonce: int,
    expires_after: int | None = None,
    is_mainnet: bool,
) -> str:
    """The lower-case address that signed an L1 action. Raises SignatureError on malformed input."""
    rsv = _parse_signature(signature)
    _check_uint64(nonce, "nonce")
    if expires_after is not None:
        _check_uint64(expires_after, "expiresAfter")
    try:
        connection_id = action_hash(action, vault_address, nonce, expires_after)
    except (TypeError, ValueError, OverflowError) as exc:
        raise SignatureError(f"cannot hash the signed action: {exc}") from exc
    return _recover_address(l1_action_digest(connection_id, is_mainnet=is_mainnet), rsv)


# ------------------------------------------------------------------------------------------ recovery


_SIGNATURE_SCALAR_HEX: Final = re.compile(r"(?:0x)?([0-9a-fA-F]{1,64})")
_RECOVERY_IDS: Final = {27: 0, 28: 1, 0: 0, 1: 1}


def _signature_scalar(signature: Mapping[str, object], name: str) -> int:
    text = signature.get(name)
    match = _SIGNATURE_SCALAR_HEX.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise SignatureError(f"signature {name} must be a hex string of at most 64 digits")
    value = int(match.group(1), 16)
    if not 0 < value < _SECP256K1_ORDER:
        raise SignatureError(f"signature {name} is out of range")
    return value


def _parse_signature(signature: Mapping[str, object]) -> bytes:
    """65 bytes r ‖ s ‖ recovery id, from `{"r", "s", "v"}` with padded or unpadded hex."""
    if not isinstance(signature, Mapping):
        raise SignatureError("signature must be an object with r, s and v")
    v = signature.get("v")
    if type(v) is not int or v not in _RECOVERY_IDS:
        raise SignatureError("signature v must be 27 or 28 (or 0 or 1)")
    r = _signature_scalar(signature, "r")
    s = _signature_scalar(signature, "s")
    return r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes((_RECOVERY_IDS[v],))


def _recover_address(digest: bytes, rsv: bytes) -> str:
    try:
        public_key = PublicKey.from_signature_and_message(rsv, digest, hasher=None)
    except ValueError:
        raise SignatureError("no public key can be recovered from this signature") from None
    return _address_from_public_key(public_key)


def _check_uint64(value: object, name: str) -> None:
    if type(value) is not int or not 0 <= value < 1 << 64:
        raise SignatureError(f"{name} must be an integer in 0..2**64-1")


# ------------------------------------------------------------------------------------ user-signed actions


# A flat EIP-712 struct's fields, each `{"name": …, "type": …}` as in the SDK's *_SIGN_TYPES lists.
EIP712Fields = Sequence[Mapping[str, str]]


def _fields(*pairs: tuple[str, str]) -> tuple[Mapping[str, str], ...]:
    return tuple({"name": name, "type": field_type} for name, field_type in pairs)


APPROVE_AGENT_PRIMARY_TYPE: Final = "HyperliquidTransaction:ApproveAgent"
APPROVE_AGENT_TYPES: Final = _fields(
    ("hyperliquidChain", "string"), ("agentAddress", "address"), ("agentName", "string"), ("nonce", "uint64")
)
USD_SEND_PRIMARY_TYPE: Final = "HyperliquidTransaction:UsdSend"
USD_SEND_TYPES: Final = _fields(
    ("hyperliquidChain", "string"), ("destination", "string"), ("amount", "string"), ("time", "uint64")
)
WITHDRAW_PRIMARY_TYPE: Final = "HyperliquidTransaction:Withdraw"
WITHDRAW_TYPES: Final = _fields(
    ("hyperliquidChain", "string"), ("destination", "string"), ("amount", "string"), ("time", "uint64")
)

DEFAULT_SIGNATURE_CHAIN_ID: Final = "0x66eee"
_SIGNATURE_CHAIN_ID: Final = re.compile(r"0x[0-9a-fA-F]{1,64}")
# The SDK signs approveAgent with agentName "" when unnamed, then leaves the field out of the posted action.
_MISSING_FIELD_DEFAULTS: Final[Mapping[tuple[str, str], object]] = {
    (APPROVE_AGENT_PRIMARY_TYPE, "agentName"): "",
}


def _hyperliquid_chain(is_mainnet: bool) -> str:
    return "Mainnet" if is_mainnet else "Testnet"


def prepare_user_signed_action(
    action: Mapping[str, object], *, is_mainnet: bool, signature_chain_id: str = DEFAULT_SIGNATURE_CHAIN_ID
) -> dict[str, object]:
    """A new action with `signatureChainId` and `hyperliquidChain` set: what is both signed and posted."""
    if _SIGNATURE_CHAIN_ID.fullmatch(signature_chain_id) is None:
        raise ValueError(f"signature_chain_id must be 0x + hex digits, got {signature_chain_id!r}")
    return {
        **action,
        "signatureChainId": signature_chain_id,
        "hyperliquidChain": _hyperliquid_chain(is_mainnet),
    }


def _encode_string(value: object) -> bytes:
    if not isinstance(value, str):
        raise TypeError("a string")
    return _keccak256(value.encode())


def _encode_address(value: object) -> bytes:
    raw = _address_bytes_or_none(value)
    if raw is None:
        raise TypeError("0x + 40 hex digits")
    return bytes(12) + raw


def _encode_bool(value: object) -> bytes:
    if not isinstance(value, bool):
        raise TypeError("a bool")
    return int(value).to_bytes(32, "big")


def _encode_bytes32(value: object) -> bytes:
    if isinstance(value, bytes) and len(value) == 32:
        return value
    match = _WORD_HEX.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise TypeError("32 bytes (raw or 0x + 64 hex digits)")
    return bytes.fromhex(match.group(1))


def _uint_encoder(bits: int) -> Callable[[object], bytes]:
    def encode_uint(value: object) -> bytes:
        if type(value) is not int or not 0 <= value < 1 << bits:
            raise TypeError(f"an integer in 0..2**{bits}-1")
        return value.to_bytes(32, "big")

    return encode_uint


_FIELD_ENCODERS: Final[Mapping[str, Callable[[object], bytes]]] = {
    "string": _encode_string,
    "address": _encode_address,
    "bool": _encode_bool,
    "bytes32": _encode_bytes32,
    **{f"uint{bits}": _uint_encoder(bits) for bits in range(8, 257, 8)},
}


@functools.lru_cache(maxsize=64)
def _type_hash(primary_type: str, fields: tuple[tuple[str, str], ...]) -> bytes:
    for _, field_type in fields:
        if field_type not in _FIELD_ENCODERS:
            raise ValueError(f"unsupported EIP-712 field type {field_type!r} (flat structs only)")
    members = ",".join(f"{field_type} {name}" for name, field_type in fields)
    return _keccak256(f"{primary_type}({members})".encode())


@functools.lru_cache(maxsize=16)  # bounded: recovery reads the chain id from untrusted input
def _user_signed_digest_prefix(chain_id: int) -> bytes:
    return _EIP712_PREFIX + _domain_separator("HyperliquidSignTransaction", "1", chain_id)


def _signature_chain_id(action: Mapping[str, object]) -> int:
    text = action.get("signatureChainId")
    if not isinstance(text, str) or _SIGNATURE_CHAIN_ID.fullmatch(text) is None:
        raise ValueError("action signatureChainId must be 0x + hex digits; see prepare_user_signed_action")
    return int(text, 16)


def _encode_message_field(
    message: Mapping[str, object], primary_type: str, name: str, field_type: str
) -> bytes:
    value = message.get(name, _MISSING_FIELD_DEFAULTS.get((primary_type, name)))
    if value is None:
        raise ValueError(f"action field {name!r} is missing")
    try:
        return _FIELD_ENCODERS[field_type](value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"action field {name!r} ({field_type}) must be {exc}") from None


def _user_signed_digest(
    action: Mapping[str, object], payload_types: EIP712Fields, primary_type: str, is_mainnet: bool
) -> bytes:
    """Like the server: hyperliquidChain comes from the network, not from the action."""
    fields = tuple((field["name"], field["type"]) for field in payload_types)
    message = {**action, "hyperliquidChain": _hyperliquid_chain(is_mainnet)}
    struct = _type_hash(primary_type, fields) + b"".join(
        _encode_message_field(message, primary_type, name, field_type) for name, field_type in fields
    )
    return _keccak256(_user_signed_digest_prefix(_signature_chain_id(action)) + _keccak256(struct))


def user_signed_action_digest(
    action: Mapping[str, object], *, payload_types: EIP712Fields, primary_type: str, is_mainnet: bool
) -> bytes:
    """The EIP-712 digest signed for a prepared user-signed action."""
    _require_prepared(action, is_mainnet)
    return _user_signed_digest(action, payload_types, primary_type, is_mainnet)


def _require_prepared(action: Mapping[str, object], is_mainnet: bool) -> None:
    if "signatureChainId" not in action or "hyperliquidChain" not in action:
        raise ValueError("sign the action returned by prepare_user_signed_action (chain fields are missing)")
    if action["hyperliquidChain"] != _hyperliquid_chain(is_mainnet):
        raise ValueError(f"action hyperliquidChain {action['hyperliquidChain']!r} does not match is_mainnet")


def sign_user_signed_action(
    private_key: SigningKey | str | bytes,
    action: Mapping[str, object],
    *,
    payload_types: EIP712Fields,
    primary_type: str,
    is_mainnet: bool,
) -> Signature:
    """Sign an action returned by `prepare_user_signed_action`; fields not in payload_types are ignored."""
    signing_key = _as_signing_key_or_none(private_key)
    del private_key  # raw key material must not linger in traceback locals
    if signing_key is None:
        raise ValueError(_BAD_KEY_MESSAGE)
    digest = user_signed_action_digest(
        action, payload_types=payload_types, primary_type=primary_type, is_mainnet=is_mainnet
    )
    return signing_key._sign_digest(digest)


def recover_user_signed_signer(
    action: Mapping[str, object],
    signature: Mapping[str, object],
    *,
    payload_types: EIP712Fields,
    primary_type: str,
    is_mainnet: bool,
) -> str:
    """The lower-case address that signed a posted user-signed action; SignatureError on malformed input."""
    rsv = _parse_signature(signature)
    if not isinstance(action, Mapping):
        raise SignatureError("the signed action must be an object")
    try:
        digest = _user_signed_digest(action, payload_types, primary_type, is_mainnet)
    except ValueError as exc:
        raise SignatureError(f"cannot hash the signed action: {exc}") from exc
    return _recover_address(digest, rsv)
