"""Training sector models: screen, fit, walk-forward backtest, log, register, promote.

For each formation window the sector's pairs are screened and the GARCH-GRU model is
fitted; the next window is traded without refitting, with the static z-score, GARCH-only
and GARCH-GRU rules at the same costs. Everything is logged to one MLflow run per sector;
the latest window's model is registered as ``model_registry.name_pattern`` for the sector,
aliased challenger and promoted to champion when the gates pass; the screening and
pair-level rows go to the project's tables. The command line (``mlflow-pairs train``),
the Spark tasks (``mlflow_pairs.spark.train``) and Python users call the same functions::

    from mlflow_pairs.config import load_settings
    from mlflow_pairs.jobs import prepare_training, train_sector

    settings = load_settings()
    connection = prepare_training(settings, ["technology"])  # fails before any work
    training = train_sector(settings, "technology", connection=connection)
    print(training.run_id, training.version.version, training.decision.summary())

Heavy libraries (PyTorch, MLflow) are imported when a job runs, not with this module.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlflow_pairs.errors import ConfigError, MlflowPairsError, NoSpaceError, NotFoundError
from mlflow_pairs.jobs._inputs import load_data
from mlflow_pairs.jobs.specs import model_specs, screening_criteria, trading_rules
from mlflow_pairs.secrets import mask_uri, redact

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.entities.model_registry import ModelVersion

    from mlflow_pairs.backtest.promotion import PromotionDecision
    from mlflow_pairs.backtest.walkforward import WindowResult
    from mlflow_pairs.config import Settings
    from mlflow_pairs.model import GarchGruModel
    from mlflow_pairs.tracking import MlflowConnection

__all__ = [
    "MIN_FREE_BYTES",
    "Progress",
    "SectorOutcome",
    "SectorReport",
    "SectorTraining",
    "TablesWrite",
    "WindowCallback",
    "check_stores",
    "check_training",
    "prepare_training",
    "train_sector",
    "train_sectors",
    "universe_for",
    "write_training_rows",
]

#: Called after each walk-forward window with (window number from 0, windows, result).
WindowCallback = Callable[[int, int, "WindowResult"], None]
#: Opens a sector's progress display just before its walk-forward starts: called with the
#: sector, it returns a context whose value is called after each window.
Progress = Callable[[str], AbstractContextManager[WindowCallback]]

#: Free space a train run needs under a local artifact root, at least: its tables, plots
#: and model (with the bundled wheels) take about 0.7 MB on the bundled sample.
MIN_FREE_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class TablesWrite:
    """What writing a run's rows to the project's tables did.

    ``uri`` is where they went, its password masked (``None`` when ``tables.uri`` is
    off or nothing was written); ``counts`` the rows per table; ``error`` the one-line
    reason they were not written (the MLflow run is complete all the same).
    """

    uri: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class SectorTraining:
    """One sector trained: its run, walk-forward, model, registered version and rows.

    ``results`` holds every window (:class:`~mlflow_pairs.backtest.walkforward.
    WindowResult`); ``summary`` the logged metrics (``variants``, ``lift``,
    ``lift_scope``); ``model`` the latest window's fitted model, registered as
    ``model_name`` version ``version`` with evidence ``evidence`` (``tested``, or
    ``exploratory``/``fallback``: never promoted); ``decision`` the promotion gates'
    outcome; ``n_trials`` the trials the DSR deflates for.
    """

    sector: str
    run_id: str
    results: list[WindowResult]
    summary: dict[str, Any]
    model: GarchGruModel
    evidence: str
    model_name: str
    version: ModelVersion
    decision: PromotionDecision
    n_trials: int
    tables: TablesWrite = field(default_factory=TablesWrite)

    @property
    def table_counts(self) -> dict[str, int]:
        """Rows written per table of the project's tables."""
        return dict(self.tables.counts)


