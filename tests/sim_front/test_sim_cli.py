"""`hip3 sim` argument checks that need no server."""

from __future__ import annotations

import argparse
import re
from decimal import Decimal

import pytest

from hip3.core.serving import BindRefused
from hip3.sim.cli import parse_fund
from hip3.sim.server import check_bind_host


def test_fund_takes_address_and_amount() -> None:
    assert parse_fund("0xABCDEF0000000000000000000000000000000001=2500.5") == (
        "0xabcdef0000000000000000000000000000000001",
        Decimal("2500.5"),
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0x12=5", "takes 0xADDRESS=USDC"),
        ("0xabcdef0000000000000000000000000000000001", "takes 0xADDRESS=USDC"),
        ("0xabcdef0000000000000000000000000000000001=lots", "must be a number"),
        ("0xabcdef0000000000000000000000000000000001=-5", "must be positive"),
        ("0xabcdef0000000000000000000000000000000001=NaN", "must be positive"),
    ],
)
def test_bad_fund_arguments(text: str, message: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        parse_fund(text)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.5.5.5", "::1", "localhost"])
def test_loopback_hosts_are_allowed(host: str) -> None:
    check_bind_host(host, allow_remote=False)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.com"])
def test_other_hosts_need_allow_remote(host: str) -> None:
    with pytest.raises(BindRefused, match=f"refusing to bind the simulator to {re.escape(host)}"):
        check_bind_host(host, allow_remote=False)
    check_bind_host(host, allow_remote=True)
