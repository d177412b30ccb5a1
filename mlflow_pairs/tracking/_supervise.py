"""Keep the ``mlflow server`` process tree tied to the ``mlflow-pairs`` process that started it.

``mlflow server`` starts uvicorn (or gunicorn), a job runner and several huey consumers;
the job runner's subprocesses run in sessions of their own. Signals sent to the
``mlflow server`` process only reach some of them, and nothing at all runs when
``mlflow-pairs`` is killed with SIGKILL, so the tree used to survive and keep the port.

:class:`~mlflow_pairs.tracking.server.TrackingServer` therefore runs this module as a small
supervisor between itself and ``mlflow server``::

    python -I .../_supervise.py --parent-pid PID [--grace S] -- mlflow server ...

The supervisor

* becomes a child subreaper (Linux), so processes orphaned inside the tree stay its
  descendants instead of moving to init; elsewhere it keeps following the processes it has
  seen in the tree after their parent died (they move to launchd, or to no parent at all
  on Windows);
* starts the command as the leader of a new process group (a new session on POSIX,
  ``CREATE_NEW_PROCESS_GROUP`` on Windows), with stdin closed and stdout/stderr inherited,
  and writes one control line ``CONTROL pid=N`` naming it;
* reads its own stdin, a pipe whose only writer is the parent: ``stop [GRACE]`` asks for
  a shutdown, end-of-file means the parent is gone, however it died (so does a change of
  ``os.getppid()`` on POSIX);
* reports, one line each, the tree's processes that exit while the server is meant to run;
* on shutdown, or when the command exits, asks the tree to stop (POSIX: SIGTERM to the
  command's process group and every descendant; Windows: CTRL_BREAK_EVENT to the command's
  process group, which Python programs take as a request to stop), waits up to the grace
  period, then kills what is left (SIGKILL; TerminateProcess on Windows), and exits with the
  command's status (128 + N for a signal N).

It imports the standard library and, where ``/proc`` is missing, ``psutil``: it is started
with ``-I``, without importing the package (and MLflow), so it starts fast and stays small.
The helpers that read the process table and the listening sockets are shared with
``server.py``.

Portability: the process table and the listening sockets come from ``/proc`` on Linux and
from ``psutil`` elsewhere (macOS, Windows); the tests run both readers here.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psutil

#: Prefix of the supervisor's control lines on its standard output (not for people).
CONTROL = "##mlflow-pairs-supervisor##"
#: Prefix of the supervisor's messages for people.
REPORT = "mlflow-pairs:"

IS_LINUX = sys.platform.startswith("linux")

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


@dataclass(frozen=True)
class Proc:
    """One row of the process table."""

    pid: int
    ppid: int
    start: str  # start time: tells a process from a later one that reuses its pid


def new_group_options() -> dict[str, Any]:
    """``subprocess.Popen`` arguments that make the new process lead a process group of its
    own, out of the terminal's: Ctrl-C in the terminal does not reach it.

    POSIX: a new session. Windows: ``CREATE_NEW_PROCESS_GROUP`` (a CTRL_BREAK_EVENT sent to
    the group, whose id is the leader's pid, still does).
    """
    if sys.platform == "win32":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}


def process_table() -> dict[int, Proc] | None:
    """Live processes (zombies left out) by pid; None where they cannot be listed."""
    if IS_LINUX and Path("/proc/self/stat").is_file():
        return _proc_table()
    return _psutil_table()


def _proc_table() -> dict[int, Proc]:
    table: dict[int, Proc] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        fields = raw[raw.rfind(")") + 2 :].split()
        if len(fields) < 20 or fields[0] in ("Z", "X"):
            continue
        pid = int(entry.name)
        table[pid] = Proc(pid, int(fields[1]), fields[19])
    return table


def _psutil_table() -> dict[int, Proc] | None:
    try:
        import psutil
    except ImportError:  # pragma: no cover - a dependency of the package
        return None
    table: dict[int, Proc] = {}
    try:
        for proc in psutil.process_iter(["ppid", "create_time", "status"]):
            info = proc.info
            if info["status"] == psutil.STATUS_ZOMBIE or info["ppid"] is None:
                continue
            # Microseconds: the same process reads the same, a later one with its pid not.
            start = "" if info["create_time"] is None else f"{info['create_time']:.6f}"
            table[proc.pid] = Proc(proc.pid, int(info["ppid"]), start)
    except psutil.Error:
        return None
    return table


def descendants(root: int, table: dict[int, Proc]) -> list[int]:
    """Pids of the live descendants of ``root`` (root itself not included)."""
    children: dict[int, list[int]] = {}
    for proc in table.values():
        children.setdefault(proc.ppid, []).append(proc.pid)
    found: list[int] = []
    seen = {root}
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _command_line(pid: int) -> list[str]:
    if IS_LINUX:
        with contextlib.suppress(OSError):
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
            return [a.decode(errors="replace") for a in raw.split(b"\0") if a]
    try:
        import psutil
    except ImportError:  # pragma: no cover - a dependency of the package
        return []
    try:
        return list(psutil.Process(pid).cmdline())
    except psutil.Error:
        return []


def kill_tree(root: psutil.Process) -> None:
    """Kill ``root`` and its descendants, found by parent links (no process groups needed:
    Windows). psutil's handles refuse a process that merely reuses a pid."""
    import psutil

    try:
        tree = [root, *root.children(recursive=True)]
    except psutil.Error:
        tree = [root]
    for proc in tree:
        with contextlib.suppress(psutil.Error):
            proc.kill()


def short_name(pid: int) -> str:
    """A short name for a process: the module of ``python -m X``, else the program's name."""
    args = _command_line(pid)
    if not args:
        return "?"
    if len(args) == 1 and " " in args[0]:  # a process that rewrote its title
        return args[0][:60]
    program = _base_name(args[0]).lower()
    if "-m" in args[:-1] and program.startswith("python"):
        return args[args.index("-m") + 1]
    return _base_name(args[0])


def _base_name(path: str) -> str:
    # Either separator: a Windows command line names C:\...\python.exe.
    return path.replace("\\", "/").rsplit("/", 1)[-1]


def listening_inodes(port: int) -> set[int] | None:
    """Socket inodes listening on TCP ``port`` (IPv4 and IPv6); None without ``/proc/net``."""
    found: set[int] = set()
    tables = 0
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(name).read_text(encoding="ascii").splitlines()[1:]
        except OSError:
            continue
        tables += 1
        for line in lines:
            fields = line.split()
            listens = len(fields) > 9 and fields[3] == "0A"  # 0A: LISTEN
            if listens and int(fields[1].rsplit(":", 1)[1], 16) == port:
                found.add(int(fields[9]))
    return found if tables else None


def _socket_inodes(pid: int) -> set[int]:
    inodes: set[int] = set()
    folder = Path(f"/proc/{pid}/fd")
    try:
        entries = list(folder.iterdir())
    except OSError:
        return inodes
    for entry in entries:
        with contextlib.suppress(OSError):
            target = entry.readlink().name
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    return inodes


def serves_port(pids: Iterable[int], port: int) -> bool | None:
    """Whether one of ``pids`` holds a socket listening on TCP ``port``.

    None where that cannot be told, or when nothing listens on the port.
    """
    if IS_LINUX and Path("/proc/net/tcp").is_file():
        listening = listening_inodes(port)
        if not listening:
            return None
        return any(_socket_inodes(pid) & listening for pid in pids)
    return _psutil_serves_port(pids, port)


def _psutil_serves_port(pids: Iterable[int], port: int) -> bool | None:
    try:
        import psutil
    except ImportError:  # pragma: no cover - a dependency of the package
        return None

    def listens(connections: Iterable[Any]) -> bool:
        return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in connections)

    try:
        if not listens(psutil.net_connections(kind="tcp")):
            return None
    except psutil.AccessDenied:
        pass  # macOS lists other users' sockets to root only: ask each of ours below
    for pid in pids:
        try:
            if listens(psutil.Process(pid).net_connections(kind="tcp")):
                return True
        except psutil.NoSuchProcess:
            continue
        except psutil.Error:
            return None
    return False


