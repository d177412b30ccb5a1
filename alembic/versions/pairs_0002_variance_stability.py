"""Variance-stability results: ARCH-LM and Ljung-Box p-values per pair and window.

Revision ID: pairs_0002
Revises: pairs_0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "pairs_0002"
down_revision = "pairs_0001"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _schema() -> str | None:
    return "mlflow_pairs" if op.get_context().dialect.name == "postgresql" else None


def upgrade() -> None:
    schema = _schema()
    op.create_table(
        "pairs_variance_stability",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("sector", sa.String(64), nullable=True),
        sa.Column("y", sa.String(64), nullable=False),
        sa.Column("x", sa.String(64), nullable=False),
        sa.Column("window_start", sa.Date, nullable=False),
        sa.Column("window_end", sa.Date, nullable=False),
        sa.Column("arch_lm_pvalue", sa.Float),
        sa.Column("arch_lags", sa.Integer),
        sa.Column("ljung_box_pvalue", sa.Float),
        sa.Column("ljung_box_lags", sa.Integer),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.UniqueConstraint(
            "run_id", "y", "x", "window_start", "window_end", name="uq_pairs_stability_row"
        ),
        schema=schema,
    )
    op.create_index("ix_pairs_stability_run", "pairs_variance_stability", ["run_id"], schema=schema)
    op.create_index(
        "ix_pairs_stability_pair", "pairs_variance_stability", ["y", "x"], schema=schema
    )


def downgrade() -> None:
    op.drop_table("pairs_variance_stability", schema=_schema())
