"""Where the signing key comes from, and the proof that it is the key the config names.

The key is read from the environment variable HIP3_TRADING_KEY or from `account.key_file`, a file only its
owner may read. It is never read from a config file, and no error here ever echoes key material.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

from hip3.protocol.actions import noop_action
from hip3.protocol.signing import SigningKey, recover_l1_signer, sign_l1_action

KEY_ENV_VAR = "HIP3_TRADING_KEY"
SELF_CHECK_NONCE = 1


class SigningKeyError(Exception):
    """The signing key is missing, unreadable, badly formed or not the one the config names."""


def _parse_key(text: str, source: str) -> SigningKey:
    try:
        return SigningKey.from_hex(text)
    except ValueError:
        raise SigningKeyError(f"{source} does not hold a 32-byte hex private key") from None


def _read_key_file(path: Path) -> str:
    try:
        info = path.stat()
    except FileNotFoundError:
        raise SigningKeyError(f"key file {path} does not exist") from None
    except OSError as exc:
        raise SigningKeyError(f"key file {path} cannot be read: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise SigningKeyError(f"key file {path} is not a regular file")
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        mode = stat.filemode(info.st_mode)
        raise SigningKeyError(f"key file {path} is open to group or others ({mode}); run: chmod 600 {path}")
    try:
        return path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        raise SigningKeyError(f"key file {path} cannot be read as text") from None


def load_signing_key(key_file: Path | str | None, environ: Mapping[str, str] | None = None) -> SigningKey:
    """The signing key from HIP3_TRADING_KEY or `key_file`; both set to different keys is an error."""
    env = os.environ if environ is None else environ
    from_env = env.get(KEY_ENV_VAR, "").strip()
    env_key = _parse_key(from_env, f"environment variable {KEY_ENV_VAR}") if from_env else None
    file_key = None
    if key_file is not None:
        file_key = _parse_key(_read_key_file(Path(key_file)), f"key file {key_file}")
    if env_key and file_key and env_key.address != file_key.address:
        raise SigningKeyError(f"{KEY_ENV_VAR} and key file {key_file} hold different keys; keep one")
    key = env_key or file_key
    if key is None:
        raise SigningKeyError(f"no signing key: set {KEY_ENV_VAR} or account.key_file")
    return key


def verify_signing_key(key: SigningKey, *, signer_address: str | None, is_mainnet: bool) -> str:
    """Sign a dummy action, recover its signer, and check it against the key and the configured signer.

    Returns the signer address. Nothing is sent anywhere.
    """
    action = noop_action()
    signature = sign_l1_action(key, action, nonce=SELF_CHECK_NONCE, is_mainnet=is_mainnet)
    recovered = recover_l1_signer(action, signature, nonce=SELF_CHECK_NONCE, is_mainnet=is_mainnet)
    if recovered != key.address:
        raise SigningKeyError(f"signing self-check failed: recovered {recovered}, expected {key.address}")
    if signer_address is not None and signer_address.lower() != key.address:
        raise SigningKeyError(
            f"the key belongs to {key.address}, but account.signer_address is {signer_address.lower()}"
        )
    return key.address
