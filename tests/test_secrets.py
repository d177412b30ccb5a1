from __future__ import annotations

import json
import logging
import os
import random
import string
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote, quote_plus, unquote

import pytest

from mlflow_pairs import secrets as secrets_module
from mlflow_pairs.secrets import (
    install_log_redaction,
    is_secret_name,
    mask_uri,
    redact,
    register_secret,
    register_uri_password,
)
from tests.conftest import pairs_cli, write_config


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


# -- passwords with URI delimiters ------------------------------------------------------


def _long_random_password() -> str:
    rng = random.Random(20240611)  # fixed: a failure must be reproducible
    specials = list("@:/%#?&+ ")
    body = rng.choices(string.ascii_letters + string.digits + "@:/%#?&+ ", k=40)
    chars = specials + body
    rng.shuffle(chars)
    # A leading or trailing space would not survive a .env file; keep it inside.
    return "L" + "".join(chars) + "z"


#: Characters a Windows user's password often holds, special to cmd.exe (^ % ! & ") or to
#: quoted text (" and \\, escaped by repr() and JSON).
WINDOWS_PASSWORD = 'Wi^n%d!"o\\ws&10'

#: Each holds characters that delimit a URI: unencoded they broke the masking.
PASSWORDS = [
    "Sp3c@l:pw/x%41",
    "a:b@c/d?e#f",
    "p%40ss word+&x",
    _long_random_password(),
    WINDOWS_PASSWORD,
]
PASSWORD_IDS = ["at-sign", "delimiters", "percent", "long", "windows"]
#: The same without whitespace: a URI pattern alone can delimit them.
URI_SAFE_PASSWORDS = [p for p in PASSWORDS if " " not in p]
URI_SAFE_IDS = [i for p, i in zip(PASSWORDS, PASSWORD_IDS, strict=True) if " " not in p]


def _forms(password: str) -> list[str]:
    """The password as typed, as it is written inside a URI, and as repr() and JSON write
    it between quotes."""
    plain = [password, quote(password, safe=""), quote_plus(password), quote(password)]
    return plain + [repr(p)[1:-1] for p in plain] + [json.dumps(p)[1:-1] for p in plain]


def leaked(password: str, text: str, innocent: str = "") -> list[str]:
    """The pieces of ``password``, any form, four characters or more, found in ``text``.

    Pieces also found in ``innocent`` (the same command's output for another password)
    are ordinary text, such as " wor" of "workers" for a password holding " word".
    """
    found = set()
    for form in _forms(password):
        for start in range(len(form) - 3):
            piece = form[start : start + 4]  # every longer piece holds one of these
            if piece in text and piece not in innocent:
                found.add(piece)
    return sorted(found)


