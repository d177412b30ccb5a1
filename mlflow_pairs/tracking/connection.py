"""The MLflow connection manager: the single place that talks to MLflow.

Everything else (training, screening, the CLI) asks an :class:`MlflowConnection` for
experiments, runs and registered models, so that URIs, retries, standard tags and the
handling of secrets are decided once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
import time
from collections.abc import Iterator, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

import requests

from mlflow_pairs import __version__
from mlflow_pairs._uris import (
    absolute_artifact_root,
    is_database_uri,
    is_http_uri,
    normalise_store_uri,
    prepare_sqlite_folder,
)
from mlflow_pairs.config import Settings, config_hash, masked_settings
from mlflow_pairs.db._engine import describe_db_error, make_engine
from mlflow_pairs.errors import DatabaseError, TrackingConnectionError
from mlflow_pairs.secrets import mask_uri, redact

if TYPE_CHECKING:
    from mlflow import ActiveRun, MlflowClient
    from mlflow.entities import Experiment, Run
    from mlflow.entities.model_registry import ModelVersion

    from mlflow_pairs.data import PricePanel

__all__ = ["TAG_PREFIX", "MlflowConnection"]

logger = logging.getLogger(__name__)

#: Prefix of the tags this package sets on runs and model versions.
TAG_PREFIX = "mlflow_pairs."
#: Run tag set by :meth:`MlflowConnection.reap_run`: why and when the run was marked KILLED.
REAPED_TAG = f"{TAG_PREFIX}reaped"
#: Model-version tag ("true") set by :meth:`MlflowConnection.flag_incomplete_version`.
INCOMPLETE_RUN_TAG = f"{TAG_PREFIX}incomplete_run"
#: Attribute of an exception that ended a run the store could not mark ended: says so.
LEFT_RUNNING = "mlflow_pairs_left_running"
#: Configuration sections about where runs are stored and served, not about the strategy.
INFRASTRUCTURE_SECTIONS = ("mlflow", "server", "tables")


class MlflowConnection:
    """Client, experiment, runs and registry for one configuration.

    Parameters
    ----------
    settings : Settings
        The loaded configuration.
    attempts : int
        How many times :meth:`check` tries to reach the store before giving up.
    backoff : float
        Seconds before the second attempt; doubled for each further attempt.
    timeout : float
        Seconds one connection attempt may take.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        attempts: int = 3,
        backoff: float = 0.5,
        timeout: float = 5.0,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.settings = settings
        self.attempts = attempts
        self.backoff = backoff
        self.timeout = timeout
        self.tracking_uri = normalise_store_uri(settings.mlflow.tracking_uri)
        self.registry_uri = normalise_store_uri(
            settings.mlflow.registry_uri or settings.mlflow.tracking_uri
        )
        # The embedded default's ./mlruns is created; a mistyped folder is an error.
        prepare_sqlite_folder(self.tracking_uri, "mlflow.tracking_uri")
        prepare_sqlite_folder(self.registry_uri, "mlflow.registry_uri")

    @property
    def safe_tracking_uri(self) -> str:
        """The tracking URI with its password masked, for messages."""
        return mask_uri(self.tracking_uri)

    def __repr__(self) -> str:
        return f"MlflowConnection(tracking_uri={mask_uri(self.tracking_uri)!r})"

    # -- connection ---------------------------------------------------------------------

    @cached_property
    def client(self) -> MlflowClient:
        from mlflow import MlflowClient

        self._guard_database_stores()
        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.registry_uri)

    def _guard_database_stores(self) -> None:
        """Where MLflow talks to a database itself (no tracking server in between), make
        the stores it uses for this connection's URIs retry a lost database for a while
        (``$MLFLOW_PAIRS_STORE_RETRY_SECONDS``, default 60), as its HTTP client retries
        a server, and then fail with one line naming the store (see ``_retry``).

        MLflow keeps one store object per URI for the process (the fluent API and every
        client share it); reaching it takes MLflow's private store registries, here only.
        """
        from mlflow_pairs.tracking._retry import guard_store, store_retry_seconds

        if is_database_uri(self.tracking_uri):
            from mlflow.tracking._tracking_service.utils import _get_store

            guard_store(_get_store(self.tracking_uri), self.safe_tracking_uri, store_retry_seconds)
        if is_database_uri(self.registry_uri):
            from mlflow.tracking._model_registry.utils import _get_store as _get_registry_store

            guard_store(
                _get_registry_store(self.registry_uri, self.tracking_uri),
                mask_uri(self.registry_uri),
                store_retry_seconds,
            )

    def check(self) -> None:
        """Make sure the tracking store answers, retrying with backoff.

        Raises
        ------
        TrackingConnectionError
            Naming the URI (password masked) and the reason: unreachable, credentials
            rejected, database missing or schema out of date.
        """
        probe = self._probe_http if is_http_uri(self.tracking_uri) else self._probe_database
        delay = self.backoff
        reason = "no attempt made"
        for attempt in range(1, self.attempts + 1):
            reason, retry = probe()
            if not reason:
                break
            if not retry or attempt == self.attempts:
                raise TrackingConnectionError(
                    f"cannot use MLflow tracking store {mask_uri(self.tracking_uri)}: {reason}"
                    f" (after {attempt} attempt{'s' if attempt > 1 else ''})"
                )
            logger.info("tracking store not ready (%s); retrying in %.1f s", reason, delay)
            time.sleep(delay)
            delay *= 2
        if is_database_uri(self.tracking_uri):
            from mlflow_pairs.db.mlflow_schema import ensure_mlflow_schema

            try:
                ensure_mlflow_schema(self.tracking_uri, timeout=self.timeout)
            except DatabaseError as exc:
                raise TrackingConnectionError(str(exc)) from None
        self._probe_mlflow_store()

    def _probe_http(self) -> tuple[str, bool]:
        base = self.tracking_uri.rstrip("/")
        try:
            health = requests.get(f"{base}/health", timeout=self.timeout)
            if health.status_code >= 500:
                return f"server error {health.status_code} at /health", True
            answer = requests.get(
                f"{base}/api/2.0/mlflow/experiments/search",
                params={"max_results": 1},
                auth=_basic_auth(),
                timeout=self.timeout,
            )
        except requests.ConnectionError:
            return "server unreachable (connection refused or host unknown)", True
        except requests.Timeout:
            return f"server did not answer within {self.timeout:g} s", True
        if answer.status_code in (401, 403):
            return f"credentials rejected (HTTP {answer.status_code})", False
        if answer.status_code >= 400:
            return f"server answered HTTP {answer.status_code}", answer.status_code >= 500
        return "", False

    def _probe_database(self) -> tuple[str, bool]:
        import sqlalchemy

        if not is_database_uri(self.tracking_uri):
            return "", False  # a file store or a plugin store: MLflow checks it below
        engine = make_engine(self.tracking_uri, timeout=self.timeout)
        try:
            with engine.connect() as connection:
                connection.execute(sqlalchemy.text("SELECT 1"))
        except sqlalchemy.exc.SQLAlchemyError as exc:
            message = describe_db_error(exc)
            lowered = message.lower()
            if "password" in lowered or "authentication" in lowered:
                return "credentials rejected by the database", False
            if "does not exist" in lowered:
                return f"{message} (run `mlflow-pairs db create`)", False
            return f"database unreachable: {message}", True
        finally:
            engine.dispose()
        return "", False

    def _probe_mlflow_store(self) -> None:
        try:
            self.client.search_experiments(max_results=1)
        except Exception as exc:
            raise TrackingConnectionError(
                f"MLflow cannot use tracking store {mask_uri(self.tracking_uri)}: "
                f"{redact(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)}"
            ) from None

    def activate(self) -> None:
        """Point MLflow's fluent API (``mlflow.start_run``, ``mlflow.log_*``) at this store."""
        import mlflow

        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.registry_uri)
        self._guard_database_stores()

    # -- experiments and runs -----------------------------------------------------------

    @property
    def experiment_name(self) -> str:
        return self.settings.mlflow.experiment_name

    def artifact_location(self) -> str | None:
        """Where new experiments keep artifacts: the configured root for a local store;
        left to the server (its proxied artifact store) when tracking goes through one."""
        if is_http_uri(self.tracking_uri):
            return None
        root = absolute_artifact_root(self.settings.mlflow.artifact_root)
        return f"{root.rstrip('/')}/{self.experiment_name}"

    def get_or_create_experiment(self) -> Experiment:
        """The configured experiment; created if missing, restored if deleted."""
        client = self.client
        experiment = client.get_experiment_by_name(self.experiment_name)
        if experiment is None:
            from mlflow.exceptions import MlflowException

            try:
                # MLflow 3's UI opens an experiment without this tag in its GenAI view.
                experiment_id = client.create_experiment(
                    self.experiment_name,
                    artifact_location=self.artifact_location(),
                    tags={"mlflow.experimentKind": "custom_model_development"},
                )
            except MlflowException as exc:
                # Another process created it between our lookup and our create.
                experiment = client.get_experiment_by_name(self.experiment_name)
                if exc.error_code != "RESOURCE_ALREADY_EXISTS" or experiment is None:
                    raise
                return experiment
            logger.info("created experiment %s (%s)", self.experiment_name, experiment_id)
            return client.get_experiment(experiment_id)
        if experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment.experiment_id)
            logger.warning("restored deleted experiment %s", self.experiment_name)
            return client.get_experiment(experiment.experiment_id)
        return experiment

    def standard_tags(self, sector: str | None = None) -> dict[str, str]:
        """Tags every run carries: sector, package version, config hash, git commit."""
        tags = {
            f"{TAG_PREFIX}version": __version__,
            f"{TAG_PREFIX}config_hash": config_hash(self.settings),
        }
        if sector:
            tags[f"{TAG_PREFIX}sector"] = sector
        commit = _git_commit()
        if commit:
            tags[f"{TAG_PREFIX}git_commit"] = commit
        return tags

    @contextlib.contextmanager
    def start_run(
        self,
        *,
        sector: str | None = None,
        run_name: str | None = None,
        tags: Mapping[str, str] | None = None,
        nested: bool = False,
    ) -> Iterator[ActiveRun]:
        """Start a run in the configured experiment with the standard tags.

        The run ends FAILED if the block raises, FINISHED otherwise. Where the store is
        lost for longer than the retries last, the error says so, and whether the run
        could still be marked (else it is left RUNNING for ``mlflow-pairs runs reap``).
        """
        import mlflow

        self.activate()
        experiment = self.get_or_create_experiment()
        all_tags = {**self.standard_tags(sector), **(tags or {})}
        run = mlflow.start_run(
            experiment_id=experiment.experiment_id,
            run_name=run_name,
            tags={key: redact(value) for key, value in all_tags.items()},
            nested=nested,
        )
        try:
            yield run
        except BaseException as exc:
            self._end_run(run, "FAILED", exc)
            raise
        self._end_run(run, "FINISHED", None)

    def _end_run(self, run: ActiveRun, status: str, failure: BaseException | None) -> None:
        """End ``run`` with ``status`` when it is still the active run.

        When the store cannot record it, the error says the run is left RUNNING: a lost
        store's one line says so; any other failure carries the sentence in its
        :data:`LEFT_RUNNING` attribute (``storage_errors`` adds it to a full disk's line).
        """
        import mlflow

        active = mlflow.active_run()
        if active is None or active.info.run_id != run.info.run_id:
            return
        try:
            mlflow.end_run(status)
        except Exception as lost:
            left = (
                f"run {run.info.run_id} could not be marked {status} and is left RUNNING "
                "(`mlflow-pairs runs reap` closes it)"
            )
            first = failure if failure is not None else lost
            if isinstance(lost, TrackingConnectionError) and isinstance(
                first, TrackingConnectionError
            ):
                raise TrackingConnectionError(f"{first}; {left}") from None
            setattr(first, LEFT_RUNNING, left)
            logger.info("%s: %s", left, lost)
            if failure is None:
                raise

    def log_settings(self, prefix: str = "config", *, infrastructure: bool = True) -> None:
        """Log the effective configuration, secrets masked, to the active run: whole as
        the artifact ``config.yaml``, and as params ``{prefix}.{section}.{key}``.

        With ``infrastructure=False`` the params leave out the sections that say where
        runs are stored and served (:data:`INFRASTRUCTURE_SECTIONS`), so that MLflow's UI,
        which lists params alphabetically, shows the strategy's settings without them;
        ``config.yaml`` still holds them.
        """
        import mlflow

        masked = masked_settings(self.settings)
        shown = {
            section: values
            for section, values in masked.items()
            if infrastructure or section not in INFRASTRUCTURE_SECTIONS
        }
        mlflow.log_params(_flatten(shown, prefix))
        mlflow.log_dict(masked, "config.yaml")

    def log_dataset(self, panel: PricePanel, *, context: str = "training") -> None:
        """Log a price panel as an MLflow dataset input of the active run (lineage)."""
        from mlflow_pairs.tracking.datasets import log_price_panel

        log_price_panel(panel, context=context)

    # -- models and registry ------------------------------------------------------------

    def model_name(self, sector: str) -> str:
        """The registered-model name of ``sector`` from the configured pattern."""
        return self.settings.model_registry.model_name(sector)

    def log_model(self, flavor: Any, *, name: str, **kwargs: Any) -> Any:
        """Log a model with ``flavor.log_model`` in the active run; returns its ``ModelInfo``
        (with ``registered_model_name``, the version it registered is
        ``info.registered_model_version``)."""
        self.activate()
        return flavor.log_model(name=name, **kwargs)

    def get_version(self, name: str, version: str | int) -> ModelVersion:
        """Version ``version`` of registered model ``name``."""
        return self.client.get_model_version(name, str(version))

    def tag_version(self, name: str, version: str | int, tags: Mapping[str, str]) -> None:
        """Set ``tags`` on version ``version`` of registered model ``name``."""
        for key, value in tags.items():
            self.client.set_model_version_tag(name, str(version), key, value)

    def set_alias(self, name: str, alias: str, version: str | int) -> None:
        self.client.set_registered_model_alias(name, alias, str(version))

    def get_alias(self, name: str, alias: str) -> ModelVersion | None:
        """The version that ``alias`` points to, or ``None`` when the alias is unset."""
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_model_version_by_alias(name, alias)
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise

    def list_versions(self, name: str) -> list[ModelVersion]:
        """All versions of ``name``, newest first (empty when the model does not exist)."""
        versions = self.client.search_model_versions(f"name = '{_quote(name)}'")
        return sorted(versions, key=lambda v: int(v.version), reverse=True)

    def promote(self, name: str, version: str | int, *, reason: str = "manual") -> None:
        """Point the champion alias at ``version`` and record why on the version."""
        champion = self.settings.model_registry.champion_alias
        self.set_alias(name, champion, version)
        self.client.set_model_version_tag(name, str(version), f"{TAG_PREFIX}promotion", reason)
        # One current decision per version: a manual promotion overrides the train-time one.
        decision = "promoted" if reason.startswith("promoted") else f"promoted ({reason})"
        self.client.set_model_version_tag(
            name, str(version), f"{TAG_PREFIX}promotion_decision", decision
        )
        self.client.set_model_version_tag(
            name,
            str(version),
            f"{TAG_PREFIX}promoted_at",
            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        )

    # -- runs a killed process left behind ----------------------------------------------

    def running_runs(self) -> list[Run]:
        """The RUNNING runs of the configured experiment (none when it does not exist).

        Never creates the experiment: ``doctor`` reads through here.
        """
        from mlflow.entities import ViewType

        experiment = self.client.get_experiment_by_name(self.experiment_name)
        if experiment is None:
            return []
        runs: list[Run] = []
        token: str | None = None
        while True:
            page = self.client.search_runs(
                [experiment.experiment_id],
                filter_string="attributes.status = 'RUNNING'",
                run_view_type=ViewType.ACTIVE_ONLY,
                max_results=1000,
                page_token=token,
            )
            runs.extend(page)
            token = page.token
            if not token:
                return runs

    @staticmethod
    def last_update_ms(run: Run) -> int:
        """When ``run`` last showed life, in epoch milliseconds: its start or its latest
        metric, whichever is later (MLflow keeps no other update time for a run)."""
        stamps = [int(run.info.start_time or 0)]
        stamps += [int(metric.timestamp) for metric in run.data.to_proto().metrics]
        return max(stamps)

    def stale_runs(self, older_than: float, *, now: float | None = None) -> list[Run]:
        """RUNNING runs of the configured experiment with no update for ``older_than``
        seconds (``now`` defaults to the current time, in epoch seconds), oldest first."""
        cutoff_ms = ((time.time() if now is None else now) - older_than) * 1000
        stale = [run for run in self.running_runs() if self.last_update_ms(run) <= cutoff_ms]
        return sorted(stale, key=self.last_update_ms)

    def unfinished_versions(
        self, older_than: float, *, now: float | None = None
    ) -> list[tuple[ModelVersion, str]]:
        """Registered versions of this package's models (``model_registry.name_pattern``)
        whose run did not finish: KILLED, FAILED, or RUNNING with no update for
        ``older_than`` seconds. Each comes with its run's status, e.g. ``"FAILED"`` or
        ``"RUNNING, no update for 3h"``. A version without a run, or whose run is gone,
        is not one of them; a run still RUNNING and recently updated is in progress."""
        from mlflow.exceptions import MlflowException

        pattern = self.settings.model_registry.name_pattern
        prefix = pattern.split("{sector}")[0]
        exact = re.compile(re.escape(pattern).replace(re.escape("{sector}"), ".+"))
        filter_string = f"name LIKE '{_quote(prefix)}%'" if prefix else None
        versions: list[ModelVersion] = []
        token: str | None = None
        while True:
            page = self.client.search_model_versions(
                filter_string, max_results=1000, page_token=token
            )
            versions.extend(v for v in page if exact.fullmatch(v.name))
            token = page.token
            if not token:
                break
        now_s = time.time() if now is None else now
        statuses: dict[str, str | None] = {}
        found: list[tuple[ModelVersion, str]] = []
        for version in sorted(versions, key=lambda v: (v.name, int(v.version))):
            run_id = version.run_id
            if not run_id:
                continue
            if run_id not in statuses:
                try:
                    run = self.client.get_run(run_id)
                except MlflowException as exc:
                    if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                        raise
                    statuses[run_id] = None
                else:
                    statuses[run_id] = _unfinished_status(run, older_than, now_s)
            status = statuses[run_id]
            if status is not None:
                found.append((version, status))
        return found

    def reap_run(self, run_id: str, reason: str) -> bool:
        """Mark a RUNNING run KILLED, recording ``reason`` and the time in the
        ``mlflow_pairs.reaped`` tag. Returns ``False`` (and changes nothing) when the run
        is no longer RUNNING, e.g. because it finished meanwhile."""
        if self.client.get_run(run_id).info.status != "RUNNING":
            return False
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.client.set_tag(
            run_id, REAPED_TAG, redact(f"{reason}; marked KILLED at {stamp} by runs reap")
        )
        self.client.set_terminated(run_id, "KILLED")
        return True

    def flag_incomplete_version(self, version: ModelVersion) -> None:
        """Tag a registered version whose run did not finish (``mlflow_pairs.incomplete_run``
        = ``"true"``); the version itself is kept."""
        self.client.set_model_version_tag(
            version.name, str(version.version), INCOMPLETE_RUN_TAG, "true"
        )


def _unfinished_status(run: Run, older_than: float, now: float) -> str | None:
    """``run``'s status when it did not finish (see ``unfinished_versions``), else None."""
    status = str(run.info.status)
    if status in ("KILLED", "FAILED"):
        return status
    if status in ("RUNNING", "SCHEDULED"):
        idle = now - MlflowConnection.last_update_ms(run) / 1000
        if idle >= older_than:
            return f"{status}, no update for {format_age(idle)}"
    return None


def format_age(seconds: float) -> str:
    """A rough, short age: ``45s``, ``12m``, ``3h05m``, ``2d04h``."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def _flatten(data: Mapping[str, Any], prefix: str) -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in data.items():
        path = f"{prefix}.{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, path))
        elif isinstance(value, list):
            flat[path] = ",".join(str(item) for item in value)
        else:
            flat[path] = "" if value is None else str(value)
    return flat


def _quote(value: str) -> str:
    return value.replace("'", "\\'")


def _basic_auth() -> tuple[str, str] | None:
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    password = os.environ.get("MLFLOW_TRACKING_PASSWORD")
    return (user, password) if user and password else None


def _git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and commit else None
