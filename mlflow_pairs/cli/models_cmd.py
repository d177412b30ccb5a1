"""``mlflow-pairs models list``, ``promote`` and ``backtest``: registry and evaluation."""

from __future__ import annotations

from typing import Any

import click

from mlflow_pairs.cli._app import AppContext, pass_app
from mlflow_pairs.cli._options import data_options, panel_from_options, trading_rules
from mlflow_pairs.data.errors import DataError
from mlflow_pairs.errors import NotFoundError, UsageError


@click.group("models")
def models_group() -> None:
    """Registered sector models."""


@models_group.command("list")
@pass_app
def models_list(app: AppContext) -> None:
    """Every version of every pairs_trading model, with aliases and promotion decisions."""
    connection = app.connection()
    connection.check()
    pattern = app.settings.model_registry.name_pattern.split("{sector}")[0]
    models = connection.client.search_registered_models(filter_string=f"name LIKE '{pattern}%'")
    if not models:
        click.echo("No registered models.")
        return
    for model in sorted(models, key=lambda m: m.name):
        aliases: dict[str, list[str]] = {}
        for alias, version in (model.aliases or {}).items():
            aliases.setdefault(str(version), []).append(alias)
        click.echo(model.name)
        for version in connection.list_versions(model.name):
            tags = version.tags
            labels = ",".join(sorted(aliases.get(str(version.version), []))) or "-"
            f1, sharpe = tags.get("mlflow_pairs.f1", "?"), tags.get("mlflow_pairs.sharpe", "?")
            click.echo(
                f"  v{version.version:<4} {labels:<20} run {version.run_id}  "
                f"f1={f1} sharpe={sharpe} {tags.get('mlflow_pairs.promotion_decision', '')}"
            )


@click.command("promote")
@click.argument("name")
@click.argument("version")
@pass_app
def promote(app: AppContext, name: str, version: str) -> None:
    """Point the champion alias of NAME at VERSION (a manual decision, recorded as a tag)."""
    connection = app.connection()
    connection.check()
    versions = {str(v.version): v for v in connection.list_versions(name)}
    if str(version) not in versions:
        raise NotFoundError(
            f"model {name!r} has no version {version} "
            f"(versions: {', '.join(sorted(versions, key=int)) or 'none'})"
        )
    evidence = versions[str(version)].tags.get("mlflow_pairs.evidence", "tested")
    if evidence != "tested":
        raise UsageError(
            f"model {name!r} version {version} is {evidence}: its pairs did not pass "
            "screening, so it is never promoted"
        )
    connection.promote(name, version, reason="manual promotion (mlflow-pairs promote)")
    click.echo(f"{name} version {version} is now {app.settings.model_registry.champion_alias}")