@dataclass(frozen=True)
class SectorReport:
    """One sector's outcome as plain values (what a Spark task sends back): ``status``
    is ``trained`` or ``failed``; ``error`` the failure's line, secrets masked, and
    ``exit_code`` its exit status (0 when trained)."""

    sector: str
    status: str
    run_id: str | None = None
    model_name: str | None = None
    model_version: str | None = None
    evidence: str | None = None
    promoted: bool = False
    decision: str | None = None
    table_counts: dict[str, int] = field(default_factory=dict)
    tables_error: str | None = None
    error: str | None = None
    exit_code: int = 0

    @classmethod
    def failed(cls, sector: str, error: str, exit_code: int) -> SectorReport:
        return cls(sector, "failed", error=redact(error), exit_code=exit_code)


@dataclass(frozen=True)
class SectorOutcome:
    """A sector of :func:`train_sectors`: its training, or the error that stopped it."""

    sector: str
    training: SectorTraining | None = None
    error: MlflowPairsError | None = None

    @property
    def ok(self) -> bool:
        return self.training is not None

    def report(self) -> SectorReport:
        """The outcome as a :class:`SectorReport`."""
        if self.training is None:
            error = self.error or MlflowPairsError("no training and no error")
            return SectorReport.failed(self.sector, str(error), error.exit_code)
        training = self.training
        return SectorReport(
            sector=self.sector,
            status="trained",
            run_id=training.run_id,
            model_name=training.model_name,
            model_version=str(training.version.version),
            evidence=training.evidence,
            promoted=training.decision.promote,
            decision=training.decision.summary(),
            table_counts=training.table_counts,
            tables_error=training.tables.error,
        )


# -- checks before the work ---------------------------------------------------------------


def universe_for(sector: str) -> str:
    """The universe a sector trains on: one named as the sector, else ``sample-{sector}``,
    else the first (by name) whose sector it is.

    Raises
    ------
    NotFoundError
        No universe is registered for ``sector`` (names the sectors that have one).
    """
    from mlflow_pairs.plugins import get_universes

    universes = get_universes()
    for candidate in (sector, f"sample-{sector}"):
        if candidate in universes:
            return candidate
    matching = sorted(n for n, u in universes.items() if u.sector == sector)
    if not matching:
        known = sorted({u.sector for u in universes.values()})
        raise NotFoundError(
            f"no universe is registered for sector {sector!r} (sectors with one: "
            f"{', '.join(known)})"
        )
    return matching[0]


def check_training(
    settings: Settings, sectors: Sequence[str], *, prices: str | None = None
) -> None:
    """Everything knowable before the walk-forward: the device, each sector's universe
    (unless ``prices`` is a file), the stores (:func:`check_stores`) and
    ``$MLFLOW_PAIRS_STORE_RETRY_SECONDS``.

    Raises
    ------
    MlflowPairsError
        One line naming the setting, sector or variable at fault.
    """
    from mlflow_pairs.model import select_device
    from mlflow_pairs.tracking._retry import store_retry_seconds

    try:
        select_device(settings.ml.device)
    except ValueError as exc:
        raise ConfigError(f"ml.device: {exc}") from None
    if not prices:
        for name in sectors:
            universe_for(name)
    check_stores(settings)
    store_retry_seconds()


def prepare_training(
    settings: Settings, sectors: Sequence[str], *, prices: str | None = None
) -> MlflowConnection:
    """:func:`check_training`, then a connection to the tracking store, checked to answer.

    Raises
    ------
    MlflowPairsError
        A check failed, or the store cannot be used (one line, naming it).
    """
    from mlflow_pairs.tracking import MlflowConnection

    check_training(settings, sectors, prices=prices)
    connection = MlflowConnection(settings)
    connection.check()
    return connection


