"""``mlflow-pairs server``: the MLflow tracking server on the configured store."""

from __future__ import annotations

import os
import signal
import types

import click

from mlflow_pairs.cli._app import AppContext, pass_app
from mlflow_pairs.config import Settings, backend_store_uri
from mlflow_pairs.errors import ServerError
from mlflow_pairs.secrets import is_secret_name, register_secret
from mlflow_pairs.tracking._supervise import describe_status
from mlflow_pairs.tracking.server import (
    ServerSpec,
    TrackingServer,
    ensure_port_free,
    is_loopback,
)


@click.command("server")
@click.option("--host", default=None, help="Interface to bind [config: server.host].")
@click.option(
    "--port", type=click.IntRange(1, 65535), default=None, help="Port [config: server.port]."
)
@click.option(
    "--workers",
    type=click.IntRange(1),
    default=None,
    help="Worker processes [config: server.workers].",
)
@click.option(
    "--app-name",
    default=None,
    help="MLflow server app: pairs (MLflow's server plus mlflow-pairs' tables), pairs-auth "
    "(the same behind MLflow's login), basic-auth (MLflow's login only), mlflow (MLflow's "
    "server as it comes) [config: server.app_name].",
)
@click.option(
    "--allow-remote",
    is_flag=True,
    help="Allow binding a non-loopback interface (exposes the server).",
)
@click.option(
    "--startup-timeout",
    type=float,
    default=120.0,
    show_default=True,
    help="Seconds to wait for /health.",
)
@pass_app
def server(
    app: AppContext,
    host: str | None,
    port: int | None,
    workers: int | None,
    app_name: str | None,
    allow_remote: bool,
    startup_timeout: float,
) -> None:
    """Start `mlflow server` with the backend store and artifact root from the config.

    Waits until the server answers /health, prints the UI address and runs until Ctrl-C.
    The server's processes end with this command, however it ends (even kill -9); a port
    already in use, a backend store that cannot be reached (wrong password, closed port,
    missing database) and an app that cannot start are refused with exit status 2 before
    anything starts.
    """
    settings = app.settings
    host = host or settings.server.host
    if not is_loopback(host) and not allow_remote:
        raise ServerError(
            f"refusing to bind {host}, which is not a loopback address; "
            "pass --allow-remote to expose the server"
        )
    spec = ServerSpec(
        backend_store_uri=backend_store_uri(settings),
        artifact_root=settings.mlflow.artifact_root,
        host=host,
        port=port or settings.server.port,
        workers=workers or settings.server.workers,
        app_name=_app_option(app_name or settings.server.app_name),
    )
    _check_before_start(settings, spec)
    tracking = TrackingServer(spec)

    def terminate(signum: int, frame: types.FrameType | None) -> None:
        raise KeyboardInterrupt

    # Installed explicitly: a process started in the background inherits an ignored SIGINT.
    signal.signal(signal.SIGINT, terminate)
    signal.signal(signal.SIGTERM, terminate)
    try:
        # Refuses a busy port before starting anything (exit status 2); returns only once
        # /health answers from the server started here, so the address printed is ours.
        tracking.start(timeout=startup_timeout)
        click.echo(f"MLflow UI: {spec.url}  (Ctrl-C stops the server)", err=True)
        status = tracking.wait()
        detail = tracking.failure_detail()
        raise ServerError(
            f"mlflow server stopped unexpectedly ({describe_status(status)}"
            + (f"; {detail})" if detail else ")")
        )
    except KeyboardInterrupt:
        click.echo("Stopping the MLflow server...", err=True)
        tracking.stop()
        click.echo("Stopped.", err=True)
    finally:
        tracking.stop()


#: The ``server.app_name`` that means MLflow's own server (no ``--app-name``).
_PLAIN_APP = "mlflow"


def _app_option(name: str) -> str | None:
    return None if name == _PLAIN_APP else name


#: MLflow's auth settings that ``mlflow server`` reads from its environment; a ``.env``
#: file is passed on for them, as for ``MLFLOW_DB_PASSWORD`` (the real environment wins).
_AUTH_VARIABLES = (
    "MLFLOW_FLASK_SERVER_SECRET_KEY",
    "MLFLOW_AUTH_CONFIG_PATH",
    "MLFLOW_AUTH_ADMIN_USERNAME",
    "MLFLOW_AUTH_ADMIN_PASSWORD",
)


def _check_before_start(settings: Settings, spec: ServerSpec) -> None:
    """The port, one short connection to the backend store, and the app's own needs,
    before anything starts: a busy port, a wrong password or a missing secret key is one
    line, at once."""
    from mlflow_pairs._uris import normalise_store_uri
    from mlflow_pairs.db._engine import check_connection

    ensure_port_free(spec.host, spec.port)  # first: the cheapest, and nothing else matters
    check_connection(
        normalise_store_uri(spec.backend_store_uri), "cannot connect to the backend store"
    )
    if spec.app_name:
        from mlflow_pairs.tracking.tables_app import AUTH_APP_NAMES, check_server_app

        if spec.app_name in AUTH_APP_NAMES:
            environ = settings._environ
            for name in _AUTH_VARIABLES:
                if name not in os.environ and environ.get(name):
                    os.environ[name] = environ[name]
                if is_secret_name(name):
                    register_secret(os.environ.get(name))
        check_server_app(spec.app_name)
