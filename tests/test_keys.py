"""Where the signing key comes from, and the self-check that proves it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hip3.keys import KEY_ENV_VAR, SigningKeyError, load_signing_key, verify_signing_key

# The public test key of the official SDK's signing tests; never a real account.
TEST_KEY = "0x0123456789012345678901234567890123456789012345678901234567890123"
TEST_ADDRESS = "0x14791697260e4c9a71f18484c9f997b308e59325"
OTHER_KEY = "0x822e9959e022b78423eb653a62ea0020cd283e71a2a8133a6ff2aeffaf373cff"


def write_key_file(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "trading.key"
    path.write_text(text)
    os.chmod(path, mode)
    return path


def assert_no_secret(text: str) -> None:
    for secret in (TEST_KEY, TEST_KEY[2:], OTHER_KEY, OTHER_KEY[2:]):
        assert secret not in text


def test_key_from_environment() -> None:
    key = load_signing_key(None, {KEY_ENV_VAR: f"  {TEST_KEY}\n"})
    assert key.address == TEST_ADDRESS


def test_key_from_file_without_0x(tmp_path: Path) -> None:
    key = load_signing_key(write_key_file(tmp_path, TEST_KEY[2:] + "\n"), {})
    assert key.address == TEST_ADDRESS


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o666, 0o620])
def test_key_file_open_to_group_or_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = write_key_file(tmp_path, TEST_KEY, mode)
    with pytest.raises(SigningKeyError, match="open to group or others") as info:
        load_signing_key(path, {})
    assert f"chmod 600 {path}" in str(info.value)
    assert_no_secret(str(info.value))


def test_missing_key_file(tmp_path: Path) -> None:
    with pytest.raises(SigningKeyError, match="does not exist"):
        load_signing_key(tmp_path / "absent.key", {})


def test_key_file_that_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(SigningKeyError, match="not a regular file"):
        load_signing_key(tmp_path, {})


def test_no_key_at_all() -> None:
    with pytest.raises(SigningKeyError, match=f"set {KEY_ENV_VAR} or account.key_file"):
        load_signing_key(None, {})


@pytest.mark.parametrize("bad", ["0x1234", "not hex at all", TEST_KEY + "00", TEST_KEY[:-1] + "z"])
def test_malformed_keys_are_refused_without_echo(tmp_path: Path, bad: str) -> None:
    with pytest.raises(SigningKeyError, match="does not hold a 32-byte hex private key") as from_env:
        load_signing_key(None, {KEY_ENV_VAR: bad})
    with pytest.raises(SigningKeyError, match="does not hold a 32-byte hex private key") as from_file:
        load_signing_key(write_key_file(tmp_path, bad), {})
    for err in (from_env.value, from_file.value):
        assert bad not in str(err) and bad not in repr(err)
        assert err.__cause__ is None and err.__suppress_context__


def test_env_and_file_with_different_keys_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SigningKeyError, match="hold different keys") as info:
        load_signing_key(write_key_file(tmp_path, OTHER_KEY), {KEY_ENV_VAR: TEST_KEY})
    assert_no_secret(str(info.value))


def test_env_and_file_with_the_same_key_is_fine(tmp_path: Path) -> None:
    key = load_signing_key(write_key_file(tmp_path, TEST_KEY), {KEY_ENV_VAR: TEST_KEY[2:]})
    assert key.address == TEST_ADDRESS


@pytest.mark.parametrize("is_mainnet", [True, False])
def test_self_check_recovers_the_key(is_mainnet: bool) -> None:
    key = load_signing_key(None, {KEY_ENV_VAR: TEST_KEY})
    assert verify_signing_key(key, signer_address=None, is_mainnet=is_mainnet) == TEST_ADDRESS
    upper = "0x" + TEST_ADDRESS[2:].upper()
    assert verify_signing_key(key, signer_address=upper, is_mainnet=is_mainnet) == TEST_ADDRESS


def test_self_check_refuses_a_key_that_is_not_the_configured_signer() -> None:
    key = load_signing_key(None, {KEY_ENV_VAR: OTHER_KEY})
    with pytest.raises(SigningKeyError, match=f"account.signer_address is {TEST_ADDRESS}") as info:
        verify_signing_key(key, signer_address=TEST_ADDRESS, is_mainnet=True)
    assert_no_secret(str(info.value))