def check_stores(settings: Settings) -> None:
    """A local artifact root must be a writable folder (or creatable under one) with room
    for a run, and an explicit ``tables.uri`` must be a database URI: found before the
    walk-forward, not after it."""
    import os
    from pathlib import Path
    from urllib.parse import urlparse

    from mlflow_pairs._uris import absolute_artifact_root, is_http_uri, normalise_store_uri
    from mlflow_pairs.tracking._space import format_bytes, free_bytes, mount_point

    root = absolute_artifact_root(settings.mlflow.artifact_root)
    # Through a tracking server, the server's artifact store takes the artifacts.
    served = is_http_uri(normalise_store_uri(settings.mlflow.tracking_uri))
    if urlparse(root).scheme == "file" and not served:
        # MLflow creates the root on the first artifact; do it now, and write to it, so a
        # root that cannot hold artifacts fails here rather than after the work.
        path = Path(urlparse(root).path)
        try:
            path.mkdir(parents=True, exist_ok=True)
            probe = path / f".mlflow-pairs-write-test-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise ConfigError(
                f"mlflow.artifact_root {settings.mlflow.artifact_root}: cannot write there "
                f"({exc.strerror or exc})"
            ) from None
        free = free_bytes(path)
        if free is not None and free < MIN_FREE_BYTES:
            raise NoSpaceError(
                f"no space left on {mount_point(path)} ({format_bytes(free)} free; "
                f"mlflow.artifact_root {settings.mlflow.artifact_root}): a train run needs at "
                f"least {format_bytes(MIN_FREE_BYTES)} there"
            )
    tables = settings.tables.uri.strip()
    if tables.lower() not in ("", "off", "none", "false", "auto") and "${" not in tables:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            make_url(tables)
        except ArgumentError:
            raise ConfigError(
                f"tables.uri {tables!r} is not a database URI (e.g. "
                "postgresql://user@host/db, sqlite:///path.db, auto or off)"
            ) from None


# -- the work -----------------------------------------------------------------------------


def train_sectors(
    settings: Settings,
    sectors: Sequence[str],
    *,
    connection: MlflowConnection | None = None,
    prices: str | None = None,
    symbols: Sequence[str] | None = None,
    start: pd.Timestamp | str | None = None,
    end: pd.Timestamp | str | None = None,
    progress: Progress | None = None,
    on_outcome: Callable[[SectorOutcome], None] | None = None,
) -> list[SectorOutcome]:
    """:func:`train_sector` for each sector in turn, one after the other.

    A sector that fails with an :class:`~mlflow_pairs.errors.MlflowPairsError` (bad
    data, no model to register, a full disk...) is an outcome carrying the error, and the
    next sector goes on; any other exception propagates. ``on_outcome`` is called with
    each outcome as soon as it is known. Call :func:`prepare_training` first to fail
    before any work.
    """
    if connection is None:
        from mlflow_pairs.tracking import MlflowConnection

        connection = MlflowConnection(settings)
    outcomes = []
    for sector in sectors:
        try:
            training = train_sector(
                settings,
                sector,
                connection=connection,
                prices=prices,
                symbols=symbols,
                start=start,
                end=end,
                progress=progress,
            )
        except MlflowPairsError as exc:
            outcome = SectorOutcome(sector, error=exc)
        else:
            outcome = SectorOutcome(sector, training=training)
        outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)
    return outcomes


def train_sector(
    settings: Settings,
    sector: str,
    *,
    connection: MlflowConnection | None = None,
    prices: str | None = None,
    symbols: Sequence[str] | None = None,
    start: pd.Timestamp | str | None = None,
    end: pd.Timestamp | str | None = None,
    progress: Progress | None = None,
) -> SectorTraining:
    """Walk-forward train and backtest ``sector``'s model; log one run, register the
    latest window's model, maybe promote it, and write the rows to the project's tables.

    Parameters
    ----------
    settings : Settings
        The configuration (tracking store, walk-forward, model, gates).
    sector : str
        The sector; its universe is :func:`universe_for` it, unless ``prices`` is given
        (then the model is the sector's name over the file's symbols, e.g. ``custom``).
    connection : MlflowConnection, optional
        The tracking store; by default one for ``settings``.
    prices : str, optional
        A CSV or Parquet price file instead of the sector's universe.
    symbols : sequence of str, optional
        Only these symbols of the universe or the file.
    start, end : Timestamp or str, optional
        The dates; by default ``backtest.start`` and ``backtest.end``.
    progress : callable, optional
        Opens the walk-forward's progress display (see :data:`Progress`).

    Returns
    -------
    SectorTraining

    Raises
    ------
    MlflowPairsError
        One line: bad data, an unknown part, no candidate pair in the latest window (the
        run, marked FAILED, keeps what was logged), a full disk or a lost store.
    """
    from mlflow_pairs.tracking._space import storage_errors

    if connection is None:
        from mlflow_pairs.tracking import MlflowConnection

        connection = MlflowConnection(settings)
    with storage_errors(connection):
        return _train_sector(settings, connection, sector, prices, symbols, start, end, progress)


