"""A full disk as one line naming where, instead of whatever layer met it first.

A run writes to three places on this machine: the artifact root (a ``file:`` root),
the temporary folder (tables, plots and the model are written there before MLflow copies
them) and a SQLite store's file. When one of them fills up, the error may surface as an
``OSError`` (errno ``ENOSPC``), SQLite's "database or disk is full", or an MLflow
exception wrapping either. :func:`no_space_error` recognises them and names the full
file system, its free space and the setting that points there.

Through a tracking server the disk that fills is the server's. MLflow's client retries
the server's HTTP 500 answers (and the connections it then closes) for minutes and then
reports "too many 500 error responses" or a reset connection; that is told as what it
most likely is, naming the server (its log says which). A server that answers with the
reason ("No space left on device") is reported as a full disk.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from mlflow_pairs.errors import MlflowPairsError, NoSpaceError, TrackingConnectionError
from mlflow_pairs.secrets import mask_uri, redact

if TYPE_CHECKING:
    from mlflow_pairs.tracking.connection import MlflowConnection

__all__ = ["format_bytes", "free_bytes", "mount_point", "no_space_error", "storage_errors"]

_FULL_TEXTS = ("no space left on device", "database or disk is full", "disk quota exceeded")
_FULL_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def format_bytes(count: float) -> str:
    """``0 B``, ``512 KB``, ``3.2 MB``, ``1.5 GB`` (powers of 1024)."""
    for unit in ("B", "KB", "MB", "GB"):
        if abs(count) < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit in ("B", "KB") else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GB"  # pragma: no cover - the loop returns


def _existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def mount_point(path: str | os.PathLike[str]) -> Path:
    """The mount point of the file system holding ``path`` (or its nearest existing
    parent)."""
    current = _existing(Path(path))
    while not os.path.ismount(current) and current != current.parent:
        current = current.parent
    return current


def free_bytes(path: str | os.PathLike[str]) -> int | None:
    """Bytes free for this user on the file system holding ``path``; ``None`` when that
    cannot be told."""
    try:
        return shutil.disk_usage(_existing(Path(path))).free
    except OSError:
        return None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < 8:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _local_path(uri: str | None) -> Path | None:
    if not uri:
        return None
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme.startswith("sqlite"):
        from sqlalchemy.engine import make_url

        database = make_url(uri).database
        return Path(database) if database and database != ":memory:" else None
    if not parsed.scheme:
        return Path(uri)
    return None


def _places(connection: MlflowConnection | None) -> list[tuple[str, Path]]:
    """(what it is, path) for each local place a run writes to."""
    from mlflow_pairs._uris import absolute_artifact_root, is_http_uri

    places: list[tuple[str, Path]] = []
    if connection is not None:
        if not is_http_uri(connection.tracking_uri):
            root = _local_path(absolute_artifact_root(connection.settings.mlflow.artifact_root))
            if root is not None:
                places.append((f"mlflow.artifact_root {root.as_uri()}", root))
        store = _local_path(connection.tracking_uri)
        if store is not None and connection.tracking_uri.startswith("sqlite"):
            places.append((f"the tracking store {store}", store))
    places.append(("the temporary folder (TMPDIR)", Path(tempfile.gettempdir())))
    return places


def _describe(paths: list[Path], connection: MlflowConnection | None) -> str:
    """``no space left on MOUNT (FREE free, writing PATH; SETTING)``: the file system of
    the file the error names (the one being written first), else of the place the run
    writes to that is (nearly) full."""
    places = _places(connection)
    written: Path | None = paths[0] if paths else None
    where = written
    if where is None:
        measured = [(free_bytes(p), p) for _, p in places]
        full = [(free, p) for free, p in measured if free is not None and free < 1024 * 1024]
        if not full:
            return (
                "no space left on device (the error names no file, and the places this run "
                "writes to have room)"
            )
        where = min(full, key=lambda item: item[0])[1]
    what = next((w for w, p in places if _within(where, p)), "")
    details = f"{format_bytes(free_bytes(where) or 0)} free"
    if written is not None:
        details += f", writing {written}"
    if what:
        details += f"; {what}"
    return f"no space left on {mount_point(where)} ({details})"


def _within(path: Path, folder: Path) -> bool:
    try:
        path.absolute().relative_to(folder.absolute())
    except ValueError:
        return False
    return True


def no_space_error(
    exc: BaseException, connection: MlflowConnection | None = None
) -> MlflowPairsError | None:
    """A one-line error for ``exc`` when it (or what caused it) is a full disk: a
    :class:`NoSpaceError` naming the full file system; or, through a tracking server whose
    artifact uploads kept failing with HTTP 500, a :class:`TrackingConnectionError` saying
    so. ``None`` for anything else."""
    for error in _chain(exc):
        if isinstance(error, OSError) and error.errno in _FULL_ERRNOS:
            paths = [Path(os.fsdecode(p)) for p in (error.filename2, error.filename) if p]
            return NoSpaceError(_describe(paths, connection))
    text = " ".join(str(error) for error in _chain(exc)).lower()
    server = connection is not None and connection.tracking_uri.startswith("http")
    if any(full in text for full in _FULL_TEXTS):
        if server and connection is not None:
            return NoSpaceError(
                f"no space left on the tracking server {mask_uri(connection.tracking_uri)}'s "
                "artifact store (it answered: No space left on device)"
            )
        if "database or disk is full" in text and connection is not None:
            store = _local_path(connection.tracking_uri)
            return NoSpaceError(_describe([store] if store else [], connection))
        return NoSpaceError(_describe([], connection))
    # A server whose artifact store refuses a write answers HTTP 500 and may close the
    # connection: MLflow's client ends with one or the other after its retries.
    refused = "too many 500 error responses" in text or "reset by peer" in text
    if server and connection is not None and refused and "mlflow-artifacts/artifacts" in text:
        kind = "HTTP 500" if "too many 500 error responses" in text else "connection reset"
        return TrackingConnectionError(
            f"the tracking server {mask_uri(connection.tracking_uri)} failed every try of "
            f"storing this run's artifacts ({kind}, after MLflow's retries): its artifact "
            "store is probably full or not writable (its log says which)"
        )
    return None


@contextlib.contextmanager
def storage_errors(connection: MlflowConnection | None) -> Iterator[None]:
    """Turn a full disk met inside the block into :func:`no_space_error`'s one line."""
    from mlflow_pairs.tracking.connection import LEFT_RUNNING

    try:
        yield
    except MlflowPairsError:
        raise
    except Exception as exc:
        error = no_space_error(exc, connection)
        if error is None:
            raise
        left = getattr(exc, LEFT_RUNNING, None)
        message = f"{error}; {left}" if left else str(error)
        raise type(error)(redact(message)) from exc