@click.command("backtest")
@click.option(
    "--model",
    "model_uri",
    required=True,
    help="Model URI, e.g. models:/pairs_trading_gru_garch_technology@champion.",
)
@click.option("--sector", default=None, help="Sector whose universe supplies the prices.")
@click.option(
    "--allow-in-sample",
    is_flag=True,
    help="Allow a --start on or before the model's last training date (tagged in the run).",
)
@data_options
@pass_app
def backtest(
    app: AppContext, /, model_uri: str, sector: str | None, allow_in_sample: bool, **data: Any
) -> None:
    """Evaluate a registered model on new dates without refitting; logged as its own run.

    Out of sample by default: the evaluation starts the day after the model's training
    data ends (the model trades only after its data), unless --start is given; a --start
    inside the training data needs --allow-in-sample.
    """
    import mlflow
    import pandas as pd

    from mlflow_pairs import flavor
    from mlflow_pairs.backtest import performance, portfolio_returns, trades
    from mlflow_pairs.backtest.walkforward import trade_predictions
    from mlflow_pairs.jobs import universe_for
    from mlflow_pairs.tracking._space import storage_errors
    from mlflow_pairs.tracking.plots import log_backtest_plots
    from mlflow_pairs.tracking.train_run import finite_metrics

    settings = app.settings
    connection = app.connection()
    connection.check()
    connection.activate()
    _check_model_uri(connection, model_uri)
    model = flavor.load_model(model_uri)
    trained_to = pd.Timestamp(model.data_end_)
    start = pd.Timestamp(data["start"]) if data.get("start") else None
    in_sample = start is not None and start <= trained_to
    if in_sample and not allow_in_sample:
        raise UsageError(
            f"--start {start:%Y-%m-%d} is inside the model's training data (it ends "
            f"{trained_to:%Y-%m-%d}); pass --allow-in-sample to evaluate there anyway"
        )
    evaluate_from = start if start is not None else trained_to + pd.Timedelta(days=1)
    # The request reaches back min_history trading days (about 1.5 calendar days each)
    # before the first evaluated day, so the GRU's windows there are complete.
    reach = pd.Timedelta(days=int(model.min_history * 1.5) + 10)
    data["start"] = f"{min(evaluate_from, trained_to) - reach:%Y-%m-%d}"
    if data.get("universe") is None and data.get("prices") is None:
        data["universe"] = universe_for(sector or model.sector)
    if data.get("symbols") is None and data.get("prices") is not None:
        data["symbols"] = model.symbols
    panel = panel_from_options(settings, min_observations=model.min_history + 2, **data).panel
    rule, costs = trading_rules(settings)
    predicted = model.predict(panel.prices, rule, all_dates=True)
    results = trade_predictions(predicted, panel.prices, costs, evaluate_from)
    if not any(len(r.frame) for r in results.values()):
        raise DataError(
            "empty-range",
            f"no price after {evaluate_from:%Y-%m-%d} to evaluate {model_uri} on (its "
            f"training data ends {trained_to:%Y-%m-%d})",
        )
    net = portfolio_returns(results)
    stats = performance(net)
    with (
        storage_errors(connection),
        connection.start_run(
            sector=model.sector,
            run_name=f"backtest-{model.sector}",
            tags={
                "mlflow_pairs.job": "backtest",
                "mlflow_pairs.model_uri": model_uri,
                "mlflow_pairs.in_sample": "true" if in_sample else "false",
            },
        ) as run,
    ):
        connection.log_dataset(panel, context="evaluation")
        mlflow.log_params(
            {
                "model_uri": model_uri,
                "start": f"{evaluate_from:%Y-%m-%d}",
                "model_trained_to": f"{trained_to:%Y-%m-%d}",
                "end": f"{panel.end:%Y-%m-%d}",
            }
        )
        mlflow.log_metrics(finite_metrics(stats))
        frames = [
            r.frame.rename_axis("date").reset_index().assign(pair=p) for p, r in results.items()
        ]
        table = pd.concat(frames)
        mlflow.log_text(
            table[["date", "pair", "weight_y", "weight_x"]].to_csv(index=False),
            "backtest/positions.csv",
        )
        mlflow.log_text(
            table[["date", "pair", "gross", "cost", "borrow", "net"]].to_csv(index=False),
            "backtest/daily_returns.csv",
        )
        book = pd.concat(
            [trades(r.frame["position"], r.frame["net"]) for r in results.values()]
            or [pd.DataFrame(columns=["return"])]
        )
        log_backtest_plots(
            "garch_gru",
            net,
            book,
            predicted[predicted["date"] >= evaluate_from],
            title=f"{model_uri} on {evaluate_from:%Y-%m-%d}..{panel.end:%Y-%m-%d}"
            f"{' (in sample)' if in_sample else ''}",
            stats={"sharpe": stats["sharpe"]},
            entry_z=rule.entry_z,
        )
    click.echo(
        f"{model_uri} on {evaluate_from:%Y-%m-%d}..{panel.end:%Y-%m-%d}"
        f"{' (in sample)' if in_sample else ''}: "
        f"Sharpe {stats['sharpe']:.2f}, annual return {stats['annual_return']:.2%}, "
        f"max drawdown {stats['max_drawdown']:.2%}; run {run.info.run_id}"
    )


def _check_model_uri(connection: Any, uri: str) -> None:
    """A ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION`` that does not exist is a
    one-line error naming the model and what it has (exit 2)."""
    import re

    from mlflow.exceptions import MlflowException

    match = re.fullmatch(r"models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/]+)|/(?P<version>[^/]+))", uri)
    if not match:
        return
    name = match["name"]
    try:
        registered = connection.client.get_registered_model(name)
    except MlflowException:
        names = [m.name for m in connection.client.search_registered_models(max_results=50)]
        raise NotFoundError(
            f"no registered model {name!r} (registered: {', '.join(sorted(names)) or 'none'})"
        ) from None
    versions = sorted((str(v.version) for v in connection.list_versions(name)), key=int)
    aliases = dict(registered.aliases or {})
    if match["alias"] and match["alias"] not in aliases:
        shown = ", ".join(f"{a} -> v{v}" for a, v in sorted(aliases.items())) or "none"
        raise NotFoundError(
            f"model {name!r} has no alias {match['alias']!r} (aliases: {shown}; versions: "
            f"{', '.join(versions) or 'none'})"
        )
    if match["version"] and match["version"] not in versions:
        raise NotFoundError(
            f"model {name!r} has no version {match['version']} (versions: "
            f"{', '.join(versions) or 'none'})"
        )
