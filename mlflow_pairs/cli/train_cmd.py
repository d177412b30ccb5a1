"""``mlflow-pairs train``: screen, fit, walk-forward backtest, log, register, promote.

The work is :mod:`mlflow_pairs.jobs.train` (locally) or :mod:`mlflow_pairs.spark.train`
(one Spark task per sector); this module parses the options, shows the progress bar and
prints the results.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import click

from mlflow_pairs.cli._app import AppContext, pass_app
from mlflow_pairs.cli._engine import engine_options
from mlflow_pairs.cli._options import option_date
from mlflow_pairs.errors import MlflowPairsError
from mlflow_pairs.secrets import redact

if TYPE_CHECKING:
    from mlflow_pairs.config import Settings
    from mlflow_pairs.jobs.train import SectorOutcome, SectorReport, SectorTraining, WindowCallback

__all__ = ["train"]


@click.command("train")
@click.option("--sector", default=None, help="Sector to train [default: sectors.active].")
@click.option("--all-sectors", is_flag=True, help="Every sector in sectors.active.")
@click.option(
    "--prices",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="FILE",
    help="Train on a CSV/Parquet file instead of a universe (with --symbols).",
)
@click.option("--symbols", default=None, metavar="A,B,...", help="Symbols of --prices.")
@click.option("--start", default=None, help="First date [config: backtest.start].")
@click.option("--end", default=None, help="Last date [config: backtest.end].")
@engine_options(
    "the sectors one after the other in this process",
    "one Spark task per sector, logging to the tracking server",
)
@pass_app
def train(
    app: AppContext,
    sector: str | None,
    all_sectors: bool,
    prices: str | None,
    symbols: str | None,
    start: str | None,
    end: str | None,
    engine: str,
    master: str | None,
) -> None:
    """Walk-forward train and backtest a sector model; register it and maybe promote it.

    For each formation window: screen pairs, fit the GARCH-GRU model; trade the next
    window without refitting; compare static z-score, GARCH-only and GARCH-GRU rules with
    the same costs. The model of the latest window is logged with the garch_gru flavor,
    registered as pairs_trading_gru_garch_{sector}, aliased challenger, and promoted to
    champion when the configured gates pass.

    With --engine spark each sector is one Spark task that logs its own run to the
    tracking server (mlflow.tracking_uri must be http(s)://) and registers its model; a
    summary row per sector is printed.
    """
    from mlflow_pairs.jobs.train import prepare_training

    settings = app.settings
    if all_sectors and (sector or prices):
        raise click.UsageError("--all-sectors trains every active sector: drop --sector/--prices")
    if prices and sector:
        raise click.UsageError(
            "--prices trains a 'custom' model on the file's symbols: drop --sector (a file "
            "written into a sector's model would mix its symbols with the sector's)"
        )
    if symbols is not None and not [s for s in symbols.split(",") if s.strip()]:
        raise click.BadParameter(f"no symbol in {symbols!r}; give A,B,...", param_hint="--symbols")
    if engine == "spark":
        if prices:
            raise click.UsageError(
                "--engine spark trains the sectors' universes (executors could not read a "
                "file of this machine): drop --prices"
            )
        from mlflow_pairs.spark import check_master, require_pyspark
        from mlflow_pairs.spark.train import require_tracking_server

        require_pyspark()
        master = master or settings.spark.master
        check_master(master)
        require_tracking_server(settings)
    elif master is not None:
        raise click.UsageError("--master is for --engine spark")
    if all_sectors:
        sectors = list(settings.sectors.active)
    else:
        sectors = [sector or ("custom" if prices else settings.sectors.active[0])]
    bt = settings.backtest
    first = option_date(start or bt.start, "--start")
    last = option_date(end or bt.end, "--end")
    chosen = [s.strip() for s in symbols.split(",")] if symbols else None
    # Everything knowable before the walk-forward is checked before it.
    connection = prepare_training(settings, sectors, prices=prices)
    if engine == "spark":
        _train_on_spark(settings, sectors, master or settings.spark.master, chosen, first, last)
        return
    from mlflow_pairs.jobs.train import train_sectors

    several = len(sectors) > 1
    outcomes = train_sectors(
        settings,
        sectors,
        connection=connection,
        prices=prices,
        symbols=chosen,
        start=first,
        end=last,
        progress=_progress_bar,
        on_outcome=lambda outcome: _show(settings, outcome, several),
    )
    failed = [(o.sector, o.error) for o in outcomes if o.error is not None]
    if failed and not several:
        raise failed[0][1]
    if failed:
        raise _failure(
            [(name, exc.exit_code) for name, exc in failed], len(sectors), cause=failed[0][1]
        )


@contextlib.contextmanager
def _progress_bar(sector: str) -> Iterator[WindowCallback]:
    """The walk-forward's progress on standard error, one step per window."""
    bar: Any = click.progressbar(length=1, label=f"{sector}: walk-forward windows", file=sys.stderr)
    with bar:

        def advance(number: int, total: int, window: Any) -> None:
            bar.length = total
            bar.update(1)

        yield advance


def _show(settings: Settings, outcome: SectorOutcome, several: bool) -> None:
    """A sector's results as soon as it is done; a failure of one of several sectors as an
    error line (one sector's failure is the command's error)."""
    if outcome.training is not None:
        _print_training(settings, outcome.training)
    elif several:
        click.echo(f"Error: sector {outcome.sector}: {redact(str(outcome.error))}", err=True)


def _failure(
    failed: Sequence[tuple[str, int]], total: int, cause: BaseException | None = None
) -> MlflowPairsError:
    """The command's error when some of ``total`` sectors failed: the worst exit status."""
    names = ", ".join(name for name, _ in failed)
    error = MlflowPairsError(
        f"{len(failed)} of {total} sectors failed ({names}); {total - len(failed)} trained"
    )
    error.exit_code = max(code for _, code in failed)
    error.__cause__ = cause
    return error


def _print_training(settings: Settings, training: SectorTraining) -> None:
    tables = training.tables
    if tables.error is not None:
        click.echo(
            f"Warning: rows not written to the mlflow-pairs tables: {tables.error} "
            "(the MLflow run is complete; see `mlflow-pairs db --help`)",
            err=True,
        )
    elif tables.uri is not None:
        written = ", ".join(f"{n} to {name}" for name, n in tables.counts.items())
        click.echo(f"Wrote rows ({written}) in {tables.uri}")
    _print_summary(settings, training)
    click.echo(
        f"registered {training.model_name} version {training.version.version} "
        f"as challenger ({training.evidence}); {training.decision.summary()}"
    )


def _train_on_spark(
    settings: Settings,
    sectors: list[str],
    master: str,
    symbols: list[str] | None,
    start: Any,
    end: Any,
) -> None:
    from mlflow_pairs.spark import session_scope
    from mlflow_pairs.spark.train import train_spark

    with session_scope(master, app_name="mlflow-pairs train") as spark:
        reports = train_spark(spark, settings, sectors, symbols=symbols, start=start, end=end)
    _print_reports(reports)
    failed = [r for r in reports if r.status != "trained"]
    for report in failed:
        click.echo(f"Error: sector {report.sector}: {redact(report.error or '')}", err=True)
    if failed:
        raise _failure([(r.sector, r.exit_code) for r in failed], len(reports))


def _print_reports(reports: Sequence[SectorReport]) -> None:
    """One row per sector: its status, run, registered version and promotion (or error)."""
    width = max(len("sector"), *(len(r.sector) for r in reports))
    trained = sum(r.status == "trained" for r in reports)
    click.echo(f"Trained {trained} of {len(reports)} sectors as Spark tasks")
    click.echo(f"{'sector':<{width}}  {'status':<7}  {'run':<32}  {'version':>7}  detail")
    for r in reports:
        if r.status == "trained":
            verdict = "promoted to champion" if r.promoted else "not promoted"
            detail = f"{r.model_name} as challenger ({r.evidence}); {verdict}"
        else:
            detail = r.error or ""
        click.echo(
            f"{r.sector:<{width}}  {r.status:<7}  {r.run_id or '-':<32}  "
            f"{r.model_version or '-':>7}  {redact(detail)}"
        )
    for r in reports:
        if r.tables_error is not None:
            click.echo(
                f"Warning: sector {r.sector}: rows not written to the mlflow-pairs tables: "
                f"{redact(r.tables_error)} (the MLflow run is complete; see "
                "`mlflow-pairs db --help`)",
                err=True,
            )


def _print_summary(settings: Settings, training: SectorTraining) -> None:
    """The walk-forward's headline: windows, each variant with its interval, PSR and
    DSR, the paired tests, the GRU's out-of-sample lift and the registered model."""
    from mlflow_pairs.backtest.walkforward import VARIANTS

    sector, run_id, results = training.sector, training.run_id, training.results
    summary, model, evidence = training.summary, training.model, training.evidence
    n_trials = training.n_trials
    metrics, lift = summary["variants"], summary["lift"]
    counts = {s: sum(w.status == s for w in results) for s in ("tested", "flat", "fallback")}
    q = settings.screening.fdr
    rule = f"BH q <= {q}" if q is not None else f"p <= {settings.screening.max_pvalue}"
    click.echo(f"\n{sector}: {len(results)} windows, run {run_id}")
    line = f"traded in {counts['tested']} of {len(results)} windows; flat in {counts['flat']}"
    if counts["flat"]:
        line += f" (no pair passed screening, {rule})"
    if counts["fallback"]:
        line += f"; fallback (untested, not in the headline) in {counts['fallback']}"
    click.echo(line)
    click.echo(
        f"{'variant':<10} {'sharpe':>7} {'95% interval':>16} {'PSR':>5} {'DSR':>5} "
        f"{'ann.ret':>8} {'max dd':>7} {'trades':>6}"
    )
    for variant in VARIANTS:
        if variant not in metrics:
            continue
        m = metrics[variant]
        interval = f"[{m['sharpe_lower']:.2f}, {m['sharpe_upper']:.2f}]"
        click.echo(
            f"{variant:<10} {m['sharpe']:>7.2f} {interval:>16} {_fmt(m['psr'])} "
            f"{_fmt(m['dsr'])} {m['annual_return']:>8.2%} {m['max_drawdown']:>7.2%} "
            f"{int(m['trades']):>6}"
        )
    if "garch_gru" in metrics:
        m = metrics["garch_gru"]
        for baseline in ("static_z", "garch"):
            click.echo(
                f"garch_gru - {baseline}: Sharpe {m[f'vs_{baseline}_sharpe_diff']:+.2f} "
                f"[{m[f'vs_{baseline}_sharpe_lower']:.2f}, {m[f'vs_{baseline}_sharpe_upper']:.2f}]"
                f", p = {_fmt(m[f'vs_{baseline}_sharpe_pvalue']).strip()}"
            )
        click.echo(f"(DSR over {n_trials} trials: the variants x configurations tried here)")
    scope = summary["lift_scope"]
    if "auc_lift" in lift:
        click.echo(
            f"GRU out of sample ({scope} windows, {int(lift['samples'])} candidate days): "
            f"AUC {lift['gru_auc']:.3f} vs |z| {lift['zscore_auc']:.3f}, lift "
            f"{lift['auc_lift']:+.3f} [{lift['auc_lift_lower']:.3f}, {lift['auc_lift_upper']:.3f}]"
            f"; Brier {lift['gru_brier']:.3f} vs |z| {lift['zscore_brier']:.3f} vs constant "
            f"{lift['constant_brier']:.3f}"
        )
    elif lift:
        click.echo(
            f"GRU out of sample ({scope} windows): {int(lift['samples'])} candidate days, all "
            "with one outcome: no AUC to compare"
        )
    else:
        click.echo("GRU out of sample: no labelled candidate day in any window with a model")
    click.echo(
        f"model ({evidence}, latest window, test part of its formation): F1 "
        f"{model.metrics_['f1']:.3f} (constant {model.metrics_['f1_constant']:.3f}), "
        f"AUC {model.metrics_['auc']:.3f} (|z| {model.metrics_['zscore_auc']:.3f})"
    )


def _fmt(value: float) -> str:
    return f"{value:>5.2f}" if value == value else "  n/a"
