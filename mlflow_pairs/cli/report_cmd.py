"""``mlflow-pairs report``: questions answered from the project's own tables."""

from __future__ import annotations

from datetime import datetime

import click

from mlflow_pairs.cli._app import AppContext, pass_app
from mlflow_pairs.errors import ConfigError


def _since(value: str | None) -> datetime | None:
    from mlflow_pairs.db.records import RowError, parse_since

    try:
        return parse_since(value)
    except RowError as exc:
        raise click.BadParameter(str(exc), param_hint="'--since'") from None


@click.group("report")
def report_group() -> None:
    """Reports from mlflow-pairs' own tables (see `mlflow-pairs db`)."""


@report_group.command("pairs")
@click.option("--sector", default=None, help="Only this sector.")
@click.option(
    "--since",
    default=None,
    metavar="DATE|Nd",
    help="Only runs from this date (2026-01-31, UTC) or the last N days (30d).",
)
@click.option("--limit", type=click.IntRange(1), default=20, show_default=True)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
)
@pass_app
def pairs(app: AppContext, sector: str | None, since: str | None, limit: int, fmt: str) -> None:
    """The pairs most often selected by screening, and their performance across runs.

    Selection counts come from every screen and train run (each walk-forward window
    counts); F1, AUC and Sharpe are means over the model versions' trading periods,
    max_drawdown the worst, trades the total.

    With a tracking server that serves the tables (`mlflow-pairs server --app-name pairs`
    or `pairs-auth`), the report comes through it with the MLflow login of
    MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD: no database password needed.
    """
    from mlflow_pairs.db.records import pair_report
    from mlflow_pairs.db.remote import tables_target
    from mlflow_pairs.secrets import mask_uri

    moment = _since(since)
    uri = tables_target(app.settings)
    if uri is None:
        raise ConfigError(f"{app.settings.source}: tables.uri is off; nothing to report")
    report = pair_report(uri, sector=sector, since=moment, limit=limit)
    if fmt == "csv":
        click.echo(report.to_csv(index=False), nl=False)
        return
    if fmt == "json":
        click.echo(report.to_json(orient="records", date_format="iso", double_precision=15))
        return
    if report.empty:
        scope = f" in sector {sector}" if sector else ""
        scope += f" since {since}" if since else ""
        click.echo(f"No pair has been selected by screening{scope} ({mask_uri(uri)}).")
        return
    shown = report.assign(
        last_selected=report["last_selected"].map(
            lambda v: f"{v:%Y-%m-%d}" if hasattr(v, "strftime") else str(v)[:10]
        )
    )
    click.echo(shown.to_string(index=False, float_format=lambda v: f"{v:.4g}", na_rep="-"))
