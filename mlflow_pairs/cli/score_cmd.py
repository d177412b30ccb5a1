"""``mlflow-pairs score``: registered ``garch_gru`` models applied to a price file."""

from __future__ import annotations

import click

from mlflow_pairs.cli._app import AppContext, pass_app
from mlflow_pairs.cli._engine import engine_options
from mlflow_pairs.cli._options import check_output_path

_OUTPUT_FORMATS = (".csv", ".parquet")


@click.command("score")
@click.option(
    "--model",
    required=True,
    metavar="NAME@ALIAS|models:/NAME/VERSION|runs:/...",
    help="The model; {sector} in NAME scores each sector of the file with its own model, "
    "e.g. pairs_trading_gru_garch_{sector}@champion.",
)
@click.option(
    "--prices",
    required=True,
    metavar="FILE",
    help="Prices, CSV or Parquet: wide (date, one column per symbol) or long (date, "
    "symbol, price; and sector with {sector} in --model).",
)
@click.option(
    "--output",
    metavar="OUT.csv|OUT.parquet",
    default=None,
    help="Write the rows here (by extension) [default: CSV on standard output].",
)
@click.option(
    "--all-dates",
    is_flag=True,
    help="A row per pair and date of the file, not only the latest date.",
)
@engine_options(
    "this process",
    "one Spark task per sector group",
)
@pass_app
def score(
    app: AppContext,
    model: str,
    prices: str,
    output: str | None,
    all_dates: bool,
    engine: str,
    master: str | None,
) -> None:
    """Score PRICES with a registered garch_gru model: the pyfunc's rows (pair, y, x,
    date, hedge_ratio, spread, zscore, garch_sigma, reversion_probability, signal,
    weight_y, weight_x), for the latest date or, with --all-dates, every date.

    Each group (the file, or each sector) gets the history its model needs: from
    min_history dates before the first date after the model's data.
    """
    from mlflow_pairs.jobs.score import plan_scoring, score_local

    settings = app.settings
    if engine == "spark":
        from mlflow_pairs.spark import check_master, require_pyspark

        require_pyspark()
        master = master or settings.spark.master
        check_master(master)
    elif master is not None:
        raise click.UsageError("--master is for --engine spark")
    if output is not None:
        if not output.lower().endswith(_OUTPUT_FORMATS):
            raise click.BadParameter(
                f"{output}: give a file ending in .csv or .parquet", param_hint="--output"
            )
        check_output_path(output, "--output")
    plan = plan_scoring(prices, model, connection=app.connection(), all_dates=all_dates)
    if engine == "spark":
        from mlflow_pairs.spark import session_scope
        from mlflow_pairs.spark.score import score_spark

        with session_scope(master, app_name="mlflow-pairs score") as spark:
            table = score_spark(spark, plan)
    else:
        table = score_local(plan)
    if output is None:
        click.echo(table.to_csv(index=False), nl=False)
        return
    if output.lower().endswith(".parquet"):
        table.to_parquet(output, index=False)
    else:
        table.to_csv(output, index=False)
    models = ", ".join(plan.model_uris)
    click.echo(
        f"Scored {len(plan.groups)} group(s) with {models}: wrote {len(table)} rows to {output}"
    )
