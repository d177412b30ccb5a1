"""The URI helpers: Windows and POSIX paths alike, and nothing created by the way."""

from __future__ import annotations

from pathlib import Path, PurePosixPath, PureWindowsPath

import pytest

from mlflow_pairs._uris import (
    absolute_artifact_root,
    is_database_uri,
    is_http_uri,
    normalise_store_uri,
    prepare_sqlite_folder,
    sqlite_path,
)
from mlflow_pairs.errors import ConfigError
from mlflow_pairs.secrets import mask_uri
from tests.conftest import pairs_cli, write_config

WINDOWS_CWD = PureWindowsPath("C:/Users/ana/work")
POSIX_CWD = PurePosixPath("/home/ana/work")


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("sqlite:///C:/mlruns/mlflow.db", "sqlite:///C:/mlruns/mlflow.db"),
        ("sqlite:///C:\\mlruns\\mlflow.db", "sqlite:///C:/mlruns/mlflow.db"),
        ("sqlite:///D:/data/../mlruns/mlflow.db", "sqlite:///D:/mlruns/mlflow.db"),
        ("sqlite:///mlruns/mlflow.db", "sqlite:///C:/Users/ana/work/mlruns/mlflow.db"),
        ("sqlite:///mlruns\\mlflow.db", "sqlite:///C:/Users/ana/work/mlruns/mlflow.db"),
        ("sqlite:///my runs/mlflow.db", "sqlite:///C:/Users/ana/work/my runs/mlflow.db"),
        ("sqlite:///C:/mlruns/mlflow.db?timeout=20", "sqlite:///C:/mlruns/mlflow.db?timeout=20"),
        ("sqlite:///\\\\server\\share\\mlflow.db", "sqlite://///server/share/mlflow.db"),
        ("sqlite://", "sqlite://"),
        ("sqlite:///:memory:", "sqlite:///:memory:"),
        ("postgresql://u:p%40ss@db/mlflow_db", "postgresql://u:p%40ss@db/mlflow_db"),
        ("http://localhost:5000", "http://localhost:5000"),
    ],
)
def test_store_uris_on_windows(uri: str, expected: str) -> None:
    assert normalise_store_uri(uri, WINDOWS_CWD) == expected


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("sqlite:///mlruns/mlflow.db", "sqlite:////home/ana/work/mlruns/mlflow.db"),
        ("sqlite:////var/lib/mlflow.db", "sqlite:////var/lib/mlflow.db"),
        ("sqlite+pysqlite:///./a/../b.db", "sqlite+pysqlite:////home/ana/work/b.db"),
        # Only what SQLAlchemy would read differently is encoded.
        ("sqlite:///100%25 sure.db", "sqlite:////home/ana/work/100%25 sure.db"),
        ("sqlite:///x.db?mode=ro", "sqlite:////home/ana/work/x.db?mode=ro"),
    ],
)
def test_store_uris_on_posix(uri: str, expected: str) -> None:
    assert normalise_store_uri(uri, POSIX_CWD) == expected


def test_a_normalised_sqlite_uri_names_the_same_file_for_sqlalchemy() -> None:
    from sqlalchemy.engine import make_url

    for uri in ("sqlite:///C:\\my%20runs\\100%25.db", "sqlite:///relative dir/x.db"):
        database = make_url(normalise_store_uri(uri, WINDOWS_CWD)).database
        assert database is not None
        assert PureWindowsPath(database) == sqlite_path(uri, WINDOWS_CWD)


@pytest.mark.parametrize(
    ("root", "expected"),
    [
        ("file:./mlruns", "file:///C:/Users/ana/work/mlruns"),
        ("./mlruns", "file:///C:/Users/ana/work/mlruns"),
        ("mlruns", "file:///C:/Users/ana/work/mlruns"),
        ("file:///C:/mlruns", "file:///C:/mlruns"),
        ("file:///c:/My%20Runs", "file:///c:/My%20Runs"),
        ("C:\\mlruns", "file:///C:/mlruns"),
        ("C:/mlruns", "file:///C:/mlruns"),
        ("D:\\data\\..\\artifacts", "file:///D:/artifacts"),
        ("\\\\server\\share\\mlruns", "file://server/share/mlruns"),
        ("file://server/share/mlruns", "file://server/share/mlruns"),
        ("s3://bucket/mlruns", "s3://bucket/mlruns"),
        ("mlflow-artifacts:/", "mlflow-artifacts:/"),
    ],
)
def test_artifact_roots_on_windows(root: str, expected: str) -> None:
    assert absolute_artifact_root(root, WINDOWS_CWD) == expected


@pytest.mark.parametrize(
    ("root", "expected"),
    [
        ("file:./mlruns", "file:///home/ana/work/mlruns"),
        ("./mlruns", "file:///home/ana/work/mlruns"),
        ("file:///srv/mlruns", "file:///srv/mlruns"),
        ("file://localhost/srv/mlruns", "file:///srv/mlruns"),
        ("file:///srv/my%20runs", "file:///srv/my%20runs"),
        ("/srv/my runs", "file:///srv/my%20runs"),
        ("gs://bucket/x", "gs://bucket/x"),
    ],
)
def test_artifact_roots_on_posix(root: str, expected: str) -> None:
    assert absolute_artifact_root(root, POSIX_CWD) == expected


def test_a_drive_letter_is_a_path_not_a_scheme() -> None:
    assert not is_database_uri("C:\\mlruns\\mlflow.db")
    assert not is_http_uri("C:/mlruns")
    assert is_database_uri("sqlite:///C:/mlruns/mlflow.db")
    assert is_database_uri("postgresql+psycopg2://u@h/d")
    assert is_http_uri("https://mlflow.example.com")


def test_windows_uris_are_shown_unchanged_by_masking() -> None:
    for uri in ("sqlite:///C:/mlruns/mlflow.db", "file:///C:/mlruns", "C:\\data\\prices.csv"):
        assert mask_uri(uri) == uri


def test_the_helpers_create_nothing(clean_env: Path) -> None:
    normalise_store_uri("sqlite:///mlruns/mlflow.db")
    normalise_store_uri("sqlite:///typo/deeper/mlflow.db")
    absolute_artifact_root("file:./artifacts")
    assert list(clean_env.iterdir()) == []


def test_only_the_embedded_default_folder_is_created(clean_env: Path) -> None:
    prepare_sqlite_folder(normalise_store_uri("sqlite:///mlruns/mlflow.db"), "mlflow.tracking_uri")
    assert (clean_env / "mlruns").is_dir()
    prepare_sqlite_folder("postgresql://u@h/d", "mlflow.tracking_uri")  # not a file: passes
    with pytest.raises(ConfigError) as info:
        prepare_sqlite_folder(
            normalise_store_uri("sqlite:///mlrun/sub/mlflow.db"), "mlflow.tracking_uri"
        )
    message = str(info.value)
    assert message.startswith("mlflow.tracking_uri: the folder ")
    assert str(clean_env / "mlrun" / "sub") in message
    assert "does not exist" in message
    assert info.value.exit_code == 2
    assert not (clean_env / "mlrun").exists()


def test_a_mistyped_sqlite_folder_is_one_line_exit_2_and_creates_nothing(
    clean_env: Path,
) -> None:
    config = write_config(
        clean_env / "config.yaml",
        {"mlflow": {"tracking_uri": "sqlite:///mlrnus/nested/mlflow.db"}},
    )
    result = pairs_cli("--config", str(config), "models", "list", cwd=clean_env)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "mlflow.tracking_uri: the folder" in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in clean_env.iterdir()) == ["config.yaml"]
