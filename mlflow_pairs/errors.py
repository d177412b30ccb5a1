"""Exceptions that the CLI turns into one-line messages.

Every error the user can cause derives from :class:`MlflowPairsError`; its message is
written to be read on its own (it names the file, key, URI or symbol at fault) and never
contains a secret.
"""

from __future__ import annotations


class MlflowPairsError(Exception):
    """Base class of the errors the command line reports as one line."""

    exit_code = 1


class ConfigError(MlflowPairsError):
    """The configuration file or environment is invalid (names the key and the file)."""

    exit_code = 2


class NotFoundError(MlflowPairsError):
    """A named thing (universe, price source, feature, model) does not exist."""

    exit_code = 2


class TrackingConnectionError(MlflowPairsError):
    """The MLflow tracking store, registry or database cannot be reached or used."""

    exit_code = 2


class DatabaseError(MlflowPairsError):
    """A database set-up step (create, upgrade, downgrade) failed or was given a bad
    revision."""

    exit_code = 2


class ServerError(MlflowPairsError):
    """The MLflow tracking server could not be started or did not become healthy."""


class UsageError(MlflowPairsError):
    """A request the command refuses as it stands (e.g. promoting an exploratory model)."""

    exit_code = 2


class InvalidInputError(MlflowPairsError, ValueError):
    """A model input or param is invalid (the served model answers HTTP 400)."""

    exit_code = 2


class RequestTooLargeError(InvalidInputError):
    """A scoring request has more rows than the served model accepts (HTTP 413)."""


class NoSpaceError(MlflowPairsError):
    """A disk ran full while writing (names the path, or the store that holds it)."""

    exit_code = 2
