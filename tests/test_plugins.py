"""The plugin manager: conflicts, failures, the load filter, real installs and uninstalls."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest

from mlflow_pairs import hookimpl, plugins
from mlflow_pairs.data import Universe
from mlflow_pairs.features import SpreadZScore
from mlflow_pairs.plugins import (
    PluginConflictError,
    get_features,
    get_universes,
    list_plugins,
    plugin_failures,
    pm,
)
from tests.conftest import pairs_cli

REPO = Path(__file__).resolve().parents[1]
TECHNOLOGY = REPO / "plugins" / "mlflow-pairs-technology"


@pytest.fixture
def no_recorded_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plugins, "_failures", {})


@pytest.fixture
def register_inline() -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        pm.unregister(name=name)


def test_builtins_are_plugins() -> None:
    infos = {info.name: info for info in list_plugins()}
    sample = infos["mlflow_pairs.default_plugins.sample"]
    assert sample.builtin
    assert sample.hooks == ("register_price_sources", "register_universes")
    assert {"sample-technology", "sample-energy"} <= set(get_universes())
    assert {"spread_zscore", "spread_return", "rolling_volatility"} <= set(get_features())


def test_same_universe_from_two_plugins_names_both(register_inline: list[str]) -> None:
    class Duplicate:
        @hookimpl
        def register_universes(self, register):  # type: ignore[no-untyped-def]
            register(
                Universe(
                    name="sample-energy", sector="energy", symbols=("CVX",), price_source="sample"
                )
            )

    pm.register(Duplicate(), name="duplicate-plugin")
    register_inline.append("duplicate-plugin")
    with pytest.raises(PluginConflictError) as info:
        get_universes()
    message = str(info.value)
    assert "'sample-energy'" in message
    assert "'mlflow_pairs.default_plugins.sample'" in message
    assert "'duplicate-plugin'" in message


def test_same_feature_column_from_two_features_is_a_conflict(register_inline: list[str]) -> None:
    class Clash(SpreadZScore):
        name = "another_zscore"

    class ClashPlugin:
        @hookimpl
        def register_features(self, register):  # type: ignore[no-untyped-def]
            register(Clash())

    pm.register(ClashPlugin(), name="clash-plugin")
    register_inline.append("clash-plugin")
    with pytest.raises(PluginConflictError, match=r"column 'spread_zscore'.*'clash-plugin'"):
        get_features()


def test_plugin_raising_in_a_hook_is_reported_and_skipped(
    register_inline: list[str], no_recorded_failures: None, caplog: pytest.LogCaptureFixture
) -> None:
    class Raising:
        @hookimpl
        def register_universes(self, register):  # type: ignore[no-untyped-def]
            raise RuntimeError("vendor API down")

    pm.register(Raising(), name="raising-plugin")
    register_inline.append("raising-plugin")
    with caplog.at_level(logging.WARNING, logger="mlflow_pairs.plugins"):
        universes = get_universes()
    assert "sample-technology" in universes  # the others still work
    assert "raising-plugin" in caplog.text
    assert "vendor API down" in caplog.text
    assert "vendor API down" in plugin_failures()["raising-plugin"]


def test_plugins_list_shows_a_plugin_whose_hook_raises_as_failed(
    register_inline: list[str], no_recorded_failures: None
) -> None:
    """`plugins list` calls every hook first, so a plugin that imports fine but raises in
    a hook is listed as FAILED (before, it was listed with its hooks as if healthy)."""

    class RaisingFeatures:
        @hookimpl
        def register_features(self, register):  # type: ignore[no-untyped-def]
            raise RuntimeError("feature store down")

    pm.register(RaisingFeatures(), name="raising-features")
    register_inline.append("raising-features")
    infos = {info.name: info for info in list_plugins()}
    assert infos["raising-features"].error is not None
    assert "feature store down" in infos["raising-features"].error


def _plugin_env(extra_path: Path | None = None, **variables: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    if extra_path is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(extra_path), env.get("PYTHONPATH")]))
    env.update(variables)
    return env


def _universe_names(output: str) -> set[str]:
    return {line.split()[0] for line in output.splitlines() if line.strip()}


@pytest.fixture
def broken_plugin(tmp_path: Path) -> Path:
    """An installed distribution whose entry point raises on import."""
    site = tmp_path / "site"
    dist = site / "broken_sector-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-sector\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[mlflow_pairs]\nbroken = broken_sector\n")
    (site / "broken_sector.py").write_text("raise ImportError('missing vendor SDK')\n")
    return site


def test_plugin_failing_to_import_does_not_break_the_host(
    broken_plugin: Path, tmp_path: Path
) -> None:
    env = _plugin_env(broken_plugin)
    listed = pairs_cli("universes", "list", env=env, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "sample-technology" in _universe_names(listed.stdout)
    assert "plugin 'broken' failed and was skipped: ImportError: missing vendor SDK" in (
        listed.stderr
    )
    shown = pairs_cli("plugins", "list", env=env, cwd=tmp_path)
    assert "broken  (broken-sector 0.1)  FAILED: ImportError: missing vendor SDK" in shown.stdout

    doctor = pairs_cli("doctor", env=env, cwd=tmp_path)
    assert doctor.returncode == 1
    line = next(ln for ln in doctor.stdout.splitlines() if " plugins " in ln)
    assert line.startswith("[FAIL]")
    assert "plugin 'broken' failed: ImportError: missing vendor SDK" in line


def test_load_filter_limits_entry_points(broken_plugin: Path, tmp_path: Path) -> None:
    only_energy = pairs_cli(
        "universes",
        "list",
        cwd=tmp_path,
        env=_plugin_env(broken_plugin, MLFLOW_PAIRS_LOAD_PLUGINS="energy"),
    )
    assert only_energy.returncode == 0
    assert "broken" not in only_energy.stderr
    names = _universe_names(only_energy.stdout)
    assert "energy" in names
    assert "technology" not in names
    assert "sample-technology" in names  # built-ins always load

    none = pairs_cli(
        "universes",
        "list",
        cwd=tmp_path,
        env=_plugin_env(broken_plugin, MLFLOW_PAIRS_LOAD_PLUGINS=""),
    )
    assert not {"energy", "technology"} & _universe_names(none.stdout)


def _installed(distribution: str) -> bool:
    try:
        version(distribution)
        return True
    except PackageNotFoundError:
        return False


def _pip(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "-q", *args], check=True, timeout=300, capture_output=True
    )


def test_installing_the_technology_plugin_adds_its_universe(tmp_path: Path) -> None:
    was_installed = _installed("mlflow-pairs-technology")
    env = _plugin_env()
    try:
        if was_installed:
            _pip("uninstall", "-y", "mlflow-pairs-technology")
        before = pairs_cli("universes", "list", env=env, cwd=tmp_path)
        assert "technology" not in _universe_names(before.stdout)

        _pip("install", "--no-deps", "--no-build-isolation", str(TECHNOLOGY))
        after = pairs_cli("universes", "list", env=env, cwd=tmp_path)
        line = next(ln for ln in after.stdout.splitlines() if ln.startswith("technology "))
        assert "plugin=technology" in line
        listed = pairs_cli("plugins", "list", env=env, cwd=tmp_path)
        assert "technology  (mlflow-pairs-technology 0.1.0)" in listed.stdout

        _pip("uninstall", "-y", "mlflow-pairs-technology")
        gone = pairs_cli("universes", "list", env=env, cwd=tmp_path)
        assert "technology" not in _universe_names(gone.stdout)
    finally:
        if was_installed and not _installed("mlflow-pairs-technology"):
            _pip("install", "--no-deps", "--no-build-isolation", "-e", str(TECHNOLOGY))
