"""The schema-change lock holds across processes on every platform (no fcntl needed)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from mlflow_pairs.db._lock import lock_path

# Takes the lock, says so, and holds it until the release file appears.
_HOLDER = """
import logging, sys, time
from pathlib import Path
from mlflow_pairs.db._lock import migration_lock

uri, log, release = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
with migration_lock(uri):
    with log.open("a") as out:
        out.write(f"{sys.argv[4]} acquired\\n")
    while not release.exists():
        time.sleep(0.05)
    with log.open("a") as out:
        out.write(f"{sys.argv[4]} released\\n")
"""


def _until(predicate: object, timeout: float = 60.0) -> bool:
    """Poll ``predicate`` (a callable) until it holds; False when it never did (a bound
    against hanging, not a measurement)."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def _start(name: str, uri: str, log: Path, release: Path, out: Path) -> subprocess.Popen[str]:
    with out.open("w") as handle:  # the child keeps its own copy
        return subprocess.Popen(
            [sys.executable, "-c", _HOLDER, uri, str(log), str(release), name],
            stdout=handle,
            stderr=subprocess.STDOUT,
            text=True,
        )


def test_a_second_process_waits_for_the_first(tmp_path: Path) -> None:
    uri = f"sqlite:///{(tmp_path / 'store.db').as_posix()}"
    log = tmp_path / "order.log"
    first_release, second_release = tmp_path / "release-1", tmp_path / "release-2"
    first = _start("first", uri, log, first_release, tmp_path / "first.out")
    second_out = tmp_path / "second.out"
    second = None
    try:
        assert _until(lambda: log.exists() and "first acquired" in log.read_text())
        second = _start("second", uri, log, second_release, second_out)
        # The second found the lock taken and is blocked on it.
        assert _until(lambda: "waiting for another process" in second_out.read_text()), (
            second_out.read_text()
        )
        assert "second acquired" not in log.read_text()
        assert second.poll() is None
        first_release.touch()
        assert first.wait(timeout=60) == 0
        assert _until(lambda: "second acquired" in log.read_text())
        second_release.touch()
        assert second.wait(timeout=60) == 0
    finally:
        first_release.touch()
        second_release.touch()
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
    assert log.read_text().splitlines() == [
        "first acquired",
        "first released",
        "second acquired",
        "second released",
    ]
    assert "store.db" in second_out.read_text()  # the message names the store
    assert lock_path(uri) != lock_path(uri + "x")  # one lock per database
