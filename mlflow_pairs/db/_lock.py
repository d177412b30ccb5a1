"""One lock for every schema change this package makes to a database.

A file lock (``filelock``: ``flock`` on POSIX, ``msvcrt.locking`` on Windows) serialises
processes on this machine; on PostgreSQL an advisory lock, held on its own connection,
serialises processes on any machine. MLflow's own first-time table creation takes no lock
in its model-registry store, so two processes opening a fresh database at once can
collide; this package creates MLflow's tables under this lock first.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path

import filelock
import sqlalchemy as sa

from mlflow_pairs.db._engine import make_engine
from mlflow_pairs.secrets import mask_uri

__all__ = ["migration_lock"]

logger = logging.getLogger(__name__)

# pg_advisory_lock key: "mlpairs" in ASCII, as a bigint.
_LOCK_KEY = int.from_bytes(b"mlpairs", "big")


def lock_path(uri: str) -> Path:
    """The lock file of the database of ``uri`` (in the temporary folder)."""
    digest = hashlib.sha256(uri.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"mlflow-pairs-migrate-{digest}.lock"


@contextlib.contextmanager
def _file_lock(uri: str) -> Iterator[None]:
    lock = filelock.FileLock(lock_path(uri))
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        logger.info(
            "waiting for another process changing the schema of %s to finish", mask_uri(uri)
        )
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


@contextlib.contextmanager
def migration_lock(uri: str, *, timeout: float = 10.0) -> Iterator[None]:
    """Hold the schema-change lock of the database of ``uri`` (not re-entrant)."""
    with _file_lock(uri):
        if sa.engine.make_url(uri).get_backend_name() != "postgresql":
            yield
            return
        engine = make_engine(uri, timeout=timeout)
        try:
            with engine.connect() as connection:
                connection.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _LOCK_KEY})
                connection.commit()
                try:
                    yield
                finally:
                    connection.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK_KEY})
                    connection.commit()
        finally:
            engine.dispose()
