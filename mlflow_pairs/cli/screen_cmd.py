"""``mlflow-pairs screen``: cointegration screening of a universe or a price file."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click

from mlflow_pairs.cli._app import AppContext, pass_app
from mlflow_pairs.cli._engine import engine_options
from mlflow_pairs.cli._options import check_output_path, data_options, finite, panel_from_options

# Progress bars appear from this many tests (pairs x 2 directions) on.
_PROGRESS_FROM = 20_000


@click.command("screen")
@data_options
@click.option(
    "--max-lag",
    type=click.IntRange(0),
    default=None,
    help="ADF lags (the maximum with --autolag) [config: screening.max_lag].",
)
@click.option(
    "--autolag",
    type=click.Choice(["aic", "bic"]),
    default=None,
    help="Choose the ADF lag per pair by information criterion.",
)
@click.option(
    "--fdr",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    callback=lambda ctx, param, value: finite(value, "--fdr"),
    default=None,
    help="Select by Benjamini-Hochberg q-value <= Q [config: screening.fdr, 0.05].",
)
@click.option(
    "--hedge",
    type=click.Choice(["ols", "tls"]),
    default=None,
    help="Hedge-ratio estimator [config: screening.hedge].",
)
@click.option(
    "--top-k",
    type=click.IntRange(1),
    default=None,
    help="Keep at most K passing pairs [config: screening.top_k].",
)
@click.option(
    "--cross-sector",
    is_flag=True,
    default=None,
    help="Also pair symbols of different sectors (with several universes).",
)
@click.option(
    "--device",
    type=click.Choice(["auto", "numpy", "cpu", "cuda"]),
    default=None,
    help="numpy: the NumPy engine; cpu or cuda: PyTorch there; auto: cuda when a GPU "
    "is present, else numpy [config: screening.device]. The results are the same.",
)
@engine_options(
    "this process",
    "one Spark task per block pair of symbols",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    metavar="FILE.csv|FILE.parquet",
    help="Write the table (one row per tested pair) to this file: Parquet when it ends "
    "in .parquet, else CSV.",
)
@click.option("--no-log", is_flag=True, help="Do not log the run to MLflow.")
@pass_app
def screen(
    app: AppContext,
    /,
    max_lag: int | None,
    autolag: str | None,
    fdr: float | None,
    hedge: str | None,
    top_k: int | None,
    cross_sector: bool | None,
    device: str | None,
    engine: str,
    master: str | None,
    output: str | None,
    no_log: bool,
    **data: object,
) -> None:
    """Test every candidate pair for cointegration and select the best.

    --start and --end give the formation window. Pairs are formed within a sector
    (pass several universes as --universe a,b with --cross-sector to pair across).
    """
    from mlflow_pairs.screening import ScreeningCriteria, resolve_device

    settings = app.settings
    config = settings.screening.model_dump()
    overrides = {
        "max_lag": max_lag,
        "autolag": autolag,
        "fdr": fdr,
        "hedge": hedge,
        "top_k": top_k,
        "cross_sector": cross_sector,
        "device": device,
    }
    config.update({key: value for key, value in overrides.items() if value is not None})
    criteria = ScreeningCriteria(**config)
    if engine == "spark":
        from mlflow_pairs.spark import check_master, require_pyspark

        require_pyspark()
        master = master or settings.spark.master
        check_master(master)
    elif master is not None:
        raise click.UsageError("--master is for --engine spark")
    else:
        resolve_device(criteria.device)  # a missing GPU fails before the work
    if output:
        check_output_path(output, "--output")
    connection = None
    if not no_log:
        connection = app.connection()
        connection.check()  # fail before the work, not after it
    loaded = panel_from_options(
        settings,
        min_observations=2 * (criteria.max_lag + 2),
        min_symbols=2,
        **data,  # type: ignore[arg-type]
    )
    panel, sectors = loaded.panel, loaded.sectors
    if engine == "spark":
        from mlflow_pairs.spark import session_scope
        from mlflow_pairs.spark.screen import screen_spark

        with session_scope(master, app_name="mlflow-pairs screen") as spark:
            result = screen_spark(spark, panel.prices, criteria, sectors=sectors)
    else:
        from mlflow_pairs.screening import screen as run_screen

        n_pairs = len(panel.symbols) * (len(panel.symbols) - 1) // 2
        with _progress(2 * n_pairs) as advance:
            result = run_screen(panel.prices, criteria, sectors=sectors, progress=advance)
    click.echo(result.summary())
    for message in result.messages:
        click.echo(message)
    if not result.selected.empty:
        shown = result.selected[
            [
                "y",
                "x",
                "hedge_ratio",
                "adf_stat",
                "pair_pvalue",
                "qvalue",
                "half_life",
                "hurst",
                "crossings",
            ]
        ]
        click.echo(shown.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if output:
        if output.lower().endswith(".parquet"):
            result.table.to_parquet(output, index=False)
        else:
            result.table.to_csv(output, index=False)
        click.echo(f"Wrote {result.n_tested} rows to {output}")
    if connection is not None:
        from mlflow_pairs.tracking.screening import log_screening

        sector = ",".join(sorted(set(sectors.values()))) if sectors else None
        with connection.start_run(
            sector=sector, run_name="screen", tags={"mlflow_pairs.job": "screen"}
        ) as run:
            connection.log_dataset(panel, context="screening")
            log_screening(result)
        click.echo(f"Logged run {run.info.run_id} to {connection.safe_tracking_uri}")
        from mlflow_pairs.cli._tables import write_rows
        from mlflow_pairs.db.records import record_screening

        table = result.table.assign(window_start=result.start, window_end=result.end)
        write_rows(
            app,
            connection,
            lambda uri: record_screening(
                uri,
                run.info.run_id,
                table,
                arch_lags=criteria.arch_lags,
                ljung_box_lags=criteria.ljung_box_lags,
            ),
        )


@contextmanager
def _progress(total: int) -> Iterator[Callable[[int], None] | None]:
    if total < _PROGRESS_FROM:
        yield None
        return
    lock = threading.Lock()
    with click.progressbar(length=total, label="Engle-Granger tests", file=None) as bar:

        def advance(done: int) -> None:
            with lock:
                bar.update(done)

        yield advance