def _train_sector(
    settings: Settings,
    connection: MlflowConnection,
    sector: str,
    prices: str | None,
    symbols: Sequence[str] | None,
    start: pd.Timestamp | str | None,
    end: pd.Timestamp | str | None,
    progress: Progress | None,
) -> SectorTraining:
    import mlflow

    from mlflow_pairs.backtest.results import candidate_metrics
    from mlflow_pairs.backtest.walkforward import VARIANTS, run_walk_forward
    from mlflow_pairs.model import GarchGruModel
    from mlflow_pairs.plugins import features_for_sector, get_model_parts
    from mlflow_pairs.tracking.train_run import (
        count_configurations,
        finite_metrics,
        log_walk_forward,
        register_and_promote,
        strategy_hash,
    )

    bt = settings.backtest
    universe = None if prices else universe_for(sector)
    loaded = load_data(
        settings,
        universe=universe,
        prices=prices,
        symbols=list(symbols) if symbols else None,
        start=start if start is not None else bt.start,
        end=end if end is not None else bt.end,
        min_observations=bt.formation_days + bt.trading_days,
        min_symbols=2,
    )
    panel = loaded.panel
    features = features_for_sector(sector)
    specs = model_specs(settings)
    parts = get_model_parts()
    for kind, chosen in (("hedge", specs["hedge"].part), ("volatility", specs["garch"].part)):
        if chosen not in parts[kind]:
            known = ", ".join(sorted(parts[kind]))
            raise MlflowPairsError(f"unknown {kind} part {chosen!r} (available: {known})")

    def make_model(pairs: Any) -> GarchGruModel:
        return GarchGruModel(sector, pairs, features, parts=parts, **specs)

    rule, costs = trading_rules(settings)
    config_hash = strategy_hash(settings)
    with connection.start_run(
        sector=sector, run_name=f"train-{sector}", tags={"mlflow_pairs.job": "train"}
    ) as run:
        connection.log_settings(infrastructure=False)
        connection.log_dataset(panel, context="training")
        mlflow.log_params(
            {
                "universe": panel.universe or panel.source_uri,
                "symbols": ",".join(panel.symbols),
                "features": ",".join(f.name for f in features),
                "strategy_hash": config_hash,
            }
        )
        n_trials = len(VARIANTS) * count_configurations(connection, config_hash)
        with _progress(progress, sector) as advance, warnings.catch_warnings():
            warnings.simplefilter("ignore", category=UserWarning)
            results = run_walk_forward(
                panel.prices,
                sectors=loaded.sectors,
                criteria=screening_criteria(settings),
                make_model=make_model,
                rule=rule,
                costs=costs,
                formation_days=bt.formation_days,
                trading_days=bt.trading_days,
                max_windows=bt.max_windows,
                fallback_top_k=bt.fallback_top_k,
                exploratory_top_k=bt.exploratory_top_k,
                on_window=advance,
            )
        summary = log_walk_forward(results, panel, n_trials)
        latest = results[-1]
        if latest.model is None:
            raise MlflowPairsError(
                f"sector {sector}: the latest formation window has no candidate pair to fit "
                f"({latest.note or latest.screening.summary()}), so there is no model to "
                "register (the run keeps what was logged)"
            )
        model = latest.model
        evidence = "exploratory" if latest.exploratory else latest.status
        for epoch, values in enumerate(model.sequence_.history_):
            mlflow.log_metrics(finite_metrics(values, "epoch_"), step=epoch)
        mlflow.log_metrics(finite_metrics(model.metrics_, "model_"))
        mlflow.set_tag("mlflow_pairs.evidence", evidence)
        if evidence != "tested":
            mlflow.set_tag(
                "mlflow_pairs.exploratory",
                f"the latest window's pairs did not pass screening ({evidence}): the model "
                "is registered for inspection and serving tests, never promoted",
            )
        counts = {s: sum(w.status == s for w in results) for s in ("tested", "flat")}
        mlflow.set_tag(
            "mlflow.note.content",
            f"Walk-forward train of sector {sector} on {panel.universe or panel.source_uri} "
            f"({len(results)} windows: {counts['tested']} traded tested pairs, "
            f"{counts['flat']} flat). Variants static_z, garch, garch_gru with the same "
            f"costs; the latest window's model is registered ({evidence}). See "
            "plots/tear_sheet.png and backtest/.",
        )
        candidate = candidate_metrics(latest)
        mlflow.log_metrics(finite_metrics(candidate, "candidate_"))
        version, decision = register_and_promote(
            connection, model, panel, sector, candidate, evidence
        )
    run_id = run.info.run_id
    tables = write_training_rows(settings, connection, run_id, sector, results, version)
    return SectorTraining(
        sector=sector,
        run_id=run_id,
        results=results,
        summary=summary,
        model=model,
        evidence=evidence,
        model_name=connection.model_name(sector),
        version=version,
        decision=decision,
        n_trials=n_trials,
        tables=tables,
    )


