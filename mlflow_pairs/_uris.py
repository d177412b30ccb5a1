"""The tracking, registry, store and artifact URIs of the configuration, normalised.

Pure functions of their arguments and the working directory: nothing here touches the
file system. :func:`prepare_sqlite_folder` is the one exception, and says so: it checks
that a SQLite store's folder exists and creates only the embedded default's ``./mlruns``.

Paths follow the platform's rules by default; pass ``cwd`` as a
:class:`~pathlib.PureWindowsPath` or :class:`~pathlib.PurePosixPath` to apply the other
platform's (the tests check Windows paths such as ``C:\\mlruns`` this way on Linux).
Windows paths are written with forward slashes inside URIs (``sqlite:///C:/mlruns/mlflow.db``,
``file:///C:/mlruns``), as MLflow and SQLAlchemy read them on every platform.
"""

from __future__ import annotations

import ntpath
import posixpath
import re
from pathlib import Path, PurePath, PureWindowsPath
from urllib.parse import unquote, urlparse

from mlflow_pairs.errors import ConfigError

__all__ = [
    "EMBEDDED_STORE_FOLDER",
    "absolute_artifact_root",
    "absolute_path",
    "is_database_uri",
    "is_http_uri",
    "is_windows_drive_path",
    "normalise_store_uri",
    "prepare_sqlite_folder",
    "sqlite_path",
]

#: The folder of the embedded default store (``sqlite:///mlruns/mlflow.db``), relative to
#: the working directory: the only folder a store URI makes this package create.
EMBEDDED_STORE_FOLDER = "mlruns"

_DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")
# "C:\x" or "C:/x": urlparse takes the drive letter for a scheme.
_DRIVE_PATH = re.compile(r"^[A-Za-z]:[\\/]")
# "sqlite:///x" and "sqlite+pysqlite:///x": the database follows the third slash.
_SQLITE = re.compile(r"^(?P<scheme>sqlite(?:\+\w+)?)://(?P<rest>.*)$", re.DOTALL)


def is_http_uri(uri: str) -> bool:
    return urlparse(uri).scheme in ("http", "https")


def is_windows_drive_path(text: str) -> bool:
    """Whether ``text`` starts like ``C:\\`` or ``C:/`` (a path, not a URI scheme)."""
    return bool(_DRIVE_PATH.match(text))


def is_database_uri(uri: str) -> bool:
    if is_windows_drive_path(uri):
        return False
    scheme = urlparse(uri).scheme
    return scheme.split("+", 1)[0] in _DATABASE_SCHEMES


def _is_windows(cwd: PurePath) -> bool:
    return isinstance(cwd, PureWindowsPath)


def absolute_path(path: str, cwd: PurePath | None = None) -> PurePath:
    """``path`` made absolute against ``cwd`` (default: the working directory), with
    ``.`` and ``..`` removed lexically; ``~`` is expanded for the running platform's paths.
    """
    base = Path.cwd() if cwd is None else cwd
    flavour = type(base)
    given = Path(path).expanduser() if isinstance(base, Path) else flavour(path)
    joined = base / given  # an absolute ``path`` replaces ``base`` whole
    module = ntpath if _is_windows(base) else posixpath
    return flavour(module.normpath(str(joined)))


def _uri_path(path: PurePath) -> str:
    """How ``path`` is written inside a URI: Windows paths with forward slashes."""
    return path.as_posix()


def sqlite_path(uri: str, cwd: PurePath | None = None) -> PurePath | None:
    """The absolute file of a SQLite URI; None for another URI or an in-memory database."""
    database = _sqlite_database(uri)
    if database is None:
        return None
    return absolute_path(database, cwd)


def _sqlite_database(uri: str) -> str | None:
    match = _SQLITE.match(uri.strip())
    if match is None:
        return None
    rest = match.group("rest").split("?", 1)[0]
    if not rest.startswith("/"):  # "sqlite://" or "sqlite://host/...": not a file path
        return None
    database = unquote(rest[1:])
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return database


def normalise_store_uri(uri: str, cwd: PurePath | None = None) -> str:
    """A SQLite URI with a relative path made absolute; any other URI unchanged.

    ``sqlite:///mlruns/mlflow.db`` becomes ``sqlite:////work/mlruns/mlflow.db`` (or
    ``sqlite:///C:/work/mlruns/mlflow.db``), so every process that opens it reaches the same
    file; the query string is kept as written. Creates nothing.
    """
    match = _SQLITE.match(uri.strip())
    path = sqlite_path(uri, cwd)
    if match is None or path is None:
        return uri
    query = match.group("rest").partition("?")[2]
    # Only what SQLAlchemy would read differently is encoded: '%' and '?'.
    written = _uri_path(path).replace("%", "%25").replace("?", "%3F")
    return f"{match.group('scheme')}:///{written}" + (f"?{query}" if query else "")


def prepare_sqlite_folder(uri: str, what: str) -> None:
    """Make sure the folder of a SQLite store exists before SQLite is asked to open it.

    The embedded default's folder (``./mlruns``) is created; any other missing folder is a
    :class:`~mlflow_pairs.errors.ConfigError` naming ``what`` (the setting), the file and
    the folder, so a mistyped path is reported instead of created. Other URIs pass.
    """
    path = sqlite_path(uri)
    if path is None:
        return
    folder = Path(path.parent)
    if folder.is_dir():
        return
    if folder == Path.cwd() / EMBEDDED_STORE_FOLDER:
        folder.mkdir(exist_ok=True)
        return
    raise ConfigError(
        f"{what}: the folder {folder} of SQLite store {path.name} does not exist "
        "(create it, or correct the path)"
    )


def absolute_artifact_root(root: str, cwd: PurePath | None = None) -> str:
    """A local artifact root as an absolute ``file://`` URI; remote roots unchanged.

    ``file:./mlruns`` and ``./mlruns`` become ``file:///work/mlruns``; on Windows
    ``C:\\mlruns``, ``C:/mlruns`` and ``file:///C:/mlruns`` all become ``file:///C:/mlruns``
    and ``\\\\server\\share\\runs`` becomes ``file://server/share/runs``. Creates nothing.
    """
    base = Path.cwd() if cwd is None else cwd
    if is_windows_drive_path(root) or root.startswith("\\\\"):
        path = root
    else:
        parsed = urlparse(root)
        if parsed.scheme not in ("", "file"):
            return root
        path = root if parsed.scheme == "" else _file_uri_path(parsed.netloc, parsed.path, root)
    return absolute_path(path, base).as_uri()


def _file_uri_path(netloc: str, path: str, root: str) -> str:
    """The local path of ``file:`` URI ``root`` (``file:./x``, ``file:///x``, ``file://h/x``)."""
    if not root.startswith("file://"):  # "file:./mlruns", "file:mlruns": relative
        return unquote(root[len("file:") :])
    path = unquote(path)
    if re.match(r"^/[A-Za-z]:", path):  # file:///C:/mlruns
        return path[1:]
    if netloc and netloc != "localhost":  # file://server/share/x: a Windows share
        return f"//{netloc}{path}"
    return path
