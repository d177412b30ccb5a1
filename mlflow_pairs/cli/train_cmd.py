"""``mlflow-pairs train``: screen, fit, walk-forward backtest, log, register, promote."""

from __future__ import annotations

import sys
import warnings
from typing import Any

import click

from mlflow_pairs.cli._app import AppContext, pass_app
from mlflow_pairs.errors import ConfigError, MlflowPairsError, NotFoundError
from mlflow_pairs.secrets import redact


def _universe_for(sector: str) -> str:
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
    if all_sectors and (sector or prices):
        raise click.UsageError("--all-sectors trains every active sector: drop --sector/--prices")
    if prices and sector:
        raise click.UsageError(
            "--prices trains a 'custom' model on the file's symbols: drop --sector (a file "
            "written into a sector's model would mix its symbols with the sector's)"
        )
    if symbols is not None and not [s for s in symbols.split(",") if s.strip()]:
        raise click.BadParameter(f"no symbol in {symbols!r}; give A,B,...", param_hint="--symbols")
    if all_sectors:
        sectors = list(settings.sectors.active)
    else:
        sectors = [sector or ("custom" if prices else settings.sectors.active[0])]
    # Everything knowable before the walk-forward is checked before it.
    from mlflow_pairs.model import select_device

    try:
        select_device(settings.ml.device)
    except ValueError as exc:
        raise ConfigError(f"ml.device: {exc}") from None
    if not prices:
        for name in sectors:
            _universe_for(name)
    _check_stores(settings)
    connection = app.connection()
    connection.check()
    failed: list[tuple[str, MlflowPairsError]] = []
    for name in sectors:
        try:
            _train_sector(app, connection, name, prices, symbols, start, end)
        except MlflowPairsError as exc:
            if len(sectors) == 1:
                raise
            failed.append((name, exc))
            click.echo(f"Error: sector {name}: {redact(str(exc))}", err=True)
    if failed:
        names = ", ".join(name for name, _ in failed)
        trained = len(sectors) - len(failed)
        error = MlflowPairsError(
            f"{len(failed)} of {len(sectors)} sectors failed ({names}); {trained} trained"
        )
        error.exit_code = max(exc.exit_code for _, exc in failed)
        raise error from failed[0][1]


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

    from mlflow_pairs.cli._options import model_specs, panel_from_options, trading_rules
    from mlflow_pairs.model import GarchGruModel
    from mlflow_pairs.plugins import features_for_sector, get_model_parts
    from mlflow_pairs.screening import ScreeningCriteria
    from mlflow_pairs.tracking.train_run import (
        candidate_metrics,
        count_configurations,
        log_walk_forward,
        register_and_promote,
        strategy_hash,
    )
    from mlflow_pairs.walkforward import VARIANTS, run_walk_forward

    settings = app.settings
    bt = settings.backtest
    universe = None if prices else _universe_for(sector)
    loaded = panel_from_options(
        settings,
        universe=universe,
        prices=prices,
        symbols=[s.strip() for s in symbols.split(",")] if symbols else None,
        start=start or bt.start,
        end=end or bt.end,
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
        connection.log_settings()
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
            mlflow.log_metrics({f"epoch_{k}": v for k, v in values.items() if v == v}, step=epoch)
        mlflow.log_metrics({f"model_{k}": v for k, v in model.metrics_.items() if v == v})
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
        mlflow.log_metrics({f"candidate_{k}": v for k, v in candidate.items() if v == v})
        version, decision = register_and_promote(
            connection, model, panel, sector, candidate, evidence
        )
    _write_tables(app, connection, run.info.run_id, sector, results, version)
    _print_summary(app, sector, run.info.run_id, results, summary, model, evidence, n_trials)
    click.echo(
        f"registered {connection.model_name(sector)} version {version.version} "
        f"as challenger ({evidence}); {decision.summary()}"
    )


def _print_summary(
    app: AppContext,
    sector: str,
    run_id: str,
    results: Any,
    summary: dict[str, Any],
    model: Any,
    evidence: str,
    n_trials: int,
) -> None:
    from mlflow_pairs.walkforward import VARIANTS

    metrics, lift = summary["variants"], summary["lift"]
    counts = {s: sum(w.status == s for w in results) for s in ("tested", "flat", "fallback")}
    q = app.settings.screening.fdr
    rule = f"BH q <= {q}" if q is not None else f"p <= {app.settings.screening.max_pvalue}"
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
        f"{model.metrics_['f1']:.3f}, AUC {model.metrics_['auc']:.3f} (|z| "
        f"{model.metrics_['zscore_auc']:.3f})"
    )


def _fmt(value: float) -> str:
    return f"{value:>5.2f}" if value == value else "  n/a"


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
    # A file has no sectors: its rows belong to the run's sector ("custom"), like its
    # performance rows, so the report joins them.
    screening["sector"] = screening["sector"].replace("", sector).fillna(sector)
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


def _check_stores(settings: Any) -> None:
    """A local artifact root must be a writable folder (or creatable under one), and an
    explicit ``tables.uri`` must be a database URI: found before the walk-forward, not
    after it."""
    import os
    from pathlib import Path
    from urllib.parse import urlparse

    from mlflow_pairs.tracking._uris import absolute_artifact_root

    root = absolute_artifact_root(settings.mlflow.artifact_root)
    if urlparse(root).scheme == "file":
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
