"""Finding, reading, expanding and validating the configuration file."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

import yaml
from pydantic import ValidationError

from mlflow_pairs._text import decode_text
from mlflow_pairs._uris import is_database_uri, normalise_store_uri
from mlflow_pairs.config._schema import Settings
from mlflow_pairs.errors import ConfigError
from mlflow_pairs.secrets import is_secret_name, redact, register_secret, register_uri_password

__all__ = [
    "CONFIG_ENV_VAR",
    "backend_store_uri",
    "config_hash",
    "default_config_text",
    "find_config_file",
    "load_settings",
    "masked_settings",
    "tables_uri",
]

#: Environment variable naming the configuration file.
CONFIG_ENV_VAR = "MLFLOW_PAIRS_CONFIG"

# MLflow's own variables win over the file, as MLflow users expect.
_MLFLOW_OVERRIDES = {
    "MLFLOW_TRACKING_URI": "tracking_uri",
    "MLFLOW_REGISTRY_URI": "registry_uri",
}

# Keys expanded when used rather than when loaded: the database password is needed only by
# ``mlflow-pairs db`` and ``mlflow-pairs server``, and the embedded default must work on a
# machine that has none.
_DEFERRED_KEYS = frozenset({"mlflow.backend_store_uri", "tables.uri"})

_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")
# The user-info part of a URI written in the file, before expansion: from "scheme://" to
# the '@' before the host, ${...} references counted whole (their value is not known yet).
_TEMPLATE_USERINFO = re.compile(
    r"[A-Za-z][A-Za-z0-9+.\-]*://(?P<userinfo>(?:\$\{[^}]*\}|[^/?#@\s])*)@"
)


def default_config_text() -> str:
    """The configuration file shipped inside the package (``config/config.yaml``)."""
    return resources.files("mlflow_pairs.defaults").joinpath("config.yaml").read_text("utf-8")


def find_config_file(path: str | os.PathLike[str] | None = None) -> Path | None:
    """The file to read: ``path``, else ``$MLFLOW_PAIRS_CONFIG``, else ``./config/config.yaml``.

    Returns ``None`` when none of them applies; the packaged defaults are used then.
    """
    if path is not None:
        chosen = Path(path)
    elif os.environ.get(CONFIG_ENV_VAR):
        chosen = Path(os.environ[CONFIG_ENV_VAR])
    else:
        local = Path("config") / "config.yaml"
        return local if local.is_file() else None
    if not chosen.is_file():
        raise ConfigError(f"configuration file {chosen} does not exist")
    return chosen


#: Added to YAML's complaint about ``"C:\data"``: in double quotes ``\d`` is an escape.
_ESCAPE_HINT = (
    "; in double quotes a backslash starts an escape: write a Windows path unquoted, in "
    "single quotes or with forward slashes"
)

#: A configuration file larger than this is refused unread.
_MAX_CONFIG_BYTES = 1_000_000


class _NoAliasLoader(yaml.SafeLoader):
    """YAML without anchors and aliases: a configuration needs none, and nested aliases
    let a few lines expand into gigabytes (a "billion laughs")."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in the configuration",
                event.start_mark,
            )  # fmt: skip
        return super().compose_node(parent, index)


def _read_environ(dotenv_path: Path | None) -> dict[str, str]:
    from dotenv import dotenv_values

    merged: dict[str, str] = {}
    if dotenv_path is not None and dotenv_path.is_file():
        try:
            # Decoded here, not by python-dotenv: a byte-order mark or UTF-16 (as Windows
            # editors and PowerShell write) and CRLF line endings are read the same everywhere.
            text = decode_text(dotenv_path.read_bytes())
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"{dotenv_path}: cannot be read as UTF-8 text ({exc.reason})"
            ) from None
        except OSError as exc:
            raise ConfigError(f"{dotenv_path}: cannot be read ({exc.strerror})") from None
        values = dotenv_values(stream=io.StringIO(text))
        merged.update({k: v for k, v in values.items() if v is not None})
    merged.update(os.environ)  # the real environment wins over .env
    return merged


def _expand(value: str, key: str, source: str, environ: Mapping[str, str]) -> str:
    """``value`` with its ``${VAR}`` and ``${VAR:-default}`` references replaced.

    A reference inside the user-info part of a URI (``postgresql://u:${PW}@host/db``) is
    replaced by its value percent-encoded, so a password holding ``@ : / % # ?`` or a space
    still makes a URI that parses back to that password. Elsewhere, a whole URI in one
    variable included, values are used as written. Secret values are registered (as typed
    and encoded) so that :func:`~mlflow_pairs.secrets.redact` hides them.
    """
    userinfo = [match.span("userinfo") for match in _TEMPLATE_USERINFO.finditer(value)]

    def in_userinfo(match: re.Match[str]) -> bool:
        return any(start <= match.start() and match.end() <= end for start, end in userinfo)

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group("name"), match.group("default")
        if name in environ:
            resolved = environ[name]
        elif default is not None:
            resolved = default
        else:
            raise ConfigError(
                f"{source}: key '{key}' needs environment variable {name}, which is not set "
                "(see config/env.example)"
            )
        if is_secret_name(name):
            register_secret(resolved)
        return quote(resolved, safe="") if in_userinfo(match) else resolved

    expanded = _VARIABLE.sub(substitute, value)
    register_uri_password(expanded)  # also a password written in the file itself
    return expanded


