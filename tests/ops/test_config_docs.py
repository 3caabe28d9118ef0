"""docs/configuration.md is current and complete; the deployment files say what the issue demands."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hip3 import cli
from hip3.config import ShutdownConfig, schema_fields, schema_sections
from hip3.ops.config_docs import GENERATOR_COMMAND, render_configuration_doc, write_configuration_doc


def test_the_committed_page_is_current(repo_root: Path) -> None:
    committed = (repo_root / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert committed == render_configuration_doc(), (
        f"docs/configuration.md is out of date: run `{GENERATOR_COMMAND}`"
    )


def test_every_section_and_key_is_documented() -> None:
    page = render_configuration_doc()
    assert f"`{GENERATOR_COMMAND}`" in page.splitlines()[2]
    for section, description in schema_sections():
        assert f"## `[{section}]`" in page
        assert description[1:] in page
    lines = page.splitlines()
    for row in schema_fields():
        wanted = (f"| `{row.key}` | {row.type} |", row.default, row.allowed, row.doc.replace("|", "\\|"))
        assert any(
            line.startswith(wanted[0]) and all(part in line for part in wanted[1:]) for line in lines
        ), row


def test_write_reports_whether_it_changed(tmp_path: Path) -> None:
    target = tmp_path / "docs" / "configuration.md"
    assert write_configuration_doc(target) is True
    assert write_configuration_doc(target) is False
    target.write_text("stale\n", encoding="utf-8")
    assert write_configuration_doc(target) is True
    assert target.read_text(encoding="utf-8") == render_configuration_doc()


def directives(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            found[key.strip()] = value.strip()
    return found


def test_the_systemd_unit(repo_root: Path) -> None:
    unit = directives((repo_root / "deploy" / "hip3.service").read_text(encoding="utf-8"))
    assert unit["ExecStart"].endswith("/trio-run hip3.main --config /etc/hip3/config.toml")
    assert unit["EnvironmentFile"] == "/etc/hip3/hip3.env"
    assert unit["User"] == "hip3" and unit["WorkingDirectory"] == "/var/lib/hip3"
    assert unit["Restart"] == "on-failure" and unit["KillSignal"] == "SIGTERM"
    assert int(unit["TimeoutStopSec"]) > ShutdownConfig().deadline_s
    assert unit["NoNewPrivileges"] == "yes" and unit["PrivateTmp"] == "yes"
    assert unit["ProtectSystem"] == "strict" and "/var/lib/hip3" in unit["ReadWritePaths"].split()


def test_the_dockerfile(repo_root: Path) -> None:
    text = (repo_root / "deploy" / "Dockerfile").read_text(encoding="utf-8")
    instructions = [
        line.split(None, 1) for line in text.splitlines() if line and not line.startswith((" ", "#"))
    ]
    by_name: dict[str, list[str]] = {}
    for name, *rest in instructions:
        by_name.setdefault(name, []).append(rest[0] if rest else "")
    assert by_name["FROM"][-1] == "python:3.11-slim"
    assert by_name["USER"] == ["hip3"]
    assert "pip install ." in by_name["RUN"]
    assert re.search(r"HEALTHCHECK .*\n.*urllib\.request\.urlopen\('http://127\.0\.0\.1:8080/healthz'", text)
    assert "curl" not in text
    assert by_name["ENTRYPOINT"] == ['["trio-run", "hip3.main", "--config", "/config/config.toml"]']
    assert by_name["STOPSIGNAL"] == ["SIGTERM"]


def test_the_cli_writes_the_page_then_finds_it_current(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "configuration.md"
    assert cli.main(["docs-config", "--output", str(page)]) == 0
    assert page.read_text(encoding="utf-8") == render_configuration_doc()
    assert cli.main(["docs-config", "--output", str(page)]) == 0
    assert capsys.readouterr().out.splitlines() == [f"{page}: written", f"{page}: already current"]