@pytest.fixture
def no_registered_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget the secrets other tests registered: the URI pattern alone must do."""
    monkeypatch.setattr(secrets_module, "_secrets", set())


@pytest.mark.usefixtures("no_registered_secrets")
@pytest.mark.parametrize("password", URI_SAFE_PASSWORDS, ids=URI_SAFE_IDS)
@pytest.mark.parametrize("encode", [False, True], ids=["raw", "encoded"])
def test_mask_uri_hides_every_character_of_the_password(password: str, encode: bool) -> None:
    written = quote(password, safe="") if encode else password
    uri = f"postgresql://auditsec:{written}@127.0.0.1:5544/mlflow_db"
    assert mask_uri(uri) == "postgresql://auditsec:***@127.0.0.1:5544/mlflow_db"
    text = f"cannot reach {uri}, giving up"
    assert (
        redact(text) == "cannot reach postgresql://auditsec:***@127.0.0.1:5544/mlflow_db, giving up"
    )


@pytest.mark.usefixtures("no_registered_secrets")
def test_mask_uri_stops_at_the_end_of_the_uri() -> None:
    text = "from postgresql://u:p@ss@h/d to http://h2/x?mail=a@b and sqlite:///x@y.db"
    assert redact(text) == (
        "from postgresql://u:***@h/d to http://h2/x?mail=a@b and sqlite:///x@y.db"
    )


@pytest.mark.parametrize("password", PASSWORDS, ids=PASSWORD_IDS)
def test_registered_password_is_hidden_in_every_form(password: str) -> None:
    register_secret(password)
    for form in _forms(password):
        uri = f"postgresql://auditsec:{form}@127.0.0.1:5544/mlflow_db"
        for text in (
            f"secret {form}!",
            f"connecting to {uri} failed",
            f"{uri} with pw={form}",
            f'{{"uri": "{uri}", "pw": "{form}"}}',
        ):
            cleaned = redact(text)
            assert not leaked(password, cleaned), (text, cleaned)
            assert "127.0.0.1:5544/mlflow_db" in cleaned or uri not in text
    # mask_uri alone also knows the registered password (a space ends a URI pattern).
    masked = mask_uri(f"postgresql://auditsec:{password}@127.0.0.1:5544/mlflow_db")
    assert not leaked(password, masked), masked


@pytest.mark.parametrize("password", PASSWORDS, ids=PASSWORD_IDS)
def test_password_of_a_uri_is_registered_as_written(password: str) -> None:
    # Partly encoded, as a user may type it: only the space. The suffix makes a secret that
    # no other test registered.
    written = password.replace(" ", "%20") + "-as-written"
    uri = f"postgresql://auditsec:{written}@127.0.0.1:1/mlflow_db"
    register_uri_password(uri)
    assert redact(f"pw {written} or {unquote(written)}") == "pw *** or ***"
    assert mask_uri(uri) == "postgresql://auditsec:***@127.0.0.1:1/mlflow_db"


def test_password_with_a_space_in_a_uri_is_registered() -> None:
    uri = "postgresql://auditsec:p%40ss w0rd-as-typed@127.0.0.1:1/mlflow_db"
    register_uri_password(uri)
    assert mask_uri(uri) == "postgresql://auditsec:***@127.0.0.1:1/mlflow_db"
    assert redact("p@ss w0rd-as-typed") == "***"


@pytest.mark.parametrize("password", PASSWORDS, ids=PASSWORD_IDS)
def test_a_password_written_with_escapes_is_hidden(password: str) -> None:
    """repr() (``{value!r}`` in a message) and JSON write a backslash or quote escaped."""
    register_secret(password)
    uri = f"postgresql://u:{quote(password, safe='')}@h/d"
    for text in (
        f"bad value {password!r}",
        json.dumps({"pw": password}),
        json.dumps({"pw": password}, ensure_ascii=False),
        repr({"uri": f"postgresql://u:{password}@h/d", "pw": password}),
        repr([uri, unquote(uri)]),
    ):
        cleaned = redact(text)
        assert not leaked(password, cleaned), (text, cleaned)


def test_windows_password_is_masked_in_a_uri_without_registration(
    no_registered_secrets: None,
) -> None:
    for written in (WINDOWS_PASSWORD, quote(WINDOWS_PASSWORD, safe="")):
        uri = f"postgresql://ana:{written}@127.0.0.1:5432/mlflow_db"
        assert mask_uri(uri) == "postgresql://ana:***@127.0.0.1:5432/mlflow_db"


def test_short_secrets_are_not_registered_in_any_form() -> None:
    register_secret("a@")  # quoted: "a%40", long enough, but the secret itself is not
    assert redact("a%40 a@ and a@b") == "a%40 a@ and a@b"


@pytest.mark.parametrize("password", PASSWORDS, ids=PASSWORD_IDS)
def test_log_records_hide_passwords_with_uri_delimiters(
    password: str, caplog: pytest.LogCaptureFixture
) -> None:
    register_secret(password)
    install_log_redaction()
    with caplog.at_level(logging.INFO):
        logging.getLogger("some.library").warning(
            "connecting to postgresql://u:%s@h/d and postgresql://u:%s@h/d",
            password,
            quote(password, safe=""),
        )
    assert not leaked(password, caplog.text), caplog.text


# -- through the command line -----------------------------------------------------------

#: Nothing listens on port 1: connections fail at once.
_UNREACHABLE = "127.0.0.1:1"


def _commands(tmp_path: Path, password: str) -> tuple[list[list[str]], dict[str, str]]:
    """Every command that prints the store URI or connects to it, and their environment."""
    store = f"postgresql://auditsec:${{MLFLOW_DB_PASSWORD}}@{_UNREACHABLE}/mlflow_db"
    config = write_config(
        tmp_path / "config.yaml",
        {"mlflow": {"tracking_uri": store, "backend_store_uri": store}},
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_DB_PASSWORD"] = password
    # What the README tells a user to type: the password percent-encoded.
    typed_uri = f"postgresql://auditsec:{quote(password, safe='')}@{_UNREACHABLE}/mlflow_db"
    # What a user who forgot to encode it types (a space would end the URI: not valid).
    raw_uri = f"postgresql://auditsec:{password.replace(' ', '%20')}@{_UNREACHABLE}/mlflow_db"
    base = ["--config", str(config)]
    commands = [
        [*base, "config", "show"],
        [*base, "config", "show", "--format", "json"],
        [*base, "doctor"],
        [*base, "db", "upgrade"],
        [*base, "db", "current", "--uri", typed_uri],
        [*base, "db", "current", "--uri", raw_uri],
    ]
    return commands, env


def test_cli_never_prints_any_part_of_the_password(tmp_path: Path) -> None:
    """Every password of the table through every command, the password in the environment.

    All run at once, a few processes at a time. A piece of one password also found in the
    output of the same command for the next password is ordinary text (" wor" of
    "workers" for "p%40ss word+&x"), not a leak: the passwords share no piece as typed,
    and a piece they share encoded would be caught as the next password's own leak.
    """
    jobs = []
    for number, password in enumerate(PASSWORDS):
        folder = tmp_path / f"case{number}"
        folder.mkdir()
        commands, env = _commands(folder, password)
        jobs += [(args, env, folder) for args in commands]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda job: pairs_cli(*job[0], env=job[1], cwd=job[2]), jobs))
    per_password = len(jobs) // len(PASSWORDS)
    outputs = [
        [result.stdout + result.stderr for result in results[start : start + per_password]]
        for start in range(0, len(results), per_password)
    ]
    leaks = []
    for number, password in enumerate(PASSWORDS):
        others = outputs[(number + 1) % len(PASSWORDS)]
        for (args, _, _), output, innocent in zip(
            jobs[number * per_password :], outputs[number], others, strict=False
        ):
            if found := leaked(password, output, innocent):
                leaks.append(f"{password!r}: {' '.join(args[2:])} shows {found}:\n{output}")
    assert not leaks, "\n\n".join(leaks)
    masked = f"postgresql://auditsec:***@{_UNREACHABLE}/mlflow_db"
    for shown in outputs:
        assert f"backend_store_uri: {masked}" in shown[0]
        assert f'"backend_store_uri": "{masked}"' in shown[1]
        # The commands that connect reach the right server: the password was parsed whole.
        for output in shown[2:5]:
            assert "connection refused" in output.lower(), output
