"""Runs a killed ``train`` leaves RUNNING: ``doctor`` finds them, ``runs reap`` closes them.

A real MLflow store (SQLite in a temporary folder), a real ``mlflow-pairs train`` killed
with SIGKILL, and runs made with ``MlflowClient``; nothing is mocked.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mlflow_pairs.cli import cli
from mlflow_pairs.cli.runs_cmd import parse_duration, runs_group
from mlflow_pairs.config import load_settings
from mlflow_pairs.errors import UsageError
from mlflow_pairs.tracking import MlflowConnection
from mlflow_pairs.tracking.connection import INCOMPLETE_RUN_TAG, REAPED_TAG
from tests.cli.test_train import SMALL, _env
from tests.conftest import write_config

NAME = "pairs_trading_gru_garch_technology"
HOUR_MS = 3_600_000


@pytest.fixture
def pairs() -> Iterator[CliRunner]:
    """The ``cli`` group with ``runs`` on it (added here until cli/__init__ adds it)."""
    added = "runs" not in cli.commands
    if added:
        cli.add_command(runs_group)
    yield CliRunner()
    if added:
        cli.commands.pop("runs")


def _invoke(runner: CliRunner, config: Path, *args: str) -> Result:
    return runner.invoke(cli, ["--config", str(config), *args])


def _runs_line(result: Result) -> str:
    lines = [line for line in result.stdout.splitlines() if line[7:].startswith("runs ")]
    assert len(lines) == 1, result.output
    return lines[0]


def _killed_train(config: Path, connection: MlflowConnection, home: Path) -> str:
    """Start ``mlflow-pairs train``, SIGKILL it once its run is RUNNING; the run's id."""
    exe = Path(sys.executable).with_name("mlflow-pairs")
    log = (home / "train.log").open("w")
    process = subprocess.Popen(
        [str(exe), "--config", str(config), "train"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=_env(),
        cwd=home,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert process.poll() is None, (home / "train.log").read_text()
            training = [
                run
                for run in connection.running_runs()
                if run.data.tags.get("mlflow_pairs.job") == "train"
            ]
            if training:
                os.kill(process.pid, signal.SIGKILL)
                assert process.wait(timeout=30) == -signal.SIGKILL
                return str(training[0].info.run_id)
            time.sleep(0.2)
        raise AssertionError(f"no RUNNING train run:\n{(home / 'train.log').read_text()}")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
        log.close()


def test_durations() -> None:
    assert parse_duration("0s") == 0
    assert parse_duration("30m") == 1800
    assert parse_duration("1h") == 3600
    assert parse_duration("2d") == 172_800
    assert parse_duration("1h30m") == 5400
    assert parse_duration(" 1.5H ") == 5400
    for bad in ("", "1", "1y", "-1h", "h", "1 h", "soon"):
        with pytest.raises(UsageError, match="is not a duration"):
            parse_duration(bad)


def test_bad_durations_are_one_line_errors(pairs: CliRunner, clean_env: Path) -> None:
    for args in (["runs", "reap", "--older-than", "1y"], ["doctor", "--stale-after", "soon"]):
        result = pairs.invoke(cli, args)
        assert result.exit_code == 2, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("Error: --")
        assert "is not a duration" in lines[0]
        assert "Traceback" not in result.output


def test_killed_train_is_found_by_doctor_and_reaped(pairs: CliRunner, clean_env: Path) -> None:
    home = clean_env
    store = {
        "tracking_uri": f"sqlite:///{home / 'mlruns' / 'mlflow.db'}",
        "artifact_root": (home / "mlruns").as_uri(),
    }
    config = write_config(home / "config.yaml", {**SMALL, "mlflow": store})
    connection = MlflowConnection(load_settings(config, environ={}))
    connection.check()
    client = connection.client
    experiment = connection.experiment_name
    experiment_id = connection.get_or_create_experiment().experiment_id
    now_ms = int(time.time() * 1000)

    def run(status: str | None, *, hours_ago: float = 0, name: str) -> str:
        created = client.create_run(
            experiment_id, start_time=now_ms - int(hours_ago * HOUR_MS), run_name=name
        )
        if status:
            client.set_terminated(created.info.run_id, status)
        return str(created.info.run_id)

    finished = run("FINISHED", hours_ago=5, name="finished")
    failed = run("FAILED", hours_ago=5, name="failed")
    old = run(None, hours_ago=3, name="old")
    lively = run(None, hours_ago=3, name="lively")  # old start, but logged a metric now
    client.log_metric(lively, "loss", 0.5)
    fresh = run(None, name="fresh")
    client.create_registered_model(NAME)
    versions = {
        run_id: client.create_model_version(NAME, str(home / "model"), run_id=run_id).version
        for run_id in (finished, failed, old, fresh)
    }
    killed = _killed_train(config, connection, home)
    assert client.get_run(killed).info.status == "RUNNING"

    # doctor with its 1 h default: the old run and the versions of the failed and old runs.
    result = _invoke(pairs, config, "doctor")
    assert result.exit_code == 1, result.output
    line = _runs_line(result)
    assert line.startswith("[FAIL] runs")
    stale = f"1 run(s) of {experiment!r} still RUNNING with no update for 1h or more: {old}"
    assert stale in line
    assert f"{NAME} v{versions[failed]} (run FAILED)" in line
    assert f"{NAME} v{versions[old]} (run RUNNING, no update for 3h00m)" in line
    assert line.endswith("(run `mlflow-pairs runs reap`)")
    for other in (killed, fresh, lively, finished):
        assert other not in line
    assert f"v{versions[finished]} " not in line
    assert f"v{versions[fresh]} " not in line
    failures = [x for x in result.stdout.splitlines() if x.startswith("[FAIL]")]
    assert failures == [line], result.output  # only the runs check fails

    # With 0s every RUNNING run is stale, the killed train's included.
    line = _runs_line(_invoke(pairs, config, "doctor", "--stale-after", "0s"))
    assert "4 run(s)" in line
    assert all(run_id in line for run_id in (old, lively, fresh, killed))
    assert line.endswith("(run `mlflow-pairs runs reap --older-than 0s`)")

    # A dry run lists and changes nothing.
    result = _invoke(pairs, config, "runs", "reap", "--dry-run")
    assert result.exit_code == 0, result.output
    assert f"would mark KILLED: run {old} (old, started" in result.stdout
    flagged = f"would tag: {NAME} version {versions[failed]} {INCOMPLETE_RUN_TAG}=true"
    assert flagged in result.stdout
    summary = "Dry run: would mark 1 run KILLED and tag 2 versions; nothing changed."
    assert summary in result.stdout
    assert client.get_run(old).info.status == "RUNNING"
    assert INCOMPLETE_RUN_TAG not in client.get_model_version(NAME, versions[failed]).tags

    # Reap with the default: the old run only; versions flagged, never deleted.
    result = _invoke(pairs, config, "runs", "reap")
    assert result.exit_code == 0, result.output
    assert f"marked KILLED: run {old} (old" in result.stdout
    assert f"Marked 1 run of {experiment!r} KILLED and tagged 2 versions." in result.stdout
    reaped = client.get_run(old)
    assert reaped.info.status == "KILLED"
    assert reaped.info.end_time is not None
    reason = reaped.data.tags[REAPED_TAG]
    assert "still RUNNING with no update since" in reason
    assert "over --older-than 1h" in reason
    assert "marked KILLED at 20" in reason
    for run_id in (killed, fresh, lively):
        assert client.get_run(run_id).info.status == "RUNNING"
    tags = {run_id: client.get_model_version(NAME, v).tags for run_id, v in versions.items()}
    assert tags[failed][INCOMPLETE_RUN_TAG] == tags[old][INCOMPLETE_RUN_TAG] == "true"
    assert INCOMPLETE_RUN_TAG not in tags[finished]
    assert INCOMPLETE_RUN_TAG not in tags[fresh]
    assert len(connection.list_versions(NAME)) == 4

    # The flagged versions no longer fail doctor; nothing else is stale by 1 h.
    result = _invoke(pairs, config, "doctor")
    assert result.exit_code == 0, result.output
    assert _runs_line(result).startswith("[  ok] runs")
    assert f"2 version(s) tagged {INCOMPLETE_RUN_TAG}" in _runs_line(result)

    # The killed train's run, with --older-than 0s.
    result = _invoke(pairs, config, "runs", "reap", "--older-than", "0s")
    assert result.exit_code == 0, result.output
    assert f"marked KILLED: run {killed} (train-technology" in result.stdout
    flagged = f"tagged: {NAME} version {versions[fresh]} {INCOMPLETE_RUN_TAG}=true"
    assert flagged in result.stdout
    assert f"Marked 3 runs of {experiment!r} KILLED and tagged 1 version." in result.stdout
    train_run = client.get_run(killed)
    assert train_run.info.status == "KILLED"
    assert "over --older-than 0s" in train_run.data.tags[REAPED_TAG]
    assert client.get_run(finished).info.status == "FINISHED"
    assert client.get_run(failed).info.status == "FAILED"
    assert REAPED_TAG not in client.get_run(failed).data.tags

    result = _invoke(pairs, config, "doctor", "--stale-after", "0s")
    assert result.exit_code == 0, result.output
    assert _runs_line(result).startswith("[  ok] runs")
    result = _invoke(pairs, config, "runs", "reap", "--older-than", "0s")
    assert "Nothing to reap" in result.stdout
