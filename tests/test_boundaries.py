"""House rules that imports can break: core/ and protocol/ stand alone; hip3 never imports the SDK."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "hip3"
PURE_LAYERS = {"core": {"hip3.core"}, "protocol": {"hip3.core", "hip3.protocol"}}
SIMULATOR_MAY_IMPORT = {"hip3.core", "hip3.protocol", "hip3.sim"}
IO_MODULES = {"socket", "httpx", "trio_websocket", "sqlite3", "requests", "urllib", "subprocess", "os"}
ORACLE_ONLY = {"hyperliquid", "eth_account", "web3"}


def imported_modules(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


@pytest.mark.parametrize("layer", sorted(PURE_LAYERS))
def test_pure_layers_import_only_themselves_and_do_no_io(layer: str) -> None:
    allowed = PURE_LAYERS[layer]
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        for module in imported_modules(path):
            top = module.split(".")[0]
            if top == "hip3":
                assert any(module == a or module.startswith(a + ".") for a in allowed), (
                    f"{path}: imports {module}"
                )
            assert top not in IO_MODULES, f"{path}: imports {module}, and {layer}/ does no I/O"


def test_hip3_never_imports_the_sdk() -> None:
    for path in sorted(PACKAGE.rglob("*.py")):
        for module in imported_modules(path):
            assert module.split(".")[0] not in ORACLE_ONLY, f"{path}: imports {module} (test oracle only)"


def test_the_simulator_never_imports_the_bot() -> None:
    for path in sorted((PACKAGE / "sim").rglob("*.py")):
        for module in imported_modules(path):
            if module.split(".")[0] == "hip3":
                allowed = any(module == a or module.startswith(a + ".") for a in SIMULATOR_MAY_IMPORT)
                assert allowed, f"{path}: imports {module}; the simulator uses only core, protocol and sim"
