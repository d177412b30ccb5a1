"""The server's supervisor and the port checks, on every platform: no database, no MLflow.

Processes are inspected with psutil, so these run on Linux, macOS and Windows alike. On
Linux both readers of the process table (``/proc`` and psutil, the one macOS and Windows
use) are run, and the supervisor is also run without the Linux-only parts (subreaper,
parent-death signal) to check what the other platforms rely on.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from mlflow_pairs.tracking import _supervise
from mlflow_pairs.tracking.server import (
    PortUnavailableError,
    ServerSpec,
    TrackingServer,
    ensure_port_free,
)
from tests.conftest import free_port

SUPERVISE = Path(_supervise.__file__).resolve()
IS_LINUX = sys.platform.startswith("linux")
#: The process-table readers this platform can run.
READERS = ["proc", "psutil"] if IS_LINUX else ["psutil"]

# A stand-in for mlflow server (written to a file): a worker in its group, a job in a
# session of its own that ignores SIGTERM (as MLflow's job subprocesses run), and a daemon
# started by a helper that exits when the release file appears (the daemon is an orphan
# then: on Linux it stays below the subreaper, elsewhere it moves to init, or to no parent
# on Windows). It writes the pids of all of them to a file.
FAKE_SERVER = """
import os, subprocess, sys, time
pids, release = sys.argv[1], sys.argv[2]
group = (
    {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP} if os.name == "nt"
    else {"start_new_session": True}
)
quiet = {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
sleep = [sys.executable, "-c", "import time; time.sleep(600)"]
if sys.argv[3:] == ["spawner"]:
    daemon = subprocess.Popen(sleep, **group, **quiet)
    print(daemon.pid, flush=True)
    while not os.path.exists(release):
        time.sleep(0.05)
    sys.exit(0)
ignore_term = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
worker = subprocess.Popen(sleep)
job = subprocess.Popen([sys.executable, "-c", ignore_term], **group)
spawner = subprocess.Popen(
    [sys.executable, __file__, pids, release, "spawner"], stdout=subprocess.PIPE, text=True
)
daemon = int(spawner.stdout.readline())
with open(pids + ".tmp", "w") as out:
    out.write(f"{os.getpid()} {worker.pid} {job.pid} {daemon} {spawner.pid}")
os.replace(pids + ".tmp", pids)
time.sleep(600)
"""

# Runs the supervisor as TrackingServer does, optionally with another process-table reader
# and without the Linux-only parts (as on macOS and Windows).
RUN_SUPERVISOR = """
import importlib.util, sys
path, reader, linux_parts = sys.argv[1:4]
spec = importlib.util.spec_from_file_location("_supervise", path)
module = importlib.util.module_from_spec(spec)
sys.modules["_supervise"] = module  # dataclasses look their module up
spec.loader.exec_module(module)
if reader == "psutil":
    module.process_table = module._psutil_table
if linux_parts == "off":
    module._prctl = lambda option, value: None
sys.exit(module.main(sys.argv[4:]))
"""

# Plays mlflow-pairs: starts the supervisor, then waits to be killed.
FAKE_PARENT = """
import os, subprocess, sys, time
run, supervise, reader, linux_parts, log, *server = sys.argv[1:]
group = (
    {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP} if os.name == "nt"
    else {"start_new_session": True}
)
with open(log, "w") as out:
    subprocess.Popen(
        [sys.executable, "-I", "-c", run, supervise, reader, linux_parts,
         "--parent-pid", str(os.getpid()), "--grace", "2", "--", sys.executable, *server],
        stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT, **group,
    )
time.sleep(600)
"""


def until(predicate: Callable[[], object], timeout: float = 60.0) -> bool:
    """Poll until ``predicate`` holds; False if it never did (a bound against hanging)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return bool(predicate())


def _handles(pids: list[int]) -> list[psutil.Process]:
    return [psutil.Process(pid) for pid in pids]


def _running(handles: list[psutil.Process]) -> list[str]:
    """The processes of ``handles`` still running (the same processes, not reused pids)."""
    alive = []
    for proc in handles:
        with contextlib.suppress(psutil.Error):
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(f"{proc.pid} {' '.join(proc.cmdline())[:100]}")
    return alive


def _kill(handles: list[psutil.Process]) -> None:
    for proc in handles:
        with contextlib.suppress(psutil.Error):
            proc.kill()


def _pids_from(path: Path) -> list[int]:
    assert until(path.exists), "the fake server did not start"
    return [int(p) for p in path.read_text().split()]


@pytest.mark.parametrize("linux_parts", ["on", "off"] if IS_LINUX else ["off"])
@pytest.mark.parametrize("reader", READERS)
def test_the_tree_ends_when_the_parent_is_killed(
    tmp_path: Path, reader: str, linux_parts: str
) -> None:
    """kill -9 (TerminateProcess) of mlflow-pairs: the supervisor ends every process of the
    tree, the orphaned daemon and the job that ignores SIGTERM included."""
    server = tmp_path / "fake_server.py"
    server.write_text(FAKE_SERVER, encoding="utf-8")
    pids_file, release, log = tmp_path / "pids", tmp_path / "release", tmp_path / "log"
    parent = subprocess.Popen(
        [sys.executable, "-c", FAKE_PARENT, RUN_SUPERVISOR, str(SUPERVISE), reader,
         linux_parts, str(log), str(server), str(pids_file), str(release)],
    )  # fmt: skip
    tree: list[psutil.Process] = []
    try:
        *tree, spawner = _handles(_pids_from(pids_file))
        below = {p.pid for p in psutil.Process(parent.pid).children(recursive=True)}
        assert {p.pid for p in tree} <= below
        # Scans of the supervisor (every 0.5 s) see the daemon while its parent lives.
        time.sleep(2)
        release.touch()  # the spawner exits (a zombie until the fake server reaps it)
        assert until(lambda: f"server process {spawner.pid} (" in log.read_text()), log.read_text()
        # The daemon is an orphan now: out of the parent's tree unless a subreaper keeps it.
        below = {p.pid for p in psutil.Process(parent.pid).children(recursive=True)}
        assert (tree[3].pid in below) == (linux_parts == "on")
        parent.kill()
        parent.wait(timeout=30)
        # Asked to stop at once; killed after the 2 s grace: the job ignores SIGTERM.
        assert until(lambda: not _running(tree)), (_running(tree), log.read_text())
    finally:
        _kill(tree)
        with contextlib.suppress(OSError):
            parent.kill()


def test_the_supervisor_reports_exits_and_passes_on_the_status(tmp_path: Path) -> None:
    command = (
        "import subprocess, sys, time\n"
        "helper = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(1.5)'])\n"
        "print('helper', helper.pid, flush=True)\n"
        "helper.wait(); time.sleep(1.5); sys.exit(7)\n"
    )
    # The pipe on its stdin stays open, as a live parent keeps it: closing it means "stop".
    supervisor = subprocess.Popen(
        [sys.executable, "-I", str(SUPERVISE), "--", sys.executable, "-c", command],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert supervisor.stdout is not None
        output = supervisor.stdout.read()
        assert supervisor.wait(timeout=60) == 7
    finally:
        supervisor.kill()
        assert supervisor.stdin is not None
        supervisor.stdin.close()
    lines = output.splitlines()
    assert lines[0].startswith(_supervise.CONTROL + " pid=")
    helper = next(line.split()[1] for line in lines if line.startswith("helper "))
    assert f"mlflow-pairs: server process {helper} (" in output
    assert "Fatal Python error" not in output


@pytest.mark.parametrize("reader", READERS)
def test_both_process_table_readers_see_this_process_and_its_children(reader: str) -> None:
    read = _supervise._proc_table if reader == "proc" else _supervise._psutil_table
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        table = read()
        assert table is not None
        assert table[os.getpid()].ppid == os.getppid()
        assert child.pid in _supervise.descendants(os.getpid(), table)
        assert table[child.pid].start != ""
        start = table[child.pid].start
        assert read()[child.pid].start == start  # the same process reads the same
    finally:
        child.kill()
        child.wait()
    assert child.pid not in (read() or {})


def test_short_names_of_python_modules_and_programs() -> None:
    child = subprocess.Popen([sys.executable, "-m", "http.server", "--help"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        name = _supervise.short_name(child.pid)
    finally:
        child.kill()
        child.wait()
    assert name in ("http.server", "?")  # "?" only if it ended before it was read
    assert _supervise._base_name("C:\\Python311\\python.exe") == "python.exe"
    assert _supervise._base_name("/usr/bin/python3") == "python3"


def test_kill_tree_ends_a_process_and_its_descendants() -> None:
    """The tree kill Windows uses (no process groups): by parent links, through psutil."""
    code = (
        "import subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        "time.sleep(600)\n"
    )
    root = subprocess.Popen([sys.executable, "-c", code])
    handle = psutil.Process(root.pid)
    tree: list[psutil.Process] = [handle]
    try:
        assert until(lambda: len(handle.children()) == 1)
        tree += handle.children(recursive=True)
        _supervise.kill_tree(handle)
        root.wait(timeout=30)
        assert until(lambda: not _running(tree)), _running(tree)
    finally:
        _kill(tree)


def test_a_taken_port_is_refused_and_a_free_one_accepted() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(PortUnavailableError, match=rf"127\.0\.0\.1:{port} is already in use"):
            ensure_port_free("127.0.0.1", port)
        assert PortUnavailableError.exit_code == 2
    ensure_port_free("127.0.0.1", free_port())
    with pytest.raises(PortUnavailableError, match=r"cannot bind 192\.0\.2\.1:"):
        ensure_port_free("192.0.2.1", free_port())  # TEST-NET-1: not an address of ours


@pytest.mark.parametrize("reader", READERS)
def test_the_listening_socket_is_traced_to_its_process(reader: str) -> None:
    serves_port = _supervise.serves_port if reader == "proc" else _supervise._psutil_serves_port
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert serves_port([os.getpid()], port) is True
        assert serves_port([os.getppid()], port) is False
    assert serves_port([os.getpid()], port) is None  # nothing listens any more


HEALTH_SERVER = """
import http.server, sys

class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, *args):
        pass

http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Health).serve_forever()
"""


def _fake_command(monkeypatch: pytest.MonkeyPatch, code: str, *args: str) -> None:
    """Run ``code`` (with ``args``) in place of mlflow server."""
    monkeypatch.setattr(
        ServerSpec, "command", lambda self: ([sys.executable, "-c", code, *args], {})
    )


def test_health_from_another_process_is_not_taken_for_the_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The port is taken after the check (a race): /health answers, but not from the server
    started here, so start() fails and the server's tree is stopped."""
    import http.server
    import threading

    import mlflow_pairs.tracking.server as server_module

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    intruder = http.server.HTTPServer(("127.0.0.1", 0), Health)
    port = intruder.server_address[1]
    threading.Thread(target=intruder.serve_forever, daemon=True).start()
    monkeypatch.setattr(server_module, "ensure_port_free", lambda host, port: None)
    _fake_command(monkeypatch, "import time; time.sleep(600)")
    tracking = TrackingServer(
        ServerSpec("postgresql://h/db", "file:./a", port=port), echo=io.StringIO()
    )
    try:
        with pytest.raises(PortUnavailableError, match=rf"127\.0\.0\.1:{port} is answered by"):
            tracking.start(timeout=30)
        assert tracking.process is not None
        assert tracking.process.poll() is not None  # stopped
        assert tracking.server_pid is not None
        assert (
            not psutil.pid_exists(tracking.server_pid)
            or _running([psutil.Process(tracking.server_pid)]) == []
        )
    finally:
        tracking.stop()
        intruder.shutdown()
        intruder.server_close()


def test_health_from_the_servers_own_tree_is_accepted_and_stop_ends_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A server with a worker and a job that ignores SIGTERM: stop() ends all of them."""
    port = free_port()
    launcher = (
        "import os, subprocess, sys\n"
        "group = {'creationflags': subprocess.CREATE_NEW_PROCESS_GROUP} if os.name == 'nt' "
        "else {'start_new_session': True}\n"
        "ignore = 'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "time.sleep(600)'\n"
        "job = subprocess.Popen([sys.executable, '-c', ignore], **group)\n"
        "open(sys.argv[2], 'w').write(str(job.pid))\n"
        "sys.exit(subprocess.call([sys.executable, '-c', sys.argv[3], sys.argv[1]]))\n"
    )
    job_file = tmp_path / "job"
    _fake_command(monkeypatch, launcher, str(port), str(job_file), HEALTH_SERVER)
    tracking = TrackingServer(
        ServerSpec("postgresql://h/db", "file:./a", port=port), echo=io.StringIO()
    )
    tree: list[psutil.Process] = []
    try:
        tracking.start(timeout=60)
        assert tracking._serves_port() is True
        assert tracking.process is not None
        supervisor = psutil.Process(tracking.process.pid)
        tree = [supervisor, *supervisor.children(recursive=True)]
        assert until(job_file.exists)
        assert int(job_file.read_text()) in {p.pid for p in tree}
        status = tracking.stop(timeout=2)
        if sys.platform != "win32":
            assert status == 128 + signal.SIGTERM
        assert until(lambda: not _running(tree)), _running(tree)
        with pytest.raises(ConnectionRefusedError):  # nothing listens there any more
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
    finally:
        tracking.stop()
        _kill(tree)
