from __future__ import annotations

import logging
import uuid

import pytest

from mlflow_pairs.secrets import (
    install_log_redaction,
    is_secret_name,
    mask_uri,
    redact,
    register_secret,
)


@pytest.mark.parametrize(
    ("uri", "masked"),
    [
        (
            "postgresql://postgres:pw@localhost/mlflow_db",
            "postgresql://postgres:***@localhost/mlflow_db",
        ),
        ("postgresql+psycopg2://u:p%40ss@h:5432/d", "postgresql+psycopg2://u:***@h:5432/d"),
        ("postgresql://postgres@localhost/mlflow_db", "postgresql://postgres@localhost/mlflow_db"),
        ("http://admin:token@host:5000", "http://admin:***@host:5000"),
        ("sqlite:///mlruns/mlflow.db", "sqlite:///mlruns/mlflow.db"),
        ("http://localhost:5000", "http://localhost:5000"),
    ],
)
def test_mask_uri(uri: str, masked: str) -> None:
    assert mask_uri(uri) == masked


def test_mask_uri_inside_text() -> None:
    text = "cannot reach postgresql://a:b@c/d, giving up"
    assert redact(text) == "cannot reach postgresql://a:***@c/d, giving up"


def test_registered_secret_is_redacted_anywhere() -> None:
    secret = f"sec-{uuid.uuid4().hex}"
    assert redact(f"x {secret} y") == f"x {secret} y"
    register_secret(secret)
    assert redact(f"x {secret} y") == "x *** y"


def test_short_values_are_not_treated_as_secrets() -> None:
    register_secret("ab")
    assert redact("abc ab") == "abc ab"


def test_secret_names() -> None:
    assert is_secret_name("MLFLOW_DB_PASSWORD")
    assert is_secret_name("MLFLOW_TRACKING_TOKEN")
    assert not is_secret_name("MLFLOW_TRACKING_URI")


def test_log_records_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    secret = f"logsecret-{uuid.uuid4().hex}"
    register_secret(secret)
    install_log_redaction()
    with caplog.at_level(logging.INFO):
        logging.getLogger("some.library").info(
            "connecting with %s to postgresql://u:%s@h/d", secret, "pw123"
        )
    assert secret not in caplog.text
    assert "pw123" not in caplog.text
    assert "***" in caplog.text