_LIBC: object | None = None


def _prctl(option: int, value: int) -> None:
    """Linux ``prctl``; a no-op where it is unavailable."""
    global _LIBC
    if not IS_LINUX:
        return
    try:
        import ctypes

        if _LIBC is None:
            _LIBC = ctypes.CDLL(None, use_errno=True)
        _LIBC.prctl(option, value, 0, 0, 0)  # type: ignore[attr-defined]
    except (OSError, AttributeError):
        pass


def _die_with_supervisor() -> None:  # pragma: no cover - runs in the child, before exec
    # Should the supervisor itself be SIGKILLed, mlflow server gets SIGTERM and stops uvicorn.
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _emit(line: str) -> None:
    # One write: the pipe is shared with mlflow's output, and a line this short stays whole.
    with contextlib.suppress(OSError, ValueError, AttributeError):
        os.write(sys.stdout.fileno(), (line + "\n").encode("utf-8", "replace"))


def describe_status(status: int) -> str:
    """``status 3`` or ``killed by SIGKILL`` for a ``Popen.returncode``-style status."""
    if status < 0:
        try:
            return f"killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"killed by signal {-status}"
    return f"status {status}"


class Supervisor:
    """Runs one command and its process tree; see the module's description."""

    def __init__(self, command: list[str], *, parent_pid: int | None, grace: float) -> None:
        self.command = command
        self.parent_pid = parent_pid
        self.grace = grace
        self.child: subprocess.Popen[bytes] | None = None
        self._stop = threading.Event()
        self._stop_grace: float | None = None
        self._known: dict[int, tuple[str, str]] = {}  # pid -> (start time, name)
        self._reaped: dict[int, int] = {}  # orphans this process reaped -> status

    def request_stop(self, grace: float | None = None) -> None:
        if not self._stop.is_set():
            self._stop_grace = grace
            self._stop.set()

    def _watch_stdin(self) -> None:
        # Raw reads of descriptor 0: a thread blocked inside sys.stdin's buffered reader would
        # hold its lock and make the interpreter abort when it exits.
        pending = b""
        while True:
            try:
                chunk = os.read(0, 1024)
            except InterruptedError:
                continue
            except OSError:
                break
            if not chunk:
                break
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                words = line.decode("ascii", "replace").split()
                if words[:1] == ["stop"]:
                    grace = None
                    with contextlib.suppress(IndexError, ValueError):
                        grace = float(words[1])
                    self.request_stop(grace)
                    return
        # End of file: the parent closed the pipe or died (a SIGKILL closes it too).
        self._parent_gone()

    def _parent_gone(self) -> None:
        self.request_stop(min(self.grace, 5.0))

    def _on_signal(self, signum: int, frame: object) -> None:
        self.request_stop()

    def run(self) -> int:
        _prctl(_PR_SET_CHILD_SUBREAPER, 1)
        for name in ("SIGTERM", "SIGINT", "SIGHUP", "SIGBREAK"):
            sig = getattr(signal, name, None)
            if sig is not None:
                with contextlib.suppress(OSError, ValueError):
                    signal.signal(sig, self._on_signal)
        if not self._parent_alive():
            return 1
        try:
            self.child = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_supervisor if IS_LINUX else None,
                **new_group_options(),
            )
        except OSError as exc:
            _emit(f"{REPORT} cannot start {self.command[0]}: {exc}")
            return 127
        _emit(f"{CONTROL} pid={self.child.pid}")
        threading.Thread(target=self._watch_stdin, name="parent-watch", daemon=True).start()

        status: int | None = None
        while status is None and not self._stop.wait(0.5):
            if not self._parent_alive():
                self._parent_gone()
                break
            status = self.child.poll()
            self._scan(report=True)
        if status is None:  # asked to stop, or the parent is gone
            self._end_tree(self._stop_grace if self._stop_grace is not None else self.grace)
        else:  # the server exited by itself: what it leaves behind goes too
            self._end_tree(min(self.grace, 5.0))
        code = self.child.wait()
        return 128 - code if code < 0 else code

    def _parent_alive(self) -> bool:
        # On Windows the parent's pid stays in place when it dies: end of file on stdin
        # tells then.
        return self.parent_pid is None or os.getppid() == self.parent_pid

    def _reap_orphans(self) -> None:
        """Collect orphans handed to this process (a subreaper) without taking the child's
        exit status from ``Popen``."""
        if not sys.platform.startswith("linux") or self.child is None:
            return
        while True:
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if info is None:
                return
            if info.si_pid == self.child.pid:
                if self.child.poll() is None:
                    return
                continue
            with contextlib.suppress(ChildProcessError):
                _, status = os.waitpid(info.si_pid, 0)
                self._reaped[info.si_pid] = os.waitstatus_to_exitcode(status)

    def _scan(self, *, report: bool) -> list[int] | None:
        """The live processes of the tree; reports those gone since the last scan when
        ``report``.

        The tree is this process's descendants and, where orphans leave it (no subreaper:
        macOS, Windows), the processes seen in it before that still run.
        """
        self._reap_orphans()
        table = process_table()
        if table is None:
            return None
        pids = descendants(os.getpid(), table)
        seen = set(pids)
        pids += [
            pid
            for pid, (start, _) in self._known.items()
            if pid not in seen and pid in table and table[pid].start == start
        ]
        current = {pid: table[pid].start for pid in pids}
        for pid, (start, name) in list(self._known.items()):
            if current.get(pid) == start:
                continue
            del self._known[pid]
            status = self._reaped.pop(pid, None)
            if report and self.child is not None and pid != self.child.pid:
                detail = f" ({describe_status(status)})" if status is not None else ""
                _emit(f"{REPORT} server process {pid} ({name}) exited{detail}")
        for pid, start in current.items():
            if pid not in self._known:
                self._known[pid] = (start, short_name(pid))
        self._reaped.clear()  # statuses of processes too short-lived to be known
        return pids

    @property
    def _started(self) -> subprocess.Popen[bytes]:
        """The child; the tree methods are called only after it was started."""
        if self.child is None:
            raise RuntimeError("the supervised process was not started")
        return self.child

    def _ask_tree_to_stop(self) -> None:
        """The gentle step: SIGTERM to the child's group and every process of the tree on
        POSIX; on Windows, where any other signal terminates a process at once,
        CTRL_BREAK_EVENT to the child's group (it shares this process's console)."""
        child = self._started
        if sys.platform == "win32":
            with contextlib.suppress(OSError):
                os.kill(child.pid, signal.CTRL_BREAK_EVENT)
            return
        self._signal_tree(signal.SIGTERM)

    def _signal_tree(self, sig: int) -> bool:
        """Send ``sig`` to the child's group (POSIX) and every process of the tree; whether
        any was there to signal. On Windows ``os.kill`` with a signal number terminates."""
        child = self._started
        found = False
        if sys.platform != "win32":
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, sig)
                found = True
        for pid in self._scan(report=False) or []:
            with contextlib.suppress(OSError):  # gone, or not ours to signal
                os.kill(pid, sig)
                found = True
        return found

    def _alive(self) -> bool:
        child = self._started
        if child.poll() is None:
            return True
        if self._scan(report=False):
            return True
        if sys.platform == "win32":
            return False
        try:
            os.killpg(child.pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def _end_tree(self, grace: float) -> None:
        """Ask the tree to stop, wait up to ``grace`` seconds, then kill what is left."""
        self._ask_tree_to_stop()
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not self._alive():
                return
            time.sleep(0.1)
        kill = getattr(signal, "SIGKILL", signal.SIGTERM)  # SIGTERM: TerminateProcess
        for _ in range(50):  # a process may still be starting others
            if not self._signal_tree(kill) or not self._alive():
                return
            time.sleep(0.1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="_supervise", description=__doc__.split("\n")[0])
    parser.add_argument("--parent-pid", type=int, default=None)
    parser.add_argument("--grace", type=float, default=15.0)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to run")
    return Supervisor(command, parent_pid=args.parent_pid, grace=args.grace).run()


if __name__ == "__main__":
    sys.exit(main())