@contextlib.contextmanager
def _progress(progress: Progress | None, sector: str) -> Iterator[WindowCallback | None]:
    if progress is None:
        yield None
        return
    with progress(sector) as advance:
        yield advance


def write_training_rows(
    settings: Settings,
    connection: MlflowConnection,
    run_id: str,
    sector: str,
    results: Sequence[WindowResult],
    version: ModelVersion,
) -> TablesWrite:
    """Screening (every window) and the registered version's pair-level performance (the
    GARCH-GRU variant in every trading window) to the project's tables: the tables
    database (``tables.uri``), or the tracking server when it serves them.

    A failure is not raised but returned as :attr:`TablesWrite.error`: the MLflow run
    already holds everything, and rerunning writes the rows again.
    """
    from mlflow_pairs.backtest.results import pair_table, screening_table
    from mlflow_pairs.db.records import record_performance, record_screening
    from mlflow_pairs.db.remote import tables_target

    screening = screening_table(results).rename(
        columns={"formation_start": "window_start", "formation_end": "window_end"}
    )
    # A file has no sectors: its rows belong to the run's sector ("custom"), like its
    # performance rows, so the report joins them.
    screening["sector"] = screening["sector"].replace("", sector).fillna(sector)
    pairs = pair_table(results)
    performance = pairs[pairs["variant"] == "garch_gru"].rename(
        columns={"window_start": "period_start", "window_end": "period_end"}
    )
    criteria = settings.screening
    try:
        uri = tables_target(settings, connection.tracking_uri)
        if uri is None:
            return TablesWrite()
        counts = record_screening(
            uri,
            run_id,
            screening,
            arch_lags=criteria.arch_lags,
            ljung_box_lags=criteria.ljung_box_lags,
        )
        counts.update(
            record_performance(
                uri,
                performance,
                model_name=version.name,
                model_version=int(version.version),
                run_id=run_id,
                sector=sector,
            )
        )
    except MlflowPairsError as exc:
        return TablesWrite(error=redact(str(exc)))
    return TablesWrite(uri=mask_uri(uri), counts=dict(counts))
