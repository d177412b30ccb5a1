"""Set-up and everyday commands for a checkout, on Linux, macOS and Windows.

Each command creates .venv on first use (torch's CPU wheel first, then this package with
its dev extra and the sector plugins), so on a fresh clone

    python scripts/dev.py run     runs the main job on the embedded default store (./mlruns)
    python scripts/dev.py test    runs the linters and the whole test suite
    python scripts/dev.py lint    runs ruff, mypy (for Linux, Windows and macOS), actionlint
    python scripts/dev.py setup   only creates or refreshes .venv

Extra arguments go to mlflow-pairs (run) or pytest (test). Environment: MLFLOW_PAIRS_VENV
(the environment's folder, default .venv), TORCH_SPEC (default torch==2.13.0),
TORCH_INDEX_URL (an index for torch alone, e.g. PyTorch's CPU wheels),
MLFLOW_PAIRS_TEST_PG_URL (the PostgreSQL server of the tests, default
postgresql://postgres@127.0.0.1:5432; "off" where there is none: then run the tests with
-m "not postgres") and CI (true: a missing PostgreSQL or linter fails).
Uses the standard library only: it runs before any environment exists.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / os.environ.get("MLFLOW_PAIRS_VENV", ".venv")
STAMP = VENV / ".mlflow-pairs-installed"
# torch goes first and pinned: 2.13.0 is the CPU wheel; an unpinned torch pulls a
# multi-GB CUDA build. The package itself accepts a range that 2.13.0 satisfies.
TORCH_SPEC = os.environ.get("TORCH_SPEC", "torch==2.13.0")
PLUGINS = ("plugins/mlflow-pairs-technology", "plugins/mlflow-pairs-energy")
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432"
IS_WINDOWS = sys.platform == "win32"
USAGE = __doc__ or ""


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def say(message: str) -> None:
    print(f"dev: {message}", file=sys.stderr, flush=True)


def venv_bin(name: str) -> Path:
    """A program of the environment: Scripts\\name.exe on Windows, bin/name elsewhere."""
    if IS_WINDOWS:
        return VENV / "Scripts" / f"{name}.exe"
    return VENV / "bin" / name


def run(command: Sequence[str | Path], *, check: bool = True) -> int:
    """Run ``command`` in the checkout; a failure ends this script with its status."""
    status = subprocess.call([str(part) for part in command], cwd=ROOT)
    if check and status != 0:
        raise SystemExit(status)
    return status


def hand_over(command: Sequence[str | Path]) -> int:
    """Run ``command`` as the rest of this script: in its place on POSIX (signals reach it
    as they would), as a child whose status is returned on Windows."""
    args = [str(part) for part in command]
    os.chdir(ROOT)
    if IS_WINDOWS:
        try:
            return subprocess.call(args)
        except KeyboardInterrupt:  # the child got Ctrl-C too and has ended
            return 130
    os.execv(args[0], args)  # noqa: S606 - the argument list is ours
    return 0  # not reached


def _stale() -> bool:
    if not STAMP.is_file():
        return True
    installed = STAMP.stat().st_mtime
    projects = [ROOT / "pyproject.toml", *(ROOT / p / "pyproject.toml" for p in PLUGINS)]
    return any(p.stat().st_mtime > installed for p in projects if p.is_file())


def setup() -> Path:
    """Create or refresh the environment; return its Python."""
    python = venv_bin("python")
    if not python.is_file():
        interpreter = os.environ.get("PYTHON") or sys.executable
        say(f"creating {VENV.name} with {interpreter}")
        run([interpreter, "-m", "venv", VENV])
    if _stale():
        pip: list[str | Path] = [python, "-m", "pip", "install", "-q"]
        run([*pip, "--upgrade", "pip", "setuptools", "wheel"])
        index = os.environ.get("TORCH_INDEX_URL")
        run([*pip, TORCH_SPEC, *(["--index-url", index] if index else [])])
        run([*pip, "-e", ".[dev]"])
        # The sector plugins are separate distributions, installed like a user would.
        run([*pip, *(arg for p in PLUGINS for arg in ("-e", p))])
        STAMP.touch()
    return python


def _pg_url() -> str:
    return os.environ.get("MLFLOW_PAIRS_TEST_PG_URL") or DEFAULT_PG_URL


def _pg_address() -> tuple[str, int]:
    parts = urlsplit(_pg_url())
    return parts.hostname or "127.0.0.1", parts.port or 5432


def _answers(host: str, port: int) -> bool:
    if shutil.which("pg_isready"):
        check = ["pg_isready", "-q", "-h", host, "-p", str(port)]
        return subprocess.call(check, stderr=subprocess.DEVNULL) == 0
    try:
        with socket.create_connection((host, port), timeout=3):
            return True
    except OSError:
        return False


def _start_local_cluster() -> bool:
    """Start this machine's cluster the Debian way (pg_ctlcluster); whether it was tried."""
    if not shutil.which("pg_ctlcluster"):
        return False
    versions = sorted(
        (p.name for p in Path("/etc/postgresql").glob("*") if p.name.isdigit()), key=int
    )
    version = versions[-1] if versions else "15"
    say(f"starting PostgreSQL {version} (pg_ctlcluster)")
    run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"], check=False)
    return True


def ensure_postgres() -> None:
    """Make sure the tests' PostgreSQL answers: start the local cluster when it is down.

    Without one, the PostgreSQL tests are skipped (outside CI) or fail (in CI).
    """
    if _pg_url().strip().lower() == "off":
        say('no PostgreSQL (MLFLOW_PAIRS_TEST_PG_URL=off): deselect its tests, -m "not postgres"')
        return
    host, port = _pg_address()
    if _answers(host, port):
        return
    say(f"PostgreSQL is not answering on {host}:{port}")
    if host in ("127.0.0.1", "localhost", "::1") and port == 5432 and _start_local_cluster():
        for _ in range(60):
            if _answers(host, port):
                return
            time.sleep(1)
    message = (
        f"no PostgreSQL on {host}:{port}: its tests will be "
        + ("failed (CI)" if in_ci() else "skipped")
        + "; set MLFLOW_PAIRS_TEST_PG_URL to use another server"
    )
    if in_ci():
        say(message)
        raise SystemExit(1)
    say(message)


def lint(python: Path) -> None:
    run([python, "-m", "ruff", "check", "."])
    run([python, "-m", "ruff", "format", "--check", "."])
    for platform in ("linux", "win32", "darwin"):
        # A cache per platform: one shared cache would be rebuilt by every run.
        cache = ROOT / ".mypy_cache" / platform
        run([python, "-m", "mypy", "--platform", platform, "--cache-dir", cache])
    actionlint = venv_bin("actionlint")
    workflows = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))
    if not workflows:
        return
    if actionlint.is_file():
        run([actionlint, *(w.relative_to(ROOT).as_posix() for w in workflows)])
    elif in_ci():
        say("actionlint is not installed (the dev extra brings it where it has a wheel)")
        raise SystemExit(1)
    else:
        say("actionlint is not installed here: the workflows were not checked")


def main(argv: list[str]) -> int:
    command, args = (argv[0], argv[1:]) if argv else ("", [])
    if command == "run":
        setup()
        # The main job: walk-forward train on the bundled sample, embedded store.
        return hand_over([venv_bin("mlflow-pairs"), *(args or ["train"])])
    if command == "test":
        python = setup()
        ensure_postgres()
        lint(python)
        return hand_over([python, "-m", "pytest", *args])
    if command == "lint":
        lint(setup())
        return 0
    if command == "setup":
        setup()
        return 0
    print(USAGE.strip(), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
