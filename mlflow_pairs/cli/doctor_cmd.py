"""``mlflow-pairs doctor``: one line per check, non-zero exit when one fails."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import click

from mlflow_pairs.cli._app import AppContext, pass_app
from mlflow_pairs.cli.runs_cmd import DEFAULT_STALE_AFTER, parse_duration, reap_hint
from mlflow_pairs.errors import MlflowPairsError
from mlflow_pairs.secrets import mask_uri, redact


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool | None  # None: skipped
    detail: str


def _run(name: str, probe: Callable[[], str]) -> Check:
    try:
        return Check(name, True, probe())
    except _Skip as skip:
        return Check(name, None, str(skip))
    except MlflowPairsError as exc:
        return Check(name, False, str(exc))
    except Exception as exc:
        first = str(exc).strip().splitlines()
        return Check(name, False, f"{type(exc).__name__}: {first[0] if first else ''}")


class _Skip(Exception):
    pass


def _package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        raise MlflowPairsError(f"{name} is not installed") from None


def _plugins() -> str:
    from mlflow_pairs.plugins import get_features, get_price_sources, get_universes, list_plugins

    # Collecting runs every plugin's hooks, so a plugin that raises there is caught too.
    counts = (len(get_universes()), len(get_price_sources()), len(get_features()))
    failed = [info for info in list_plugins() if info.error]
    if failed:
        raise MlflowPairsError(
            "; ".join(f"plugin {info.name!r} failed: {info.error}" for info in failed)
        )
    loaded = len(list_plugins())
    return (
        f"{loaded} loaded; {counts[0]} universes, {counts[1]} price sources, {counts[2]} features"
    )


def _ids(items: list[str], limit: int = 10) -> str:
    shown = ", ".join(items[:limit])
    return f"{shown}, and {len(items) - limit} more" if len(items) > limit else shown


def _runs_check(connection: Any, threshold: float, stale_after: str) -> str:
    """Stale RUNNING runs of the experiment; registered versions of unfinished runs
    that ``runs reap`` has not flagged yet."""
    from mlflow_pairs.tracking.connection import INCOMPLETE_RUN_TAG

    now = time.time()
    experiment = connection.experiment_name
    stale = connection.stale_runs(threshold, now=now)
    unfinished = connection.unfinished_versions(threshold, now=now)
    flagged = [v for v, _ in unfinished if v.tags.get(INCOMPLETE_RUN_TAG) == "true"]
    unflagged = [
        f"{v.name} v{v.version} (run {status})"
        for v, status in unfinished
        if v.tags.get(INCOMPLETE_RUN_TAG) != "true"
    ]
    problems = []
    if stale:
        problems.append(
            f"{len(stale)} run(s) of {experiment!r} still RUNNING with no update for "
            f"{stale_after} or more: {_ids([run.info.run_id for run in stale])}"
        )
    if unflagged:
        problems.append(
            f"{len(unflagged)} registered version(s) of runs that did not finish: "
            f"{_ids(unflagged, 5)}"
        )
    if problems:
        raise MlflowPairsError(f"{'; '.join(problems)} (run `{reap_hint(stale_after)}`)")
    detail = f"no run of {experiment!r} RUNNING without an update for {stale_after}"
    if flagged:
        detail += f"; {len(flagged)} version(s) tagged {INCOMPLETE_RUN_TAG}"
    return detail


@click.command("doctor")
@click.option(
    "--stale-after",
    default=DEFAULT_STALE_AFTER,
    show_default=True,
    metavar="DURATION",
    help="A RUNNING run whose last update (start or latest metric) is older than this is "
    "stale and fails the runs check: 30m, 1h, 2d.",
)
@pass_app
def doctor(app: AppContext, stale_after: str) -> None:
    """Check the configuration, tracking store, schema, registry, runs and libraries.

    The runs check fails on runs of the configured experiment left RUNNING (a killed
    process cannot end its run) and on registered versions of runs that did not finish,
    until `mlflow-pairs runs reap` has closed and flagged them.
    """
    threshold = parse_duration(stale_after, "--stale-after")
    checks: list[Check] = []
    checks.append(_run("config", lambda: f"loaded {app.settings.source}"))
    connection = None
    if checks[-1].ok:
        connection = app.connection()

    def tracking() -> str:
        if connection is None:
            raise _Skip("no configuration")
        connection.check()
        return f"reachable {mask_uri(connection.tracking_uri)}"

    checks.append(_run("tracking", tracking))
    tracking_ok = bool(checks[-1].ok)

    def schema() -> str:
        from mlflow_pairs._uris import is_database_uri
        from mlflow_pairs.db import mlflow_schema_status

        if connection is None or not tracking_ok:
            raise _Skip("tracking store not reachable")
        if not is_database_uri(connection.tracking_uri):
            raise _Skip("tracking goes through a server, which owns the schema")
        status = mlflow_schema_status(connection.tracking_uri)
        if not status.is_current:
            raise MlflowPairsError(
                f"MLflow schema at {status.current}, expected {status.head} "
                "(run `mlflow-pairs db upgrade`)"
            )
        return f"MLflow schema at head {status.head}"

    checks.append(_run("schema", schema))

    def tables() -> str:
        from mlflow_pairs.config import tables_uri
        from mlflow_pairs.db import pairs_schema_status
        from mlflow_pairs.db.pairs_schema import check_pairs_schema

        if connection is None:
            raise _Skip("no configuration")
        uri = tables_uri(app.settings, connection.tracking_uri)
        if uri is None:
            raise _Skip("tables.uri is off")
        status = pairs_schema_status(uri)
        if status.current is None:
            return (
                f"not created yet in {mask_uri(uri)} (the first screen or train creates "
                "them; or `mlflow-pairs db upgrade`)"
            )
        if not status.is_current:
            raise MlflowPairsError(
                f"mlflow-pairs tables in {mask_uri(uri)} at {status.current}, expected "
                f"{status.head} (run `mlflow-pairs db upgrade`)"
            )
        check_pairs_schema(uri)  # columns or indexes changed by hand are reported
        return f"mlflow-pairs tables at head {status.head} in {mask_uri(uri)}"

    checks.append(_run("tables", tables))

    def registry() -> str:
        if connection is None or not tracking_ok:
            raise _Skip("tracking store not reachable")
        models = connection.client.search_registered_models(max_results=5)
        return f"usable at {mask_uri(connection.registry_uri)} ({len(models)} model(s) seen)"

    checks.append(_run("registry", registry))

    def runs() -> str:
        if connection is None or not tracking_ok:
            raise _Skip("tracking store not reachable")
        return _runs_check(connection, threshold, stale_after)

    checks.append(_run("runs", runs))
    checks.append(_run("plugins", _plugins))
    for package in ("mlflow", "torch", "arch", "pandas", "numpy"):
        checks.append(_run(package, functools.partial(_package_version, package)))

    failed = False
    for check in checks:
        mark = {True: "ok", False: "FAIL", None: "skip"}[check.ok]
        click.echo(f"[{mark:>4}] {check.name:<9} {redact(check.detail)}")
        failed = failed or check.ok is False
    if failed:
        raise click.exceptions.Exit(1)
