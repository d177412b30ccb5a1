"""``mlflow-pairs runs reap``: close the runs that a killed process left RUNNING."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

import click

from mlflow_pairs.cli._app import AppContext, pass_app
from mlflow_pairs.errors import UsageError

if TYPE_CHECKING:
    from mlflow.entities import Run

__all__ = ["DEFAULT_STALE_AFTER", "parse_duration", "reap_hint", "runs_group"]

#: A RUNNING run with no update for this long is stale (``doctor`` and ``runs reap``).
DEFAULT_STALE_AFTER = "1h"

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?[smhdw])+")
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_duration(text: str, option: str = "--older-than") -> float:
    """Seconds in ``text``: a number and a unit (s, m, h, d, w), e.g. ``30m``, ``2d``,
    ``1h30m``.

    Raises
    ------
    UsageError
        Naming ``option`` and the value, when ``text`` is not such a duration.
    """
    cleaned = text.strip().lower()
    if not _DURATION.fullmatch(cleaned):
        raise UsageError(
            f"{option} {text!r} is not a duration: give a number and a unit, "
            "e.g. 30m, 1h, 2d (units: s, m, h, d, w)"
        )
    return sum(float(number) * _UNITS[unit] for number, unit in _PART.findall(cleaned))


def reap_hint(older_than: str) -> str:
    """The command that fixes what ``doctor`` found with the same threshold."""
    option = "" if older_than == DEFAULT_STALE_AFTER else f" --older-than {older_than}"
    return f"mlflow-pairs runs reap{option}"


def _stamp(millis: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(millis / 1000))


def _describe(run: Run) -> str:
    name = run.info.run_name or "-"
    return f"{run.info.run_id} ({name}, started {_stamp(int(run.info.start_time or 0))})"


@click.group("runs")
def runs_group() -> None:
    """Runs of the configured experiment."""


@runs_group.command("reap")
@click.option(
    "--older-than",
    default=DEFAULT_STALE_AFTER,
    show_default=True,
    metavar="DURATION",
    help="A RUNNING run whose last update (start or latest metric) is older than this is "
    "stale: 30m, 1h, 2d, 0s (every RUNNING run).",
)
@click.option("--dry-run", is_flag=True, help="List what would change; change nothing.")
@pass_app
def reap(app: AppContext, older_than: str, dry_run: bool) -> None:
    """Mark stale RUNNING runs KILLED and flag registered versions of unfinished runs.

    A process killed with SIGKILL (or whose machine died) cannot end its MLflow run, which
    then stays RUNNING for ever. Each stale run of the configured experiment is marked
    KILLED with the tag mlflow_pairs.reaped (why and when). Each registered version of
    the pairs models whose run is KILLED, FAILED or stale gets the tag
    mlflow_pairs.incomplete_run=true. Nothing is deleted.
    """
    from mlflow_pairs.tracking.connection import INCOMPLETE_RUN_TAG, format_age

    threshold = parse_duration(older_than)
    connection = app.connection()
    connection.check()
    now = time.time()
    killed = 0
    for run in connection.stale_runs(threshold, now=now):
        last = connection.last_update_ms(run)
        reason = (
            f"still RUNNING with no update since {_stamp(last)} "
            f"({format_age(now - last / 1000)}, over --older-than {older_than})"
        )
        if dry_run:
            click.echo(f"would mark KILLED: run {_describe(run)}, {reason}")
            killed += 1
        elif connection.reap_run(run.info.run_id, reason):
            click.echo(f"marked KILLED: run {_describe(run)}, {reason}")
            killed += 1
        else:
            click.echo(f"left alone: run {run.info.run_id} is no longer RUNNING")
    tagged = 0
    for version, status in connection.unfinished_versions(threshold, now=now):
        if version.tags.get(INCOMPLETE_RUN_TAG) == "true":
            continue
        what = (
            f"{version.name} version {version.version} "
            f"{INCOMPLETE_RUN_TAG}=true (run {version.run_id} {status})"
        )
        if dry_run:
            click.echo(f"would tag: {what}")
        else:
            connection.flag_incomplete_version(version)
            click.echo(f"tagged: {what}")
        tagged += 1
    runs = f"{killed} run{'' if killed == 1 else 's'}"
    versions = f"{tagged} version{'' if tagged == 1 else 's'}"
    experiment = connection.experiment_name
    if dry_run:
        click.echo(f"Dry run: would mark {runs} KILLED and tag {versions}; nothing changed.")
    elif killed or tagged:
        click.echo(f"Marked {runs} of {experiment!r} KILLED and tagged {versions}.")
    else:
        click.echo(
            f"Nothing to reap: no run of {experiment!r} RUNNING without an update for "
            f"{older_than}, no untagged version of an unfinished run."
        )
