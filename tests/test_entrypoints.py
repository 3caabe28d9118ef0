"""`hip3 check-config`, `hip3 run`, `trio-run hip3.main --config FILE [--check]` and `python -m hip3`."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from hip3 import cli
from hip3.config import load_config
from hip3.launch import preflight
from hip3.main import main as bot_main
from tests.conftest import REPO_ROOT

DEFAULT = REPO_ROOT / "config" / "default.toml"
MAINNET_TEST = REPO_ROOT / "config" / "mainnet-test.toml"
TEST_KEY = "0x0123456789012345678901234567890123456789012345678901234567890123"
TEST_ADDRESS = "0x14791697260e4c9a71f18484c9f997b308e59325"
OTHER_ADDRESS = "0xe5ca49fb3bd9a581f0d1ef9cb5d7177da08bf901"

NO_NETWORK = """
import socket, sys
def refuse(*args, **kwargs):
    raise AssertionError("network used")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
from hip3.trio_run import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network used")

    for name in ("connect", "connect_ex"):
        monkeypatch.setattr(socket.socket, name, refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


async def test_check_loads_validates_and_describes_without_connecting(
    no_network: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await bot_main(["--config", str(DEFAULT), "--check"]) == 0
    out = capsys.readouterr().out
    assert "mode      observation" in out
    assert "signing for mainnet" in out
    assert "markets   all markets of xyz" in out
    assert "key       not needed in observation" in out


def test_trio_run_check_in_a_fresh_process_opens_no_socket() -> None:
    result = subprocess.run(
        [sys.executable, "-c", NO_NETWORK, "hip3.main", "--config", str(DEFAULT), "--check"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "hip3 0.1.0 would run:" in result.stdout


async def test_trading_without_a_key_stops_before_connecting(
    no_network: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HIP3_ACCOUNT_ADDRESS", TEST_ADDRESS)
    monkeypatch.delenv("HIP3_TRADING_KEY", raising=False)
    assert await bot_main(["--config", str(MAINNET_TEST)]) == 1
    assert "no signing key: set HIP3_TRADING_KEY or account.key_file" in capsys.readouterr().err


async def test_an_invalid_file_exits_1_with_every_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('mode = "tradin"\n[detector]\nmax_notionl = 5\n')
    assert await bot_main(["--config", str(bad), "--check"]) == 1
    err = capsys.readouterr().err
    assert "mode:" in err and "detector.max_notionl: unknown key (did you mean 'max_notional'?)" in err


def trading_environ(**extra: str) -> dict[str, str]:
    return {"HIP3_ACCOUNT_ADDRESS": TEST_ADDRESS, **extra}


def test_trading_preflight_proves_the_key(capsys: pytest.CaptureFixture[str]) -> None:
    cfg = load_config(MAINNET_TEST, env=trading_environ())
    assert preflight(cfg, environ={"HIP3_TRADING_KEY": TEST_KEY}) == 0
    out = capsys.readouterr().out
    assert f"signer {TEST_ADDRESS}: self-check passed" in out
    assert "$20 per market, $20 in total, 2 concurrent positions" in out
    assert TEST_KEY[2:] not in out


def test_trading_preflight_without_a_key_fails(capsys: pytest.CaptureFixture[str]) -> None:
    cfg = load_config(MAINNET_TEST, env=trading_environ())
    assert preflight(cfg, environ={}) == 1
    assert "key       FAILED: no signing key" in capsys.readouterr().err


def test_trading_preflight_with_the_wrong_signer_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "signer.toml"
    config.write_text(
        MAINNET_TEST.read_text().replace("[account]", f'[account]\nsigner_address = "{OTHER_ADDRESS}"', 1)
    )
    cfg = load_config(config, env=trading_environ())
    assert cfg.account.signer_address == OTHER_ADDRESS
    assert preflight(cfg, environ={"HIP3_TRADING_KEY": TEST_KEY}) == 1
    err = capsys.readouterr().err
    assert f"the key belongs to {TEST_ADDRESS}, but account.signer_address is {OTHER_ADDRESS}" in err
    assert TEST_KEY[2:] not in err


def test_check_config_prints_the_effective_configuration(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check-config", str(DEFAULT)]) == 0
    captured = capsys.readouterr()
    assert 'mode = "observation"' in captured.out
    assert "[position]" in captured.out and "max_notional_per_market = 50" in captured.out
    assert "valid (0 warnings)" in captured.err


def test_check_config_on_a_file_with_a_key_never_echoes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "key.toml"
    bad.write_text(f'[account]\nprivate_key = "{TEST_KEY}"\n')
    assert cli.main(["check-config", str(bad)]) == 1
    captured = capsys.readouterr()
    assert "account.private_key: keys are never read from config files" in captured.err
    assert TEST_KEY[2:] not in captured.out + captured.err


def test_hip3_run_check_is_the_same_as_trio_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", "--config", str(DEFAULT), "--check"]) == 0
    assert "mode      observation" in capsys.readouterr().out


def test_python_dash_m_hip3() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hip3", "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0
    assert result.stdout.strip() == "hip3 0.1.0"
