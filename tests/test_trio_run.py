"""`trio-run MODULE[:FUNC] [ARGS…]`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hip3.trio_run import TargetError, main, resolve_target
from tests.conftest import REPO_ROOT

TARGETS = "tests.fixtures.trio_run_targets"


def test_runs_main_with_args_left_in_argv(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", ["trio-run"])
    assert main([TARGETS, "--config", "x.toml"]) == 3
    assert capsys.readouterr().out.strip() == f"argv:{TARGETS} --config x.toml"


def test_runs_a_named_function(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["trio-run"])
    assert main([f"{TARGETS}:other"]) == 0
    assert "other ran" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_such_module_hip3", "no module named 'no_such_module_hip3'"),
        (f"{TARGETS}:missing", "has no 'missing'"),
        (f"{TARGETS}:not_async", "is not an async function"),
        (":main", "no module"),
    ],
)
def test_bad_targets_are_reported(spec: str, message: str) -> None:
    with pytest.raises(TargetError, match=message):
        resolve_target(spec)


def test_usage_without_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: trio-run" in capsys.readouterr().err


def test_bad_target_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["no_such_module_hip3"]) == 2
    assert "trio-run: no module named" in capsys.readouterr().err


def test_console_script_is_installed() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "trio-run"), TARGETS, "a", "b"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 3, result.stderr
    assert result.stdout.strip() == f"argv:{TARGETS} a b"
