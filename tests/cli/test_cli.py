"""The command line: entry points, --help everywhere, one-line errors, masked secrets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from mlflow_pairs import __version__
from mlflow_pairs.cli import cli
from tests.conftest import pairs_cli, write_config


def _all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += _all_commands(command, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


def test_version_from_console_script_and_module(clean_env: Path) -> None:
    script = pairs_cli("--version")
    module = subprocess.run(
        [sys.executable, "-m", "mlflow_pairs", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert script.stdout.strip() == module.stdout.strip() == f"mlflow-pairs, version {__version__}"


@pytest.mark.parametrize("path", _all_commands(cli), ids=lambda p: " ".join(p) or "<root>")
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    assert command.help, f"{' '.join(path)} has no help text"


def test_config_error_is_one_line_without_traceback(clean_env: Path) -> None:
    config = write_config(clean_env / "bad.yaml", {"ml": {"epochs": "many"}})
    result = pairs_cli("--config", str(config), "config", "show")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert "ml.epochs" in lines[0]
    assert str(config) in lines[0]


def test_debug_shows_the_traceback(clean_env: Path) -> None:
    config = write_config(clean_env / "bad.yaml", {"ml": {"epochs": "many"}})
    result = pairs_cli("--debug", "--config", str(config), "config", "show")
    assert result.returncode != 0
    assert "Traceback" in result.stderr


def test_config_show_masks_the_password(clean_env: Path) -> None:
    secret = "Sh0w-me-not-123"
    result = CliRunner().invoke(cli, ["config", "show"], env={"MLFLOW_DB_PASSWORD": secret})
    assert result.exit_code == 0, result.output
    assert secret not in result.output
    assert "backend_store_uri: postgresql://postgres:***@localhost/mlflow_db" in result.output
    assert "# source: <package defaults>/config.yaml" in result.output


def test_config_show_reports_mlflow_overrides(clean_env: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["config", "show", "--format", "json"],
        env={"MLFLOW_TRACKING_URI": "http://localhost:5000"},
    )
    assert result.exit_code == 0, result.output
    assert '"tracking_uri": "http://localhost:5000"' in result.output


def test_doctor_on_the_embedded_default(clean_env: Path) -> None:
    result = pairs_cli(
        "doctor",
        cwd=clean_env,
        env={k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    names = [line[7:].split()[0] for line in lines]
    assert names[:5] == ["config", "tracking", "schema", "tables", "registry"]
    assert {"mlflow", "torch", "arch"} <= set(names)
    assert all(line.startswith("[  ok]") for line in lines), result.stdout
    assert "tables    not created yet in sqlite:///" in result.stdout
    assert (clean_env / "mlruns" / "mlflow.db").exists()


def test_db_create_needs_the_password_variable(clean_env: Path) -> None:
    result = CliRunner().invoke(cli, ["db", "create"], env={"MLFLOW_DB_PASSWORD": None})
    assert result.exit_code == 2
    assert "MLFLOW_DB_PASSWORD" in result.output
    assert "mlflow.backend_store_uri" in result.output
