"""The project's own tables, kept beside MLflow's schema in the same database.

On PostgreSQL they live in their own schema (:data:`SCHEMA`); on SQLite, which has no
schemas, in the main database with the :data:`PREFIX` prefix. The prefix is used on both,
so a table has one name everywhere. MLflow's run and model ids are plain strings, with no
foreign key into MLflow's tables (``mlflow gc`` deletes rows there).

The alembic migrations in ``alembic/versions`` create these tables; a test checks that
:func:`metadata` and the migrations agree.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

import sqlalchemy as sa

__all__ = [
    "PREFIX",
    "SCHEMA",
    "VERSION_TABLE",
    "metadata",
    "model_performance",
    "schema_for",
    "screening_results",
    "variance_stability",
]

#: PostgreSQL schema of the project's tables.
SCHEMA = "mlflow_pairs"
#: Prefix of every table of ours (MLflow's tables never start with it).
PREFIX = "pairs_"
#: Our alembic version table: never MLflow's ``alembic_version``.
VERSION_TABLE = "pairs_alembic_version"

# SQLite makes only INTEGER PRIMARY KEY an auto-incrementing row id.
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def schema_for(dialect: str) -> str | None:
    """The schema our tables live in on ``dialect`` (``None``: the default one)."""
    return SCHEMA if dialect == "postgresql" else None


def _pair_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("sector", sa.String(64), nullable=True),
        sa.Column("y", sa.String(64), nullable=False),
        sa.Column("x", sa.String(64), nullable=False),
    ]


def _created_at() -> sa.Column[datetime]:
    return sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    )


@cache
def metadata(schema: str | None) -> sa.MetaData:
    """The tables at the migrations' head, in ``schema`` (see :func:`schema_for`)."""
    meta = sa.MetaData(schema=schema)
    sa.Table(
        f"{PREFIX}screening_results",
        meta,
        *_pair_columns(),
        sa.Column("window_start", sa.Date, nullable=False),
        sa.Column("window_end", sa.Date, nullable=False),
        sa.Column("hedge_ratio", sa.Float),
        sa.Column("statistic", sa.Float),
        sa.Column("p_value", sa.Float),
        sa.Column("q_value", sa.Float),
        sa.Column("half_life", sa.Float),
        sa.Column("hurst", sa.Float),
        sa.Column("crossings", sa.Integer),
        sa.Column("selected", sa.Boolean, nullable=False),
        sa.Column("rank", sa.Integer),
        sa.Column("rejected_by", sa.String(200)),
        _created_at(),
        sa.UniqueConstraint(
            "run_id", "y", "x", "window_start", "window_end", name="uq_pairs_screening_row"
        ),
        sa.Index("ix_pairs_screening_run", "run_id"),
        sa.Index("ix_pairs_screening_pair", "y", "x"),
        sa.Index("ix_pairs_screening_created", "created_at"),
    )
    sa.Table(
        f"{PREFIX}model_performance",
        meta,
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("model_name", sa.String(256), nullable=False),
        sa.Column("model_version", sa.Integer, nullable=False),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("sector", sa.String(64), nullable=True),
        sa.Column("pair", sa.String(130), nullable=False),
        sa.Column("y", sa.String(64), nullable=False),
        sa.Column("x", sa.String(64), nullable=False),
        sa.Column("period_start", sa.Date, nullable=False),
        sa.Column("period_end", sa.Date, nullable=False),
        sa.Column("f1", sa.Float),
        sa.Column("accuracy", sa.Float),
        sa.Column("auc", sa.Float),
        sa.Column("sharpe", sa.Float),
        sa.Column("max_drawdown", sa.Float),
        sa.Column("trades", sa.Integer),
        _created_at(),
        sa.UniqueConstraint(
            "model_name",
            "model_version",
            "pair",
            "period_start",
            "period_end",
            name="uq_pairs_performance_row",
        ),
        sa.Index("ix_pairs_performance_model", "model_name", "model_version"),
        sa.Index("ix_pairs_performance_run", "run_id"),
        sa.Index("ix_pairs_performance_pair", "y", "x"),
    )
    sa.Table(
        f"{PREFIX}variance_stability",
        meta,
        *_pair_columns(),
        sa.Column("window_start", sa.Date, nullable=False),
        sa.Column("window_end", sa.Date, nullable=False),
        sa.Column("arch_lm_pvalue", sa.Float),
        sa.Column("arch_lags", sa.Integer),
        sa.Column("ljung_box_pvalue", sa.Float),
        sa.Column("ljung_box_lags", sa.Integer),
        _created_at(),
        sa.UniqueConstraint(
            "run_id", "y", "x", "window_start", "window_end", name="uq_pairs_stability_row"
        ),
        sa.Index("ix_pairs_stability_run", "run_id"),
        sa.Index("ix_pairs_stability_pair", "y", "x"),
    )
    return meta


def _table(name: str, schema: str | None) -> sa.Table:
    key = f"{schema}.{PREFIX}{name}" if schema else f"{PREFIX}{name}"
    return metadata(schema).tables[key]


def screening_results(schema: str | None) -> sa.Table:
    return _table("screening_results", schema)


def model_performance(schema: str | None) -> sa.Table:
    return _table("model_performance", schema)


def variance_stability(schema: str | None) -> sa.Table:
    return _table("variance_stability", schema)
