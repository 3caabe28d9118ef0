"""Shared test helpers. Tests are deterministic: no network, MockClock for anything that waits."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"
VECTORS_FILE = Path(__file__).resolve().parent / "data" / "l1-signing.json"  # a copy of shared/vectors


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT
