"""Running ``mlflow server`` on the configured PostgreSQL store and artifact root."""

from __future__ import annotations

import collections
import contextlib
import ipaddress
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import IO, TextIO

import requests

from mlflow_pairs.errors import ServerError
from mlflow_pairs.secrets import redact, register_secret
from mlflow_pairs.tracking._uris import absolute_artifact_root, normalise_store_uri

__all__ = ["ServerSpec", "TrackingServer", "is_loopback"]


def is_loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServerSpec:
    """What ``mlflow server`` is started with."""

    backend_store_uri: str
    artifact_root: str
    host: str = "127.0.0.1"
    port: int = 5000
    workers: int = 1
    app_name: str | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if host in ("0.0.0.0", "[::]"):  # noqa: S104 - only used to build a client address
            host = "127.0.0.1"
        return f"http://{host}:{self.port}"

    def command(self) -> tuple[list[str], dict[str, str]]:
        """The argument list and extra environment of the server process.

        The store URI travels in ``MLFLOW_BACKEND_STORE_URI`` rather than on the command
        line, so its password does not show in ``ps``.
        """
        argv = [
            sys.executable, "-m", "mlflow", "server",
            "--host", self.host,
            "--port", str(self.port),
            "--workers", str(self.workers),
            "--artifacts-destination", absolute_artifact_root(self.artifact_root),
        ]  # fmt: skip
        if self.app_name:
            argv += ["--app-name", self.app_name]
        env = {"MLFLOW_BACKEND_STORE_URI": normalise_store_uri(self.backend_store_uri)}
        return argv, env


class TrackingServer:
    """A ``mlflow server`` subprocess: start it, wait for ``/health``, stop it.

    Its output is copied, redacted, to ``echo`` (default: standard error); the last lines
    are kept for error messages.
    """

    def __init__(self, spec: ServerSpec, *, echo: TextIO | None = None) -> None:
        self.spec = spec
        self.echo = echo if echo is not None else sys.stderr
        self.process: subprocess.Popen[str] | None = None
        self._tail: collections.deque[str] = collections.deque(maxlen=40)
        self._reader: threading.Thread | None = None

    @property
    def url(self) -> str:
        return self.spec.url

    def start(self, *, timeout: float = 120.0) -> TrackingServer:
        argv, extra_env = self.spec.command()
        for value in extra_env.values():
            register_secret(_password_of(value))
        env = {**os.environ, **extra_env}
        try:
            self.process = subprocess.Popen(
                argv,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
                start_new_session=True,
            )
        except OSError as exc:
            raise ServerError(f"cannot start mlflow server: {exc}") from None
        assert self.process.stdout is not None
        self._reader = threading.Thread(
            target=self._copy_output, args=(self.process.stdout,), daemon=True
        )
        self._reader.start()
        self.wait_until_healthy(timeout=timeout)
        return self

    def _copy_output(self, stream: IO[str]) -> None:
        for line in stream:
            cleaned = redact(line.rstrip("\n"))
            self._tail.append(cleaned)
            # The sink may be closed already while the interpreter shuts down.
            with contextlib.suppress(ValueError, OSError):
                print(cleaned, file=self.echo, flush=True)

    def wait_until_healthy(self, *, timeout: float = 120.0) -> None:
        """Poll ``/health`` until it answers 200; raise if the process dies or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                if self._reader is not None:
                    self._reader.join(timeout=5)
                raise ServerError(
                    f"mlflow server exited with status {self.process.returncode}: "
                    + " | ".join(list(self._tail)[-5:])
                )
            try:
                if requests.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)
        self.stop()
        raise ServerError(f"mlflow server did not answer {self.url}/health within {timeout:g} s")

    def stop(self, *, timeout: float = 15.0) -> int | None:
        """Stop the server and its workers (SIGTERM, then SIGKILL); returns its exit status."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            _signal_group(process, signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait(timeout=timeout)
        else:
            _signal_group(process, signal.SIGTERM)  # workers left behind by a dead parent
        if self._reader is not None:
            self._reader.join(timeout=5)
        return process.returncode

    def __enter__(self) -> TrackingServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _signal_group(process: subprocess.Popen[str], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def _password_of(uri: str) -> str | None:
    from urllib.parse import urlparse

    try:
        return urlparse(uri).password
    except ValueError:
        return None
