"""Running ``mlflow server`` on the configured PostgreSQL store and artifact root."""

from __future__ import annotations

import collections
import contextlib
import errno
import ipaddress
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TextIO

import psutil
import requests

from mlflow_pairs._uris import (
    absolute_artifact_root,
    normalise_store_uri,
    prepare_sqlite_folder,
)
from mlflow_pairs.errors import ServerError
from mlflow_pairs.secrets import redact, register_secret
from mlflow_pairs.tracking import _supervise

__all__ = [
    "PortUnavailableError",
    "ServerSpec",
    "TrackingServer",
    "ensure_port_free",
    "is_loopback",
]

_WSAEADDRINUSE = 10048


class PortUnavailableError(ServerError):
    """The server's address is taken (or cannot be bound): nothing was started."""

    exit_code = 2


def _address(host: str, port: int) -> str:
    host = host.strip("[]")
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def ensure_port_free(host: str, port: int) -> None:
    """Raise :class:`PortUnavailableError` unless ``host:port`` can be bound right now.

    Binds the way uvicorn and gunicorn do (``SO_REUSEADDR`` on POSIX, so a port with only
    connections in TIME_WAIT counts as free) and lets go at once.
    """
    bare = host.strip("[]")
    family = socket.AF_INET6 if ":" in bare else socket.AF_INET
    where = _address(host, port)
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            if sys.platform != "win32":  # on Windows the option would allow stealing the port
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((bare, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE or getattr(exc, "winerror", None) == _WSAEADDRINUSE:
            raise PortUnavailableError(
                f"{where} is already in use (another server, perhaps one left from an "
                "earlier run, is listening there); stop it or choose another --port"
            ) from None
        reason = exc.strerror or str(exc)
        raise PortUnavailableError(f"cannot bind {where}: {reason}") from None


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

    ``mlflow server`` runs under a small supervisor (:mod:`._supervise`) that ends the whole
    process tree (web server, workers, job runner, huey consumers) when this process stops
    it or dies, even by SIGKILL (or TerminateProcess on Windows), and reports tree processes
    that exit while it runs. :attr:`process` is that supervisor; it exits with
    ``mlflow server``'s status.

    Output is copied, redacted, to ``echo`` (default: standard error); the last lines are
    kept for error messages.
    """

    def __init__(self, spec: ServerSpec, *, echo: TextIO | None = None) -> None:
        self.spec = spec
        self.echo = echo if echo is not None else sys.stderr
        self.process: subprocess.Popen[str] | None = None
        #: The ``mlflow server`` process (leader of its own process group), once known.
        self.server_pid: int | None = None
        # The same, held while it runs: psutil tells it from a later process with its pid.
        self._server: psutil.Process | None = None
        self._tail: collections.deque[str] = collections.deque(maxlen=40)
        self._reports: collections.deque[str] = collections.deque(maxlen=10)
        self._reader: threading.Thread | None = None
        self._server_pid_known = threading.Event()

    @property
    def url(self) -> str:
        return self.spec.url

    def start(self, *, timeout: float = 120.0, grace: float = 15.0) -> TrackingServer:
        """Start the server and wait until it answers ``/health``.

        Raises :class:`PortUnavailableError` before starting anything when the port is
        taken, and :class:`~mlflow_pairs.errors.ServerError` when the server exits or does
        not answer in ``timeout`` seconds. ``grace`` is how long a stop waits for the tree
        to exit after SIGTERM before killing it.
        """
        prepare_sqlite_folder(self.spec.backend_store_uri, "mlflow.backend_store_uri")
        ensure_port_free(self.spec.host, self.spec.port)
        argv, extra_env = self.spec.command()
        for value in extra_env.values():
            register_secret(_password_of(value))
        env = {**os.environ, **extra_env}
        supervisor = [
            sys.executable, "-I", str(Path(_supervise.__file__).resolve()),
            "--parent-pid", str(os.getpid()), "--grace", f"{grace:g}", "--", *argv,
        ]  # fmt: skip
        try:
            self.process = subprocess.Popen(
                supervisor,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                # The supervisor's lifeline: end of file on it (this process closed it or
                # died) stops the server.
                stdin=subprocess.PIPE,
                text=True,
                # Out of the terminal's process group: Ctrl-C reaches this process, which
                # then stops the server in order.
                **_supervise.new_group_options(),
            )
        except OSError as exc:
            raise ServerError(f"cannot start mlflow server: {exc}") from None
        if self.process.stdout is None:  # Popen was given stdout=PIPE just above
            raise RuntimeError("mlflow server started without an output pipe")
        self._reader = threading.Thread(
            target=self._copy_output, args=(self.process.stdout,), daemon=True
        )
        self._reader.start()
        self.wait_until_healthy(timeout=timeout)
        return self

    def _copy_output(self, stream: IO[str]) -> None:
        for line in stream:
            line = line.rstrip("\n")
            if line.startswith(_supervise.CONTROL):
                self._control(line[len(_supervise.CONTROL) :])
                continue
            cleaned = redact(line)
            self._tail.append(cleaned)
            if cleaned.startswith(_supervise.REPORT):
                self._reports.append(cleaned)
            # The sink may be closed already while the interpreter shuts down.
            with contextlib.suppress(ValueError, OSError):
                print(cleaned, file=self.echo, flush=True)

    def _control(self, message: str) -> None:
        key, _, value = message.strip().partition("=")
        if key == "pid" and value.isdigit():
            self.server_pid = int(value)
            with contextlib.suppress(psutil.Error):
                self._server = psutil.Process(self.server_pid)
            self._server_pid_known.set()

    def wait_until_healthy(self, *, timeout: float = 120.0) -> None:
        """Poll ``/health`` until the server started here answers 200.

        Raises if the process dies, if another process answers on the port, or if time
        runs out.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                if self._reader is not None:
                    self._reader.join(timeout=5)
                status = _supervise.describe_status(self.process.returncode)
                raise ServerError(
                    f"mlflow server exited with {status}: " + " | ".join(list(self._tail)[-5:])
                )
            try:
                healthy = requests.get(f"{self.url}/health", timeout=2).status_code == 200
            except requests.RequestException:
                healthy = False
            if healthy:
                ours = self._serves_port()
                if ours is False:
                    self.stop()
                    raise PortUnavailableError(
                        f"{_address(self.spec.host, self.spec.port)} is answered by another "
                        "process, not by the mlflow server started here; stop it or choose "
                        "another --port"
                    )
                if ours is True or self._still_running():
                    return
            time.sleep(0.5)
        self.stop()
        raise ServerError(f"mlflow server did not answer {self.url}/health within {timeout:g} s")

    def _serves_port(self) -> bool | None:
        """Whether the listening socket on the port belongs to this server's process tree
        (None where that cannot be told: then only liveness is checked)."""
        if self.process is None:
            return False
        table = _supervise.process_table()
        if table is None:
            return None
        pids = [self.process.pid, *_supervise.descendants(self.process.pid, table)]
        return _supervise.serves_port(pids, self.spec.port)

    def _still_running(self) -> bool:
        """Liveness after a healthy answer, where ownership cannot be checked: a server
        that lost the port to another process exits within moments."""
        if self.process is None:
            return False
        self._server_pid_known.wait(timeout=5)
        time.sleep(1.0)
        return self.process.poll() is None

    def wait(self) -> int:
        """Block until the server exits by itself; return its status (negative: a signal)."""
        if self.process is None:
            raise RuntimeError("wait() before start()")
        status = self.process.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)
        return status

    def failure_detail(self) -> str:
        """What the output says about an unexpected exit: the supervisor's last report,
        else the last line of output (empty when there is none)."""
        if self._reports:
            return self._reports[-1].removeprefix(_supervise.REPORT).strip()
        return self._tail[-1] if self._tail else ""

    def stop(self, *, timeout: float = 15.0) -> int | None:
        """Stop the server and its whole process tree; returns its exit status.

        The supervisor asks the tree to stop (SIGTERM; CTRL_BREAK_EVENT on Windows) and
        kills what is left after ``timeout`` seconds; should it not have finished 10 s
        later, it and the server's process group (on Windows: its process tree) are killed
        from here.
        """
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            self._ask_to_stop(process, timeout)
            try:
                process.wait(timeout=timeout + 10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
                self._kill_server_group()
        elif process.returncode < 0 or sys.platform == "win32":
            # The supervisor was killed (on Windows that reads as an ordinary exit status):
            # its tree may be left.
            self._kill_server_group()
        self._close_stdin(process)
        if self._reader is not None:
            self._reader.join(timeout=5)
        return process.returncode

    def _ask_to_stop(self, process: subprocess.Popen[str], grace: float) -> None:
        try:
            if process.stdin is None:
                raise BrokenPipeError("the supervisor has no control pipe")
            process.stdin.write(f"stop {grace:g}\n")
            process.stdin.flush()
        except (OSError, ValueError):  # already gone: the pipe is closed or broken
            pass
        self._close_stdin(process)

    @staticmethod
    def _close_stdin(process: subprocess.Popen[str]) -> None:
        if process.stdin is not None:
            with contextlib.suppress(OSError, ValueError):
                process.stdin.close()

    def _kill_server_group(self) -> None:
        if sys.platform == "win32":
            # No process groups to signal: the tree under the server, by parent links.
            if self._server is not None:
                _supervise.kill_tree(self._server)
            return
        if self.server_pid is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.server_pid, signal.SIGKILL)

    def __enter__(self) -> TrackingServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _password_of(uri: str) -> str | None:
    from urllib.parse import urlparse

    try:
        return urlparse(uri).password
    except ValueError:
        return None
