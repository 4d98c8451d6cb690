"""Quantization: lineage of quantized models, and quality reports with one row per model.

Revision ID: 0004_quantize
Revises: 0003_memory_checks
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_quantize"
down_revision: str | None = "0003_memory_checks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "model_lineage",
        sa.Column("output_path", sa.Text(), primary_key=True),
        sa.Column("source_path", sa.Text(), nullable=False),
        sa.Column("quant_type", sa.String(16), nullable=False),
        sa.Column("imatrix_path", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_model_lineage_source_path", "model_lineage", ["source_path"])
    op.create_table(
        "quality_reports",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("source_path", sa.Text(), nullable=False),
        sa.Column("sample", sa.Text(), nullable=False),
        sa.Column("n_ctx", sa.Integer(), nullable=False),
        sa.Column("n_chunks", sa.Integer(), nullable=False),
        sa.Column("gpu_layers", sa.Integer(), nullable=False, server_default="0"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_quality_reports_source_path", "quality_reports", ["source_path"])
    op.create_table(
        "quality_results",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("report_id", sa.Integer(),
                  sa.ForeignKey("quality_reports.id", ondelete="CASCADE"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("file_type", sa.String(32), nullable=False),
        sa.Column("file_size", sa.BigInteger(), nullable=False),
        sa.Column("bits_per_weight", sa.Float(), nullable=False),
        sa.Column("perplexity", sa.Float(), nullable=True),
        sa.Column("ppl_stderr", sa.Float(), nullable=True),
        sa.Column("prompt_tps", sa.Float(), nullable=True),
        sa.Column("gen_tps", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
    )
    op.create_index("ix_quality_results_report_id", "quality_results", ["report_id"])
    op.create_index("ix_quality_results_path", "quality_results", ["path"])


def downgrade() -> None:
    op.drop_index("ix_quality_results_path", table_name="quality_results")
    op.drop_index("ix_quality_results_report_id", table_name="quality_results")
    op.drop_table("quality_results")
    op.drop_index("ix_quality_reports_source_path", table_name="quality_reports")
    op.drop_table("quality_reports")
    op.drop_index("ix_model_lineage_source_path", table_name="model_lineage")
    op.drop_table("model_lineage")
