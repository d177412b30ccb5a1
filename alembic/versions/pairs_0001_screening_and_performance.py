"""Screening results per run and pair-level model performance per model version.

Revision ID: pairs_0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "pairs_0001"
down_revision = None
branch_labels = None
depends_on = None

# SQLite makes only INTEGER PRIMARY KEY an auto-incrementing row id.
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _schema() -> str | None:
    return "mlflow_pairs" if op.get_context().dialect.name == "postgresql" else None


def _created_at() -> sa.Column[datetime]:
    return sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    )


def upgrade() -> None:
    schema = _schema()
    op.create_table(
        "pairs_screening_results",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("sector", sa.String(64), nullable=True),
        sa.Column("y", sa.String(64), nullable=False),
        sa.Column("x", sa.String(64), nullable=False),
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
        schema=schema,
    )
    op.create_index("ix_pairs_screening_run", "pairs_screening_results", ["run_id"], schema=schema)
    op.create_index("ix_pairs_screening_pair", "pairs_screening_results", ["y", "x"], schema=schema)
    op.create_index(
        "ix_pairs_screening_created", "pairs_screening_results", ["created_at"], schema=schema
    )
    op.create_table(
        "pairs_model_performance",
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
        schema=schema,
    )
    op.create_index(
        "ix_pairs_performance_model",
        "pairs_model_performance",
        ["model_name", "model_version"],
        schema=schema,
    )
    op.create_index(
        "ix_pairs_performance_run", "pairs_model_performance", ["run_id"], schema=schema
    )
    op.create_index(
        "ix_pairs_performance_pair", "pairs_model_performance", ["y", "x"], schema=schema
    )


def downgrade() -> None:
    schema = _schema()
    op.drop_table("pairs_model_performance", schema=schema)
    op.drop_table("pairs_screening_results", schema=schema)
