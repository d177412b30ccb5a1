"""``mlflow-pairs train``: screen, fit, walk-forward backtest, log, register, promote."""

from __future__ import annotations

import sys
import warnings
from dataclasses import fields
from typing import Any

import click

from mlflow_pairs.cli._app import AppContext, pass_app
from mlflow_pairs.errors import MlflowPairsError


def _universe_for(sector: str) -> str:
    from mlflow_pairs.plugins import get_universes

    universes = get_universes()
    for candidate in (sector, f"sample-{sector}"):
        if candidate in universes:
            return candidate
    matching = sorted(n for n, u in universes.items() if u.sector == sector)
    if not matching:
        raise MlflowPairsError(f"no universe is registered for sector {sector!r}")
    return matching[0]


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
@pass_app
def train(
    app: AppContext,
    sector: str | None,
    all_sectors: bool,
    prices: str | None,
    symbols: str | None,
    start: str | None,
    end: str | None,
) -> None:
    """Walk-forward train and backtest a sector model; register it and maybe promote it.

    For each formation window: screen pairs, fit the GARCH-GRU model; trade the next
    window without refitting; compare static z-score, GARCH-only and GARCH-GRU rules with
    the same costs. The model of the latest window is logged with the garch_gru flavor,
    registered as pairs_trading_gru_garch_{sector}, aliased challenger, and promoted to
    champion when the configured gates pass.
    """
    settings = app.settings
    if all_sectors:
        sectors = list(settings.sectors.active)
    else:
        sectors = [sector or ("custom" if prices else settings.sectors.active[0])]
    connection = app.connection()
    connection.check()
    for name in sectors:
        _train_sector(app, connection, name, prices, symbols, start, end)


def _train_sector(
    app: AppContext,
    connection: Any,
    sector: str,
    prices: str | None,
    symbols: str | None,
    start: str | None,
    end: str | None,
) -> None:
    import mlflow

    from mlflow_pairs.cli._options import panel_from_options, trading_rules
    from mlflow_pairs.model import GarchGruModel, GarchSpec, ModelConfig, TrainingConfig
    from mlflow_pairs.plugins import features_for_sector
    from mlflow_pairs.screening import ScreeningCriteria
    from mlflow_pairs.tracking.train_run import log_walk_forward, register_and_promote
    from mlflow_pairs.walkforward import VARIANTS, run_walk_forward

    settings = app.settings
    bt, ml = settings.backtest, settings.ml
    universe = None if prices else _universe_for(sector)
    loaded = panel_from_options(
        settings,
        universe=universe,
        prices=prices,
        symbols=[s.strip() for s in symbols.split(",")] if symbols else None,
        start=start or bt.start,
        end=end or bt.end,
        min_observations=bt.formation_days + bt.trading_days,
    )
    panel = loaded.panel
    features = features_for_sector(sector)
    # The ml section carries both parts' settings under the same names.
    training = TrainingConfig(**{f.name: getattr(ml, f.name) for f in fields(TrainingConfig)})
    config = ModelConfig(**{f.name: getattr(ml, f.name) for f in fields(ModelConfig)})
    garch = GarchSpec(**settings.garch.model_dump())

    def make_model(pairs: Any) -> GarchGruModel:
        return GarchGruModel(sector, pairs, features, garch, training, config)

    rule, costs = trading_rules(settings)
    with connection.start_run(
        sector=sector, run_name=f"train-{sector}", tags={"mlflow_pairs.job": "train"}
    ) as run:
        connection.log_settings()
        connection.log_dataset(panel, context="training")
        mlflow.log_params(
            {
                "universe": panel.universe or panel.source_uri,
                "symbols": ",".join(panel.symbols),
                "features": ",".join(f.name for f in features),
            }
        )
        bar: Any = click.progressbar(
            length=1, label=f"{sector}: walk-forward windows", file=sys.stderr
        )
        with bar, warnings.catch_warnings():
            warnings.simplefilter("ignore", category=UserWarning)

            def advance(number: int, total: int, window: Any) -> None:
                bar.length = total
                bar.update(1)

            results = run_walk_forward(
                panel.prices,
                sectors=loaded.sectors,
                criteria=ScreeningCriteria(**settings.screening.model_dump()),
                make_model=make_model,
                rule=rule,
                costs=costs,
                formation_days=bt.formation_days,
                trading_days=bt.trading_days,
                max_windows=bt.max_windows,
                fallback_top_k=bt.fallback_top_k,
                on_window=advance,
            )
        metrics = log_walk_forward(results, panel)
        latest = next((w for w in reversed(results) if w.model is not None), None)
        if latest is None or "garch_gru" not in metrics:
            raise MlflowPairsError(
                f"sector {sector}: no formation window had a testable pair, so there is no "
                "model to register (the run keeps what was logged)"
            )
        model = latest.model
        assert model is not None
        for epoch, values in enumerate(model.sequence_.history_):
            mlflow.log_metrics({f"epoch_{k}": v for k, v in values.items() if v == v}, step=epoch)
        mlflow.log_metrics({f"model_{k}": v for k, v in model.metrics_.items() if v == v})
        if latest.weak_evidence:
            mlflow.set_tag(
                "mlflow_pairs.weak_evidence",
                "no pair passed screening in the latest window; traded the best by p-value",
            )
        candidate = {
            "f1": model.metrics_["f1"],
            "sharpe": metrics["garch_gru"]["sharpe"],
            "max_drawdown": metrics["garch_gru"]["max_drawdown"],
        }
        version, decision = register_and_promote(connection, model, panel, sector, candidate)
    _write_tables(app, connection, run.info.run_id, sector, results, version)
    click.echo(f"\n{sector}: {len(results)} windows, run {run.info.run_id}")
    click.echo(f"{'variant':<10} {'sharpe':>8} {'ann.ret':>8} {'max dd':>8} {'trades':>7}")
    for variant in VARIANTS:
        if variant in metrics:
            m = metrics[variant]
            click.echo(
                f"{variant:<10} {m['sharpe']:>8.2f} {m['annual_return']:>8.2%} "
                f"{m['max_drawdown']:>8.2%} {int(m['trades']):>7}"
            )
    weak = sum(w.weak_evidence for w in results)
    if weak:
        click.echo(
            f"weak evidence: in {weak} of {len(results)} windows no pair passed screening; "
            f"the best {app.settings.backtest.fallback_top_k} by p-value were traded "
            "(flagged in the screening table and the run's tags)"
        )
    click.echo(
        f"model (latest window, test part): F1 {model.metrics_['f1']:.3f}, "
        f"AUC {model.metrics_['auc']:.3f}"
    )
    click.echo(
        f"registered {connection.model_name(sector)} version {version.version} "
        f"as challenger; {decision.summary()}"
    )


def _write_tables(
    app: AppContext, connection: Any, run_id: str, sector: str, results: Any, version: Any
) -> None:
    """Screening (every window) and the registered version's pair-level performance
    (the GARCH-GRU variant in every trading window) to the project's tables."""
    from mlflow_pairs.cli._tables import write_rows
    from mlflow_pairs.db.records import record_performance, record_screening
    from mlflow_pairs.tracking.train_run import pair_table, screening_table

    screening = screening_table(results).rename(
        columns={"formation_start": "window_start", "formation_end": "window_end"}
    )
    pairs = pair_table(results)
    performance = pairs[pairs["variant"] == "garch_gru"].rename(
        columns={"window_start": "period_start", "window_end": "period_end"}
    )
    criteria = app.settings.screening

    def write(uri: str) -> dict[str, int]:
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
        return counts

    write_rows(app, connection, write)