def _expand_tree(node: Any, key: str, source: str, environ: Mapping[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for child_key, child in node.items():
            if not isinstance(child_key, str):
                raise ConfigError(
                    f"{source}: key {child_key!r} under '{key or '<top>'}' must be a string"
                )
            path = f"{key}.{child_key}" if key else child_key
            out[child_key] = _expand_tree(child, path, source, environ)
        return out
    if isinstance(node, list):
        return [_expand_tree(item, f"{key}[{i}]", source, environ) for i, item in enumerate(node)]
    if isinstance(node, str) and key not in _DEFERRED_KEYS:
        return _expand(node, key, source, environ)
    return node


def _format_validation_error(error: ValidationError, source: str) -> str:
    problems = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "<top>"
        if item["type"] == "extra_forbidden":
            problems.append(f"unknown key '{key}'")
        else:
            got = item.get("input")
            shown = "" if isinstance(got, dict) else f" (got {type(got).__name__} {got!r})"
            problems.append(f"key '{key}': {item['msg']}{shown}")
    return redact(f"{source}: " + "; ".join(problems))


def load_settings(
    path: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    dotenv_path: str | os.PathLike[str] | None = ".env",
) -> Settings:
    """Read, expand and validate the configuration.

    Parameters
    ----------
    path : path-like, optional
        The file; otherwise ``$MLFLOW_PAIRS_CONFIG``, ``./config/config.yaml`` or the
        defaults shipped in the package, in that order.
    environ : mapping, optional
        Variables for ``${VAR}`` and ``${VAR:-default}``; by default the process environment
        over the values of ``dotenv_path``.
    dotenv_path : path-like, optional
        A ``.env`` file whose values fill in variables the environment does not set.

    Raises
    ------
    ConfigError
        On a missing file, invalid YAML, an unknown key, a wrong type or a missing required
        variable; the message names the key and the file.
    """
    file = find_config_file(path)
    if file is None:
        source, text = "<package defaults>/config.yaml", default_config_text()
    else:
        source = str(file)
        try:
            if file.stat().st_size > _MAX_CONFIG_BYTES:
                raise ConfigError(f"{source}: larger than {_MAX_CONFIG_BYTES} bytes")
            text = decode_text(file.read_bytes())
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{source}: not UTF-8 text ({exc.reason})") from None
        except OSError as exc:
            raise ConfigError(f"{source}: cannot be read ({exc.strerror})") from None
    env = (
        dict(environ)
        if environ is not None
        else _read_environ(Path(dotenv_path) if dotenv_path else None)
    )
    try:
        raw = yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        hint = _ESCAPE_HINT if "escape character" in problem else ""
        raise ConfigError(f"{source}: not valid YAML: {problem}{where}{hint}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections")
    expanded = _expand_tree(raw, "", source, env)
    overrides: dict[str, str] = {}
    mlflow_section = expanded.get("mlflow")
    for variable, field in _MLFLOW_OVERRIDES.items():
        if env.get(variable):
            if not isinstance(mlflow_section, dict):
                mlflow_section = expanded["mlflow"] = {}
            mlflow_section[field] = env[variable]
            overrides[f"mlflow.{field}"] = variable
    try:
        settings = Settings.model_validate(expanded)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, source)) from None
    settings._source = source
    settings._environ = env
    settings._overrides = overrides
    return settings


def backend_store_uri(settings: Settings) -> str:
    """``mlflow.backend_store_uri`` with its variables expanded.

    Raises :class:`ConfigError` naming the key, the variable and the file when a variable is
    missing.
    """
    return _expand(
        settings.mlflow.backend_store_uri,
        "mlflow.backend_store_uri",
        settings.source,
        settings._environ,
    )


def tables_uri(settings: Settings, tracking_uri: str | None = None) -> str | None:
    """The database of the project's own tables, or ``None`` when ``tables.uri`` is off.

    ``auto`` is the tracking store when that is a database (the embedded SQLite default
    included), else ``mlflow.backend_store_uri`` (the server's database). ``tracking_uri``
    defaults to ``mlflow.tracking_uri``. Raises :class:`ConfigError` like
    :func:`backend_store_uri` when a variable is missing.
    """
    value = settings.tables.uri.strip()
    if value.lower() in ("", "off", "none", "false"):
        return None
    if value.lower() == "auto":
        tracking = tracking_uri or settings.mlflow.tracking_uri
        if is_database_uri(tracking):
            return normalise_store_uri(tracking)
        return normalise_store_uri(backend_store_uri(settings))
    return normalise_store_uri(_expand(value, "tables.uri", settings.source, settings._environ))


def masked_settings(settings: Settings) -> dict[str, Any]:
    """The settings as plain data with every secret masked (what ``config show`` prints)."""
    data = settings.model_dump(mode="json")
    # Without its variable the ${VAR} template stays: it names the variable, not its value.
    with contextlib.suppress(ConfigError):
        data["mlflow"]["backend_store_uri"] = backend_store_uri(settings)
    with contextlib.suppress(ConfigError):
        # Expanding registers any password in it, so redact() masks it below.
        _expand(settings.tables.uri, "tables.uri", settings.source, settings._environ)
    return cast("dict[str, Any]", _redact_tree(data))


def _redact_tree(node: Any) -> Any:
    # Each string on its own: redacting the JSON text would miss a secret that JSON escapes.
    if isinstance(node, dict):
        return {key: _redact_tree(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_redact_tree(item) for item in node]
    return redact(node) if isinstance(node, str) else node


def config_hash(settings: Settings) -> str:
    """A short, stable hash of the effective configuration (secrets excluded)."""
    canonical = json.dumps(masked_settings(settings), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]
